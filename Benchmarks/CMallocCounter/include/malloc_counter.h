/*
 * malloc_counter.h: counts heap allocations in the process that links it.
 *
 * Linked into an executable, malloc_counter.c defines malloc, calloc,
 * realloc, posix_memalign, aligned_alloc and memalign; the executable's
 * definitions take precedence over glibc's for every library in the process
 * (the Swift runtime included), and each one counts, then calls glibc's own.
 * For scripts/microbench only: never link it into a library.
 */
#ifndef MALLOC_COUNTER_H
#define MALLOC_COUNTER_H

/* Allocations made so far by the process (all threads). */
unsigned long swgi_allocations(void);

#endif

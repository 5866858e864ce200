/*
 * swgi_wire.h: the frames that pass between an Apache child and a daemon
 * process (daemon mode), over a UNIX stream socket.
 *
 * A frame is an 8-byte header (type, flags, two zero bytes, payload length
 * as a 32-bit integer in host order: both ends are one machine) and the
 * payload. A connection carries one request at a time, and is kept by its
 * Apache thread for the next:
 *
 *   child -> daemon   Q  the request: flags, timeout, start time, trust,
 *                        application path, entry point, environ pairs
 *   daemon -> child   N  not taken (the process restarts): send it again
 *   daemon -> child   R  read: up to N bytes of body wanted
 *   child -> daemon   B  body bytes (answer to R); E: end of body;
 *                        X: the body cannot be read
 *   daemon -> child   S  start_response: status, status line, headers
 *   daemon -> child   W  body bytes (flag SWGI_WIRE_FLUSH: flush them)
 *   daemon -> child   L  a log line: level, text
 *   daemon -> child   D  done: the result of handle() (SWGI_DONE or a status),
 *                        the process's slot in its group (free_threads)
 *   daemon -> child   K  the process is dying of a signal while serving
 *                        this request: signal number, pid
 *   daemon -> child   T  the request ran longer than request-timeout
 *
 * A daemon process that never read a request (it stopped, or died, with
 * the Q frame unread) leaves its connection reset (ECONNRESET): the Apache
 * child then knows the application never saw it and sends it again. A
 * full process hands back requests that wait on kept connections the same
 * way when another process of the group has a free thread.
 *
 * Body bytes are pulled by the daemon (R), never pushed: an application
 * that answers before it reads cannot deadlock the two ends.
 */
#ifndef SWGI_WIRE_H
#define SWGI_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define SWGI_WIRE_HEADER 8
/* Payloads of body frames are at most this big; larger writes are split. */
#define SWGI_WIRE_CHUNK (64 * 1024)
/* No frame is bigger: a request's environ is bounded by Apache's limits. */
#define SWGI_WIRE_MAX (16 * 1024 * 1024)

#define SWGI_WIRE_FLUSH 0x1

/* A growable buffer of bytes to send (malloc'd). */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
    size_t frame;       /* where the open frame's header starts */
} swgi_wbuf_t;

void swgi_wbuf_free(swgi_wbuf_t *b);
void swgi_wbuf_begin(swgi_wbuf_t *b, char type, unsigned flags);
void swgi_wbuf_u32(swgi_wbuf_t *b, uint32_t v);
void swgi_wbuf_i64(swgi_wbuf_t *b, int64_t v);
void swgi_wbuf_raw(swgi_wbuf_t *b, const void *data, size_t len);
/* A length (u32) and the bytes. */
void swgi_wbuf_bytes(swgi_wbuf_t *b, const char *data, size_t len);
/* Writes the open frame's length into its header. */
void swgi_wbuf_end(swgi_wbuf_t *b);

/* A frame header for a payload sent separately (writev). */
void swgi_wire_header(char header[SWGI_WIRE_HEADER], char type, unsigned flags, size_t len);

/* How long reads and writes on fd may wait (SO_RCVTIMEO, SO_SNDTIMEO),
 * in microseconds. */
void swgi_wire_set_timeouts(int fd, int64_t usec);

/* Writes all of iov; 0, or -1 with errno (EPIPE: the other end is gone;
 * EAGAIN: the socket's send timeout passed). Never raises SIGPIPE. */
int swgi_wire_writev(int fd, struct iovec *iov, int count);
int swgi_wire_write(int fd, const void *data, size_t len);

/* A frame that was read; payload valid until the next read. */
typedef struct {
    char type;
    unsigned flags;
    const char *payload;
    size_t len;
} swgi_frame_t;

/* Reading frames from one socket, with a buffer. */
typedef struct {
    int fd;
    char *buf;
    size_t cap, start, end;
    int timed_out;          /* the last read failed on SO_RCVTIMEO */
    int error;              /* errno of the last failed read, or 0 */
} swgi_reader_t;

void swgi_reader_init(swgi_reader_t *rd, int fd);
/* For another connection (or request), keeping the buffer. */
void swgi_reader_reset(swgi_reader_t *rd, int fd);
void swgi_reader_free(swgi_reader_t *rd);
/* 1 and a frame, 0 at the end of the stream (before a frame began), -1 on
 * an error (error set), the socket's receive timeout (timed_out set) or a
 * malformed frame. */
int swgi_reader_next(swgi_reader_t *rd, swgi_frame_t *frame);

/* Taking a payload apart; `bad` is set when it is shorter than its fields. */
typedef struct {
    const char *p;
    const char *end;
    int bad;
} swgi_cursor_t;

uint32_t swgi_cursor_u32(swgi_cursor_t *c);
int64_t swgi_cursor_i64(swgi_cursor_t *c);
/* A length-prefixed byte string (not NUL-terminated). */
const char *swgi_cursor_bytes(swgi_cursor_t *c, size_t *len);

#endif /* SWGI_WIRE_H */

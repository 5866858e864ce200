/*
 * swgi_abi.h: the C ABI between an SWGI host and an SWGI application library.
 *
 * The host is mod_swgi (apache/); the application library is a Swift dynamic
 * library that links SWGIBridge. This header is the only thing the two share:
 * plain C types, prefixed names, one version number. Neither side sees the
 * other's Swift types, so applications built against different versions of
 * SWGI can run in one process (each library carries its own copy of SWGI and
 * is loaded with RTLD_LOCAL).
 *
 * Loading (host side):
 *   1. dlopen(path, RTLD_NOW | RTLD_LOCAL), in the process that will serve
 *      requests (an Apache child, never the Apache parent).
 *   2. dlsym(SWGI_ENTRY_PREFIX NAME), NAME being the entry point
 *      (default SWGI_DEFAULT_ENTRY, "application").
 *   3. Call it once; it returns a table that lives as long as the process.
 *      The host must refuse the table unless abi_version == SWGI_ABI_VERSION
 *      and size >= sizeof(swgi_app_v1).
 *
 * Compatibility: fields are only ever appended to a struct, and each struct
 * starts with its size as the creator built it, so either side can tell what
 * the other knows. A change that is not an append bumps SWGI_ABI_VERSION.
 */
#ifndef SWGI_ABI_H
#define SWGI_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SWGI_ABI_VERSION 1u

/* Entry points are exported as SWGI_ENTRY_PREFIX + NAME. */
#define SWGI_ENTRY_PREFIX "swgi_entry_"
#define SWGI_DEFAULT_ENTRY "application"

/* A byte string, not NUL-terminated unless said otherwise. */
typedef struct swgi_bytes {
    const char *data;
    size_t len;
} swgi_bytes;

typedef struct swgi_pair {
    swgi_bytes name;
    swgi_bytes value;
} swgi_pair;

/* Log levels: syslog's numbers, which are also Apache's APLOG_* levels. */
#define SWGI_LOG_ERR 3
#define SWGI_LOG_WARNING 4
#define SWGI_LOG_NOTICE 5
#define SWGI_LOG_INFO 6
#define SWGI_LOG_DEBUG 7

/* Results of the host's output callbacks. */
#define SWGI_OK 0
/* The client is gone (or output failed for good): produce no more output. */
#define SWGI_ECLIENT (-1)
/* The call is not allowed now (for example write before start_response). */
#define SWGI_ESTATE (-2)
/* The file to send cannot be opened; the host has logged why. */
#define SWGI_EFILE (-3)
/* Nothing to read yet (a host that serves through handle_async: wait with
 * wait_readable). */
#define SWGI_EAGAIN (-4)

/* Flags in swgi_request_v1.flags. */
#define SWGI_FLAG_MULTITHREAD  0x1u  /* other requests may run on other threads */
#define SWGI_FLAG_MULTIPROCESS 0x2u  /* other requests may run in other processes */
#define SWGI_FLAG_RUN_ONCE     0x4u  /* the process serves this one request */
/* The host has looked up SWGI_VALIDATE in the request's environ: with
 * SWGI_FLAG_VALIDATE_KNOWN set, SWGI_FLAG_VALIDATE says whether its value
 * is "1" (the application then need not ask for it); without it, the
 * application looks it up itself. */
#define SWGI_FLAG_VALIDATE_KNOWN 0x8u
#define SWGI_FLAG_VALIDATE       0x10u

/*
 * What the host offers the application for one request. Every callback
 * takes the request's `host` pointer first. They may be called only while
 * handle() runs, and never two at once: the host's request state (Apache's
 * pools and brigades) is not thread-safe. The thread that called handle()
 * is blocked in it meanwhile, so another thread may make the calls if the
 * application side serializes them (SWGIBridge does).
 */
typedef struct swgi_host_v1 {
    uint32_t size;

    /*
     * Reads up to len bytes of the request body into buf (dechunked).
     * Returns the number of bytes read (> 0), 0 at the end of the body, or
     * a negative value when the body cannot be read (client gone, timeout,
     * body over the server's limit); the host logs the cause and, if the
     * response has not started, answers with the fitting status itself.
     */
    int64_t (*read)(void *host, char *buf, size_t len);

    /*
     * Sets the response status and headers. The application side has
     * validated them (three-digit status with a reason, header names are
     * tokens, values have no control characters, no hop-by-hop headers).
     * The host copies everything before returning. Nothing is sent yet:
     * status and headers leave with the first write or with the end of the
     * response. Returns SWGI_OK or SWGI_ESTATE (called twice).
     */
    int (*start_response)(void *host, int status, swgi_bytes status_line,
                          const swgi_pair *headers, size_t nheaders);

    /*
     * Sends len bytes of body. The host copies or sends them before
     * returning: the memory may be reused afterwards. flush != 0 asks that
     * the bytes be on the wire before the call returns (streaming); flush ==
     * 0 lets the host gather small writes until the end of the response.
     * Returns SWGI_OK, SWGI_ECLIENT (client gone: stop producing output), or
     * SWGI_ESTATE (no start_response yet).
     */
    int (*write)(void *host, const char *data, size_t len, int flush);

    /* Logs one line (no trailing newline needed) attributed to the request. */
    void (*log)(void *host, int level, const char *message, size_t len);

    /*
     * Sends `length` bytes of the file at `path` (not NUL-terminated) from
     * `offset`, without the bytes passing through the application: the host
     * opens the file itself (mod_swgi: an APR file bucket, which Apache
     * sends with sendfile when EnableSendfile is on). Results as for write,
     * plus SWGI_EFILE. Hosts whose `size` ends before this field lack it;
     * the application then sends the bytes with write.
     */
    int (*send_file)(void *host, const char *path, size_t path_len,
                     uint64_t offset, uint64_t length, int flush);

    /*
     * The environ, for a request whose `environ` is NULL (the host builds it
     * as the application asks; see SWGI_APP_LAZY_ENVIRON). environ_get
     * looks up one variable: 1 and *value (valid until handle() returns)
     * when it is set, 0 when not. environ_all gives every variable, in the
     * host's order (a name may occur twice: the first is the value). Hosts
     * whose `size` ends before these fields always pass `environ`.
     */
    int (*environ_get)(void *host, const char *name, size_t name_len, swgi_bytes *value);
    void (*environ_all)(void *host, const swgi_pair **pairs, size_t *count);

    /*
     * For hosts that run requests on an event loop and call handle_async
     * (see swgi_app_v1); NULL in others. Such a host never blocks in a
     * callback:
     * - schedule runs job(arg) soon on the request's event loop. Any thread
     *   may call it, until the application calls done.
     * - read returns SWGI_EAGAIN instead of waiting when nothing has arrived.
     * - write and send_file queue the bytes (flush is implied) and return.
     * - wait_readable returns 1 when read would return at once (bytes, the
     *   end, or a failure). Otherwise it returns 0 and the host calls
     *   wake(arg) once, on its loop, when that becomes true or the client
     *   goes away.
     * - wait_writable returns 1 when the host wants more output (what it
     *   has queued is under its limit, or the client is gone: write then
     *   says so). Otherwise it returns 0 and calls wake(arg) once, on its
     *   loop, when it does.
     * At most one wait of each kind is pending at a time.
     */
    void (*schedule)(void *host, void (*job)(void *arg), void *arg);
    int (*wait_readable)(void *host, void (*wake)(void *arg), void *arg);
    int (*wait_writable)(void *host, void (*wake)(void *arg), void *arg);
} swgi_host_v1;

/* One request, as the host hands it to the application. */
typedef struct swgi_request_v1 {
    uint32_t size;
    uint32_t flags;                 /* SWGI_FLAG_* */
    void *host;                     /* first argument of every callback */
    const swgi_host_v1 *callbacks;
    /*
     * The CGI environment (REQUEST_METHOD, PATH_INFO, HTTP_*, ...) and the
     * host's own keys (mod_swgi.*), in the host's order. Names are ASCII;
     * values are the request's bytes, which need not be valid UTF-8. A name
     * may occur twice: the first occurrence is the value. Valid until
     * handle() returns. NULL when the application declared
     * SWGI_APP_LAZY_ENVIRON and the host offers environ_get/environ_all.
     */
    const swgi_pair *environ;
    size_t environ_count;
    /*
     * How long the request may go without progress, in microseconds (0: no
     * limit): mod_swgi passes Apache's Timeout. An async application that
     * neither produces nor consumes anything for that long has its task
     * cancelled and the request ends (504 if nothing was sent). Hosts whose
     * `size` ends before this field set no limit.
     */
    int64_t timeout_usec;
} swgi_request_v1;

/*
 * Values handle() returns. SWGI_DONE: the response is complete (the host
 * ends it). Any other value is an HTTP status: the request failed and the
 * application side has logged why; if the host has sent nothing yet it
 * answers with that status, otherwise it cuts the connection so that the
 * client can tell the response is incomplete.
 */
#define SWGI_DONE 0

/* Flags in swgi_app_v1.flags. */
/* The application reads the environ through environ_get/environ_all when
 * the request's `environ` is NULL. */
#define SWGI_APP_LAZY_ENVIRON 0x1u

typedef struct swgi_app_v1 {
    uint32_t abi_version;           /* SWGI_ABI_VERSION */
    uint32_t size;                  /* sizeof(swgi_app_v1) */
    const char *swgi_version;       /* the SWGI library version, NUL-terminated */
    void *context;                  /* passed back to handle() */
    /* Serves one request; may be called on many threads at once. */
    int (*handle)(void *context, const swgi_request_v1 *request);
    /* SWGI_APP_*; a host reads it only when `size` covers it. */
    uint32_t flags;
    /*
     * Serves one request without blocking the calling thread, for a host
     * that runs an event loop and offers schedule/wait_readable/
     * wait_writable (NULL when the application does not serve this way:
     * the host then calls handle on a thread that may block). Returns
     * SWGI_OK when the request was taken: the application's code then runs
     * in jobs it passes to schedule, and it calls done(host, result) once,
     * from such a job, when the request is over (result as handle returns).
     * The callbacks follow handle's rule: any thread until done, never two
     * at once (code the application moves off the loop, an actor's, may
     * make them), so the host's callbacks must be thread-safe.
     * The application copies the request struct before returning; what it
     * points to (host, callbacks, environ) must stay valid until done. Any other
     * return value is an HTTP status, as from handle, and done is never
     * called.
     */
    int (*handle_async)(void *context, const swgi_request_v1 *request,
                        void (*done)(void *host, int result));
} swgi_app_v1;

/* The type of an exported entry point. */
typedef const swgi_app_v1 *(*swgi_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* SWGI_ABI_H */

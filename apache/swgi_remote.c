/*
 * swgi_remote.c: daemon mode in Apache's children.
 *
 * The handler, for a request whose SWGIProcessGroup names a daemon group,
 * connects to the group's socket, sends the request with its whole environ
 * and then does what the daemon's frames ask (swgi_wire.h): reads the body
 * when asked, starts and streams the response through the same callbacks
 * as embedded mode (swgi_handler.c), logs the application's lines as the
 * request's own, until the daemon says it is done.
 *
 * Each Apache thread keeps its connection to a group for its next request
 * (the daemon waits for that request in an epoll set, holding no thread),
 * unless the process at its other end has no free thread and another of
 * the group has one (the group's shared free_threads): then it connects
 * anew, and a process with a free thread accepts. A full process also
 * hands back requests that wait on its kept connections (swgi_daemon.c).
 *
 * When the connection ends without D:
 * - reset with the request unread (the kernel's ECONNRESET: the process
 *   stopped, or died, before it read it), or N (a process restarting for a
 *   changed library): the application never saw it, and it is sent again,
 *   whatever its method;
 * - a K frame came first: the application crashed on this request: 500
 *   (or a cut connection once the response has begun), a log line naming
 *   the application, the request and the signal;
 * - else another request crashed the process: a GET or HEAD whose response
 *   has not begun and whose body was not read is sent once more to another
 *   process, the client never sees it fail; anything else gets 503 with
 *   Retry-After (or a cut connection).
 * Timeouts: connect-timeout (503), Apache's Timeout for each wait, and
 * request-timeout, which the daemon measures from when a thread takes the
 * request and reports with T (504, or a cut connection).
 */
#include "mod_swgi.h"
#include "swgi_wire.h"

#include "http_protocol.h"

#include "apr_strings.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

APLOG_USE_MODULE(swgi);

/* Sending a request again is tried this many times at most. */
#define MAX_ATTEMPTS 5

/* How one exchange with a daemon ended. */
enum outcome {
    FINISHED,           /* result holds what the handler answers */
    NOT_ACCEPTED,       /* never seen by the application: send again */
    LOST                /* the process went away while serving it */
};

typedef struct {
    swgi_host_t *host;
    swgi_daemon_t *d;
    const char *app_path;
    int fd;
    int reused;             /* a kept connection */
    swgi_wbuf_t *q;         /* the request frame */
    swgi_reader_t *rd;      /* the thread's, or the request's own */
    int thread_buffers;     /* q and rd are the thread's */
    int frames;             /* frames received in this try */
    int body_read;          /* body bytes went to the daemon */
    int done;               /* the daemon sent D: the connection can be kept */
    int proc;               /* from D: the process's slot in the group */
    int result;             /* for FINISHED: SWGI_DONE or a status */
    char *body_buf;
} exchange_t;

/* This thread's kept connection to each group (by index), or -1. */
typedef struct {
    int fd;
    int proc;                   /* the slot of the process at its other end */
    apr_interval_time_t timeout;
} kept_t;

/* What an Apache thread keeps between its requests in daemon mode: its
 * connections, and the buffers of the request frame and of the reader. */
static __thread struct {
    kept_t *kept;
    swgi_wbuf_t q;
    swgi_reader_t rd;
    int in_use;                 /* a request of this thread has the buffers */
} thread_state;

static kept_t *kept_slot(swgi_daemon_t *d)
{
    int i;

    if (!thread_state.kept) {
        thread_state.kept = malloc(sizeof(kept_t) * swgi_daemons->nelts);
        if (!thread_state.kept) {
            return NULL;
        }
        for (i = 0; i < swgi_daemons->nelts; i++) {
            thread_state.kept[i].fd = -1;
        }
    }
    return &thread_state.kept[d->index];
}

static void close_fd(exchange_t *x)
{
    if (x->fd >= 0) {
        close(x->fd);
        x->fd = -1;
    }
}

/* The request's pool is destroyed, perhaps on another thread (the event
 * MPM's write completion): only the connection is closed here, if the
 * handler did not keep or close it. */
static apr_status_t end_exchange(void *data)
{
    close_fd(data);
    return APR_SUCCESS;
}

/* The handler is done with the buffers (on the thread that took them). */
static void release_buffers(exchange_t *x)
{
    if (!x->thread_buffers) {
        swgi_wbuf_free(x->q);
        swgi_reader_free(x->rd);
        return;
    }
    /* Back to the thread, unless a big request grew them. */
    if (x->q->cap > 4 * SWGI_WIRE_CHUNK) {
        swgi_wbuf_free(x->q);
    }
    if (x->rd->cap > 4 * SWGI_WIRE_CHUNK) {
        swgi_reader_free(x->rd);
    }
    thread_state.in_use = 0;
}

/* The process in slot proc has no thread free, and another process of the
 * group has one. */
static int better_elsewhere(swgi_daemon_t *d, int proc)
{
    return d->processes > 1 && d->free_threads && proc >= 0 && proc < d->processes
           && __atomic_load_n(&d->free_threads[proc], __ATOMIC_RELAXED) == 0
           && swgi_daemon_room_elsewhere(d, proc);
}

/* The thread's kept connection to the group, or a new one: connects to
 * the group's socket, waiting up to connect-timeout for a listener with
 * room (a full backlog, or no process yet). */
static int connect_daemon(exchange_t *x)
{
    request_rec *r = x->host->r;
    swgi_daemon_t *d = x->d;
    kept_t *slot = kept_slot(d);
    struct sockaddr_un addr;
    apr_time_t deadline = apr_time_now() + d->connect_timeout;
    apr_interval_time_t pause = 2000;
    int err;

    if (slot && slot->fd >= 0 && better_elsewhere(d, slot->proc)) {
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                      "SWGI process group '%s': process %d is full and another has a "
                      "free thread: a new connection", d->name, slot->proc);
        close(slot->fd);
        slot->fd = -1;
    }
    if (slot && slot->fd >= 0) {
        x->fd = slot->fd;
        x->reused = 1;
        slot->fd = -1;
        if (slot->timeout != r->server->timeout) {
            swgi_wire_set_timeouts(x->fd, r->server->timeout);
        }
        return 0;
    }
    x->reused = 0;

    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    apr_cpystrn(addr.sun_path, d->socket_path, sizeof(addr.sun_path));
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        apr_interval_time_t left = deadline - apr_time_now();

        if (fd < 0) {
            err = errno;
            break;
        }
        /* A full backlog makes connect wait, up to the send timeout. */
        swgi_wire_set_timeouts(fd, left < 1000 ? 1000 : left);
        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
            x->fd = fd;
            swgi_wire_set_timeouts(fd, r->server->timeout);
            return 0;
        }
        err = errno;
        close(fd);
        if ((err != ECONNREFUSED && err != EAGAIN && err != ENOENT)
            || apr_time_now() + pause > deadline) {
            break;
        }
        apr_sleep(pause);
        if (pause < 100000) {
            pause *= 2;
        }
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, err, r,
                  "no daemon process of SWGI process group '%s' took the request for %s "
                  "within connect-timeout (%.1f s): 503", d->name, x->app_path,
                  (double)d->connect_timeout / APR_USEC_PER_SEC);
    return -1;
}

/* Answers an R frame: up to n bytes of body, the end, or a failure. */
static int send_body(exchange_t *x, size_t n)
{
    char header[SWGI_WIRE_HEADER];
    struct iovec iov[2];
    int64_t got;

    if (n > SWGI_WIRE_CHUNK) {
        n = SWGI_WIRE_CHUNK;
    }
    if (!x->body_buf) {
        x->body_buf = apr_palloc(x->host->r->pool, SWGI_WIRE_CHUNK);
    }
    got = swgi_host_read(x->host, x->body_buf, n);
    if (got > 0) {
        x->body_read = 1;
        swgi_wire_header(header, 'B', 0, (size_t)got);
    }
    else {
        swgi_wire_header(header, got == 0 ? 'E' : 'X', 0, 0);
    }
    iov[0].iov_base = header;
    iov[0].iov_len = SWGI_WIRE_HEADER;
    iov[1].iov_base = x->body_buf;
    iov[1].iov_len = got > 0 ? (size_t)got : 0;
    return swgi_wire_writev(x->fd, iov, 2);
}

/* Replays an S frame through start_response. */
static int start_response(exchange_t *x, const swgi_frame_t *f)
{
    swgi_cursor_t c = { f->payload, f->payload + f->len, 0 };
    int status = (int)swgi_cursor_u32(&c);
    swgi_bytes line;
    swgi_pair *headers;
    size_t i, count;

    line.data = swgi_cursor_bytes(&c, &line.len);
    count = swgi_cursor_u32(&c);
    if (c.bad || count > f->len / 8) {
        return -1;
    }
    headers = apr_palloc(x->host->r->pool, sizeof(*headers) * (count ? count : 1));
    for (i = 0; i < count; i++) {
        headers[i].name.data = swgi_cursor_bytes(&c, &headers[i].name.len);
        headers[i].value.data = swgi_cursor_bytes(&c, &headers[i].value.len);
    }
    if (c.bad || status < 100 || status > 999) {
        return -1;
    }
    swgi_host_start_response(x->host, status, line, headers, count);
    return 0;
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGILL: return "SIGILL";
    case SIGTRAP: return "SIGTRAP";
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    }
    return "a signal";
}

/* One try: connect, send the request, follow the daemon's frames. */
static enum outcome exchange(exchange_t *x, const swgi_wbuf_t *q)
{
    request_rec *r = x->host->r;
    swgi_daemon_t *d = x->d;
    swgi_frame_t f;
    swgi_cursor_t c;

    x->frames = 0;
    x->body_read = 0;
    x->done = 0;
    if (connect_daemon(x) < 0) {
        x->result = HTTP_SERVICE_UNAVAILABLE;
        return FINISHED;
    }
    swgi_reader_reset(x->rd, x->fd);
    if (swgi_wire_write(x->fd, q->data, q->len) < 0) {
        return NOT_ACCEPTED;    /* the other end is gone: nothing was read */
    }
    for (;;) {
        int rc = swgi_reader_next(x->rd, &f);

        if (rc != 1) {
            if (x->rd->timed_out) {
                ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                              "SWGI application %s (process group '%s') did nothing for "
                              "longer than Timeout: 504", x->app_path, d->name);
                x->result = HTTP_GATEWAY_TIME_OUT;
                return FINISHED;
            }
            /* Reset with the request unread: the application never saw it. */
            if (!x->frames && x->rd->error == ECONNRESET) {
                return NOT_ACCEPTED;
            }
            return LOST;
        }
        x->frames++;
        switch (f.type) {
        case 'N':
            return NOT_ACCEPTED;
        case 'T':
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "SWGI application %s (process group '%s') ran longer than "
                          "request-timeout (%.1f s): %s", x->app_path, d->name,
                          (double)d->request_timeout / APR_USEC_PER_SEC,
                          x->host->passed ? "the response is cut" : "504");
            x->result = HTTP_GATEWAY_TIME_OUT;
            return FINISHED;
        case 'R':
            c.p = f.payload;
            c.end = f.payload + f.len;
            c.bad = 0;
            if (send_body(x, swgi_cursor_u32(&c)) < 0) {
                return LOST;
            }
            break;
        case 'S':
            if (start_response(x, &f) < 0) {
                goto malformed;
            }
            break;
        case 'W':
            if (swgi_host_write(x->host, f.payload, f.len, f.flags & SWGI_WIRE_FLUSH)
                == SWGI_ECLIENT) {
                /* The client is gone: so is this response. Closing the
                 * connection tells the daemon (its next write fails). */
                x->result = HTTP_BAD_GATEWAY;
                return FINISHED;
            }
            break;
        case 'L':
            c.p = f.payload;
            c.end = f.payload + f.len;
            c.bad = 0;
            rc = (int)swgi_cursor_u32(&c);
            if (c.bad) {
                goto malformed;
            }
            swgi_host_log(x->host, rc, c.p, (size_t)(c.end - c.p));
            break;
        case 'D':
            c.p = f.payload;
            c.end = f.payload + f.len;
            c.bad = 0;
            x->result = (int)swgi_cursor_u32(&c);
            x->proc = (int)swgi_cursor_u32(&c);
            if (c.bad) {
                goto malformed;
            }
            x->done = 1;
            return FINISHED;
        case 'K': {
            int32_t values[2] = { 0, 0 };

            if (f.len >= sizeof(values)) {
                memcpy(values, f.payload, sizeof(values));
            }
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "SWGI application %s crashed with %s (signal %d) serving %s %s "
                          "in daemon process %d of process group '%s'; the process is "
                          "replaced", x->app_path, signal_name(values[0]), values[0],
                          r->method, r->unparsed_uri, values[1], d->name);
            x->result = HTTP_INTERNAL_SERVER_ERROR;
            return FINISHED;
        }
        default:
            goto malformed;
        }
    }
malformed:
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                  "SWGI process group '%s': a malformed frame ('%c', %lu bytes) from the "
                  "daemon process serving %s", d->name, f.type, (unsigned long)f.len,
                  x->app_path);
    x->result = HTTP_BAD_GATEWAY;
    return FINISHED;
}

int swgi_remote_handle(swgi_host_t *host, swgi_daemon_t *d, const char *app_path,
                       const char *entry, int allow_untrusted)
{
    request_rec *r = host->r;
    exchange_t *x = apr_pcalloc(r->pool, sizeof(*x));
    swgi_wbuf_t *q;
    const swgi_pair *pairs;
    size_t i, count;
    uint32_t flags = SWGI_FLAG_MULTIPROCESS;
    int attempt, retried_lost = 0;

    x->host = host;
    x->d = d;
    x->app_path = app_path;
    x->fd = -1;
    /* The thread's buffers; a request inside a request (a subrequest
     * served in daemon mode too) has its own. */
    if (!thread_state.in_use) {
        thread_state.in_use = 1;
        x->thread_buffers = 1;
        x->q = &thread_state.q;
        x->rd = &thread_state.rd;
    }
    else {
        x->q = apr_pcalloc(r->pool, sizeof(*x->q));
        x->rd = apr_pcalloc(r->pool, sizeof(*x->rd));
    }
    q = x->q;
    q->len = 0;
    swgi_reader_reset(x->rd, -1);
    apr_pool_cleanup_register(r->pool, x, end_exchange, apr_pool_cleanup_null);

    if (d->threads > 1) {
        flags |= SWGI_FLAG_MULTITHREAD;
    }
    if (d->processes == 1) {
        flags &= ~SWGI_FLAG_MULTIPROCESS;
    }
    pairs = swgi_environ_all(&host->environ, &count);
    flags |= swgi_environ_validate_flags(&host->environ);
    swgi_wbuf_begin(q, 'Q', 0);
    swgi_wbuf_u32(q, flags);
    swgi_wbuf_i64(q, r->server->timeout);
    swgi_wbuf_i64(q, r->request_time);
    swgi_wbuf_u32(q, (uint32_t)allow_untrusted);
    swgi_wbuf_bytes(q, app_path, strlen(app_path));
    swgi_wbuf_bytes(q, entry, strlen(entry));
    swgi_wbuf_u32(q, (uint32_t)count);
    for (i = 0; i < count; i++) {
        swgi_wbuf_bytes(q, pairs[i].name.data, pairs[i].name.len);
        swgi_wbuf_bytes(q, pairs[i].value.data, pairs[i].value.len);
    }
    swgi_wbuf_end(q);

    for (attempt = 1; ; attempt++) {
        enum outcome outcome = exchange(x, q);
        kept_t *slot = kept_slot(d);

        if (outcome == FINISHED && x->done && slot && slot->fd < 0) {
            /* Clean: kept for this thread's next request to the group. */
            slot->fd = x->fd;
            slot->proc = x->proc;
            slot->timeout = r->server->timeout;
            x->fd = -1;
        }
        close_fd(x);
        if (outcome == FINISHED) {
            break;
        }
        if (outcome == NOT_ACCEPTED && attempt < MAX_ATTEMPTS) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                          "SWGI process group '%s': the request was not taken (%s); "
                          "sending it again", d->name,
                          x->reused ? "a kept connection to a process that stopped, "
                          "or that was full while another had a free thread"
                          : "a process that stops");
            continue;
        }
        if (!host->passed && !x->body_read && !retried_lost && attempt < MAX_ATTEMPTS
            && (r->method_number == M_GET || r->header_only)) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          "SWGI process group '%s': the daemon process serving %s went away "
                          "(another request crashed it?); sending the request to another "
                          "process", d->name, r->unparsed_uri);
            retried_lost = 1;
            swgi_host_reset(host);
            continue;
        }
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "SWGI process group '%s': the daemon process serving %s %s (%s) went "
                      "away; the request cannot be sent again (%s): %s", d->name,
                      r->method, r->unparsed_uri, app_path,
                      host->passed ? "its response had begun"
                      : x->body_read ? "its body was read"
                      : (r->method_number == M_GET || r->header_only) ? "it was sent again already"
                      : "not a GET or HEAD",
                      host->passed ? "the connection is cut" : "503");
        x->result = HTTP_SERVICE_UNAVAILABLE;
        break;
    }
    release_buffers(x);
    if (x->result == HTTP_SERVICE_UNAVAILABLE && !host->passed) {
        apr_table_setn(r->err_headers_out, "Retry-After", "1");
    }
    return swgi_host_finish(host, x->result, app_path);
}

/*
 * swgi_daemon.c: daemon mode's processes (SWGIDaemonProcess).
 *
 * In the Apache parent (post_config): one listening UNIX socket per group,
 * under Apache's runtime directory, that only Apache's user may connect to;
 * then the group's processes, forked and registered as "other children" so
 * that the MPM reports their death and another is started in their place.
 * When Apache restarts or stops, the configuration pool's cleanup sends each
 * process SIGTERM: it finishes the requests it is serving (up to
 * graceful-timeout) and exits, and is not replaced. A restart starts the new
 * configuration's processes on a new socket renamed over the old path, so
 * Apache's children, old and new, always find a listener.
 *
 * In a daemon process: no Swift code runs before the fork (the parent never
 * loads an application); the process takes its user, group, umask and
 * directory, then `threads` workers accept connections (swgi_wire.h), load
 * the application on first use (swgi_loader.c) and call it through the same
 * ABI as embedded mode, with callbacks that turn its calls into frames. The
 * main thread watches: maximum-requests, memory-limit, restart-interval,
 * inactivity-timeout, request-timeout and startup-timeout each make the
 * process stop accepting, finish what it serves (up to graceful-timeout)
 * and exit, and the parent starts a fresh one.
 *
 * A worker that dies of a signal (a Swift trap is SIGILL or SIGTRAP) writes
 * one K frame to the connection it serves, so that its Apache child can
 * answer that request with 500 and name the signal; the Apache children of
 * the other requests in flight see the connection end without one, and
 * retry what can be retried (swgi_remote.c).
 */
#include "mod_swgi.h"
#include "swgi_wire.h"

#include "ap_listen.h"
#include "http_core.h"
#include "http_main.h"
#include "unixd.h"

#include "apr_shm.h"
#include "apr_strings.h"
#include "apr_thread_mutex.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

APLOG_USE_MODULE(swgi);

/* A daemon process's exit status when it could not start (its user, its
 * directory): the parent does not start it again in a loop. */
#define EXIT_STARTUP_FAILED 100

struct swgi_daemon_proc_t {
    swgi_daemon_t *group;       /* in the configuration's pool: not once retired */
    const char *name;           /* the group's name, kept as long as this record */
    int generation;             /* the configuration it belongs to */
    int retired;                /* Apache restarts or stops: not replaced */
    int slot;                   /* in the group's procs and free_threads */
    int registered;             /* with the MPM (apr_proc_other_child_register) */
    int ended;                  /* its process is gone and not replaced */
    apr_proc_t proc;
};

static int generation;
static pid_t parent_pid;         /* the Apache parent (post_config's process): the
                                 * one that starts and stops groups and processes */
static apr_pool_t *process_pool;
static char **process_argv;     /* Apache's argv, for display-name */

/* --- read by Apache's children and the group's processes ----------------- */

int swgi_daemon_room_elsewhere(const swgi_daemon_t *d, int proc)
{
    int i;

    for (i = 0; d->free_threads && i < d->processes; i++) {
        if (i != proc && __atomic_load_n(&d->free_threads[i], __ATOMIC_RELAXED) > 0) {
            return 1;
        }
    }
    return 0;
}

/* --- in the Apache parent ------------------------------------------------- */

static void start_process(swgi_daemon_proc_t *dp);

/* How a process ended, for a log line (the parent has one thread). */
static const char *death_cause(int status)
{
    static char text[128];

    if (status == 0) {
        return "exited";
    }
    if (status == EXIT_STARTUP_FAILED) {
        return "could not start (see the line above)";
    }
    if (status > 0 && status < NSIG) {
        snprintf(text, sizeof(text), "died of signal %d (%s), or exited with status %d",
                 status, strsignal(status), status);
    }
    else {
        snprintf(text, sizeof(text), "exited with status %d", status);
    }
    return text;
}

/* Tells a process to finish what it serves and exit; it is not replaced. */
static void retire(swgi_daemon_proc_t *dp)
{
    if (!dp->retired && dp->proc.pid > 0) {
        dp->retired = 1;
        kill(dp->proc.pid, SIGTERM);
    }
}

/* Every process record registered with the MPM, in the process pool's
 * user data, which outlives configurations and this module. A registration
 * points to maintenance(), code of this module, which Apache unloads with
 * each configuration (and may load elsewhere): each configuration's end
 * takes the registrations back (end_records), and the next configuration
 * registers again the records whose processes still run (a graceful
 * restart's retired ones). Left in place, the process pool's destruction at
 * exit called into the unloaded module: the parent died of SIGSEGV at every
 * stop in daemon mode, before some daemon processes had their SIGTERM. */
#define RECORDS_KEY "mod_swgi daemon records 1"

static apr_array_header_t *records(void)
{
    void *list = NULL;

    apr_pool_userdata_get(&list, RECORDS_KEY, process_pool);
    if (!list) {
        list = apr_array_make(process_pool, 8, sizeof(swgi_daemon_proc_t *));
        apr_pool_userdata_set(list, RECORDS_KEY, apr_pool_cleanup_null, process_pool);
    }
    return list;
}

static void maintenance(int reason, void *data, int status);

static void register_record(swgi_daemon_proc_t *dp)
{
    apr_proc_other_child_register(&dp->proc, maintenance, dp, NULL, process_pool);
    dp->registered = 1;
}

static void unregister_record(swgi_daemon_proc_t *dp)
{
    if (dp->registered) {
        dp->registered = 0;
        apr_proc_other_child_unregister(dp);
    }
}

/* The configuration ends (pconf's cleanup, while this module is loaded). */
static apr_status_t end_records(void *data)
{
    apr_array_header_t *list = records();
    int i;

    if (getpid() != parent_pid) {
        return APR_SUCCESS;     /* a copy of the configuration in another process */
    }
    for (i = 0; i < list->nelts; i++) {
        unregister_record(APR_ARRAY_IDX(list, i, swgi_daemon_proc_t *));
    }
    return APR_SUCCESS;
}

/* A configuration begins: the records of processes still running are
 * registered again, with this load of the module; the others are dropped. */
static void begin_records(apr_pool_t *pconf)
{
    apr_array_header_t *list = records();
    int i, kept = 0;

    for (i = 0; i < list->nelts; i++) {
        swgi_daemon_proc_t *dp = APR_ARRAY_IDX(list, i, swgi_daemon_proc_t *);

        if (dp->ended) {
            continue;
        }
        if (!dp->registered) {
            register_record(dp);
        }
        APR_ARRAY_IDX(list, kept++, swgi_daemon_proc_t *) = dp;
    }
    list->nelts = kept;
    parent_pid = getpid();
    apr_pool_cleanup_register(pconf, NULL, end_records, apr_pool_cleanup_null);
}

/* The MPM's news of one process (apr_proc_other_child_*). */
static void maintenance(int reason, void *data, int status)
{
    swgi_daemon_proc_t *dp = data;
    swgi_daemon_t *d;

    switch (reason) {
    case APR_OC_REASON_DEATH:
    case APR_OC_REASON_LOST:
        unregister_record(dp);
        dp->ended = 1;          /* unless started again below */
        if (dp->retired || dp->generation != generation) {
            /* Its configuration (and group record) may be gone. */
            ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, ap_server_conf,
                         "daemon process %" APR_PID_T_FMT " of SWGI process group '%s' "
                         "(stopping) %s", dp->proc.pid, dp->name,
                         death_cause(status));
            break;
        }
        d = dp->group;
        /* Its threads are no longer free for anybody. */
        __atomic_store_n(&d->free_threads[dp->slot], 0, __ATOMIC_RELAXED);
        if (status == EXIT_STARTUP_FAILED) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, d->server,
                         "daemon process %" APR_PID_T_FMT " of SWGI process group '%s' "
                         "could not start; not starting it again until Apache restarts",
                         dp->proc.pid, d->name);
            break;
        }
        ap_log_error(APLOG_MARK, status ? APLOG_ERR : APLOG_INFO, 0, d->server,
                     "daemon process %" APR_PID_T_FMT " of SWGI process group '%s' %s; "
                     "starting another", dp->proc.pid, d->name,
                     death_cause(status));
        start_process(dp);
        break;
    case APR_OC_REASON_RESTART:
        /* Apache restarts or stops (also seen by end_group, which is what
         * runs on a graceful restart). */
        retire(dp);
        break;
    default:
        break;
    }
}

static void daemon_main(swgi_daemon_proc_t *dp) __attribute__((noreturn));

static void start_process(swgi_daemon_proc_t *dp)
{
    swgi_daemon_t *d = dp->group;
    apr_status_t rv = apr_proc_fork(&dp->proc, process_pool);

    if (rv == APR_INCHILD) {
        daemon_main(dp);
    }
    if (rv != APR_INPARENT) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, d->server,
                     "cannot fork a daemon process for SWGI process group '%s'", d->name);
        dp->ended = 1;
        return;
    }
    dp->ended = 0;
    register_record(dp);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, d->server,
                 "started daemon process %" APR_PID_T_FMT " of SWGI process group '%s'",
                 dp->proc.pid, d->name);
}

/* The configuration ends (a restart, or Apache stops): its processes finish
 * what they serve and exit, and are not replaced. */
static apr_status_t end_group(void *data)
{
    swgi_daemon_t *d = data;
    int slot;

    /* Only the parent that started the group stops it, never a process
     * that happens to destroy its copy of the configuration. */
    if (getpid() != parent_pid) {
        return APR_SUCCESS;
    }
    for (slot = 0; d->procs && slot < d->processes; slot++) {
        if (d->procs[slot]) {
            retire(d->procs[slot]);
        }
    }
    if (d->listen_fd >= 0) {
        close(d->listen_fd);
        d->listen_fd = -1;
    }
    /* When Apache stops, nobody will connect again. When it restarts, the
     * next configuration renames its socket over this path. */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_EXITING) {
        unlink(d->socket_path);
    }
    return APR_SUCCESS;
}

/* Makes the group's listening socket: bound under a temporary name, then
 * renamed over the path, so that the path never lacks a listener. */
static int make_listener(swgi_daemon_t *d, apr_pool_t *pconf, apr_pool_t *ptemp)
{
    struct sockaddr_un addr;
    const char *temp;
    int fd;

    d->socket_path = ap_runtime_dir_relative(pconf, apr_psprintf(ptemp, "swgi.%ld.%s.sock",
                                                                 (long)getpid(), d->name));
    temp = apr_pstrcat(ptemp, d->socket_path, ".new", NULL);
    if (strlen(temp) >= sizeof(addr.sun_path)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, d->server,
                     "SWGIDaemonProcess %s: the socket path %s is too long for a UNIX "
                     "socket (%d bytes at most): choose a shorter DefaultRuntimeDir",
                     d->name, temp, (int)sizeof(addr.sun_path) - 1);
        return -1;
    }
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    strcpy(addr.sun_path, temp);

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, d->server,
                     "SWGIDaemonProcess %s: cannot create a socket", d->name);
        return -1;
    }
    unlink(temp);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0
        || (geteuid() == 0 && chown(temp, ap_unixd_config.user_id, (gid_t)-1) < 0)
        || chmod(temp, 0600) < 0
        || listen(fd, d->listen_backlog) < 0
        || rename(temp, d->socket_path) < 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, d->server,
                     "SWGIDaemonProcess %s: cannot listen on %s", d->name, d->socket_path);
        close(fd);
        unlink(temp);
        return -1;
    }
    d->listen_fd = fd;
    apr_pool_cleanup_register(pconf, d, end_group, apr_pool_cleanup_null);
    return 0;
}

int swgi_daemon_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    int i, slot;
    apr_shm_t *shm;
    apr_status_t rv;

    /* The first reading of the configuration at startup only checks it; a
     * configuration test or dump starts nothing. */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG
        || ap_state_query(AP_SQ_RUN_MODE) != AP_SQ_RM_NORMAL) {
        return OK;
    }
    generation = ap_state_query(AP_SQ_CONFIG_GEN);
    process_pool = s->process->pool;
    process_argv = (char **)s->process->argv;
    /* Before the groups' cleanups (end_group), so that it runs after them. */
    begin_records(pconf);

    for (i = 0; i < swgi_daemons->nelts; i++) {
        swgi_daemon_t *d = APR_ARRAY_IDX(swgi_daemons, i, swgi_daemon_t *);

        if ((d->user || d->group) && geteuid() != 0) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, d->server,
                         "SWGIDaemonProcess %s: user= and group= need Apache to start as "
                         "root; its processes run as uid %ld", d->name, (long)geteuid());
        }
        if (make_listener(d, pconf, ptemp) < 0) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        /* Anonymous shared memory: inherited by every process forked from
         * here on, the group's and Apache's children. */
        rv = apr_shm_create(&shm, sizeof(int) * d->processes, NULL, pconf);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, d->server,
                         "SWGIDaemonProcess %s: cannot create the shared memory where "
                         "its processes say how busy they are", d->name);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        d->free_threads = apr_shm_baseaddr_get(shm);
        memset(d->free_threads, 0, sizeof(int) * d->processes);
        /* Records of processes live as long as Apache: the MPM may report a
         * process of this configuration after the configuration is gone. */
        d->procs = apr_pcalloc(process_pool, sizeof(*d->procs) * d->processes);
        for (slot = 0; slot < d->processes; slot++) {
            swgi_daemon_proc_t *dp = apr_pcalloc(process_pool, sizeof(*dp));

            dp->group = d;
            dp->name = apr_pstrdup(process_pool, d->name);
            dp->generation = generation;
            dp->slot = slot;
            d->procs[slot] = dp;
            APR_ARRAY_PUSH(records(), swgi_daemon_proc_t *) = dp;
            start_process(dp);
        }
    }
    return OK;
}

void swgi_daemon_child_init(apr_pool_t *p, server_rec *s)
{
    int i;

    /* Apache's children only connect. */
    for (i = 0; swgi_daemons && i < swgi_daemons->nelts; i++) {
        swgi_daemon_t *d = APR_ARRAY_IDX(swgi_daemons, i, swgi_daemon_t *);

        if (d->listen_fd >= 0) {
            close(d->listen_fd);
            d->listen_fd = -1;
        }
    }
}

/* --- in a daemon process ---------------------------------------------------- */

typedef struct {
    pthread_t thread;
    volatile int fd;                    /* the connection served, or -1 */
    volatile apr_time_t busy_since;     /* 0 when idle */
    volatile int loading;               /* loading an application (startup-timeout) */
    apr_pool_t *pool;                   /* cleared after each request */
    swgi_wbuf_t out;                    /* frames not yet sent */
    pthread_mutex_t wlock;              /* writes to fd: the worker's, and the watch's T */
    swgi_reader_t rd;                   /* its buffer is kept between requests */
    int cut;                            /* the watch ended the request (T sent) */
    int counted;                        /* its request is counted (count_request) */
} worker_t;

/* Connections are kept between requests: an idle one waits in the epoll set,
 * and is marked here (by fd) so that stopping can close it. */
#define MAX_IDLE_FD 65536

static struct {
    swgi_daemon_t *group;
    int slot;                           /* this process's, in the group */
    server_rec *server;
    int listen_fd;
    worker_t *workers;
    int nworkers;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int stopping;
    const char *stop_reason;
    int active;
    int requests;
    apr_time_t started;
    apr_time_t last_activity;
    int wake[2];                        /* readable once stopping */
    int epfd;                           /* the listener, idle connections, wake */
    unsigned char *idle;                /* MAX_IDLE_FD flags, under lock */
    int64_t *timeouts;                  /* each connection's socket timeouts */
    unsigned loads_seen;                /* libraries loaded when the handlers were checked */
    volatile sig_atomic_t signalled;
} dstate;

static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGABRT };

/* The signal handler of a worker that dies: tells its Apache child. Only
 * async-signal-safe calls. */
static void crashed(int sig, siginfo_t *info, void *context)
{
    pthread_t self = pthread_self();
    int i;

    for (i = 0; i < dstate.nworkers; i++) {
        worker_t *w = &dstate.workers[i];

        if (pthread_equal(w->thread, self) && w->fd >= 0) {
            char frame[SWGI_WIRE_HEADER + 8];
            int32_t values[2];

            values[0] = sig;
            values[1] = (int32_t)getpid();
            swgi_wire_header(frame, 'K', 0, 8);
            memcpy(frame + SWGI_WIRE_HEADER, values, 8);
            (void)!send(w->fd, frame, sizeof(frame), MSG_NOSIGNAL | MSG_DONTWAIT);
            break;
        }
    }
    /* Die of the signal: it is blocked while this runs, and delivered with
     * its default action when this returns (or the fault repeats). */
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Installs the crash handler where something else (the Swift runtime, when
 * an application library loads) put its own. */
static void install_crash_handlers(void)
{
    struct sigaction sa, current;
    size_t i;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = crashed;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (i = 0; i < sizeof(crash_signals) / sizeof(crash_signals[0]); i++) {
        if (sigaction(crash_signals[i], NULL, &current) == 0
            && (current.sa_flags & SA_SIGINFO) && current.sa_sigaction == crashed) {
            continue;
        }
        sigaction(crash_signals[i], &sa, NULL);
    }
}

static void stop_signal(int sig)
{
    int saved = errno;

    dstate.signalled = sig;
    (void)!write(dstate.wake[1], "s", 1);
    errno = saved;
}

/* Says in the group's shared memory how many of this process's threads
 * wait for a request (with the lock held): Apache's children and the
 * group's other processes read it. */
static void publish(void)
{
    int free = dstate.stopping ? 0 : dstate.nworkers - dstate.active;

    __atomic_store_n(&dstate.group->free_threads[dstate.slot], free > 0 ? free : 0,
                     __ATOMIC_RELAXED);
}

/* Stops accepting (called with the lock held); the first reason is logged. */
static void begin_stop(const char *reason)
{
    if (dstate.stopping) {
        return;
    }
    dstate.stopping = 1;
    dstate.stop_reason = reason;
    publish();
    (void)!write(dstate.wake[1], "x", 1);
    pthread_cond_broadcast(&dstate.changed);
}

/* Resident memory in bytes, from /proc (0 if unknown). */
static apr_int64_t resident_bytes(void)
{
    char buf[128];
    long pages = 0, rss = 0;
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0) {
        return 0;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    if (sscanf(buf, "%ld %ld", &pages, &rss) != 2) {
        return 0;
    }
    return (apr_int64_t)rss * sysconf(_SC_PAGESIZE);
}

/* --- one request in a worker ---------------------------------------------- */

typedef struct {
    worker_t *w;
    int fd;
    swgi_reader_t *rd;
    const swgi_pair *environ;   /* as the request brought it */
    size_t environ_count;
    int started;
    int sent_body;
    int input_done;
    int input_failed;
    int gone;                   /* the connection to the Apache child failed */
} dhost_t;

/* Writes to the request's connection, unless the watch has ended it. */
static int write_out(dhost_t *h, struct iovec *iov, int count)
{
    worker_t *w = h->w;
    int rc = -1;

    pthread_mutex_lock(&w->wlock);
    if (!w->cut) {
        rc = swgi_wire_writev(h->fd, iov, count);
    }
    pthread_mutex_unlock(&w->wlock);
    if (rc < 0) {
        h->gone = 1;
    }
    return rc;
}

/* Sends the frames gathered in the worker's buffer. */
static int send_out(dhost_t *h)
{
    swgi_wbuf_t *out = &h->w->out;

    if (out->len && !h->gone) {
        struct iovec iov;

        iov.iov_base = out->data;
        iov.iov_len = out->len;
        write_out(h, &iov, 1);
    }
    out->len = 0;
    return h->gone ? SWGI_ECLIENT : SWGI_OK;
}

static int64_t d_read(void *hv, char *buf, size_t len)
{
    dhost_t *h = hv;
    swgi_wbuf_t *out = &h->w->out;
    swgi_frame_t f;

    if (h->input_done || len == 0) {
        return 0;
    }
    if (h->input_failed || h->gone) {
        return -1;
    }
    if (len > SWGI_WIRE_CHUNK) {
        len = SWGI_WIRE_CHUNK;
    }
    swgi_wbuf_begin(out, 'R', 0);
    swgi_wbuf_u32(out, (uint32_t)len);
    swgi_wbuf_end(out);
    if (send_out(h) != SWGI_OK || swgi_reader_next(h->rd, &f) != 1) {
        h->gone = 1;
        return -1;
    }
    switch (f.type) {
    case 'B':
        if (f.len == 0 || f.len > len) {
            break;
        }
        memcpy(buf, f.payload, f.len);
        return (int64_t)f.len;
    case 'E':
        h->input_done = 1;
        return 0;
    case 'X':
        h->input_failed = 1;
        return -1;
    }
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, dstate.server,
                 "SWGI daemon: unexpected frame '%c' while reading a request body", f.type);
    h->gone = 1;
    return -1;
}

static int d_start_response(void *hv, int status, swgi_bytes status_line,
                            const swgi_pair *headers, size_t nheaders)
{
    dhost_t *h = hv;
    swgi_wbuf_t *out = &h->w->out;
    size_t i;

    if (h->sent_body) {
        return SWGI_ESTATE;
    }
    swgi_wbuf_begin(out, 'S', 0);
    swgi_wbuf_u32(out, (uint32_t)status);
    swgi_wbuf_bytes(out, status_line.data, status_line.len);
    swgi_wbuf_u32(out, (uint32_t)nheaders);
    for (i = 0; i < nheaders; i++) {
        swgi_wbuf_bytes(out, headers[i].name.data, headers[i].name.len);
        swgi_wbuf_bytes(out, headers[i].value.data, headers[i].value.len);
    }
    swgi_wbuf_end(out);
    h->started = 1;
    return SWGI_OK;
}

static int d_write(void *hv, const char *data, size_t len, int flush)
{
    dhost_t *h = hv;
    swgi_wbuf_t *out = &h->w->out;

    if (!h->started) {
        return SWGI_ESTATE;
    }
    if (h->gone) {
        return SWGI_ECLIENT;
    }
    if (len) {
        h->sent_body = 1;
    }
    /* Small writes gather in the buffer; big ones leave from the caller's
     * memory, in frames of at most SWGI_WIRE_CHUNK. */
    if (len < 8192 && !flush) {
        swgi_wbuf_begin(out, 'W', 0);
        swgi_wbuf_raw(out, data, len);
        swgi_wbuf_end(out);
        return out->len >= SWGI_WIRE_CHUNK ? send_out(h) : SWGI_OK;
    }
    do {
        size_t n = len > SWGI_WIRE_CHUNK ? SWGI_WIRE_CHUNK : len;
        char header[SWGI_WIRE_HEADER];
        struct iovec iov[3];
        int count = 0;

        swgi_wire_header(header, 'W', (flush && n == len) ? SWGI_WIRE_FLUSH : 0, n);
        if (out->len) {
            iov[count].iov_base = out->data;
            iov[count++].iov_len = out->len;
        }
        iov[count].iov_base = header;
        iov[count++].iov_len = SWGI_WIRE_HEADER;
        iov[count].iov_base = (void *)data;
        iov[count++].iov_len = n;
        out->len = 0;
        if (write_out(h, iov, count) < 0) {
            return SWGI_ECLIENT;
        }
        data += n;
        len -= n;
    } while (len > 0);
    return SWGI_OK;
}

static void d_log(void *hv, int level, const char *message, size_t len)
{
    dhost_t *h = hv;
    swgi_wbuf_t *out = &h->w->out;

    if (h->gone) {
        /* Its Apache child is gone: the line goes to the log from here. */
        ap_log_error(APLOG_MARK, level, 0, dstate.server, "%.*s", (int)len, message);
        return;
    }
    swgi_wbuf_begin(out, 'L', 0);
    swgi_wbuf_u32(out, (uint32_t)level);
    swgi_wbuf_raw(out, message, len);
    swgi_wbuf_end(out);
    send_out(h);
}

/* The environ for applications that look variables up (SWGI_APP_LAZY_ENVIRON):
 * no copy of the whole on the Swift side. */
static int d_environ_get(void *hv, const char *name, size_t name_len, swgi_bytes *value)
{
    dhost_t *h = hv;
    size_t i;

    for (i = 0; i < h->environ_count; i++) {
        const swgi_pair *p = &h->environ[i];

        if (p->name.len == name_len && !memcmp(p->name.data, name, name_len)) {
            *value = p->value;
            return 1;
        }
    }
    return 0;
}

static void d_environ_all(void *hv, const swgi_pair **pairs, size_t *count)
{
    dhost_t *h = hv;

    *pairs = h->environ;
    *count = h->environ_count;
}

static const swgi_host_v1 daemon_callbacks = {
    sizeof(swgi_host_v1),
    d_read,
    d_start_response,
    d_write,
    d_log,
    /* Files are read here and sent as bytes: the Apache child, as another
     * user, may not be able to open them. */
    NULL,
    d_environ_get,
    d_environ_all,
    /* No event loop: a worker thread calls handle and may block. */
    NULL,
    NULL,
    NULL
};

/* A request ends: it counts (maximum-requests, inactivity), once. Before
 * its D frame goes out: a client that sends its next request as soon as it
 * has this answer must find the process stopping already, or another worker
 * could accept that request after the last one maximum-requests allows. */
static void count_request(worker_t *w)
{
    swgi_daemon_t *d = dstate.group;

    if (w->counted) {
        return;
    }
    w->counted = 1;
    pthread_mutex_lock(&dstate.lock);
    dstate.requests++;
    dstate.last_activity = apr_time_now();
    if (d->maximum_requests && dstate.requests >= d->maximum_requests) {
        begin_stop("it served maximum-requests");
    }
    pthread_mutex_unlock(&dstate.lock);
}

/* Sends a D frame with result rc. */
static void send_done(dhost_t *h, int rc)
{
    swgi_wbuf_t *out = &h->w->out;

    count_request(h->w);

    swgi_wbuf_begin(out, 'D', 0);
    swgi_wbuf_u32(out, (uint32_t)rc);
    swgi_wbuf_u32(out, (uint32_t)dstate.slot);
    swgi_wbuf_end(out);
    send_out(h);
}

/* The application is done with the request. Under the write lock: the
 * watch sends T only before this, and then D is not sent (write_out). */
static void served(worker_t *w)
{
    pthread_mutex_lock(&w->wlock);
    w->fd = -1;
    pthread_mutex_unlock(&w->wlock);
}

/* Serves one request on connection fd (its Q frame may still be on the
 * way). 1 when the connection can carry another request; *began when a
 * request arrived (a connection may also just end: an Apache child that
 * exits closes the one it kept). */
static int serve(worker_t *w, int fd, int *began)
{
    swgi_daemon_t *d = dstate.group;
    swgi_reader_t *rd = &w->rd;
    swgi_frame_t f;
    swgi_cursor_t c;
    dhost_t h;
    swgi_request_v1 request;
    const swgi_app_v1 *app;
    apr_time_t queued_since;
    const char *path, *entry;
    size_t path_len, entry_len, i, count;
    swgi_pair *pairs;
    int allow_untrusted, rc, changed;

    memset(&h, 0, sizeof(h));
    h.w = w;
    h.fd = fd;
    h.rd = rd;
    swgi_reader_reset(rd, fd);
    /* An idle connection is readable; a new one has its request on the way,
     * within the socket's receive timeout (set when it was accepted). */
    if (swgi_reader_next(rd, &f) != 1 || f.type != 'Q') {
        return 0;
    }
    /* A request: it counts (maximum-requests, inactivity), and its time runs
     * (request-timeout, startup-timeout). */
    pthread_mutex_lock(&dstate.lock);
    dstate.active++;
    publish();
    if (dstate.active == dstate.nworkers && d->processes > 1) {
        /* Full: the watch looks out for requests to hand back (shed). */
        pthread_cond_signal(&dstate.changed);
    }
    w->busy_since = apr_time_now();
    pthread_mutex_unlock(&dstate.lock);
    w->counted = 0;
    *began = 1;

    /* One copy of the frame, which stays in the reader's buffer only until
     * the next read (the body's): the environ points into it. */
    c.p = apr_pmemdup(w->pool, f.payload, f.len);
    c.end = c.p + f.len;
    c.bad = 0;
    memset(&request, 0, sizeof(request));
    request.size = sizeof(request);
    request.flags = swgi_cursor_u32(&c);
    request.timeout_usec = swgi_cursor_i64(&c);
    queued_since = swgi_cursor_i64(&c);
    allow_untrusted = (int)swgi_cursor_u32(&c);
    path = swgi_cursor_bytes(&c, &path_len);
    entry = swgi_cursor_bytes(&c, &entry_len);
    count = swgi_cursor_u32(&c);
    if (c.bad || count > f.len / 8) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, dstate.server,
                     "SWGI daemon: a malformed request from an Apache child");
        return 0;
    }
    path = apr_pstrmemdup(w->pool, path, path_len);
    entry = apr_pstrmemdup(w->pool, entry, entry_len);
    pairs = apr_palloc(w->pool, sizeof(*pairs) * (count ? count : 1));
    for (i = 0; i < count; i++) {
        pairs[i].name.data = swgi_cursor_bytes(&c, &pairs[i].name.len);
        pairs[i].value.data = swgi_cursor_bytes(&c, &pairs[i].value.len);
    }
    if (c.bad) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, dstate.server,
                     "SWGI daemon: a malformed environ from an Apache child");
        return 0;
    }

    if (request.timeout_usec > 0 && request.timeout_usec != dstate.timeouts[fd]) {
        swgi_wire_set_timeouts(fd, request.timeout_usec);
        dstate.timeouts[fd] = request.timeout_usec;
    }

    if (d->queue_timeout && apr_time_now() - queued_since > d->queue_timeout) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, dstate.server,
                     "SWGI process group '%s': a request for %s waited longer than "
                     "queue-timeout (%.1f s) for a thread: 503", d->name, path,
                     (double)d->queue_timeout / APR_USEC_PER_SEC);
        send_done(&h, HTTP_SERVICE_UNAVAILABLE);
        return !h.gone;
    }

    /* From here a crash of this worker (in a library's initializers too) is
     * reported on this connection. */
    w->fd = fd;
    w->loading = 1;
    app = swgi_load_app_server(dstate.server, w->pool, path, entry, allow_untrusted,
                               &changed);
    w->loading = 0;
    if (changed) {
        /* A library that changed since this process loaded it: the group
         * restarts, as mod_wsgi's daemons do when a script changes, and the
         * request goes back to its Apache child unseen (N), which sends it
         * to a new process. */
        served(w);
        pthread_mutex_lock(&dstate.lock);
        if (!dstate.stopping) {
            static char reason[600];

            snprintf(reason, sizeof(reason), "the application file %s changed", path);
            begin_stop(reason);
        }
        pthread_mutex_unlock(&dstate.lock);
        swgi_wbuf_begin(&w->out, 'N', 0);
        swgi_wbuf_end(&w->out);
        send_out(&h);
        return 0;
    }
    if (!app) {
        served(w);
        send_done(&h, HTTP_INTERNAL_SERVER_ERROR);
        return !h.gone;
    }
    /* The Swift runtime of a library loaded just now may have put its own
     * handlers in place of this process's. */
    if (swgi_loader_count() != dstate.loads_seen) {
        pthread_mutex_lock(&dstate.lock);
        dstate.loads_seen = swgi_loader_count();
        install_crash_handlers();
        pthread_mutex_unlock(&dstate.lock);
    }

    request.host = &h;
    request.callbacks = &daemon_callbacks;
    h.environ = pairs;
    h.environ_count = count;
    if (swgi_app_lazy_environ(app)) {
        request.environ = NULL;     /* environ_get and environ_all */
    }
    else {
        request.environ = pairs;
        request.environ_count = count;
    }
    rc = app->handle(app->context, &request);
    served(w);
    if (!h.gone) {
        send_done(&h, rc);
    }
    return !h.gone;
}

/* --- workers and the watch ---------------------------------------------- */

/* Watches fd for its next request (EPOLL_CTL_ADD for a new connection). */
static int arm(int fd, int op)
{
    struct epoll_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.fd = fd;
    return epoll_ctl(dstate.epfd, op, fd, &ev);
}

/* One request on fd, counted; then fd waits for the next, or is closed. */
static void serve_connection(worker_t *w, int fd, int in_epoll)
{
    int keep, began = 0;

    keep = serve(w, fd, &began);
    apr_pool_clear(w->pool);
    /* Buffers grown for a big request or response are not kept. */
    if (w->out.cap > 4 * SWGI_WIRE_CHUNK) {
        swgi_wbuf_free(&w->out);
    }
    if (w->rd.cap > 4 * SWGI_WIRE_CHUNK) {
        swgi_reader_free(&w->rd);
    }

    pthread_mutex_lock(&w->wlock);
    if (w->cut) {
        keep = 0;
        w->cut = 0;
    }
    pthread_mutex_unlock(&w->wlock);

    if (began) {
        count_request(w);   /* if no D went out */
    }
    pthread_mutex_lock(&dstate.lock);
    if (began) {
        dstate.active--;
        publish();
        w->busy_since = 0;
    }
    if (keep && !dstate.stopping && fd < MAX_IDLE_FD
        && arm(fd, in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD) == 0) {
        dstate.idle[fd] = 1;
        fd = -1;
    }
    if (dstate.stopping) {
        /* The watch waits for the requests in flight. */
        pthread_cond_broadcast(&dstate.changed);
    }
    pthread_mutex_unlock(&dstate.lock);
    if (fd >= 0) {
        close(fd);
    }
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    stack_t ss;

    /* A stack for the crash handler, which must run after a stack overflow too. */
    ss.ss_size = 64 * 1024;
    ss.ss_sp = malloc(ss.ss_size);
    ss.ss_flags = 0;
    if (ss.ss_sp) {
        sigaltstack(&ss, NULL);
    }

    for (;;) {
        struct epoll_event ev;
        int fd, n;

        n = epoll_wait(dstate.epfd, &ev, 1, -1);
        if (n < 0 && errno != EINTR) {
            break;
        }
        if (n <= 0) {
            continue;
        }
        fd = ev.data.fd;
        if (fd == dstate.wake[0]) {
            break;          /* stopping */
        }
        if (fd == dstate.listen_fd) {
            int conn, stopping;

            /* A stopping process takes no new connection: it waits in the
             * backlog for another process (the listener is not armed again). */
            pthread_mutex_lock(&dstate.lock);
            stopping = dstate.stopping;
            pthread_mutex_unlock(&dstate.lock);
            if (stopping) {
                continue;
            }
            conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
            arm(fd, EPOLL_CTL_MOD);
            if (conn < 0) {
                continue;   /* another process took it */
            }
            if (conn >= MAX_IDLE_FD) {
                close(conn);    /* beyond what the idle table tracks */
                continue;
            }
            /* Its first request must come soon: a worker waits for it. */
            dstate.timeouts[conn] = apr_time_from_sec(10);
            swgi_wire_set_timeouts(conn, dstate.timeouts[conn]);
            serve_connection(w, conn, 0);
            continue;
        }
        /* An idle connection with its next request (or its end). Stopping
         * may have closed it, and its number may be a new connection's; a
         * stopping process leaves it to the watch, which closes it unread
         * (its Apache child sends the request again, to another process). */
        pthread_mutex_lock(&dstate.lock);
        if (fd >= MAX_IDLE_FD || !dstate.idle[fd] || dstate.stopping) {
            pthread_mutex_unlock(&dstate.lock);
            continue;
        }
        dstate.idle[fd] = 0;
        pthread_mutex_unlock(&dstate.lock);
        serve_connection(w, fd, 1);
    }
    return NULL;
}

/* Waits (with the lock held) until a worker says something changed, or ms
 * milliseconds pass. */
static void wait_changed(int ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)ms * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&dstate.changed, &dstate.lock, &ts);
}

/* Checks the limits that the watch sees every 100 ms (with the lock held):
 * time, and memory (`resident`, read by the caller without the lock). */
static void watch(apr_time_t now, apr_int64_t resident)
{
    swgi_daemon_t *d = dstate.group;
    int i;

    if (dstate.signalled) {
        begin_stop("Apache is stopping or restarting");
    }
    if (d->restart_interval && now - dstate.started > d->restart_interval) {
        begin_stop("restart-interval passed");
    }
    if (d->memory_limit && resident > d->memory_limit) {
        begin_stop("its resident memory passed memory-limit");
    }
    if (d->inactivity_timeout && dstate.active == 0
        && now - dstate.last_activity > d->inactivity_timeout) {
        begin_stop("it was idle for inactivity-timeout");
    }
    for (i = 0; i < dstate.nworkers; i++) {
        apr_time_t since = dstate.workers[i].busy_since;

        if (!since) {
            continue;
        }
        if (d->request_timeout && now - since > d->request_timeout) {
            worker_t *w = &dstate.workers[i];

            /* Its Apache child answers 504 (or cuts the response); what the
             * application still writes goes nowhere. */
            pthread_mutex_lock(&w->wlock);
            if (!w->cut && w->fd >= 0) {
                char frame[SWGI_WIRE_HEADER];

                swgi_wire_header(frame, 'T', 0, 0);
                (void)!send(w->fd, frame, sizeof(frame), MSG_NOSIGNAL | MSG_DONTWAIT);
                w->cut = 1;
            }
            pthread_mutex_unlock(&w->wlock);
            begin_stop("a request ran longer than request-timeout");
        }
        if (d->startup_timeout && dstate.workers[i].loading
            && now - since > d->startup_timeout) {
            begin_stop("loading an application took longer than startup-timeout");
        }
    }
}

/* Requests in flight that are worth waiting for (with the lock held): not
 * those over request-timeout (their Apache child answered 504), nor loads
 * over startup-timeout. */
static int still_running(apr_time_t now)
{
    swgi_daemon_t *d = dstate.group;
    int i, n = 0;

    for (i = 0; i < dstate.nworkers; i++) {
        apr_time_t since = dstate.workers[i].busy_since;

        if (!since) {
            continue;
        }
        if (d->request_timeout && now - since > d->request_timeout) {
            continue;
        }
        if (d->startup_timeout && dstate.workers[i].loading && now - since > d->startup_timeout) {
            continue;
        }
        n++;
    }
    return n;
}

/* With the lock held. An Apache thread keeps its connection to whichever
 * process served it, so requests can wait here, on kept connections, for a
 * thread of this full process while another process has threads free.
 * Those requests go back unread: their connections are closed (the kernel
 * resets a connection closed with unread data), and each Apache child
 * sends its request again on a new connection, which a process with a free
 * thread accepts. Apache's children also leave a kept connection to a full
 * process when another has room (swgi_remote.c); this catches the requests
 * that arrived at once. */
static void shed(void)
{
    struct epoll_event ev[32];
    int n, i, count = 0;

    if (dstate.stopping || dstate.active < dstate.nworkers
        || !swgi_daemon_room_elsewhere(dstate.group, dstate.slot)) {
        return;
    }
    /* Idle connections' events are one-shot: one taken here is a request
     * no worker will see; the listener's is handed back. */
    n = epoll_wait(dstate.epfd, ev, 32, 0);
    for (i = 0; i < n; i++) {
        int fd = ev[i].data.fd;

        if (fd == dstate.listen_fd) {
            arm(fd, EPOLL_CTL_MOD);
        }
        else if (fd != dstate.wake[0] && fd < MAX_IDLE_FD && dstate.idle[fd]) {
            dstate.idle[fd] = 0;
            close(fd);
            count++;
        }
    }
    if (count) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, dstate.server,
                     "SWGI process group '%s': process %ld is full; %d requests waiting for "
                     "it go back to Apache, for a process with a free thread",
                     dstate.group->name, (long)getpid(), count);
    }
}

/* Takes the group's user, group, umask, directory and name. */
static int become(swgi_daemon_t *d)
{
    uid_t uid = d->user ? d->uid : ap_unixd_config.user_id;
    gid_t gid = (d->user || d->group) ? d->gid : ap_unixd_config.group_id;
    const char *user = d->user ? d->user : ap_unixd_config.user_name;
    struct passwd *pw;
    const char *home = d->home;
    char comm[16];

    if (geteuid() == 0) {
        if (setgid(gid) < 0 || initgroups(user, gid) < 0 || setuid(uid) < 0) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, errno, d->server,
                         "SWGI process group '%s': cannot become user %s (uid %ld, "
                         "gid %ld)", d->name, user, (long)uid, (long)gid);
            return -1;
        }
    }
    swgi_loader_trust_owner(geteuid());
    if (d->umask >= 0) {
        umask((mode_t)d->umask);
    }
    if (!home) {
        pw = getpwuid(geteuid());
        home = pw && pw->pw_dir ? pw->pw_dir : "/";
    }
    if (chdir(home) < 0) {
        ap_log_error(APLOG_MARK, d->home ? APLOG_CRIT : APLOG_WARNING, errno, d->server,
                     "SWGI process group '%s': cannot change to directory %s",
                     d->name, home);
        if (d->home || chdir("/") < 0) {
            return -1;
        }
    }
    /* The name that ps -o comm and top show; display-name also replaces the
     * command line (within the room Apache's own had). */
    snprintf(comm, sizeof(comm), "swgi:%s", d->name);
    prctl(PR_SET_NAME, d->display_name ? d->display_name : comm, 0, 0, 0);
    if (d->display_name && process_argv && process_argv[0]) {
        size_t room = 0;
        char **arg;

        for (arg = process_argv; *arg; arg++) {
            if (*arg != process_argv[0] + room) {
                break;      /* not contiguous: stay within what is */
            }
            room += strlen(*arg) + 1;
        }
        memset(process_argv[0], 0, room);
        strncpy(process_argv[0], d->display_name, room - 1);
    }
    return 0;
}

static void daemon_main(swgi_daemon_proc_t *dp)
{
    swgi_daemon_t *d = dp->group;
    struct sigaction sa;
    sigset_t all;
    apr_pool_t *pool;
    apr_time_t deadline, next_watch;
    int i;

    memset(&dstate, 0, sizeof(dstate));
    dstate.group = d;
    dstate.slot = dp->slot;
    dstate.server = d->server;
    dstate.listen_fd = d->listen_fd;

    /* Apache's signal handlers are the parent's: this process has its own. */
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    sigaction(SIGWINCH, &sa, NULL);
    if (pipe2(dstate.wake, O_CLOEXEC) < 0) {
        _exit(EXIT_STARTUP_FAILED);
    }
    sa.sa_handler = stop_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);

    /* Only this group's listener: not Apache's ports, not other groups'. */
    ap_close_listeners();
    for (i = 0; i < swgi_daemons->nelts; i++) {
        swgi_daemon_t *other = APR_ARRAY_IDX(swgi_daemons, i, swgi_daemon_t *);

        if (other != d && other->listen_fd >= 0) {
            close(other->listen_fd);
        }
    }
    fcntl(dstate.listen_fd, F_SETFL, fcntl(dstate.listen_fd, F_GETFL) | O_NONBLOCK);

    if (become(d) < 0) {
        _exit(EXIT_STARTUP_FAILED);
    }
    /* Gone with the Apache parent, whatever way it goes (a crash too). Set
     * after become(): a change of user clears it. A parent gone before
     * this is seen here. */
    prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
    if (getppid() != parent_pid) {
        _exit(0);
    }

    /* The workers' pools are used at once on their threads: their allocator
     * has a mutex, as Apache's child pool's does. */
    {
        apr_allocator_t *allocator;
        apr_thread_mutex_t *mutex;

        if (apr_allocator_create(&allocator) != APR_SUCCESS
            || apr_pool_create_ex(&pool, NULL, NULL, allocator) != APR_SUCCESS
            || apr_thread_mutex_create(&mutex, APR_THREAD_MUTEX_DEFAULT, pool) != APR_SUCCESS) {
            _exit(EXIT_STARTUP_FAILED);
        }
        apr_allocator_owner_set(allocator, pool);
        apr_allocator_mutex_set(allocator, mutex);
    }
    apr_pool_tag(pool, "swgi_daemon");
    swgi_loader_child_init(pool, d->server);
    install_crash_handlers();

    pthread_mutex_init(&dstate.lock, NULL);
    pthread_cond_init(&dstate.changed, NULL);
    dstate.idle = calloc(MAX_IDLE_FD, 1);
    dstate.timeouts = calloc(MAX_IDLE_FD, sizeof(*dstate.timeouts));
    dstate.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!dstate.idle || !dstate.timeouts || dstate.epfd < 0
        || arm(dstate.listen_fd, EPOLL_CTL_ADD) < 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, d->server,
                     "SWGI process group '%s': cannot set up its event set", d->name);
        _exit(EXIT_STARTUP_FAILED);
    }
    {
        struct epoll_event ev;

        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN;    /* level: every worker sees it */
        ev.data.fd = dstate.wake[0];
        epoll_ctl(dstate.epfd, EPOLL_CTL_ADD, dstate.wake[0], &ev);
    }
    dstate.started = dstate.last_activity = apr_time_now();
    dstate.nworkers = d->threads;
    dstate.workers = apr_pcalloc(pool, sizeof(worker_t) * d->threads);
    for (i = 0; i < d->threads; i++) {
        worker_t *w = &dstate.workers[i];
        pthread_attr_t attr;

        w->fd = -1;
        pthread_mutex_init(&w->wlock, NULL);
        swgi_reader_init(&w->rd, -1);
        apr_pool_create(&w->pool, pool);
        pthread_attr_init(&attr);
        /* As much stack as an Apache thread has (Linux's default). */
        pthread_attr_setstacksize(&attr, 8 * 1024 * 1024);
        if (pthread_create(&w->thread, &attr, worker_main, w) != 0) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, errno, d->server,
                         "SWGI process group '%s': cannot start its threads", d->name);
            _exit(EXIT_STARTUP_FAILED);
        }
        pthread_attr_destroy(&attr);
    }
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, d->server,
                 "SWGI process group '%s': process %ld serves with %d threads as uid %ld",
                 d->name, (long)getpid(), d->threads, (long)geteuid());

    /* The watch, until the process stops: the limits every 100 ms; while
     * the process is full, requests to hand back (shed) every 10 ms. */
    pthread_mutex_lock(&dstate.lock);
    publish();
    next_watch = 0;
    while (!dstate.stopping) {
        apr_time_t now;

        wait_changed(dstate.active >= dstate.nworkers && d->processes > 1 ? 10 : 100);
        now = apr_time_now();
        if (now >= next_watch) {
            apr_int64_t resident;

            next_watch = now + apr_time_from_msec(100);
            /* /proc is read without the lock, which every request takes. */
            pthread_mutex_unlock(&dstate.lock);
            resident = d->memory_limit ? resident_bytes() : 0;
            pthread_mutex_lock(&dstate.lock);
            watch(apr_time_now(), resident);
        }
        shed();
    }
    ap_log_error(APLOG_MARK, dstate.signalled ? APLOG_DEBUG : APLOG_INFO, 0, d->server,
                 "SWGI process group '%s': process %ld stops: %s (%d requests in flight)",
                 d->name, (long)getpid(), dstate.stop_reason, dstate.active);
    /* No new connections here; idle ones are closed, and a request already
     * sent on one (unread, so the kernel resets the connection) goes to
     * another process. */
    epoll_ctl(dstate.epfd, EPOLL_CTL_DEL, dstate.listen_fd, NULL);
    for (i = 0; i < MAX_IDLE_FD; i++) {
        if (dstate.idle[i]) {
            dstate.idle[i] = 0;
            close(i);
        }
    }
    /* What is in flight finishes, within graceful-timeout. */
    deadline = apr_time_now() + d->graceful_timeout;
    while (still_running(apr_time_now()) > 0 && apr_time_now() < deadline) {
        wait_changed(50);
    }
    if (dstate.active > 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, d->server,
                     "SWGI process group '%s': process %ld exits with %d requests still "
                     "running (%d of them over request-timeout or startup-timeout)",
                     d->name, (long)getpid(),
                     dstate.active, dstate.active - still_running(apr_time_now()));
    }
    pthread_mutex_unlock(&dstate.lock);
    /* No atexit handlers or pool cleanups: they belong to Apache's parent. */
    _exit(0);
}

/*
 * mod_swgi.h: what the files of mod_swgi share.
 *
 * mod_swgi.c      module record, hooks
 * swgi_config.c   directives, per-server and per-directory configuration
 * swgi_loader.c   loading application libraries in each child
 * swgi_environ.c  the environ of a request
 * swgi_handler.c  the swgi-app handler: body, response
 * swgi_daemon.c   daemon mode: the daemon processes, started and
 *                 supervised by the Apache parent, and what runs in them
 * swgi_remote.c   daemon mode: the handler's side, in Apache's children
 * swgi_wire.c     daemon mode: the frames between the two (swgi_wire.h)
 */
#ifndef MOD_SWGI_H
#define MOD_SWGI_H

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "ap_regex.h"
#include "apr_tables.h"
#include "apr_buckets.h"

#include "swgi_abi.h"

#define MOD_SWGI_VERSION "0.5.0"

/* The handler name, for SetHandler/AddHandler and set by the aliases. */
#define SWGI_HANDLER_NAME "swgi-app"

#define SWGI_UNSET (-1)

extern module AP_MODULE_DECLARE_DATA swgi_module;

/* One SWGIAppAlias or SWGIAppAliasMatch. */
typedef struct {
    const char *prefix;     /* URL-path without trailing slash ("" for "/"), or NULL */
    ap_regex_t *regex;      /* for SWGIAppAliasMatch, or NULL */
    const char *target;     /* file path; may hold $N for a regex */
    const char *entry;      /* entry=NAME, or NULL */
    /* In each child, what swgi_load_app found for a prefix alias (a
     * swgi_cached_app_t), so that a request needs no lock or lookup. */
    void *cached;
} swgi_alias_t;

typedef struct {
    apr_array_header_t *aliases;    /* swgi_alias_t, this server's first */
} swgi_server_conf_t;

/* The process group that means embedded mode (the request's own process). */
#define SWGI_GLOBAL_GROUP "%{GLOBAL}"

typedef struct swgi_daemon_proc_t swgi_daemon_proc_t;

/* One SWGIDaemonProcess: its options (mod_wsgi's names and meanings) and,
 * once the parent has started it, its socket and processes. */
typedef struct {
    const char *name;
    int index;                      /* in swgi_daemons */
    server_rec *server;             /* where it was defined: its logs */
    int processes;
    int threads;
    const char *user;               /* NULL: Apache's User */
    const char *group;              /* NULL: the user's group, or Apache's Group */
    uid_t uid;
    gid_t gid;
    const char *home;               /* NULL: the user's home directory */
    int umask;                      /* -1: Apache's */
    const char *display_name;       /* NULL: the command line stays Apache's */
    int maximum_requests;           /* 0: no limit */
    apr_interval_time_t request_timeout;
    apr_interval_time_t inactivity_timeout;
    apr_interval_time_t graceful_timeout;
    apr_interval_time_t startup_timeout;
    apr_interval_time_t connect_timeout;
    apr_interval_time_t queue_timeout;
    apr_interval_time_t restart_interval;
    int listen_backlog;
    apr_int64_t memory_limit;       /* bytes of RSS, 0: no limit */
    /* Set by the parent in post_config. */
    const char *socket_path;
    int listen_fd;
    swgi_daemon_proc_t **procs;     /* `processes` slots */
    /* Shared by the parent, the group's processes and Apache's children:
     * for each slot, how many of its process's threads wait for a request
     * (0 while it starts, is full or stops). Written by the process. */
    int *free_threads;
} swgi_daemon_t;

typedef struct {
    const char *entry_point;        /* SWGIEntryPoint, NULL when unset */
    const char *process_group;      /* SWGIProcessGroup, NULL when unset */
    int pass_authorization;         /* SWGIPassAuthorization, SWGI_UNSET */
    int chunked_request;            /* SWGIChunkedRequest, SWGI_UNSET */
    int allow_untrusted;            /* SWGIAllowUntrustedFiles, SWGI_UNSET */
} swgi_dir_conf_t;

/* Set on a request that an alias matched (request_config). */
typedef struct {
    const char *app_path;
    const char *entry;              /* from entry=NAME, or NULL */
    void **cache;                   /* the alias's cache slot, or NULL */
} swgi_request_conf_t;

/* swgi_config.c */
extern const command_rec swgi_cmds[];
/* Every SWGIDaemonProcess of the configuration (swgi_daemon_t *), in pconf. */
extern apr_array_header_t *swgi_daemons;
void swgi_config_pre_config(apr_pool_t *pconf);
swgi_daemon_t *swgi_find_daemon(const char *name);
void *swgi_create_server_config(apr_pool_t *p, server_rec *s);
void *swgi_merge_server_config(apr_pool_t *p, void *basev, void *addv);
void *swgi_create_dir_config(apr_pool_t *p, char *dir);
void *swgi_merge_dir_config(apr_pool_t *p, void *basev, void *addv);
/* Finds the alias that maps r->uri; fills r->filename and the request config. */
int swgi_translate_name(request_rec *r);

/* swgi_loader.c */
void swgi_loader_child_init(apr_pool_t *p, server_rec *s);
/* The application table for (path, entry), loading it on first use in this
 * process. NULL, with one error-log line naming the file and the reason, if
 * it cannot be had, or if the file is not owned by root or Apache's user,
 * or is writable by everyone, unless `allow_untrusted`. `cache`, if not NULL, is a slot that remembers the
 * answer for later requests with the same path (see swgi_alias_t). */
const swgi_app_v1 *swgi_load_app(request_rec *r, const char *path, const char *entry,
                                 void **cache, int allow_untrusted);

/* The application reads the environ through environ_get/environ_all (its
 * table is new enough to say so, and says so). */
static APR_INLINE int swgi_app_lazy_environ(const swgi_app_v1 *app)
{
    return app->size >= offsetof(swgi_app_v1, flags) + sizeof(app->flags)
           && (app->flags & SWGI_APP_LAZY_ENVIRON);
}

/* The same for a daemon process, which has no request_rec: logs to s. A
 * library whose file has changed since this process loaded it (time, size,
 * or gone; looked at once a second at most) gives NULL and *changed = 1:
 * the process is to restart. */
const swgi_app_v1 *swgi_load_app_server(server_rec *s, apr_pool_t *p, const char *path,
                                        const char *entry, int allow_untrusted,
                                        int *changed);
/* How many libraries this process has loaded (opened and accepted). */
unsigned swgi_loader_count(void);
/* Files owned by uid are trusted too (a daemon process's own user). */
void swgi_loader_trust_owner(uid_t uid);

/* swgi_environ.c */
/* The environ of one request, computed as the application asks for it. */
typedef struct {
    request_rec *r;
    swgi_dir_conf_t *dconf;
    const char *app_path;
    const char *entry;
    const char *process_group;  /* mod_swgi.process_group: "" when embedded */
    int apache;                 /* Apache's own functions build it */
    const char **computed;      /* each provider's value, once known */
    apr_uint64_t known;         /* bit i: computed[i] is known */
    const swgi_pair *all;       /* the whole environ, once built */
    size_t all_count;
} swgi_environ_t;

void swgi_environ_child_init(apr_pool_t *p, server_rec *s);
void swgi_environ_init(swgi_environ_t *env, request_rec *r, swgi_dir_conf_t *dconf,
                       const char *app_path, const char *entry);
/* One variable (the first of that name), or NULL. */
const char *swgi_environ_get(swgi_environ_t *env, const char *name, apr_size_t len);
/* SWGI_FLAG_VALIDATE_KNOWN, and SWGI_FLAG_VALIDATE when the request's
 * SWGI_VALIDATE is "1": the application then need not look it up. */
apr_uint32_t swgi_environ_validate_flags(swgi_environ_t *env);
/* Every variable, in the environ's order (pairs in r->pool). */
const swgi_pair *swgi_environ_all(swgi_environ_t *env, size_t *count);

/* swgi_handler.c */
/* The state of one request, the `host` pointer of the ABI's callbacks. */
typedef struct {
    request_rec *r;
    apr_bucket_brigade *bb;         /* output, made once per request */
    apr_bucket_brigade *in;         /* input */
    int started;                    /* start_response was called */
    int passed;                     /* output reached the filters: headers are out */
    int input_done;                 /* the request body's EOS was seen */
    int input_status;               /* HTTP status of a failed body read, or 0 */
    int client_gone;
    swgi_environ_t environ;
} swgi_host_t;

void swgi_handler_child_init(apr_pool_t *p, server_rec *s);
int swgi_handler(request_rec *r);
/* The callbacks of swgi_abi.h that Apache's side implements (the daemon
 * mode's client replays the daemon's calls through them). */
int64_t swgi_host_read(void *h, char *buf, size_t len);
int swgi_host_start_response(void *h, int status, swgi_bytes status_line,
                             const swgi_pair *headers, size_t nheaders);
int swgi_host_write(void *h, const char *data, size_t len, int flush);
void swgi_host_log(void *h, int level, const char *message, size_t len);
/* Ends the request after the application's result rc (SWGI_DONE or a
 * status): the end of the response, a cut connection if it was incomplete,
 * or an error page if nothing was sent. Returns the handler's result. */
int swgi_host_finish(swgi_host_t *host, int rc, const char *app_path);
/* Forgets a response that was started but not sent. */
void swgi_host_reset(swgi_host_t *host);

/* swgi_daemon.c */
/* Starts the daemon processes (in the Apache parent). */
int swgi_daemon_post_config(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s);
/* In each Apache child: closes the daemons' listening sockets. */
void swgi_daemon_child_init(apr_pool_t *p, server_rec *s);
/* Whether a process of the group but the one in slot `proc` has a thread
 * waiting for a request (its free_threads). */
int swgi_daemon_room_elsewhere(const swgi_daemon_t *d, int proc);

/* swgi_remote.c */
/* Serves the request through a daemon process of group d. */
int swgi_remote_handle(swgi_host_t *host, swgi_daemon_t *d, const char *app_path,
                       const char *entry, int allow_untrusted);

#endif /* MOD_SWGI_H */

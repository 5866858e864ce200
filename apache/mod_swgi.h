/*
 * mod_swgi.h: what the files of mod_swgi share.
 *
 * mod_swgi.c      module record, hooks
 * swgi_config.c   directives, per-server and per-directory configuration
 * swgi_loader.c   loading application libraries in each child
 * swgi_environ.c  the environ of a request
 * swgi_handler.c  the swgi-app handler: body, response
 */
#ifndef MOD_SWGI_H
#define MOD_SWGI_H

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "ap_regex.h"
#include "apr_tables.h"

#include "swgi_abi.h"

#define MOD_SWGI_VERSION "0.4.0"

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

typedef struct {
    const char *entry_point;        /* SWGIEntryPoint, NULL when unset */
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

/* swgi_environ.c */
/* The environ of one request, computed as the application asks for it. */
typedef struct {
    request_rec *r;
    swgi_dir_conf_t *dconf;
    const char *app_path;
    const char *entry;
    int apache;                 /* Apache's own functions build it */
    const char **computed;      /* each provider's value, once known */
    const swgi_pair *all;       /* the whole environ, once built */
    size_t all_count;
} swgi_environ_t;

void swgi_environ_child_init(apr_pool_t *p, server_rec *s);
void swgi_environ_init(swgi_environ_t *env, request_rec *r, swgi_dir_conf_t *dconf,
                       const char *app_path, const char *entry);
/* One variable (the first of that name), or NULL. */
const char *swgi_environ_get(swgi_environ_t *env, const char *name, apr_size_t len);
/* Every variable, in the environ's order (pairs in r->pool). */
const swgi_pair *swgi_environ_all(swgi_environ_t *env, size_t *count);

/* swgi_handler.c */
void swgi_handler_child_init(apr_pool_t *p, server_rec *s);
int swgi_handler(request_rec *r);

#endif /* MOD_SWGI_H */

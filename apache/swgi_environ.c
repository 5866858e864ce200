/*
 * swgi_environ.c: the environ of one request, as the ABI's pairs.
 *
 * The values are those of mod_wsgi, which takes Apache's CGI variables
 * (ap_add_cgi_vars, ap_add_common_vars) and adjusts them: no PATH, no
 * HTTP_PROXY (httpoxy), Authorization only when allowed, SCRIPT_NAME and
 * PATH_INFO always present with repeated slashes collapsed, HTTPS=1 under
 * SSL, HEAD seen as GET when an output filter needs the whole body.
 *
 * Apache's functions fill r->subprocess_env, a table, through a second
 * table that they overlap onto it: about a third of a small request's time
 * in a handler. The fast path here computes the same values from the same
 * sources straight into an array of pairs, and defers PATH_TRANSLATED (a
 * sub-request) until the application asks for it. Requests where Apache's
 * rules have more cases than the fast path knows (internal redirects, SSI,
 * CGIVar, proxy-noquery) take Apache's functions, as does every request
 * when `SetEnv SWGI_ENVIRON_APACHE 1` asks for it: the integration tests
 * compare the two paths key by key.
 */
#include "mod_swgi.h"

#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"
#include "util_script.h"
#include "mod_ssl.h"

#include "apr_lib.h"
#include "apr_strings.h"

#include <stdlib.h>

typedef struct {
    swgi_pair *pairs;
    size_t count;
    size_t capacity;
    apr_pool_t *pool;
} env_t;

static APR_OPTIONAL_FN_TYPE(ssl_is_https) *is_https;
/* The child's LD_LIBRARY_PATH, which Apache passes to CGI scripts. */
static const char *library_path;

void swgi_environ_child_init(apr_pool_t *p, server_rec *s)
{
    is_https = APR_RETRIEVE_OPTIONAL_FN(ssl_is_https);
    library_path = getenv("LD_LIBRARY_PATH");
    if (library_path) {
        library_path = apr_pstrdup(p, library_path);
    }
}

static void add_len(env_t *e, const char *name, apr_size_t name_len,
                    const char *value, apr_size_t value_len)
{
    swgi_pair *pair;

    if (e->count == e->capacity) {
        swgi_pair *grown = apr_palloc(e->pool, sizeof(swgi_pair) * e->capacity * 2);

        memcpy(grown, e->pairs, sizeof(swgi_pair) * e->count);
        e->pairs = grown;
        e->capacity *= 2;
    }
    pair = &e->pairs[e->count++];
    pair->name.data = name;
    pair->name.len = name_len;
    pair->value.data = value;
    pair->value.len = value_len;
}

static void add(env_t *e, const char *name, const char *value)
{
    if (value) {
        add_len(e, name, strlen(name), value, strlen(value));
    }
}

/* A value the application gets only when it asks (swgi_host_v1.environ_value). */
static void add_deferred(env_t *e, const char *name)
{
    add_len(e, name, strlen(name), NULL, SWGI_DEFERRED);
}

/* "//" collapsed to "/", as mod_wsgi does for SCRIPT_NAME and PATH_INFO. */
static const char *collapsed(apr_pool_t *p, const char *value)
{
    char *copy;

    if (!strstr(value, "//")) {
        return value;
    }
    copy = apr_pstrdup(p, value);
    ap_no2slash(copy);
    return copy;
}

/* The request-target of the request line, as Apache's REQUEST_URI. */
static const char *request_target(request_rec *r)
{
    const char *first = r->the_request, *last;

    if (!first) {
        return "";
    }
    while (*first && !apr_isspace(*first)) {
        first++;
    }
    while (apr_isspace(*first)) {
        first++;
    }
    last = first;
    while (*last && !apr_isspace(*last)) {
        last++;
    }
    return apr_pstrmemdup(r->pool, first, last - first);
}

/* HTTP_ + the header name upper-cased, '-' as '_'; NULL when the name has
 * another character (Apache does not export such headers: a header named
 * with '_' could pose as another). */
static char *header_variable(apr_pool_t *p, const char *name, apr_size_t *len)
{
    apr_size_t n = strlen(name);
    char *out = apr_palloc(p, n + 6);
    char *cp = out + 5;

    memcpy(out, "HTTP_", 5);
    for (; *name; name++) {
        if (apr_isalnum(*name)) {
            *cp++ = apr_toupper(*name);
        }
        else if (*name == '-') {
            *cp++ = '_';
        }
        else {
            return NULL;
        }
    }
    *cp = '\0';
    *len = n + 5;
    return out;
}

static int is_header_method_get(request_rec *r)
{
    /* A HEAD request whose output a filter will read in full (mod_deflate
     * and the like): the application must produce the body, so it sees GET. */
    return r->method_number == M_GET && r->header_only && r->output_filters
           && r->output_filters->frec && r->output_filters->frec->ftype < AP_FTYPE_PROTOCOL;
}

/* The keys of mod_swgi and the adjustments both paths share; they come
 * first, so they win over a variable of the same name further on. */
static void add_own(env_t *e, request_rec *r, swgi_dir_conf_t *dconf,
                    const char *app_path, const char *entry)
{
    conn_rec *c = r->connection;

    if (is_header_method_get(r)) {
        add(e, "REQUEST_METHOD", "GET");
    }
    if (dconf->pass_authorization == 1) {
        add(e, "HTTP_AUTHORIZATION", apr_table_get(r->headers_in, "Authorization"));
    }
    if (is_https && is_https(c)) {
        add(e, "HTTPS", "1");
    }
    if (!r->log_id) {
        ap_run_generate_log_id(c, r, &r->log_id);
    }
    add(e, "mod_swgi.version", MOD_SWGI_VERSION);
    add(e, "mod_swgi.process_group", "");
    add(e, "mod_swgi.application_path", app_path);
    add(e, "mod_swgi.entry_point", entry);
    add(e, "mod_swgi.request_start", apr_off_t_toa(r->pool, r->request_time));
    add(e, "mod_swgi.request_id", r->log_id);
    add(e, "mod_swgi.connection_id", c->log_id);
}

/* Variables the rest do not override, then r->subprocess_env (SetEnv,
 * mod_rewrite's E=, mod_ssl's StdEnvVars, ...) less PATH and HTTP_PROXY. */
static void add_table(env_t *e, const apr_table_t *t)
{
    const apr_array_header_t *arr = apr_table_elts(t);
    const apr_table_entry_t *elts = (const apr_table_entry_t *)arr->elts;
    int i;

    for (i = 0; i < arr->nelts; i++) {
        if (!elts[i].key || !elts[i].val
            || !strcmp(elts[i].key, "PATH") || !strcmp(elts[i].key, "HTTP_PROXY")) {
            continue;
        }
        add(e, elts[i].key, elts[i].val);
    }
}

/* Apache's own functions, for the requests the fast path leaves to them. */
static void add_apache(env_t *e, request_rec *r)
{
    apr_table_t *t = r->subprocess_env;
    const char *value;

    ap_add_cgi_vars(r);
    ap_add_common_vars(r);
    value = apr_table_get(t, "PATH_INFO");
    add(e, "PATH_INFO", collapsed(r->pool, value ? value : ""));
    value = apr_table_get(t, "SCRIPT_NAME");
    add(e, "SCRIPT_NAME", collapsed(r->pool, value ? value : ""));
    add_table(e, t);
}

static int needs_apache(request_rec *r)
{
    core_dir_config *core = ap_get_core_module_config(r->per_dir_config);

    return r->prev || core->cgi_var_rules || !strcmp(r->protocol, "INCLUDED")
           || apr_table_get(r->notes, "proxy-noquery")
           || apr_table_get(r->subprocess_env, "SWGI_ENVIRON_APACHE");
}

static void add_fast(env_t *e, request_rec *r)
{
    conn_rec *c = r->connection;
    server_rec *s = r->server;
    core_dir_config *core = ap_get_core_module_config(r->per_dir_config);
    const apr_array_header_t *arr = apr_table_elts(r->headers_in);
    const apr_table_entry_t *h = (const apr_table_entry_t *)arr->elts;
    const char *value;
    int i;

    /* ap_add_cgi_vars */
    add(e, "GATEWAY_INTERFACE", "CGI/1.1");
    add(e, "SERVER_PROTOCOL", r->protocol);
    add(e, "REQUEST_METHOD", r->method);
    add(e, "QUERY_STRING", r->args ? r->args : "");
    add(e, "REQUEST_URI", request_target(r));
    if (r->path_info && *r->path_info) {
        int start = ap_find_path_info(r->uri, r->path_info);

        add(e, "SCRIPT_NAME", collapsed(r->pool, apr_pstrndup(r->pool, r->uri, start)));
        add(e, "PATH_INFO", collapsed(r->pool, r->path_info));
        add_deferred(e, "PATH_TRANSLATED");
    }
    else {
        add(e, "SCRIPT_NAME", collapsed(r->pool, r->uri));
        /* Apache leaves PATH_INFO alone here: one from SetEnv stays. */
        value = apr_table_get(r->subprocess_env, "PATH_INFO");
        add(e, "PATH_INFO", value ? collapsed(r->pool, value) : "");
    }

    /* ap_add_common_vars */
    for (i = 0; i < arr->nelts; i++) {
        const char *name = h[i].key;
        char *variable;
        apr_size_t len;

        if (!name || !h[i].val) {
            continue;
        }
        /* The special headers, compared only when the first letter fits. */
        switch (apr_tolower(*name)) {
        case 'c':
            if (!strcasecmp(name, "Content-Type")) {
                add(e, "CONTENT_TYPE", h[i].val);
                continue;
            }
            if (!strcasecmp(name, "Content-Length")) {
                add(e, "CONTENT_LENGTH", h[i].val);
                continue;
            }
            break;
        case 'a':
        case 'p':
            if ((!strcasecmp(name, "Authorization") || !strcasecmp(name, "Proxy-Authorization"))
                && core->cgi_pass_auth != AP_CGI_PASS_AUTH_ON) {
                continue;
            }
            if (!strcasecmp(name, "Proxy")) {
                continue;   /* httpoxy: never HTTP_PROXY */
            }
            break;
        }
        variable = header_variable(r->pool, name, &len);
        if (variable) {
            add_len(e, variable, len, h[i].val, strlen(h[i].val));
        }
    }
    add(e, "LD_LIBRARY_PATH", library_path);
    add(e, "SERVER_SIGNATURE", ap_psignature("", r));
    add(e, "SERVER_SOFTWARE", ap_get_server_banner());
    add(e, "SERVER_NAME", ap_escape_html(r->pool, ap_get_server_name_for_url(r)));
    add(e, "SERVER_ADDR", c->local_ip);
    add(e, "SERVER_PORT", apr_itoa(r->pool, ap_get_server_port(r)));
    add(e, "REMOTE_HOST", ap_get_remote_host(c, r->per_dir_config, REMOTE_HOST, NULL));
    add(e, "REMOTE_ADDR", r->useragent_ip);
    add(e, "DOCUMENT_ROOT", ap_document_root(r));
    add(e, "REQUEST_SCHEME", ap_http_scheme(r));
    add(e, "CONTEXT_PREFIX", ap_context_prefix(r));
    add(e, "CONTEXT_DOCUMENT_ROOT", ap_context_document_root(r));
    add(e, "SERVER_ADMIN", s->server_admin);
    add(e, "SCRIPT_FILENAME", r->filename);
    add(e, "REMOTE_PORT", apr_itoa(r->pool, c->client_addr->port));
    add(e, "REMOTE_USER", r->user);
    add(e, "AUTH_TYPE", r->ap_auth_type);
    value = ap_get_remote_logname(r);
    add(e, "REMOTE_IDENT", value);

    add_table(e, r->subprocess_env);
}

swgi_pair *swgi_build_environ(request_rec *r, swgi_dir_conf_t *dconf,
                              const char *app_path, const char *entry,
                              size_t *count)
{
    env_t e;

    e.pool = r->pool;
    e.count = 0;
    e.capacity = 48 + apr_table_elts(r->headers_in)->nelts
                 + apr_table_elts(r->subprocess_env)->nelts;
    e.pairs = apr_palloc(r->pool, sizeof(swgi_pair) * e.capacity);

    add_own(&e, r, dconf, app_path, entry);
    if (needs_apache(r)) {
        add_apache(&e, r);
    }
    else {
        add_fast(&e, r);
    }
    *count = e.count;
    return e.pairs;
}

const char *swgi_path_translated(request_rec *r)
{
    request_rec *sub;
    const char *value = NULL;

    if (!r->path_info || !*r->path_info) {
        return NULL;
    }
    /* As Apache: PATH_INFO looked up as a URL, escaped again first. */
    sub = ap_sub_req_lookup_uri(ap_escape_uri(r->pool, r->path_info), r, NULL);
    if (sub->filename) {
        value = apr_pstrcat(r->pool, sub->filename, sub->path_info, NULL);
    }
    ap_destroy_sub_req(sub);
    return value;
}

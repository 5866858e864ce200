/*
 * swgi_environ.c: the environ of one request.
 *
 * The values are those of mod_wsgi, which takes Apache's CGI variables
 * (ap_add_cgi_vars, ap_add_common_vars) and adjusts them: no PATH, no
 * HTTP_PROXY (httpoxy), Authorization only when allowed, SCRIPT_NAME and
 * PATH_INFO always present with repeated slashes collapsed, HTTPS=1 under
 * SSL, HEAD seen as GET when an output filter needs the whole body.
 *
 * Apache's functions fill r->subprocess_env, a table, through a second
 * table that they overlap onto it: about a third of a small request's time
 * in a handler. Here each variable has a provider that computes it from the
 * same sources, when it is asked for: an application that reads five
 * variables computes five (swgi_environ_get), and the whole environ is
 * built only when the application enumerates it (swgi_environ_all). Both
 * answer from the same providers, in the same order, so they agree; the
 * integration tests check that they do, and that they agree with Apache's
 * own functions. Requests where Apache's rules have more cases than the
 * providers know (internal redirects, SSI, CGIVar, proxy-noquery) take
 * Apache's functions, as does every request when `SetEnv
 * SWGI_ENVIRON_APACHE 1` asks for it.
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

static APR_OPTIONAL_FN_TYPE(ssl_is_https) *is_https;
/* The child's LD_LIBRARY_PATH, which Apache passes to CGI scripts. */
static const char *library_path;

/* --- the providers ------------------------------------------------------ */

typedef const char *(*provider_fn)(swgi_environ_t *env);

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

static int has_path_info(request_rec *r)
{
    return r->path_info && *r->path_info;
}

/* mod_swgi's own keys and adjustments: they come first and win. */

static const char *own_method(swgi_environ_t *env)
{
    request_rec *r = env->r;

    /* A HEAD request whose output a filter reads in full (mod_deflate and
     * the like): the application must produce the body, so it sees GET. */
    if (r->method_number == M_GET && r->header_only && r->output_filters
        && r->output_filters->frec && r->output_filters->frec->ftype < AP_FTYPE_PROTOCOL) {
        return "GET";
    }
    return NULL;
}

static const char *own_authorization(swgi_environ_t *env)
{
    return env->dconf->pass_authorization == 1
           ? apr_table_get(env->r->headers_in, "Authorization") : NULL;
}

static const char *own_https(swgi_environ_t *env)
{
    return is_https && is_https(env->r->connection) ? "1" : NULL;
}

static const char *own_version(swgi_environ_t *env) { return MOD_SWGI_VERSION; }
static const char *own_process_group(swgi_environ_t *env)
{
    return env->process_group ? env->process_group : "";
}
static const char *own_application_path(swgi_environ_t *env) { return env->app_path; }
static const char *own_entry_point(swgi_environ_t *env) { return env->entry; }

static const char *own_request_start(swgi_environ_t *env)
{
    return apr_off_t_toa(env->r->pool, env->r->request_time);
}

static const char *own_request_id(swgi_environ_t *env)
{
    request_rec *r = env->r;

    if (!r->log_id) {
        ap_run_generate_log_id(r->connection, r, &r->log_id);
    }
    return r->log_id;
}

static const char *own_connection_id(swgi_environ_t *env)
{
    return env->r->connection->log_id;
}

/* ap_add_cgi_vars */

static const char *cgi_gateway(swgi_environ_t *env) { return "CGI/1.1"; }
static const char *cgi_protocol(swgi_environ_t *env) { return env->r->protocol; }
static const char *cgi_method(swgi_environ_t *env) { return env->r->method; }

static const char *cgi_query(swgi_environ_t *env)
{
    return env->r->args ? env->r->args : "";
}

/* The request-target of the request line. */
static const char *cgi_request_uri(swgi_environ_t *env)
{
    request_rec *r = env->r;
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

static const char *cgi_script_name(swgi_environ_t *env)
{
    request_rec *r = env->r;

    if (has_path_info(r)) {
        int start = ap_find_path_info(r->uri, r->path_info);

        return collapsed(r->pool, apr_pstrndup(r->pool, r->uri, start));
    }
    return collapsed(r->pool, r->uri);
}

static const char *cgi_path_info(swgi_environ_t *env)
{
    request_rec *r = env->r;
    const char *value;

    if (has_path_info(r)) {
        return collapsed(r->pool, r->path_info);
    }
    /* Apache leaves PATH_INFO alone here: one from SetEnv stays. */
    value = apr_table_get(r->subprocess_env, "PATH_INFO");
    return value ? collapsed(r->pool, value) : "";
}

/* PATH_INFO looked up as a URL (escaped again first): a sub-request. */
static const char *cgi_path_translated(swgi_environ_t *env)
{
    request_rec *r = env->r;
    request_rec *sub;
    const char *value = NULL;

    if (!has_path_info(r)) {
        return NULL;
    }
    sub = ap_sub_req_lookup_uri(ap_escape_uri(r->pool, r->path_info), r, NULL);
    if (sub->filename) {
        value = apr_pstrcat(r->pool, sub->filename, sub->path_info, NULL);
    }
    ap_destroy_sub_req(sub);
    return value;
}

/* ap_add_common_vars (the request headers are not providers: see below) */

static const char *common_library_path(swgi_environ_t *env) { return library_path; }
static const char *common_signature(swgi_environ_t *env) { return ap_psignature("", env->r); }
static const char *common_software(swgi_environ_t *env) { return ap_get_server_banner(); }

static const char *common_server_name(swgi_environ_t *env)
{
    const char *name = ap_get_server_name_for_url(env->r);

    /* As Apache escapes it; a name with nothing to escape (every name a
     * Host header can carry) is not copied. */
    return strpbrk(name, "<>&\"") ? ap_escape_html(env->r->pool, name) : name;
}

static const char *common_server_addr(swgi_environ_t *env)
{
    return env->r->connection->local_ip;
}

static const char *common_server_port(swgi_environ_t *env)
{
    return apr_itoa(env->r->pool, ap_get_server_port(env->r));
}

static const char *common_remote_host(swgi_environ_t *env)
{
    request_rec *r = env->r;

    return ap_get_remote_host(r->connection, r->per_dir_config, REMOTE_HOST, NULL);
}

static const char *common_remote_addr(swgi_environ_t *env) { return env->r->useragent_ip; }
static const char *common_document_root(swgi_environ_t *env) { return ap_document_root(env->r); }
static const char *common_scheme(swgi_environ_t *env) { return ap_http_scheme(env->r); }
static const char *common_context_prefix(swgi_environ_t *env) { return ap_context_prefix(env->r); }

static const char *common_context_root(swgi_environ_t *env)
{
    return ap_context_document_root(env->r);
}

static const char *common_admin(swgi_environ_t *env) { return env->r->server->server_admin; }
static const char *common_filename(swgi_environ_t *env) { return env->r->filename; }

static const char *common_remote_port(swgi_environ_t *env)
{
    return apr_itoa(env->r->pool, env->r->connection->client_addr->port);
}

static const char *common_user(swgi_environ_t *env) { return env->r->user; }
static const char *common_auth_type(swgi_environ_t *env) { return env->r->ap_auth_type; }
static const char *common_ident(swgi_environ_t *env) { return ap_get_remote_logname(env->r); }

/* The variables in the environ's order: where a name occurs twice, the
 * first provider that has a value wins. HEADERS stands for the request
 * headers, which come in the middle, as in ap_add_common_vars. */
#define HEADERS NULL
#define P(name, fn) { name, sizeof(name) - 1, fn }

static const struct {
    const char *name;
    apr_size_t len;
    provider_fn fn;
} providers[] = {
    P("REQUEST_METHOD", own_method),
    P("HTTP_AUTHORIZATION", own_authorization),
    P("HTTPS", own_https),
    P("mod_swgi.version", own_version),
    P("mod_swgi.process_group", own_process_group),
    P("mod_swgi.application_path", own_application_path),
    P("mod_swgi.entry_point", own_entry_point),
    P("mod_swgi.request_start", own_request_start),
    P("mod_swgi.request_id", own_request_id),
    P("mod_swgi.connection_id", own_connection_id),
    P("GATEWAY_INTERFACE", cgi_gateway),
    P("SERVER_PROTOCOL", cgi_protocol),
    P("REQUEST_METHOD", cgi_method),
    P("QUERY_STRING", cgi_query),
    P("REQUEST_URI", cgi_request_uri),
    P("SCRIPT_NAME", cgi_script_name),
    P("PATH_INFO", cgi_path_info),
    P("PATH_TRANSLATED", cgi_path_translated),
    { "", 0, HEADERS },
    P("LD_LIBRARY_PATH", common_library_path),
    P("SERVER_SIGNATURE", common_signature),
    P("SERVER_SOFTWARE", common_software),
    P("SERVER_NAME", common_server_name),
    P("SERVER_ADDR", common_server_addr),
    P("SERVER_PORT", common_server_port),
    P("REMOTE_HOST", common_remote_host),
    P("REMOTE_ADDR", common_remote_addr),
    P("DOCUMENT_ROOT", common_document_root),
    P("REQUEST_SCHEME", common_scheme),
    P("CONTEXT_PREFIX", common_context_prefix),
    P("CONTEXT_DOCUMENT_ROOT", common_context_root),
    P("SERVER_ADMIN", common_admin),
    P("SCRIPT_FILENAME", common_filename),
    P("REMOTE_PORT", common_remote_port),
    P("REMOTE_USER", common_user),
    P("AUTH_TYPE", common_auth_type),
    P("REMOTE_IDENT", common_ident),
};

#define NPROVIDERS (sizeof(providers) / sizeof(providers[0]))
/* The first ten are mod_swgi's own, which Apache's functions do not set. */
#define OWN_PROVIDERS 10

/* For each name length, the providers of that length, in order (each list
 * ends with -1): a lookup compares only names of its own length. */
#define MAX_NAME 32
static signed char by_length[MAX_NAME][NPROVIDERS + 1];

static void index_providers(void)
{
    apr_size_t len, i, n;

    for (len = 0; len < MAX_NAME; len++) {
        n = 0;
        for (i = 0; i < NPROVIDERS; i++) {
            if (providers[i].fn && providers[i].len == len) {
                by_length[len][n++] = (signed char)i;
            }
        }
        by_length[len][n] = -1;
    }
}

void swgi_environ_child_init(apr_pool_t *p, server_rec *s)
{
    is_https = APR_RETRIEVE_OPTIONAL_FN(ssl_is_https);
    index_providers();
    library_path = getenv("LD_LIBRARY_PATH");
    if (library_path) {
        library_path = apr_pstrdup(p, library_path);
    }
}

/* A provider's value, computed once per request: bit i of env->known says
 * whether computed[i] holds it (so the array needs no filling first). */
_Static_assert(NPROVIDERS <= 64, "one bit of swgi_environ_t.known per provider");

static const char *provide(swgi_environ_t *env, apr_size_t i)
{
    apr_uint64_t bit = (apr_uint64_t)1 << i;

    if (!(env->known & bit)) {
        if (!env->computed) {
            env->computed = apr_palloc(env->r->pool, NPROVIDERS * sizeof(const char *));
        }
        env->computed[i] = providers[i].fn(env);
        env->known |= bit;
    }
    return env->computed[i];
}

/* --- the request headers ------------------------------------------------ */

/* What a request header becomes: CONTENT_TYPE, CONTENT_LENGTH, HTTP_ + the
 * name upper-cased with '-' as '_', or nothing: Authorization and
 * Proxy-Authorization unless CGIPassAuth allows them, Proxy (httpoxy), and
 * names with other characters (a header named with '_' could pose as
 * another). Compares the variable name `name` with what `header` becomes,
 * or (name NULL) writes it to `out` (room for strlen(header) + 6). */
static int header_variable(swgi_environ_t *env, const char *header,
                           const char *name, apr_size_t name_len, char *out)
{
    const char *special = NULL;
    const char *h;
    apr_size_t i;

    switch (apr_tolower(*header)) {
    case 'c':
        if (!strcasecmp(header, "Content-Type")) {
            special = "CONTENT_TYPE";
        }
        else if (!strcasecmp(header, "Content-Length")) {
            special = "CONTENT_LENGTH";
        }
        break;
    case 'a':
    case 'p':
        if (!strcasecmp(header, "Authorization") || !strcasecmp(header, "Proxy-Authorization")) {
            core_dir_config *core = ap_get_core_module_config(env->r->per_dir_config);

            if (core->cgi_pass_auth != AP_CGI_PASS_AUTH_ON) {
                return 0;
            }
        }
        else if (!strcasecmp(header, "Proxy")) {
            return 0;
        }
        break;
    }
    if (special) {
        if (name) {
            return name_len == strlen(special) && !memcmp(name, special, name_len);
        }
        strcpy(out, special);
        return 1;
    }
    if (name && (name_len < 6 || memcmp(name, "HTTP_", 5))) {
        return 0;
    }
    for (h = header, i = 5; *h; h++, i++) {
        char c;

        if (apr_isalnum(*h)) {
            c = apr_toupper(*h);
        }
        else if (*h == '-') {
            c = '_';
        }
        else {
            return 0;
        }
        if (name) {
            if (i >= name_len || name[i] != c) {
                return 0;
            }
        }
        else {
            out[i] = c;
        }
    }
    if (name) {
        return i == name_len;
    }
    memcpy(out, "HTTP_", 5);
    out[i] = '\0';
    return 1;
}

/* Whether a request header can become the variable `name`. */
static int could_be_header(const char *name, apr_size_t len)
{
    return (len > 5 && !memcmp(name, "HTTP_", 5))
           || (len == 12 && !memcmp(name, "CONTENT_TYPE", 12))
           || (len == 14 && !memcmp(name, "CONTENT_LENGTH", 14));
}

/* The value of the first request header that becomes `name`, or NULL. */
static const char *header_value(swgi_environ_t *env, const char *name, apr_size_t len)
{
    const apr_array_header_t *arr = apr_table_elts(env->r->headers_in);
    const apr_table_entry_t *h = (const apr_table_entry_t *)arr->elts;
    int i;

    for (i = 0; i < arr->nelts; i++) {
        if (h[i].key && h[i].val && header_variable(env, h[i].key, name, len, NULL)) {
            return h[i].val;
        }
    }
    return NULL;
}

/* --- the whole environ -------------------------------------------------- */

typedef struct {
    swgi_pair *pairs;
    size_t count;
    size_t capacity;
} pairs_t;

static void add(pairs_t *e, const char *name, apr_size_t name_len, const char *value)
{
    swgi_pair *pair;

    if (!value) {
        return;
    }
    pair = &e->pairs[e->count++];
    pair->name.data = name;
    pair->name.len = name_len;
    pair->value.data = value;
    pair->value.len = strlen(value);
}

/* r->subprocess_env (SetEnv, mod_rewrite's E=, mod_ssl's StdEnvVars, ...)
 * less PATH and HTTP_PROXY: last, so that every other variable wins. */
static void add_table(pairs_t *e, const apr_table_t *t)
{
    const apr_array_header_t *arr = apr_table_elts(t);
    const apr_table_entry_t *elts = (const apr_table_entry_t *)arr->elts;
    int i;

    for (i = 0; i < arr->nelts; i++) {
        if (elts[i].key && strcmp(elts[i].key, "PATH") && strcmp(elts[i].key, "HTTP_PROXY")) {
            add(e, elts[i].key, strlen(elts[i].key), elts[i].val);
        }
    }
}

static int needs_apache(request_rec *r)
{
    core_dir_config *core = ap_get_core_module_config(r->per_dir_config);

    return r->prev || core->cgi_var_rules || !strcmp(r->protocol, "INCLUDED")
           || apr_table_get(r->notes, "proxy-noquery")
           || apr_table_get(r->subprocess_env, "SWGI_ENVIRON_APACHE");
}

void swgi_environ_init(swgi_environ_t *env, request_rec *r, swgi_dir_conf_t *dconf,
                       const char *app_path, const char *entry)
{
    memset(env, 0, sizeof(*env));
    env->r = r;
    env->dconf = dconf;
    env->app_path = app_path;
    env->entry = entry;
    env->apache = needs_apache(r);
}

const swgi_pair *swgi_environ_all(swgi_environ_t *env, size_t *count)
{
    request_rec *r = env->r;
    const apr_array_header_t *headers = apr_table_elts(r->headers_in);
    const apr_table_entry_t *h = (const apr_table_entry_t *)headers->elts;
    pairs_t e;
    apr_size_t i;
    int j;

    if (env->all) {
        *count = env->all_count;
        return env->all;
    }
    if (env->apache) {
        /* Apache's own functions fill r->subprocess_env. */
        ap_add_cgi_vars(r);
        ap_add_common_vars(r);
    }
    e.count = 0;
    e.capacity = NPROVIDERS + headers->nelts + apr_table_elts(r->subprocess_env)->nelts;
    e.pairs = apr_palloc(r->pool, sizeof(swgi_pair) * e.capacity);
    for (i = 0; i < NPROVIDERS; i++) {
        if (env->apache && i >= OWN_PROVIDERS) {
            break;  /* the rest is in the table now */
        }
        if (providers[i].fn) {
            add(&e, providers[i].name, providers[i].len, provide(env, i));
            continue;
        }
        for (j = 0; j < headers->nelts; j++) {
            char *name;

            if (!h[j].key || !h[j].val) {
                continue;
            }
            name = apr_palloc(r->pool, strlen(h[j].key) + 6);
            if (header_variable(env, h[j].key, NULL, 0, name)) {
                add(&e, name, strlen(name), h[j].val);
            }
        }
    }
    if (env->apache) {
        const char *value = apr_table_get(r->subprocess_env, "PATH_INFO");

        add(&e, "PATH_INFO", 9, collapsed(r->pool, value ? value : ""));
        value = apr_table_get(r->subprocess_env, "SCRIPT_NAME");
        add(&e, "SCRIPT_NAME", 11, collapsed(r->pool, value ? value : ""));
    }
    add_table(&e, r->subprocess_env);
    env->all = e.pairs;
    env->all_count = e.count;
    *count = e.count;
    return e.pairs;
}

const char *swgi_environ_get(swgi_environ_t *env, const char *name, apr_size_t len)
{
    const char *value;
    const char *table_key;
    char key[128];
    apr_size_t i;

    if (env->all || env->apache) {
        size_t count;
        const swgi_pair *pairs = swgi_environ_all(env, &count);

        for (i = 0; i < count; i++) {
            if (pairs[i].name.len == len && !memcmp(pairs[i].name.data, name, len)) {
                return pairs[i].value.data;
            }
        }
        return NULL;
    }
    /* The providers of this name, then the request headers (no provider
     * has a name that a header can become but HTTP_AUTHORIZATION, which
     * comes first), then the table. */
    if (len < MAX_NAME) {
        const signed char *candidates = by_length[len];

        for (i = 0; candidates[i] >= 0; i++) {
            const char *candidate = providers[candidates[i]].name;

            /* The last character first: most names of one length differ
             * there (SERVER_NAME, SERVER_PORT, REMOTE_ADDR, ...), and a
             * call to memcmp costs more than the whole test. */
            if (len && candidate[len - 1] != name[len - 1]) {
                continue;
            }
            if (!memcmp(candidate, name, len) && (value = provide(env, candidates[i]))) {
                return value;
            }
        }
    }
    if (could_be_header(name, len) && (value = header_value(env, name, len))) {
        return value;
    }
    /* Not a variable of Apache's: r->subprocess_env, less PATH and HTTP_PROXY. */
    if (memchr(name, '\0', len)) {
        return NULL;
    }
    if (len < sizeof(key)) {
        memcpy(key, name, len);
        key[len] = '\0';
        table_key = key;
    }
    else {
        table_key = apr_pstrmemdup(env->r->pool, name, len);
    }
    if (!strcmp(table_key, "PATH") || !strcmp(table_key, "HTTP_PROXY")) {
        return NULL;
    }
    return apr_table_get(env->r->subprocess_env, table_key);
}

apr_uint32_t swgi_environ_validate_flags(swgi_environ_t *env)
{
    const char *v = swgi_environ_get(env, "SWGI_VALIDATE", sizeof("SWGI_VALIDATE") - 1);

    return SWGI_FLAG_VALIDATE_KNOWN | (v && !strcmp(v, "1") ? SWGI_FLAG_VALIDATE : 0);
}

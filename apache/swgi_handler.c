/*
 * swgi_handler.c: the swgi-app handler.
 *
 * Hands the request, with its environ (swgi_environ.c), to the application
 * through the C ABI (swgi_abi.h), and streams what it returns through one
 * bucket brigade.
 */
#include "mod_swgi.h"

#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"
#include "ap_mpm.h"

#include "apr_lib.h"
#include "apr_strings.h"
#include "apr_buckets.h"

APLOG_USE_MODULE(swgi);

/* Writes at least this big are passed on at once instead of gathered. */
#define SWGI_GATHER_LIMIT 8192

static uint32_t mpm_flags;

void swgi_handler_child_init(apr_pool_t *p, server_rec *s)
{
    int threaded = AP_MPMQ_NOT_SUPPORTED, forked = AP_MPMQ_NOT_SUPPORTED;
    int max_threads = 0, max_daemons = 0;

    ap_mpm_query(AP_MPMQ_IS_THREADED, &threaded);
    ap_mpm_query(AP_MPMQ_MAX_THREADS, &max_threads);
    ap_mpm_query(AP_MPMQ_IS_FORKED, &forked);
    ap_mpm_query(AP_MPMQ_MAX_DAEMONS, &max_daemons);
    mpm_flags = 0;
    if (threaded != AP_MPMQ_NOT_SUPPORTED && max_threads > 1) {
        mpm_flags |= SWGI_FLAG_MULTITHREAD;
    }
    if (forked != AP_MPMQ_NOT_SUPPORTED && max_daemons > 1) {
        mpm_flags |= SWGI_FLAG_MULTIPROCESS;
    }
    swgi_environ_child_init(p, s);
}

/* --- the callbacks ------------------------------------------------------ */

/* Notes a body that cannot be read: the status to answer, and the cause. */
static int64_t input_failed(swgi_host_t *host, apr_status_t rv)
{
    host->input_status = ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
    apr_brigade_cleanup(host->in);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, rv, host->r,
                  "reading the request body failed (status %d)", host->input_status);
    return -1;
}

int64_t swgi_host_read(void *h, char *buf, size_t len)
{
    swgi_host_t *host = h;
    request_rec *r = host->r;
    size_t copied = 0;
    apr_status_t rv;

    if (host->input_done || len == 0) {
        return 0;
    }
    if (host->input_status) {
        return -1;
    }
    while (copied == 0 && !host->input_done) {
        if (APR_BRIGADE_EMPTY(host->in)) {
            rv = ap_get_brigade(r->input_filters, host->in, AP_MODE_READBYTES,
                                APR_BLOCK_READ, len);
            if (rv != APR_SUCCESS) {
                return input_failed(host, rv);
            }
        }
        while (!APR_BRIGADE_EMPTY(host->in) && copied < len) {
            apr_bucket *b = APR_BRIGADE_FIRST(host->in);
            const char *data;
            apr_size_t n;

            if (APR_BUCKET_IS_EOS(b)) {
                host->input_done = 1;
                apr_brigade_cleanup(host->in);
                break;
            }
            if (APR_BUCKET_IS_METADATA(b)) {
                apr_bucket_delete(b);
                continue;
            }
            rv = apr_bucket_read(b, &data, &n, APR_BLOCK_READ);
            if (rv != APR_SUCCESS) {
                return input_failed(host, rv);
            }
            if (n > len - copied) {
                apr_bucket_split(b, len - copied);
                n = len - copied;
            }
            memcpy(buf + copied, data, n);
            copied += n;
            apr_bucket_delete(b);
        }
    }
    return (int64_t)copied;
}

/* Whether the header name `b` is `lower` (given in lower case) in any
 * case. (A loop of its own: ap_cstr_casecmpn's table lookups cost ~160
 * instructions for Content-Type, twice a hello.) */
static int header_is(swgi_bytes b, const char *lower, apr_size_t len)
{
    apr_size_t i;

    if (b.len != len) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        char c = b.data[i];

        if (c >= 'A' && c <= 'Z') {
            c += 'a' - 'A';
        }
        if (c != lower[i]) {
            return 0;
        }
    }
    return 1;
}

/* A Content-Length value: decimal digits only, at most 18 of them (what
 * the application's side accepts), so that it cannot overflow. */
static int content_length(swgi_bytes b, apr_off_t *length)
{
    apr_off_t n = 0;
    size_t i;

    if (b.len == 0 || b.len > 18) {
        return 0;
    }
    for (i = 0; i < b.len; i++) {
        if (!apr_isdigit(b.data[i])) {
            return 0;
        }
        n = n * 10 + (b.data[i] - '0');
    }
    *length = n;
    return 1;
}

/* Whether line is Apache's own status line for status ("200 OK"): then
 * r->status_line is left NULL and Apache writes the same line from
 * r->status, without the copy and the parse (strtol) a line of ours costs it
 * in its header filter. Any other reason phrase is kept as given. */
static int canonical_status_line(int status, swgi_bytes line)
{
    const char *own = ap_is_HTTP_VALID_RESPONSE(status) ? ap_get_status_line(status) : NULL;

    return own && strlen(own) == line.len && !memcmp(own, line.data, line.len);
}

int swgi_host_start_response(void *h, int status, swgi_bytes status_line,
                               const swgi_pair *headers, size_t nheaders)
{
    swgi_host_t *host = h;
    request_rec *r = host->r;
    size_t i;

    if (host->passed) {
        return SWGI_ESTATE;
    }
    if (host->started) {
        /* A head not yet sent is replaced whole, never merged. */
        apr_table_clear(r->headers_out);
    }
    r->status = status;
    r->status_line = canonical_status_line(status, status_line)
                     ? NULL : apr_pstrmemdup(r->pool, status_line.data, status_line.len);
    for (i = 0; i < nheaders; i++) {
        swgi_bytes name = headers[i].name, value = headers[i].value;

        if (header_is(name, "content-type", 12)) {
            ap_set_content_type(r, apr_pstrmemdup(r->pool, value.data, value.len));
        }
        else if (header_is(name, "content-length", 14)) {
            apr_off_t length;

            /* Apache writes the header itself from the number. */
            if (content_length(value, &length)) {
                ap_set_content_length(r, length);
            }
        }
        else {
            apr_table_addn(r->headers_out, apr_pstrmemdup(r->pool, name.data, name.len),
                           apr_pstrmemdup(r->pool, value.data, value.len));
        }
    }
    host->started = 1;
    return SWGI_OK;
}

/* Passes the brigade on; notes a client that is gone. */
static int pass(swgi_host_t *host)
{
    request_rec *r = host->r;
    apr_status_t rv = ap_pass_brigade(r->output_filters, host->bb);

    apr_brigade_cleanup(host->bb);
    host->passed = 1;
    if (rv != APR_SUCCESS || r->connection->aborted) {
        if (!host->client_gone) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, r,
                          "the client went away while the response was sent");
        }
        host->client_gone = 1;
        return SWGI_ECLIENT;
    }
    return SWGI_OK;
}

int swgi_host_write(void *h, const char *data, size_t len, int flush)
{
    swgi_host_t *host = h;
    request_rec *r = host->r;
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;

    if (!host->started) {
        return SWGI_ESTATE;
    }
    if (host->client_gone) {
        return SWGI_ECLIENT;
    }
    if (!flush && len < SWGI_GATHER_LIMIT) {
        /* Copied into heap buckets; they leave with the next pass. */
        apr_brigade_write(host->bb, NULL, NULL, data, len);
        return SWGI_OK;
    }
    /* Transient: a filter that keeps the bucket past this call copies it. */
    APR_BRIGADE_INSERT_TAIL(host->bb, apr_bucket_transient_create(data, len, ba));
    if (flush) {
        APR_BRIGADE_INSERT_TAIL(host->bb, apr_bucket_flush_create(ba));
    }
    return pass(host);
}

static int host_send_file(void *h, const char *path, size_t path_len,
                          uint64_t offset, uint64_t length, int flush)
{
    swgi_host_t *host = h;
    request_rec *r = host->r;
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;
    const char *name;
    apr_file_t *file;
    apr_status_t rv;

    if (!host->started) {
        return SWGI_ESTATE;
    }
    if (host->client_gone) {
        return SWGI_ECLIENT;
    }
    name = apr_pstrmemdup(r->pool, path, path_len);
    /* Opened in the request pool: it stays open until the response is out. */
    rv = apr_file_open(&file, name, APR_FOPEN_READ | APR_FOPEN_SENDFILE_ENABLED
                       | APR_FOPEN_LARGEFILE, APR_OS_DEFAULT, r->pool);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "cannot open %s to send it", name);
        return SWGI_EFILE;
    }
    ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                  "sending %" APR_UINT64_T_FMT " bytes of %s in a file bucket", length, name);
    apr_brigade_insert_file(host->bb, file, (apr_off_t)offset, (apr_off_t)length, r->pool);
    if (flush) {
        APR_BRIGADE_INSERT_TAIL(host->bb, apr_bucket_flush_create(ba));
    }
    return pass(host);
}

void swgi_host_log(void *h, int level, const char *message, size_t len)
{
    swgi_host_t *host = h;
    request_rec *r = host->r;
    const char *text = ap_escape_logitem(r->pool, apr_pstrmemdup(r->pool, message, len));

    if (level < APLOG_EMERG) {
        level = APLOG_EMERG;
    }
    if (level > APLOG_TRACE8) {
        level = APLOG_TRACE8;
    }
    ap_log_rerror(APLOG_MARK, level, 0, r, "%s", text);
}

static int host_environ_get(void *h, const char *name, size_t name_len, swgi_bytes *value)
{
    swgi_host_t *host = h;
    const char *v = swgi_environ_get(&host->environ, name, name_len);

    if (!v) {
        return 0;
    }
    value->data = v;
    value->len = strlen(v);
    return 1;
}

static void host_environ_all(void *h, const swgi_pair **pairs, size_t *count)
{
    swgi_host_t *host = h;

    *pairs = swgi_environ_all(&host->environ, count);
}

static const swgi_host_v1 host_callbacks = {
    sizeof(swgi_host_v1),
    swgi_host_read,
    swgi_host_start_response,
    swgi_host_write,
    swgi_host_log,
    host_send_file,
    host_environ_get,
    host_environ_all,
    /* No event loop: Apache's request thread calls handle and may block. */
    NULL,
    NULL,
    NULL
};

/* --- the handler -------------------------------------------------------- */

/* Ends a response that started: EOS, or an error bucket that makes the
 * HTTP filters close the connection without a last chunk, so the client
 * can tell the response is incomplete. */
static int finish(swgi_host_t *host, int complete)
{
    request_rec *r = host->r;
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;

    if (!complete) {
        APR_BRIGADE_INSERT_TAIL(host->bb, ap_bucket_error_create(HTTP_BAD_GATEWAY, NULL,
                                                                 r->pool, ba));
        r->connection->keepalive = AP_CONN_CLOSE;
    }
    APR_BRIGADE_INSERT_TAIL(host->bb, apr_bucket_eos_create(ba));
    pass(host);
    return OK;
}

int swgi_handler(request_rec *r)
{
    swgi_dir_conf_t *dconf;
    swgi_request_conf_t *rconf;
    const swgi_app_v1 *app;
    const char *app_path;
    const char *entry;
    void **cache = NULL;
    swgi_host_t host;
    swgi_request_v1 request;
    int rc;

    if (!r->handler || strcmp(r->handler, SWGI_HANDLER_NAME)) {
        return DECLINED;
    }
    dconf = ap_get_module_config(r->per_dir_config, &swgi_module);
    rconf = ap_get_module_config(r->request_config, &swgi_module);

    if (rconf) {
        app_path = rconf->app_path;
        entry = rconf->entry;
        cache = rconf->cache;
    }
    else {
        /* AddHandler/SetHandler: the request names the file, as for CGI. */
        if (!(ap_allow_options(r) & OPT_EXECCGI)) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "Options ExecCGI is off in this directory: %s", r->filename);
            return HTTP_FORBIDDEN;
        }
        if (r->finfo.filetype == APR_NOFILE) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "SWGI application not found: %s", r->filename);
            return HTTP_NOT_FOUND;
        }
        if (r->finfo.filetype != APR_REG) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "SWGI application is not a regular file: %s", r->filename);
            return HTTP_FORBIDDEN;
        }
        app_path = r->filename;
        entry = NULL;
    }
    if (!entry) {
        entry = dconf->entry_point ? dconf->entry_point : SWGI_DEFAULT_ENTRY;
    }

    rc = ap_setup_client_block(r, dconf->chunked_request == 1
                                  ? REQUEST_CHUNKED_DECHUNK : REQUEST_CHUNKED_ERROR);
    if (rc != OK) {
        if (rc == HTTP_LENGTH_REQUIRED) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                          "chunked request body refused with 411 "
                          "(SWGIChunkedRequest On accepts it)");
        }
        return rc;
    }

    memset(&host, 0, sizeof(host));
    host.r = r;
    host.bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    host.in = apr_brigade_create(r->pool, r->connection->bucket_alloc);

    swgi_environ_init(&host.environ, r, dconf, app_path, entry);

    if (dconf->process_group && strcmp(dconf->process_group, SWGI_GLOBAL_GROUP)) {
        swgi_daemon_t *daemon = swgi_find_daemon(dconf->process_group);

        if (!daemon) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "SWGIProcessGroup %s: no SWGIDaemonProcess of that name is "
                          "configured (application %s)", dconf->process_group, app_path);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        host.environ.process_group = daemon->name;
        return swgi_remote_handle(&host, daemon, app_path, entry,
                                  dconf->allow_untrusted == 1);
    }

    app = swgi_load_app(r, app_path, entry, cache, dconf->allow_untrusted == 1);
    if (!app) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    memset(&request, 0, sizeof(request));
    request.size = sizeof(request);
    request.flags = mpm_flags | swgi_environ_validate_flags(&host.environ);
    request.host = &host;
    request.callbacks = &host_callbacks;
    request.timeout_usec = r->server->timeout;
    if (swgi_app_lazy_environ(app)) {
        request.environ = NULL;     /* environ_get and environ_all */
    }
    else {
        request.environ = swgi_environ_all(&host.environ, &request.environ_count);
    }

    rc = app->handle(app->context, &request);
    return swgi_host_finish(&host, rc, app_path);
}

int swgi_host_finish(swgi_host_t *host, int rc, const char *app_path)
{
    request_rec *r = host->r;

    if (rc == SWGI_DONE && host->started) {
        return finish(host, 1);
    }
    if (rc == SWGI_DONE) {
        /* The application side promised a response and did not start one. */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "SWGI application %s ended without a response", app_path);
        rc = HTTP_INTERNAL_SERVER_ERROR;
    }
    if (host->passed) {
        return finish(host, 0);
    }
    /* Nothing sent yet: answer with an error page of Apache's own. */
    swgi_host_reset(host);
    if (host->input_status) {
        return host->input_status;
    }
    return (rc >= 400 && rc < 600) ? rc : HTTP_INTERNAL_SERVER_ERROR;
}

void swgi_host_reset(swgi_host_t *host)
{
    request_rec *r = host->r;

    apr_brigade_cleanup(host->bb);
    apr_table_clear(r->headers_out);
    r->status = HTTP_OK;
    r->status_line = NULL;
    r->content_type = NULL;
    host->started = 0;
}

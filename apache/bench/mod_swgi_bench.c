/*
 * mod_swgi_bench.c: the limit for scripts/bench. A minimal C handler that
 * answers each benchmark scenario with the same bytes the SWGI and WSGI
 * applications send, doing the same work a handler must do (read the
 * request fields it reports, read and echo the body), and no more.
 *
 * SetHandler swgi-bench-c; the scenario is the last path segment.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"
#include "util_script.h"
#include "apr_strings.h"

module AP_MODULE_DECLARE_DATA swgi_bench_module;

#define CHUNK (64 * 1024)

static int pass(request_rec *r, apr_bucket_brigade *bb, const char *data, apr_size_t len, int flush)
{
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_transient_create(data, len, r->connection->bucket_alloc));
    if (flush) {
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(r->connection->bucket_alloc));
    }
    if (ap_pass_brigade(r->output_filters, bb) != APR_SUCCESS) {
        return 0;
    }
    apr_brigade_cleanup(bb);
    return 1;
}

static int bench_handler(request_rec *r)
{
    const char *scenario;
    apr_bucket_brigade *bb;

    if (!r->handler || strcmp(r->handler, "swgi-bench-c")) {
        return DECLINED;
    }
    scenario = strrchr(r->uri, '/');
    scenario = scenario ? scenario + 1 : "";
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);

    if (!strcmp(scenario, "hello")) {
        ap_set_content_type(r, "text/plain");
        ap_set_content_length(r, 13);
        pass(r, bb, "Hello world!\n", 13, 0);
    }
    else if (!strcmp(scenario, "environ")) {
        /* The same ten request fields the applications read, padded to 200 bytes. */
        const char *ua = apr_table_get(r->headers_in, "User-Agent");
        const char *host = apr_table_get(r->headers_in, "Host");
        char *body = apr_psprintf(r->pool, "%s %s %s q=%s h=%s ua=%s a=%s p=%u s=%s r=%s",
                                  r->method, r->uri, r->protocol, r->args ? r->args : "",
                                  host ? host : "", ua ? ua : "",
                                  r->useragent_ip, r->server->port, r->server->server_hostname,
                                  r->handler);
        char *out = apr_palloc(r->pool, 201);
        apr_size_t n = strlen(body);
        memset(out, '.', 200);
        memcpy(out, body, n < 199 ? n : 199);
        out[199] = '\n';
        ap_set_content_type(r, "text/plain");
        ap_set_content_length(r, 200);
        pass(r, bb, out, 200, 0);
    }
    else if (!strcmp(scenario, "stream")) {
        char *block = apr_palloc(r->pool, CHUNK);
        int i;
        memset(block, 'x', CHUNK);
        ap_set_content_type(r, "application/octet-stream");
        for (i = 0; i < 16; i++) {
            if (!pass(r, bb, block, CHUNK, 1)) {
                break;
            }
        }
    }
    else if (!strcmp(scenario, "upload")) {
        char *buf = apr_palloc(r->pool, CHUNK);
        int rc = ap_setup_client_block(r, REQUEST_CHUNKED_ERROR);
        if (rc != OK) {
            return rc;
        }
        ap_set_content_type(r, "application/octet-stream");
        /* As the applications do: read 64 KiB (fewer only at the end), send
         * it and flush it, then read the next (a WSGI/SWGI server sends each
         * block of a streamed body before it asks for the next). The body is
         * read with one brigade for the request, as mod_swgi does
         * (ap_get_client_block makes a brigade per call). */
        if (ap_should_client_block(r)) {
            apr_bucket_brigade *in = apr_brigade_create(r->pool, r->connection->bucket_alloc);
            int done = 0;

            while (!done) {
                apr_size_t filled = 0;

                while (filled < CHUNK && !done) {
                    apr_size_t len = CHUNK - filled;

                    if (ap_get_brigade(r->input_filters, in, AP_MODE_READBYTES, APR_BLOCK_READ,
                                       len) != APR_SUCCESS) {
                        return HTTP_BAD_REQUEST;
                    }
                    if (!APR_BRIGADE_EMPTY(in) && APR_BUCKET_IS_EOS(APR_BRIGADE_LAST(in))) {
                        done = 1;
                    }
                    if (apr_brigade_flatten(in, buf + filled, &len) != APR_SUCCESS) {
                        return HTTP_BAD_REQUEST;
                    }
                    filled += len;
                    apr_brigade_cleanup(in);
                }
                if (filled > 0 && !pass(r, bb, buf, filled, 1)) {
                    break;
                }
            }
        }
    }
    else if (!strcmp(scenario, "cgi-hello")) {
        /* hello after building Apache's CGI environment, as mod_wsgi does
         * (mod_swgi computes each variable only when asked): what that
         * costs alone (not a contestant). */
        ap_add_cgi_vars(r);
        ap_add_common_vars(r);
        ap_set_content_type(r, "text/plain");
        ap_set_content_length(r, 13);
        pass(r, bb, "Hello world!\n", 13, 0);
    }
    else if (!strcmp(scenario, "headers")) {
        int i;
        for (i = 0; i < 10; i++) {
            apr_table_addn(r->headers_out, apr_psprintf(r->pool, "X-Bench-%d", i), "value");
        }
        ap_set_content_type(r, "text/plain");
        ap_set_content_length(r, 13);
        pass(r, bb, "Hello world!\n", 13, 0);
    }
    else {
        return HTTP_NOT_FOUND;
    }
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(r->connection->bucket_alloc));
    ap_pass_brigade(r->output_filters, bb);
    return OK;
}

static void register_hooks(apr_pool_t *p)
{
    ap_hook_handler(bench_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(swgi_bench) = {
    STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, register_hooks
};

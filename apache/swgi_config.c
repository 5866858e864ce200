/*
 * swgi_config.c: mod_swgi's directives and their configuration records.
 */
#include "mod_swgi.h"

#include "http_request.h"
#include "apr_strings.h"
#include "apr_lib.h"

APLOG_USE_MODULE(swgi);

void *swgi_create_server_config(apr_pool_t *p, server_rec *s)
{
    swgi_server_conf_t *conf = apr_pcalloc(p, sizeof(*conf));

    conf->aliases = apr_array_make(p, 4, sizeof(swgi_alias_t));
    return conf;
}

void *swgi_merge_server_config(apr_pool_t *p, void *basev, void *addv)
{
    swgi_server_conf_t *base = basev;
    swgi_server_conf_t *add = addv;
    swgi_server_conf_t *conf = apr_pcalloc(p, sizeof(*conf));

    /* A virtual host's own aliases are tried before the main server's. */
    conf->aliases = apr_array_append(p, add->aliases, base->aliases);
    return conf;
}

void *swgi_create_dir_config(apr_pool_t *p, char *dir)
{
    swgi_dir_conf_t *conf = apr_pcalloc(p, sizeof(*conf));

    conf->entry_point = NULL;
    conf->pass_authorization = SWGI_UNSET;
    conf->chunked_request = SWGI_UNSET;
    conf->allow_untrusted = SWGI_UNSET;
    return conf;
}

void *swgi_merge_dir_config(apr_pool_t *p, void *basev, void *addv)
{
    swgi_dir_conf_t *base = basev;
    swgi_dir_conf_t *add = addv;
    swgi_dir_conf_t *conf = apr_pcalloc(p, sizeof(*conf));

    conf->entry_point = add->entry_point ? add->entry_point : base->entry_point;
    conf->pass_authorization = add->pass_authorization != SWGI_UNSET
                               ? add->pass_authorization : base->pass_authorization;
    conf->chunked_request = add->chunked_request != SWGI_UNSET
                            ? add->chunked_request : base->chunked_request;
    conf->allow_untrusted = add->allow_untrusted != SWGI_UNSET
                            ? add->allow_untrusted : base->allow_untrusted;
    return conf;
}

/* An entry point name becomes part of a C symbol: a C identifier. */
static int valid_entry_name(const char *name)
{
    const char *c;

    if (!*name || apr_isdigit(*name)) {
        return 0;
    }
    for (c = name; *c; c++) {
        if (!apr_isalnum(*c) && *c != '_') {
            return 0;
        }
    }
    return 1;
}

/* SWGIAppAlias URL-path file.so [entry=NAME], and SWGIAppAliasMatch (cmd->info set). */
static const char *set_app_alias(cmd_parms *cmd, void *dummy, const char *url,
                                 const char *file, const char *option)
{
    swgi_server_conf_t *sconf = ap_get_module_config(cmd->server->module_config,
                                                     &swgi_module);
    int is_match = cmd->info != NULL;
    swgi_alias_t *alias;
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_CONTEXT);

    if (err) {
        return err;
    }

    alias = apr_array_push(sconf->aliases);
    alias->prefix = NULL;
    alias->regex = NULL;
    alias->entry = NULL;

    if (is_match) {
        alias->regex = ap_pregcomp(cmd->pool, url, AP_REG_EXTENDED);
        if (!alias->regex) {
            return apr_pstrcat(cmd->pool, cmd->cmd->name,
                               ": invalid regular expression ", url, NULL);
        }
        /* "$1.so" is not made absolute: substitution may give an absolute path. */
        alias->target = file;
    }
    else {
        apr_size_t len = strlen(url);

        if (url[0] != '/') {
            return apr_pstrcat(cmd->pool, cmd->cmd->name,
                               ": the URL-path must begin with '/': ", url, NULL);
        }
        while (len > 0 && url[len - 1] == '/') {
            len--;
        }
        alias->prefix = apr_pstrmemdup(cmd->pool, url, len);
        alias->target = ap_server_root_relative(cmd->pool, file);
        if (!alias->target) {
            return apr_pstrcat(cmd->pool, cmd->cmd->name, ": invalid file path ",
                               file, NULL);
        }
    }

    if (option) {
        if (strncmp(option, "entry=", 6) || !valid_entry_name(option + 6)) {
            return apr_pstrcat(cmd->pool, cmd->cmd->name, ": unknown option '",
                               option, "' (expected entry=NAME, NAME a C identifier)",
                               NULL);
        }
        alias->entry = option + 6;
    }
    return NULL;
}

static const char *set_entry_point(cmd_parms *cmd, void *mconfig, const char *name)
{
    swgi_dir_conf_t *conf = mconfig;

    if (!valid_entry_name(name)) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": '", name,
                           "' is not a valid entry point name (a C identifier)", NULL);
    }
    conf->entry_point = name;
    return NULL;
}

static const char *set_pass_authorization(cmd_parms *cmd, void *mconfig, int on)
{
    ((swgi_dir_conf_t *)mconfig)->pass_authorization = on;
    return NULL;
}

static const char *set_chunked_request(cmd_parms *cmd, void *mconfig, int on)
{
    ((swgi_dir_conf_t *)mconfig)->chunked_request = on;
    return NULL;
}

static const char *set_allow_untrusted(cmd_parms *cmd, void *mconfig, int on)
{
    ((swgi_dir_conf_t *)mconfig)->allow_untrusted = on;
    return NULL;
}

/*
 * The length of the part of uri that prefix maps, or -1. The prefix matches
 * whole path segments: "/hello" maps "/hello" and "/hello/x", not
 * "/helloworld"; "" (alias "/") maps everything.
 */
static apr_ssize_t prefix_match(const char *prefix, const char *uri)
{
    apr_size_t len = strlen(prefix);

    if (strncmp(prefix, uri, len)) {
        return -1;
    }
    if (uri[len] != '\0' && uri[len] != '/') {
        return -1;
    }
    return (apr_ssize_t)len;
}

int swgi_translate_name(request_rec *r)
{
    swgi_server_conf_t *sconf;
    swgi_alias_t *aliases;
    int i;

    if (!r->uri || r->uri[0] != '/') {
        return DECLINED;
    }
    sconf = ap_get_module_config(r->server->module_config, &swgi_module);
    aliases = (swgi_alias_t *)sconf->aliases->elts;

    for (i = 0; i < sconf->aliases->nelts; i++) {
        swgi_alias_t *alias = &aliases[i];
        swgi_request_conf_t *rconf;
        const char *target;
        apr_ssize_t matched;

        if (alias->regex) {
            ap_regmatch_t m[AP_MAX_REG_MATCH];

            if (ap_regexec(alias->regex, r->uri, AP_MAX_REG_MATCH, m, 0)) {
                continue;
            }
            matched = m[0].rm_eo;
            target = ap_pregsub(r->pool, alias->target, r->uri, AP_MAX_REG_MATCH, m);
            if (!target) {
                ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                              "SWGIAppAliasMatch: substitution into '%s' failed "
                              "(result too long?) for %s", alias->target, r->uri);
                return HTTP_INTERNAL_SERVER_ERROR;
            }
            target = ap_server_root_relative(r->pool, target);
            if (!target) {
                return HTTP_INTERNAL_SERVER_ERROR;
            }
        }
        else {
            matched = prefix_match(alias->prefix, r->uri);
            if (matched < 0) {
                continue;
            }
            target = alias->target;
        }

        rconf = apr_pcalloc(r->pool, sizeof(*rconf));
        rconf->app_path = target;
        rconf->entry = alias->entry;
        rconf->cache = alias->regex ? NULL : &alias->cached;
        ap_set_module_config(r->request_config, &swgi_module, rconf);

        /* As ScriptAlias does: the core's walk splits what follows the file
         * into PATH_INFO, and <Directory> sections of the file's folder apply. */
        r->filename = apr_pstrcat(r->pool, target, r->uri + matched, NULL);
        r->handler = SWGI_HANDLER_NAME;
        apr_table_setn(r->notes, "alias-forced-type", SWGI_HANDLER_NAME);
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                      "mapped %s to SWGI application %s", r->uri, target);
        return OK;
    }
    return DECLINED;
}

const command_rec swgi_cmds[] = {
    AP_INIT_TAKE23("SWGIAppAlias", set_app_alias, NULL, RSRC_CONF,
                   "URL-path, application library (.so), optional entry=NAME"),
    AP_INIT_TAKE23("SWGIAppAliasMatch", set_app_alias, (void *)1, RSRC_CONF,
                   "regular expression, application library ($1..$9 allowed), "
                   "optional entry=NAME"),
    AP_INIT_TAKE1("SWGIEntryPoint", set_entry_point, NULL,
                  RSRC_CONF | ACCESS_CONF | OR_FILEINFO,
                  "name of the application a library exports (default 'application')"),
    AP_INIT_FLAG("SWGIPassAuthorization", set_pass_authorization, NULL,
                 RSRC_CONF | ACCESS_CONF | OR_AUTHCFG,
                 "On to pass the Authorization header to applications (default Off)"),
    AP_INIT_FLAG("SWGIChunkedRequest", set_chunked_request, NULL,
                 RSRC_CONF | ACCESS_CONF | OR_FILEINFO,
                 "On to accept chunked request bodies (default Off: 411)"),
    /* Not in .htaccess: it decides what code Apache's processes run. */
    AP_INIT_FLAG("SWGIAllowUntrustedFiles", set_allow_untrusted, NULL,
                 RSRC_CONF | ACCESS_CONF,
                 "On to load application files owned by users other than root "
                 "and Apache's, or writable by everyone (default Off)"),
    { NULL }
};

/*
 * swgi_config.c: mod_swgi's directives and their configuration records.
 */
#include "mod_swgi.h"

#include "http_request.h"
#include "apr_strings.h"
#include "apr_lib.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>

APLOG_USE_MODULE(swgi);

apr_array_header_t *swgi_daemons;

void swgi_config_pre_config(apr_pool_t *pconf)
{
    swgi_daemons = apr_array_make(pconf, 4, sizeof(swgi_daemon_t *));
}

swgi_daemon_t *swgi_find_daemon(const char *name)
{
    int i;

    for (i = 0; swgi_daemons && i < swgi_daemons->nelts; i++) {
        swgi_daemon_t *d = APR_ARRAY_IDX(swgi_daemons, i, swgi_daemon_t *);

        if (!strcmp(d->name, name)) {
            return d;
        }
    }
    return NULL;
}

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
    conf->process_group = add->process_group ? add->process_group : base->process_group;
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

/* --- daemon mode ---------------------------------------------------------- */

/* A group's name is part of a socket's file name: letters, digits, '_', '-', '.'. */
static int valid_group_name(const char *name)
{
    const char *c;

    if (!*name || *name == '.' || strlen(name) > 64) {
        return 0;
    }
    for (c = name; *c; c++) {
        if (!apr_isalnum(*c) && *c != '_' && *c != '-' && *c != '.') {
            return 0;
        }
    }
    return 1;
}

static const char *bad_value(cmd_parms *cmd, const char *option, const char *value,
                             const char *expected)
{
    return apr_psprintf(cmd->pool, "%s: bad value '%s' for option %s (expected %s)",
                        cmd->cmd->name, value, option, expected);
}

/* A count in [min, max]. */
static const char *parse_count(cmd_parms *cmd, const char *option, const char *value,
                               int min, int max, int *out)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(value, &end, 10);
    if (!*value || *end || errno || n < min || n > max) {
        return bad_value(cmd, option, value,
                         apr_psprintf(cmd->pool, "a whole number from %d to %d", min, max));
    }
    *out = (int)n;
    return NULL;
}

/* Seconds, fractions allowed (0: none), up to a day. */
static const char *parse_seconds(cmd_parms *cmd, const char *option, const char *value,
                                 apr_interval_time_t *out)
{
    char *end;
    double seconds;

    errno = 0;
    seconds = strtod(value, &end);
    if (!*value || *end || errno || !isfinite(seconds) || seconds < 0 || seconds > 86400) {
        return bad_value(cmd, option, value, "seconds, from 0 to 86400");
    }
    *out = (apr_interval_time_t)(seconds * APR_USEC_PER_SEC);
    return NULL;
}

/* Bytes, with an optional K, M or G (powers of 1024). */
static const char *parse_bytes(cmd_parms *cmd, const char *option, const char *value,
                               apr_int64_t *out)
{
    char *end;
    apr_int64_t n;
    apr_int64_t unit = 1;

    errno = 0;
    n = apr_strtoi64(value, &end, 10);
    if (*end && !end[1]) {
        switch (apr_toupper(*end)) {
        case 'K': unit = 1024; end++; break;
        case 'M': unit = 1024 * 1024; end++; break;
        case 'G': unit = 1024 * 1024 * 1024; end++; break;
        }
    }
    if (!*value || *end || errno || n < 0 || n > APR_INT64_MAX / unit / 2) {
        return bad_value(cmd, option, value, "bytes, optionally with K, M or G");
    }
    *out = n * unit;
    return NULL;
}

/* The options that are counts, and those that are seconds (mod_wsgi's names). */
static const struct {
    const char *name;
    size_t offset;
    int min, max;
} count_options[] = {
    { "processes", APR_OFFSETOF(swgi_daemon_t, processes), 1, 1024 },
    { "threads", APR_OFFSETOF(swgi_daemon_t, threads), 1, 1024 },
    { "maximum-requests", APR_OFFSETOF(swgi_daemon_t, maximum_requests), 0, INT_MAX },
    { "listen-backlog", APR_OFFSETOF(swgi_daemon_t, listen_backlog), 1, 65535 },
};

static const struct {
    const char *name;
    size_t offset;
} seconds_options[] = {
    { "request-timeout", APR_OFFSETOF(swgi_daemon_t, request_timeout) },
    { "inactivity-timeout", APR_OFFSETOF(swgi_daemon_t, inactivity_timeout) },
    { "graceful-timeout", APR_OFFSETOF(swgi_daemon_t, graceful_timeout) },
    { "startup-timeout", APR_OFFSETOF(swgi_daemon_t, startup_timeout) },
    { "connect-timeout", APR_OFFSETOF(swgi_daemon_t, connect_timeout) },
    { "queue-timeout", APR_OFFSETOF(swgi_daemon_t, queue_timeout) },
    { "restart-interval", APR_OFFSETOF(swgi_daemon_t, restart_interval) },
};

/* A count or seconds option: 1 (and *err) when `option` is one of them. */
static int table_option(cmd_parms *cmd, swgi_daemon_t *d, const char *option,
                        const char *value, const char **err)
{
    size_t i;

    for (i = 0; i < sizeof(count_options) / sizeof(count_options[0]); i++) {
        if (!strcmp(option, count_options[i].name)) {
            *err = parse_count(cmd, option, value, count_options[i].min,
                               count_options[i].max,
                               (int *)((char *)d + count_options[i].offset));
            return 1;
        }
    }
    for (i = 0; i < sizeof(seconds_options) / sizeof(seconds_options[0]); i++) {
        if (!strcmp(option, seconds_options[i].name)) {
            *err = parse_seconds(cmd, option, value, (apr_interval_time_t *)
                                 ((char *)d + seconds_options[i].offset));
            return 1;
        }
    }
    return 0;
}

/* SWGIDaemonProcess NAME [option=value ...] */
static const char *set_daemon_process(cmd_parms *cmd, void *dummy, const char *args)
{
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_CONTEXT);
    const char *name;
    swgi_daemon_t *d;

    if (err) {
        return err;
    }
    name = ap_getword_conf(cmd->pool, &args);
    if (!valid_group_name(name)) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": '", name, "' is not a valid "
                           "process group name (letters, digits, '_', '-', '.')", NULL);
    }
    if (swgi_find_daemon(name)) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": a process group named '", name,
                           "' is already defined", NULL);
    }
    d = apr_pcalloc(cmd->pool, sizeof(*d));
    d->name = name;
    d->index = swgi_daemons->nelts;
    d->server = cmd->server;
    d->processes = 1;
    d->threads = 15;
    d->umask = -1;
    d->graceful_timeout = apr_time_from_sec(15);
    d->connect_timeout = apr_time_from_sec(15);
    d->listen_backlog = 100;
    d->listen_fd = -1;

    while (*args) {
        const char *word = ap_getword_conf(cmd->pool, &args);
        const char *eq = strchr(word, '=');
        const char *option, *value;

        if (!eq || eq == word) {
            return apr_pstrcat(cmd->pool, cmd->cmd->name, ": '", word, "' is not an "
                               "option=value pair", NULL);
        }
        option = apr_pstrmemdup(cmd->pool, word, eq - word);
        value = eq + 1;
        if (table_option(cmd, d, option, value, &err)) {
            /* a count or seconds */
        }
        else if (!strcmp(option, "user")) {
            struct passwd *pw = *value ? getpwnam(value) : NULL;

            if (!pw) {
                return apr_pstrcat(cmd->pool, cmd->cmd->name, ": no user named '", value,
                                   "' (option user)", NULL);
            }
            if (pw->pw_uid == 0) {
                return apr_pstrcat(cmd->pool, cmd->cmd->name, ": user=", value, " is refused: "
                                   "daemon processes never run as root", NULL);
            }
            d->user = value;
            d->uid = pw->pw_uid;
            if (!d->group) {
                d->gid = pw->pw_gid;
            }
        }
        else if (!strcmp(option, "group")) {
            struct group *gr = *value ? getgrnam(value) : NULL;

            if (!gr) {
                return apr_pstrcat(cmd->pool, cmd->cmd->name, ": no group named '", value,
                                   "' (option group)", NULL);
            }
            d->group = value;
            d->gid = gr->gr_gid;
        }
        else if (!strcmp(option, "home")) {
            if (*value != '/') {
                return bad_value(cmd, option, value, "an absolute path");
            }
            d->home = value;
        }
        else if (!strcmp(option, "umask")) {
            char *end;
            long mask = strtol(value, &end, 8);

            if (!*value || *end || mask < 0 || mask > 0777) {
                return bad_value(cmd, option, value, "an octal mask such as 0022");
            }
            d->umask = (int)mask;
        }
        else if (!strcmp(option, "display-name")) {
            if (!*value) {
                return bad_value(cmd, option, value, "a name");
            }
            d->display_name = value;
        }
        else if (!strcmp(option, "memory-limit")) {
            err = parse_bytes(cmd, option, value, &d->memory_limit);
        }
        else {
            return apr_pstrcat(cmd->pool, cmd->cmd->name, ": unknown option '", option,
                               "'", NULL);
        }
        if (err) {
            return err;
        }
    }
    APR_ARRAY_PUSH(swgi_daemons, swgi_daemon_t *) = d;
    return NULL;
}

/* SWGIProcessGroup NAME. A group may be defined after its first use, so a
 * name that no SWGIDaemonProcess defines is found out by the request (500,
 * and a log line naming it), as mod_wsgi does. */
static const char *set_process_group(cmd_parms *cmd, void *mconfig, const char *name)
{
    swgi_dir_conf_t *conf = mconfig;

    if (strcmp(name, SWGI_GLOBAL_GROUP) && !valid_group_name(name)) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": '", name, "' is not a valid "
                           "process group name (or " SWGI_GLOBAL_GROUP " for embedded mode)",
                           NULL);
    }
    conf->process_group = name;
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
        {
            /* apr_pstrcatv: the lengths given, not found again through a
             * variadic walk as apr_pstrcat does (227 instructions a request
             * here, callgrind). */
            struct iovec parts[2];

            parts[0].iov_base = (void *)target;
            parts[0].iov_len = strlen(target);
            parts[1].iov_base = (void *)(r->uri + matched);
            parts[1].iov_len = strlen(r->uri + matched);
            r->filename = apr_pstrcatv(r->pool, parts, 2, NULL);
        }
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
    AP_INIT_RAW_ARGS("SWGIDaemonProcess", set_daemon_process, NULL, RSRC_CONF,
                     "a process group name, then options (processes=N threads=N "
                     "user= group= ...)"),
    /* Not in .htaccess: it decides which processes and users run code. */
    AP_INIT_TAKE1("SWGIProcessGroup", set_process_group, NULL, RSRC_CONF | ACCESS_CONF,
                  "the SWGIDaemonProcess that serves the applications here, or "
                  SWGI_GLOBAL_GROUP " (embedded: Apache's own processes)"),
    { NULL }
};

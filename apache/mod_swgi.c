/*
 * mod_swgi.c: the module record and its hooks.
 *
 * mod_swgi serves SWGI applications (Swift libraries, see swgi_abi.h) inside
 * Apache's own processes. Directives are in swgi_config.c, library loading
 * in swgi_loader.c, the handler in swgi_handler.c.
 */
#include "mod_swgi.h"

#include "http_core.h"
#include "http_request.h"
#include "ap_release.h"


/* mod_mime's AddHandler may have changed the handler of an aliased
 * request: the alias's application wins, as for ScriptAlias. A SetHandler
 * configured for the URL (say server-status under an application mounted
 * at /) wins over the alias, as it does over ScriptAlias. */
static int swgi_fixups(request_rec *r)
{
    core_dir_config *core;

    if (!ap_get_module_config(r->request_config, &swgi_module)) {
        return DECLINED;
    }
    core = ap_get_core_module_config(r->per_dir_config);
    if ((core->handler && strcmp(core->handler, "none")) || core->expr_handler) {
        return DECLINED;
    }
    r->handler = SWGI_HANDLER_NAME;
    return DECLINED;
}

static void swgi_child_init(apr_pool_t *p, server_rec *s)
{
    /* Application libraries load on first use in this child: no Swift code
     * ever runs in the Apache parent. */
    swgi_loader_child_init(p, s);
    swgi_handler_child_init(p, s);
    swgi_daemon_child_init(p, s);
}

static int swgi_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    swgi_config_pre_config(pconf);
    return OK;
}

static int swgi_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                            server_rec *s)
{
    ap_add_version_component(pconf, "mod_swgi/" MOD_SWGI_VERSION);
    /* Daemon mode's processes: forked here, before any Swift code is loaded. */
    return swgi_daemon_post_config(pconf, ptemp, s);
}

static void swgi_register_hooks(apr_pool_t *p)
{
    /* Before mod_alias, so that an Alias of a parent URL does not take ours. */
    static const char * const before_alias[] = { "mod_alias.c", NULL };

    ap_hook_pre_config(swgi_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(swgi_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(swgi_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_translate_name(swgi_translate_name, NULL, before_alias, APR_HOOK_MIDDLE);
    ap_hook_fixups(swgi_fixups, NULL, NULL, APR_HOOK_LAST);
    ap_hook_handler(swgi_handler, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(swgi) = {
    STANDARD20_MODULE_STUFF,
    swgi_create_dir_config,
    swgi_merge_dir_config,
    swgi_create_server_config,
    swgi_merge_server_config,
    swgi_cmds,
    swgi_register_hooks
};

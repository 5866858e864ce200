/*
 * swgi_loader.c: loads SWGI application libraries, once per child process.
 *
 * Libraries are opened with dlopen(RTLD_NOW | RTLD_LOCAL), never with
 * apr_dso_load (RTLD_GLOBAL): each application library carries its own copy
 * of SWGI, and with RTLD_LOCAL none of its symbols can bind to another
 * library's copy, so applications built against different SWGI versions
 * coexist. Loading happens in the children on first use, never in the
 * Apache parent: no Swift code runs before the fork.
 *
 * Loaded libraries are never closed (Swift images cannot be unloaded
 * safely); a rebuilt library is picked up by restarting Apache.
 *
 * A request through a prefix alias finds its application in the alias's
 * cache slot, without the lock; the lock guards the table of loaded
 * libraries (first loads, AliasMatch targets, AddHandler files, failures).
 */
#include "mod_swgi.h"

#include "apr_hash.h"
#include "apr_strings.h"
#include "apr_thread_mutex.h"
#include "unixd.h"

#include <dlfcn.h>
#include <unistd.h>

APLOG_USE_MODULE(swgi);

typedef struct {
    const swgi_app_v1 *app;     /* NULL when loading failed */
    apr_time_t checked;         /* when file_changed last looked at the file */
    int changed;                /* and found it changed since it was loaded */
    const char *reason;         /* why it failed */
    const char *untrusted;      /* why the file is not to be trusted, or NULL */
    apr_time_t mtime;           /* of the file that failed */
    apr_off_t size;
} swgi_loaded_t;

/* What an alias's cache slot points to; never changed once published. */
typedef struct {
    const char *entry;
    const swgi_app_v1 *app;
    const char *untrusted;
} swgi_cached_app_t;

static apr_pool_t *loader_pool;
static apr_hash_t *loaded;
/* Libraries loaded in this process (a daemon checks its signal handlers after each). */
static unsigned loads;
/* In a daemon process running as another user: that user may own files too. */
static uid_t also_trusted = (uid_t)-1;
#if APR_HAS_THREADS
static apr_thread_mutex_t *loader_lock;
#endif

void swgi_loader_child_init(apr_pool_t *p, server_rec *s)
{
    apr_pool_create(&loader_pool, p);
    apr_pool_tag(loader_pool, "swgi_loader");
    loaded = apr_hash_make(loader_pool);
#if APR_HAS_THREADS
    apr_thread_mutex_create(&loader_lock, APR_THREAD_MUTEX_DEFAULT, p);
#endif
}

void swgi_loader_trust_owner(uid_t uid)
{
    also_trusted = uid;
}

/* A log line for the request, or for the server in a daemon process. */
#define LOG(level, ...) \
    do { \
        if (r) { ap_log_rerror(APLOG_MARK, level, 0, r, __VA_ARGS__); } \
        else { ap_log_error(APLOG_MARK, level, 0, s, __VA_ARGS__); } \
    } while (0)

static void lock(void)
{
#if APR_HAS_THREADS
    apr_thread_mutex_lock(loader_lock);
#endif
}

static void unlock(void)
{
#if APR_HAS_THREADS
    apr_thread_mutex_unlock(loader_lock);
#endif
}

/* Opens the library and checks its table; NULL and *reason on failure. */
static const swgi_app_v1 *open_app(const char *path, const char *entry,
                                   const char **reason)
{
    void *dso;
    swgi_entry_fn fn;
    const swgi_app_v1 *app;
    const char *symbol = apr_pstrcat(loader_pool, SWGI_ENTRY_PREFIX, entry, NULL);

    dlerror();
    dso = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dso) {
        const char *err = dlerror();
        *reason = apr_pstrdup(loader_pool, err ? err : "dlopen failed");
        return NULL;
    }
    /* The object-to-function pointer conversion is what dlsym is for. */
    *(void **)(&fn) = dlsym(dso, symbol);
    if (!fn) {
        *reason = apr_psprintf(loader_pool,
                               "not an SWGI application: it exports no entry "
                               "point '%s' (export one with @c(%s), or name "
                               "another with SWGIEntryPoint)", symbol, symbol);
        return NULL;
    }
    app = fn();
    if (!app) {
        *reason = apr_psprintf(loader_pool, "entry point '%s' returned no application",
                               symbol);
        return NULL;
    }
    if (app->abi_version != SWGI_ABI_VERSION) {
        *reason = apr_psprintf(loader_pool,
                               "built for SWGI ABI version %u, but this mod_swgi "
                               "speaks version %u: rebuild it against a matching SWGI",
                               app->abi_version, SWGI_ABI_VERSION);
        return NULL;
    }
    /* The first version of the table ended before `flags`. */
    if (app->size < offsetof(swgi_app_v1, flags) || !app->handle) {
        *reason = apr_psprintf(loader_pool, "entry point '%s' returned an incomplete "
                               "application table", symbol);
        return NULL;
    }
    return app;
}

/* Publishes app in the alias's slot (called with the lock held): later
 * requests read it without the lock. The slot is filled once; an alias
 * whose locations name other entry points finds those in the table. */
static void remember(void **cache, const char *entry, const swgi_app_v1 *app,
                     const char *untrusted)
{
    swgi_cached_app_t *cached;

    if (!cache || __atomic_load_n(cache, __ATOMIC_ACQUIRE)) {
        return;
    }
    cached = apr_palloc(loader_pool, sizeof(*cached));
    cached->entry = apr_pstrdup(loader_pool, entry);
    cached->app = app;
    cached->untrusted = untrusted;
    __atomic_store_n(cache, cached, __ATOMIC_RELEASE);
}

/*
 * Why a library file is not to be trusted, or NULL: Apache loads it into
 * its own processes, so only root or Apache's user may own it, and nobody
 * else may write it (mod_wsgi's rule for its scripts, suEXEC's for CGI).
 */
static const char *untrusted_reason(const apr_finfo_t *finfo)
{
    if (finfo->user != 0 && finfo->user != ap_unixd_config.user_id
        && finfo->user != also_trusted) {
        return apr_psprintf(loader_pool, "it is owned by uid %ld, neither root nor "
                            "Apache's user (uid %ld)", (long)finfo->user,
                            (long)ap_unixd_config.user_id);
    }
    if (finfo->protection & APR_FPROT_WWRITE) {
        return "every user may write it";
    }
    return NULL;
}

/* NULL after one log line if `untrusted` and this directory does not allow it. */
static const swgi_app_v1 *trusted(request_rec *r, server_rec *s, const char *path,
                                  const swgi_app_v1 *app, const char *untrusted,
                                  int allow_untrusted)
{
    if (untrusted && !allow_untrusted) {
        LOG(APLOG_ERR, "SWGI application %s refused: %s (SWGIAllowUntrustedFiles On "
            "accepts it)", path, untrusted);
        return NULL;
    }
    return app;
}

/*
 * Whether a loaded library's file has changed (its time or size, or it is
 * gone), for a daemon process, which then restarts (called with the lock
 * held). The file is looked at once a second at most: a request costs no
 * system call, and a change is noticed within a second; once seen, every
 * thread sees it.
 */
static int file_changed(swgi_loaded_t *item, const char *path, apr_pool_t *p)
{
    apr_time_t now = apr_time_now();
    apr_finfo_t finfo;

    if (!item->changed && now - item->checked >= APR_USEC_PER_SEC) {
        item->checked = now;
        item->changed = apr_stat(&finfo, path, APR_FINFO_MTIME | APR_FINFO_SIZE, p)
                        != APR_SUCCESS
                        || finfo.mtime != item->mtime || finfo.size != item->size;
    }
    return item->changed;
}

/* Logs to r, or to s when r is NULL (a daemon process); p for scratch.
 * With `changed`, a library whose file changed since it was loaded gives
 * NULL and *changed = 1. */
static const swgi_app_v1 *load_app(request_rec *r, server_rec *s, apr_pool_t *p,
                                   const char *path, const char *entry, void **cache,
                                   int allow_untrusted, int *changed)
{
    swgi_cached_app_t *cached = cache ? __atomic_load_n(cache, __ATOMIC_ACQUIRE) : NULL;
    const char *key;
    swgi_loaded_t *item;
    apr_finfo_t finfo;
    const swgi_app_v1 *app;
    const char *reason = NULL;
    const char *untrusted;

    /* The usual case: an alias whose application this child has loaded. */
    if (cached && !strcmp(cached->entry, entry)) {
        return trusted(r, s, path, cached->app, cached->untrusted, allow_untrusted);
    }
    key = apr_pstrcat(p, path, "\n", entry, NULL);
    lock();
    item = apr_hash_get(loaded, key, APR_HASH_KEY_STRING);
    if (item && item->app) {
        if (changed && file_changed(item, path, p)) {
            unlock();
            *changed = 1;
            return NULL;
        }
        remember(cache, entry, item->app, item->untrusted);
        unlock();
        return trusted(r, s, path, item->app, item->untrusted, allow_untrusted);
    }

    if (apr_stat(&finfo, path, APR_FINFO_MTIME | APR_FINFO_SIZE | APR_FINFO_TYPE
                 | APR_FINFO_USER | APR_FINFO_PROT, p) != APR_SUCCESS) {
        unlock();
        LOG(APLOG_ERR, "cannot load SWGI application %s: no such file", path);
        return NULL;
    }
    if (finfo.filetype != APR_REG) {
        unlock();
        LOG(APLOG_ERR, "cannot load SWGI application %s: not a regular file", path);
        return NULL;
    }
    /* A library that failed before fails again until its file changes:
     * its entry point is not called once per request. */
    if (item && item->mtime == finfo.mtime && item->size == finfo.size) {
        reason = item->reason;
        unlock();
        LOG(APLOG_ERR, "cannot load SWGI application %s: %s", path, reason);
        return NULL;
    }

    /* Checked before dlopen, which runs the library's initializers. */
    untrusted = untrusted_reason(&finfo);
    if (untrusted && !allow_untrusted) {
        unlock();
        return trusted(r, s, path, NULL, untrusted, allow_untrusted);
    }
    app = open_app(path, entry, &reason);
    if (!item) {
        item = apr_pcalloc(loader_pool, sizeof(*item));
        apr_hash_set(loaded, apr_pstrdup(loader_pool, key), APR_HASH_KEY_STRING, item);
    }
    item->app = app;
    item->checked = apr_time_now();
    item->reason = reason;
    item->untrusted = untrusted;
    item->mtime = finfo.mtime;
    item->size = finfo.size;
    if (app) {
        remember(cache, entry, app, untrusted);
        __atomic_add_fetch(&loads, 1, __ATOMIC_RELEASE);
    }
    unlock();

    if (!app) {
        LOG(APLOG_ERR, "cannot load SWGI application %s: %s", path, reason);
        return NULL;
    }
    LOG(APLOG_INFO, "loaded SWGI application %s (entry %s, SWGI %s) in process %"
        APR_PID_T_FMT, path, entry, app->swgi_version ? app->swgi_version : "?", getpid());
    return app;
}

unsigned swgi_loader_count(void)
{
    return __atomic_load_n(&loads, __ATOMIC_ACQUIRE);
}

const swgi_app_v1 *swgi_load_app(request_rec *r, const char *path, const char *entry,
                                 void **cache, int allow_untrusted)
{
    return load_app(r, r->server, r->pool, path, entry, cache, allow_untrusted, NULL);
}

const swgi_app_v1 *swgi_load_app_server(server_rec *s, apr_pool_t *p, const char *path,
                                        const char *entry, int allow_untrusted, int *changed)
{
    *changed = 0;
    return load_app(NULL, s, p, path, entry, NULL, allow_untrusted, changed);
}

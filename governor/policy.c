/* SPDX-License-Identifier: MIT */
/*
 * Policies, the input of the whole flow (policy → probe → forecast → decide → effects): one
 * JSON file per service, read strictly, every key checked, defaults filled in, and turned
 * into a plain struct policy. The cross-field checks (levels that must tighten, a window
 * long enough for the sample interval) live in policy-check.c; the daemon config and the
 * policy directory in policy-config.c.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <string.h>
#include <strings.h>

#include "memgov/policy.h"
#include "policy-internal.h"
#include "policy-json.h"

/* ---- the keys, one table per object; policy.schema.json must list the same ------------ */

static const char *const root_keys[] = {
        "$schema",     "service", "cgroup",  "sample_interval", "forecast", "levels",
        "memory_high", "pprof",   "runtime", "collectors",      "webhooks", NULL,
};
static const char *const forecast_keys[] = {"window", "horizon", NULL};
static const char *const levels_keys[] = {"warn", "degrade", "critical", "hold", NULL};
static const char *const level_keys[] = {
        "eta", "usage", "psi_some_avg10", "psi_full_avg10", "high_events_rate", "max_events_rate",
        NULL,
};
static const char *const memory_high_keys[] = {
        "mode",
        "backend",
        "fixed",
        "min",
        "budget",
        "min_interval",
        "livelock_psi_full_avg10",
        "livelock_duration",
        "reclaim",
        NULL,
};
static const char *const pprof_keys[] = {
        "url",      "on",           "kinds",       "timeout", "max_bytes",
        "cooldown", "max_per_hour", "cpu_seconds", NULL,
};
static const char *const runtime_keys[] = {
        "url",   "format", "interval", "timeout", "goroutines_max", "goroutines_growth_per_min",
        "level", NULL,
};
static const char *const collector_keys[] = {"argv", "on", "timeout", "per_process", NULL};
static const char *const webhook_keys[] = {"url",     "secret_file", "events",
                                           "timeout", "deadline",    NULL};

static const struct pj_object_keys policy_objects[] = {
        {".", root_keys},
        {".forecast", forecast_keys},
        {".levels", levels_keys},
        {".levels.warn", level_keys},
        {".levels.degrade", level_keys},
        {".levels.critical", level_keys},
        {".memory_high", memory_high_keys},
        {".pprof", pprof_keys},
        {".runtime", runtime_keys},
        {".collectors[]", collector_keys},
        {".webhooks[]", webhook_keys},
        {NULL, NULL},
};

const char *const *policy_known_keys(const char *json_path)
{
        if (!json_path)
                return NULL;
        if (json_path[0] == '\0')
                json_path = ".";
        for (const struct pj_object_keys *o = policy_objects; o->path; o++)
                if (strcmp(o->path, json_path) == 0)
                        return o->keys;
        return NULL;
}

/* ---- names ---------------------------------------------------------------------------- */

static const char *const memory_high_mode_names[_MEMORY_HIGH_MODE_MAX] = {
        [MEMORY_HIGH_OFF] = "off",
        [MEMORY_HIGH_FIXED] = "fixed",
        [MEMORY_HIGH_GUARD] = "guard",
};

static const char *const actuate_backend_names[_ACTUATE_BACKEND_MAX] = {
        [ACTUATE_BACKEND_AUTO] = "auto",
        [ACTUATE_BACKEND_CGROUPFS] = "cgroupfs",
        [ACTUATE_BACKEND_SYSTEMD] = "systemd",
};

static const char *const pprof_kind_names[_PPROF_KIND_MAX] = {
        [PPROF_HEAP] = "heap",           [PPROF_ALLOCS] = "allocs",
        [PPROF_GOROUTINE] = "goroutine", [PPROF_THREADCREATE] = "threadcreate",
        [PPROF_BLOCK] = "block",         [PPROF_MUTEX] = "mutex",
        [PPROF_PROFILE] = "profile",
};

static const char *const runtime_format_names[_RUNTIME_FORMAT_MAX] = {
        [RUNTIME_FORMAT_EXPVAR] = "expvar",
        [RUNTIME_FORMAT_PROMETHEUS] = "prometheus",
};

const char *runtime_format_to_string(enum runtime_format f)
{
        return f >= 0 && f < _RUNTIME_FORMAT_MAX ? runtime_format_names[f] : NULL;
}

const char *memory_high_mode_to_string(enum memory_high_mode m)
{
        return m >= 0 && m < _MEMORY_HIGH_MODE_MAX ? memory_high_mode_names[m] : NULL;
}

const char *actuate_backend_to_string(enum actuate_backend b)
{
        return b >= 0 && b < _ACTUATE_BACKEND_MAX ? actuate_backend_names[b] : NULL;
}

const char *pprof_kind_to_string(enum pprof_kind k)
{
        return k >= 0 && k < _PPROF_KIND_MAX ? pprof_kind_names[k] : NULL;
}

enum pprof_kind pprof_kind_from_string(const char *s)
{
        for (size_t i = 0; s && i < ELEMENTSOF(pprof_kind_names); i++)
                if (strcmp(pprof_kind_names[i], s) == 0)
                        return (enum pprof_kind)i;
        return _PPROF_KIND_INVALID;
}

/* Event names indexed by enum event (NULL where there is no event). */
static void event_names(const char *names[_EVENT_MAX])
{
        for (int e = 0; e < _EVENT_MAX; e++)
                names[e] = event_to_string((enum event)e);
}

/* ---- sizes ---------------------------------------------------------------------------- */

uint64_t policy_size_resolve(const struct policy_size *s, uint64_t limit_bytes)
{
        if (s->permille == 0)
                return s->bytes;
        if (limit_bytes == CGROUP_LIMIT_MAX)
                return CGROUP_LIMIT_MAX;
        return (uint64_t)((unsigned __int128)limit_bytes * s->permille / 1000);
}

/* ---- defaults ------------------------------------------------------------------------- */

const struct policy_level policy_default_levels[_LEVEL_MAX] = {
        [LEVEL_WARN] = {.eta_usec = 10 * USEC_PER_MINUTE, .usage_permille = 800},
        [LEVEL_DEGRADE] = {.eta_usec = 3 * USEC_PER_MINUTE, .usage_permille = 900},
        [LEVEL_CRITICAL] = {.eta_usec = 45 * USEC_PER_SEC, .usage_permille = 970},
};

static void policy_set_defaults(struct policy *p)
{
        p->sample_interval_usec = USEC_PER_SEC;
        p->forecast_window_usec = 5 * USEC_PER_MINUTE;
        p->forecast_horizon_usec = 30 * USEC_PER_MINUTE;
        memcpy(p->levels, policy_default_levels, sizeof(p->levels));
        p->hold_usec = 60 * USEC_PER_SEC;
        p->memory_high = (struct policy_memory_high){
                .mode = MEMORY_HIGH_GUARD,
                .backend = ACTUATE_BACKEND_AUTO,
                .min = {.permille = 100},
                .budget_usec = 2 * USEC_PER_MINUTE,
                .min_interval_usec = 5 * USEC_PER_SEC,
                .livelock_psi_full_avg10_pct = 60,
                .livelock_duration_usec = 10 * USEC_PER_SEC,
        };
        p->pprof = (struct policy_pprof){
                .on_mask = EVENT_MASK(EVENT_WARN) | EVENT_MASK(EVENT_CRITICAL),
                .kinds_mask = 1u << PPROF_HEAP | 1u << PPROF_GOROUTINE | 1u << PPROF_ALLOCS,
                .timeout_usec = 10 * USEC_PER_SEC,
                .max_bytes = 64 * 1024 * 1024,
                .cooldown_usec = 60 * USEC_PER_SEC,
                .max_per_hour = 20,
                .cpu_seconds = 10,
        };
        p->runtime = (struct policy_runtime){
                .format = RUNTIME_FORMAT_EXPVAR,
                .interval_usec = 10 * USEC_PER_SEC,
                .timeout_usec = 2 * USEC_PER_SEC,
                .level = LEVEL_WARN,
        };
}

/* ---- string checks -------------------------------------------------------------------- */

static char *dup_or_oom(struct pj *c, const char *s)
{
        char *d = strdup(s);

        if (!d)
                c->oom = true;
        return d;
}

static bool has_control_chars(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

bool policy_service_name_valid(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > 64 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
                return false;
        return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* Why a cgroup path or glob is wrong, or NULL; the message ends with what was found. */
static const char *cgroup_problem(const char *s, const char *got, char *buf, size_t size)
{
        static const char *const mounts[] = {"/sys/fs/cgroup/unified/", "/sys/fs/cgroup/", "/"};
        const char *why = NULL;
        size_t n = strlen(s);

        if (n == 0)
                return "must not be empty; give a path or glob relative to the cgroup root, e.g. "
                       "\"system.slice/app.service\"";
        if (n > 4095)
                return "is too long (at most 4095 bytes)";
        if (has_control_chars(s))
                why = "must not contain control characters";
        if (s[0] == '/') {
                const char *rel = s;
                for (size_t i = 0; i < ELEMENTSOF(mounts); i++)
                        if (strncmp(s, mounts[i], strlen(mounts[i])) == 0) {
                                rel = s + strlen(mounts[i]);
                                break;
                        }
                (void)snprintf(buf, size,
                               "must be relative to the cgroup root: write \"%.200s\", without "
                               "the leading '/'",
                               *rel ? rel : "system.slice/app.service");
                return buf;
        }
        for (const char *p = s; !why;) {
                size_t len = strcspn(p, "/");
                if (len == 2 && strncmp(p, "..", 2) == 0)
                        why = "must not contain \"..\"; a policy governs cgroups below the "
                              "cgroup root only";
                else if (len == 0 || (len == 1 && p[0] == '.'))
                        why = "must not contain empty or \".\" components (as in \"a//b\", "
                              "\"a/./b\" or a trailing '/')";
                if (!p[len])
                        break;
                p += len + 1;
        }
        for (const char *p = s; !why && (p = strchr(p, '[')); p++) {
                const char *close = strchr(p + 1, ']');
                const char *slash = strchr(p + 1, '/');
                if (!close || (slash && slash < close))
                        why = "has a '[' without its closing ']' in the same component";
        }
        if (!why)
                return NULL;
        (void)snprintf(buf, size, "%s, got %s", why, got);
        return buf;
}

/*
 * Check an http(s) URL and copy its host (without brackets or port) into host. Returns
 * NULL or why it is wrong.
 */
static const char *url_problem(const char *url, char *host, size_t host_size)
{
        const char *a, *end, *h, *hend, *port = NULL;

        if (strncasecmp(url, "http://", 7) == 0)
                a = url + 7;
        else if (strncasecmp(url, "https://", 8) == 0)
                a = url + 8;
        else
                return "expected an http:// or https:// URL";
        for (const char *p = url; *p; p++)
                if ((unsigned char)*p <= 0x20 || *p == 0x7f)
                        return "must not contain spaces or control characters";
        end = a + strcspn(a, "/?#");
        h = a;
        for (const char *p = a; p < end; p++)
                if (*p == '@')
                        h = p + 1; /* user:password@ */
        if (h == end)
                return "has no host";
        if (*h == '[') {
                hend = memchr(h, ']', (size_t)(end - h));
                if (!hend)
                        return "has a '[' without ']' around its IPv6 address";
                h++;
                if (hend + 1 < end) {
                        if (hend[1] != ':')
                                return "has junk after the IPv6 address";
                        port = hend + 2;
                }
        } else {
                hend = memchr(h, ':', (size_t)(end - h));
                if (hend)
                        port = hend + 1;
                else
                        hend = end;
        }
        if (hend == h)
                return "has no host";
        if (port) {
                unsigned long v = 0;
                if (port == end)
                        return "has an empty port";
                for (const char *p = port; p < end; p++) {
                        if (*p < '0' || *p > '9' || v > 65535)
                                return "has an invalid port (1 to 65535)";
                        v = v * 10 + (unsigned long)(*p - '0');
                }
                if (v == 0 || v > 65535)
                        return "has an invalid port (1 to 65535)";
        }
        (void)snprintf(host, host_size, "%.*s", (int)(hend - h), h);
        return NULL;
}

static bool host_is_loopback(const char *host)
{
        struct in6_addr a6;
        struct in_addr a4;

        if (inet_pton(AF_INET, host, &a4) == 1)
                return (ntohl(a4.s_addr) >> 24) == 127;
        if (inet_pton(AF_INET6, host, &a6) == 1)
                return IN6_IS_ADDR_LOOPBACK(&a6);
        return false;
}

/* Get an http(s) URL at key; 1, 0 (absent) or -EINVAL. */
static int get_url(struct pj *c, struct json_object *obj, const char *key, const char *example,
                   const char **ret, char *host, size_t host_size)
{
        const char *url, *why;
        size_t old;
        int r;

        r = pj_get_string(c, obj, key, &url);
        if (r <= 0)
                return r;
        why = url_problem(url, host, host_size);
        if (why) {
                old = pj_push_key(c, key);
                pj_problem(c, "%s like \"%s\", got %s", why, example,
                           PJ_GOT(json_object_object_get(obj, key)));
                pj_pop(c, old);
                return -EINVAL;
        }
        *ret = url;
        return 1;
}

/* ---- sections ------------------------------------------------------------------------- */

static void load_forecast(struct pj *c, struct json_object *root, struct policy *p,
                          struct policy_given *g)
{
        struct json_object *o;
        size_t old;

        if (pj_get_object(c, root, "forecast", "{\"window\": \"5m\", \"horizon\": \"30m\"}", &o) <=
            0)
                return;
        old = pj_push_key(c, "forecast");
        pj_check_keys(c, o, forecast_keys);
        g->window = pj_get_duration(c, o, "window", USEC_PER_SEC, 24 * USEC_PER_HOUR,
                                    &p->forecast_window_usec);
        g->horizon = pj_get_duration(c, o, "horizon", USEC_PER_SEC, 24 * USEC_PER_HOUR,
                                     &p->forecast_horizon_usec);
        pj_pop(c, old);
}

static void load_level(struct pj *c, struct json_object *levels, enum level l, struct policy *p,
                       struct policy_given *g)
{
        const char *name = level_to_string(l);
        struct policy_level v = {};
        struct json_object *o;
        size_t old;

        if (pj_get_object(c, levels, name, "{\"eta\": \"3m\", \"usage\": \"90%\"}", &o) <= 0)
                return;
        old = pj_push_key(c, name);
        pj_check_keys(c, o, level_keys);
        (void)pj_get_duration(c, o, "eta", USEC_PER_SEC, 24 * USEC_PER_HOUR, &v.eta_usec);
        (void)pj_get_share(c, o, "usage", &v.usage_permille);
        v.has_psi_some_avg10 = pj_get_number(c, o, "psi_some_avg10", 0, false, 100, "percent",
                                             &v.psi_some_avg10_pct) > 0;
        v.has_psi_full_avg10 = pj_get_number(c, o, "psi_full_avg10", 0, false, 100, "percent",
                                             &v.psi_full_avg10_pct) > 0;
        v.has_high_rate = pj_get_number(c, o, "high_events_rate", 0, false, 1e6,
                                        "events per second", &v.high_events_per_s) > 0;
        v.has_max_rate = pj_get_number(c, o, "max_events_rate", 0, false, 1e6, "events per second",
                                       &v.max_events_per_s) > 0;
        pj_pop(c, old);
        /* a level object replaces that level's defaults as a whole */
        p->levels[l] = v;
        g->level[l] = true;
}

static void load_levels(struct pj *c, struct json_object *root, struct policy *p,
                        struct policy_given *g)
{
        struct json_object *o;
        size_t old;

        if (pj_get_object(c, root, "levels", "{\"warn\": {\"eta\": \"10m\"}}", &o) <= 0)
                return;
        old = pj_push_key(c, "levels");
        pj_check_keys(c, o, levels_keys);
        for (enum level l = LEVEL_WARN; l < _LEVEL_MAX; l++)
                load_level(c, o, l, p, g);
        (void)pj_get_duration(c, o, "hold", 0, USEC_PER_HOUR, &p->hold_usec);
        pj_pop(c, old);
}

static void load_memory_high(struct pj *c, struct json_object *root, struct policy *p)
{
        struct policy_memory_high *m = &p->memory_high;
        struct json_object *o;
        size_t old;
        int mode, backend, r_fixed, r_min;

        if (pj_get_object(c, root, "memory_high", "{\"mode\": \"guard\"}", &o) <= 0)
                return;
        old = pj_push_key(c, "memory_high");
        pj_check_keys(c, o, memory_high_keys);
        if (pj_get_enum(c, o, "mode", memory_high_mode_names, _MEMORY_HIGH_MODE_MAX, &mode) > 0)
                m->mode = (enum memory_high_mode)mode;
        if (pj_get_enum(c, o, "backend", actuate_backend_names, _ACTUATE_BACKEND_MAX, &backend) > 0)
                m->backend = (enum actuate_backend)backend;
        r_fixed = pj_get_size(c, o, "fixed", true, 1, POLICY_MAX_BYTES, &m->fixed.bytes,
                              &m->fixed.permille);
        r_min = pj_get_size(c, o, "min", true, 1, POLICY_MAX_BYTES, &m->min.bytes,
                            &m->min.permille);
        if (r_fixed == 0 && m->mode == MEMORY_HIGH_FIXED)
                pj_problem_at(c, ".memory_high.fixed",
                              "required when mode is \"fixed\": the memory.high to set, e.g. "
                              "\"90%%\" of the limit or \"3G\"");
        /* shares and bytes compare only per instance; two of a kind compare now */
        if (r_fixed > 0 && r_min >= 0 && !!m->fixed.permille == !!m->min.permille &&
            (m->min.permille ? m->min.permille > m->fixed.permille
                             : m->min.bytes > m->fixed.bytes)) {
                char min_s[32];
                if (m->min.permille)
                        pj_format_permille(m->min.permille, min_s, sizeof(min_s));
                else
                        pj_format_bytes(m->min.bytes, min_s, sizeof(min_s));
                if (r_min > 0)
                        pj_problem_at(c, ".memory_high.min",
                                      "must not be above .memory_high.fixed (%s), got %s",
                                      PJ_GOT(json_object_object_get(o, "fixed")),
                                      PJ_GOT(json_object_object_get(o, "min")));
                else
                        pj_problem_at(c, ".memory_high.fixed",
                                      "must not be below .memory_high.min (%s, the default), "
                                      "got %s",
                                      min_s, PJ_GOT(json_object_object_get(o, "fixed")));
        }
        (void)pj_get_duration(c, o, "budget", USEC_PER_SEC, USEC_PER_HOUR, &m->budget_usec);
        (void)pj_get_duration(c, o, "min_interval", 0, USEC_PER_HOUR, &m->min_interval_usec);
        (void)pj_get_number(c, o, "livelock_psi_full_avg10", 0, false, 100, "percent",
                            &m->livelock_psi_full_avg10_pct);
        (void)pj_get_duration(c, o, "livelock_duration", USEC_PER_SEC, USEC_PER_HOUR,
                              &m->livelock_duration_usec);
        (void)pj_get_bool(c, o, "reclaim", &m->reclaim);
        pj_pop(c, old);
}

/* Events that can start a capture: all but profile_captured, which would start a loop. */
#define CAPTURE_EVENTS                                                                             \
        (EVENT_MASK(EVENT_WARN) | EVENT_MASK(EVENT_DEGRADE) | EVENT_MASK(EVENT_CRITICAL) |         \
         EVENT_MASK(EVENT_RECOVERED) | EVENT_MASK(EVENT_OOM_KILL) | EVENT_MASK(EVENT_LIVELOCK))
#define WEBHOOK_EVENTS (CAPTURE_EVENTS | EVENT_MASK(EVENT_PROFILE_CAPTURED))

static void load_pprof(struct pj *c, struct json_object *root, struct policy *p)
{
        struct policy_pprof *pp = &p->pprof;
        const char *names[_EVENT_MAX], *url;
        struct json_object *o;
        char host[256];
        size_t old;
        uint64_t u;
        int r, r_timeout;

        if (pj_get_object(c, root, "pprof", "{\"url\": \"http://127.0.0.1:6060/debug/pprof\"}",
                          &o) <= 0)
                return;
        old = pj_push_key(c, "pprof");
        pj_check_keys(c, o, pprof_keys);
        event_names(names);
        r = get_url(c, o, "url", "http://127.0.0.1:6060/debug/pprof", &url, host, sizeof(host));
        if (r == 0)
                pj_problem_at(c, ".pprof.url",
                              "required: the base URL of net/http/pprof, e.g. "
                              "\"http://127.0.0.1:6060/debug/pprof\"");
        else if (r > 0) {
                pp->url = dup_or_oom(c, url);
                /* "…/pprof/" and "…/pprof" name the same base: "/heap" is appended */
                for (size_t n = pp->url ? strlen(pp->url) : 0; n > 0 && pp->url[n - 1] == '/';)
                        pp->url[--n] = '\0';
        }
        (void)pj_get_name_list(c, o, "on", names, _EVENT_MAX, CAPTURE_EVENTS, &pp->on_mask);
        (void)pj_get_name_list(c, o, "kinds", pprof_kind_names, _PPROF_KIND_MAX, ~0u,
                               &pp->kinds_mask);
        r_timeout = pj_get_duration(c, o, "timeout", 100 * USEC_PER_MSEC, 10 * USEC_PER_MINUTE,
                                    &pp->timeout_usec);
        (void)pj_get_size(c, o, "max_bytes", false, 64 * 1024, UINT64_C(4) << 30, &pp->max_bytes,
                          &(uint32_t){0});
        (void)pj_get_duration(c, o, "cooldown", 0, 24 * USEC_PER_HOUR, &pp->cooldown_usec);
        if (pj_get_uint(c, o, "max_per_hour", 1, 3600, &u) > 0)
                pp->max_per_hour = (uint32_t)u;
        r = pj_get_uint(c, o, "cpu_seconds", 1, 300, &pp->cpu_seconds);
        /* a CPU profile answers only after cpu_seconds: the request must outlive it */
        if (r >= 0 && r_timeout >= 0 && (pp->kinds_mask & (1u << PPROF_PROFILE)) &&
            pp->timeout_usec <= pp->cpu_seconds * USEC_PER_SEC) {
                if (r_timeout > 0)
                        pj_problem_at(c, ".pprof.timeout",
                                      "must be longer than cpu_seconds (%" PRIu64
                                      "s), which a \"profile\" request takes, got %s",
                                      pp->cpu_seconds,
                                      PJ_GOT(json_object_object_get(o, "timeout")));
                else
                        pj_problem_at(c, ".pprof.cpu_seconds",
                                      "must be shorter than the timeout (%s, the default), since "
                                      "a \"profile\" request takes that long, got %" PRIu64,
                                      PJ_DURATION(pp->timeout_usec), pp->cpu_seconds);
        }
        pj_pop(c, old);
}

static void load_runtime(struct pj *c, struct json_object *root, struct policy *p)
{
        static const char *const level_names[_LEVEL_MAX] = {
                [LEVEL_WARN] = "warn", [LEVEL_DEGRADE] = "degrade", [LEVEL_CRITICAL] = "critical"};
        struct policy_runtime *rt = &p->runtime;
        struct json_object *o;
        const char *url;
        char host[256];
        size_t old;
        int r, format, level, r_interval, r_timeout;

        if (pj_get_object(c, root, "runtime", "{\"url\": \"http://127.0.0.1:6060/debug/vars\"}",
                          &o) <= 0)
                return;
        old = pj_push_key(c, "runtime");
        pj_check_keys(c, o, runtime_keys);
        r = get_url(c, o, "url", "http://127.0.0.1:6060/debug/vars", &url, host, sizeof(host));
        if (r == 0)
                pj_problem_at(c, ".runtime.url",
                              "required: where the service publishes its figures, e.g. "
                              "\"http://127.0.0.1:6060/debug/vars\" (expvar) or "
                              "\"http://127.0.0.1:6060/metrics\" (prometheus)");
        else if (r > 0) {
                rt->url = dup_or_oom(c, url);
                /* the path, without a query, decides the default format */
                size_t n = strcspn(url, "?#");
                if (n >= 8 && strncmp(url + n - 8, "/metrics", 8) == 0)
                        rt->format = RUNTIME_FORMAT_PROMETHEUS;
        }
        if (pj_get_enum(c, o, "format", runtime_format_names, _RUNTIME_FORMAT_MAX, &format) > 0)
                rt->format = (enum runtime_format)format;
        r_interval =
                pj_get_duration(c, o, "interval", USEC_PER_SEC, USEC_PER_HOUR, &rt->interval_usec);
        r_timeout = pj_get_duration(c, o, "timeout", 100 * USEC_PER_MSEC, USEC_PER_MINUTE,
                                    &rt->timeout_usec);
        /* one poll at a time: a request must end before the next is due */
        if (r_interval >= 0 && r_timeout >= 0 && rt->timeout_usec > rt->interval_usec) {
                if (r_timeout > 0)
                        pj_problem_at(c, ".runtime.timeout",
                                      "must not be longer than the interval (%s%s), got %s",
                                      PJ_DURATION(rt->interval_usec),
                                      r_interval > 0 ? "" : ", the default",
                                      PJ_GOT(json_object_object_get(o, "timeout")));
                else
                        pj_problem_at(c, ".runtime.interval",
                                      "must not be shorter than the timeout (%s, the default), "
                                      "got %s",
                                      PJ_DURATION(rt->timeout_usec),
                                      PJ_GOT(json_object_object_get(o, "interval")));
        }
        (void)pj_get_uint(c, o, "goroutines_max", 1, UINT64_C(100000000), &rt->goroutines_max);
        (void)pj_get_uint(c, o, "goroutines_growth_per_min", 1, UINT64_C(100000000),
                          &rt->goroutines_growth_per_min);
        if (pj_get_enum(c, o, "level", level_names, _LEVEL_MAX, &level) > 0)
                rt->level = (enum level)level;
        pj_pop(c, old);
}

static const char *const placeholders[] = {"pid", "pids", "cgroup", "dir", "service", NULL};

/* Report "{pdi}"-like typos of placeholders in one argv string at the current path. */
static void check_placeholders(struct pj *c, const char *arg, bool *has_pid)
{
        for (const char *p = arg; (p = strchr(p, '{')); p++) {
                size_t n = strspn(p + 1, "abcdefghijklmnopqrstuvwxyz_");
                char name[32];
                const char *s;

                if (n == 0 || n >= sizeof(name) || p[1 + n] != '}')
                        continue;
                (void)snprintf(name, sizeof(name), "%.*s", (int)n, p + 1);
                if (strcmp(name, "pid") == 0)
                        *has_pid = true;
                for (const char *const *k = placeholders; *k; k++)
                        if (strcmp(*k, name) == 0)
                                goto next;
                /* other {words} stay literal (think awk '{print}'); only near misses are typos */
                s = pj_suggest(name, placeholders);
                if (s)
                        pj_problem(c, "unknown placeholder \"{%s}\"; did you mean \"{%s}\"?", name,
                                   s);
        next:;
        }
}

static void load_collector(struct pj *c, struct json_object *o, struct policy_collector *col)
{
        const char *names[_EVENT_MAX];
        struct json_object *argv;
        bool has_pid = false, per_process;
        size_t n;
        int r;

        pj_check_keys(c, o, collector_keys);
        event_names(names);
        col->on_mask = EVENT_MASK(EVENT_CRITICAL);
        col->timeout_usec = 60 * USEC_PER_SEC;

        r = pj_get_array(c, o, "argv", 64, &argv);
        if (r == 0) {
                size_t old = pj_push_key(c, "argv");
                pj_problem(c, "required: the command as an array, e.g. [\"gcore\", \"-o\", "
                              "\"{dir}/core\", \"{pid}\"]");
                pj_pop(c, old);
        } else if (r > 0) {
                size_t old = pj_push_key(c, "argv");
                n = json_object_array_length(argv);
                if (n == 0)
                        pj_problem(c, "must hold at least the program to run");
                col->argv = calloc(n + 1, sizeof(char *));
                if (!col->argv)
                        c->oom = true;
                for (size_t i = 0; col->argv && i < n; i++) {
                        struct json_object *a = json_object_array_get_idx(argv, i);
                        size_t o2 = pj_push_index(c, i);
                        const char *s = json_object_get_type(a) == json_type_string
                                                ? json_object_get_string(a)
                                                : NULL;

                        if (!s || strlen(s) != (size_t)json_object_get_string_len(a))
                                pj_problem(c, "expected a string, got %s", PJ_GOT(a));
                        else if (i == 0 && (s[0] == '\0' || (s[0] != '/' && strchr(s, '/'))))
                                pj_problem(c,
                                           "must be an absolute path or a program name looked "
                                           "up in PATH, got %s",
                                           PJ_GOT(a));
                        else
                                check_placeholders(c, s, &has_pid);
                        /* keep the array dense, even when invalid, so that it frees cleanly */
                        col->argv[i] = dup_or_oom(c, s ? s : "");
                        pj_pop(c, o2);
                        if (!col->argv[i])
                                break;
                }
                pj_pop(c, old);
        }
        (void)pj_get_name_list(c, o, "on", names, _EVENT_MAX, CAPTURE_EVENTS, &col->on_mask);
        (void)pj_get_duration(c, o, "timeout", USEC_PER_SEC, USEC_PER_HOUR, &col->timeout_usec);
        col->per_process = has_pid;
        if (pj_get_bool(c, o, "per_process", &per_process) > 0) {
                size_t old = pj_push_key(c, "per_process");
                if (!per_process && has_pid)
                        pj_problem(c, "must be true when argv uses \"{pid}\" (or use \"{pids}\" "
                                      "for all processes in one run)");
                else if (per_process && !has_pid)
                        pj_problem(c, "true runs the command once per process, but argv has no "
                                      "\"{pid}\" to tell them apart");
                pj_pop(c, old);
                col->per_process = per_process;
        }
}

static void load_webhook(struct pj *c, struct json_object *o, struct policy_webhook *w)
{
        const char *names[_EVENT_MAX], *url, *secret;
        char host[256] = "";
        size_t old;
        int r, r2;

        pj_check_keys(c, o, webhook_keys);
        event_names(names);
        w->events_mask = EVENT_MASK(EVENT_WARN) | EVENT_MASK(EVENT_DEGRADE) |
                         EVENT_MASK(EVENT_CRITICAL) | EVENT_MASK(EVENT_RECOVERED);
        w->timeout_usec = 2 * USEC_PER_SEC;
        w->deadline_usec = 20 * USEC_PER_SEC;

        r = get_url(c, o, "url", "https://alerts.example.com/memgov", &url, host, sizeof(host));
        if (r == 0) {
                old = pj_push_key(c, "url");
                pj_problem(c, "required: where to POST the events, e.g. "
                              "\"http://127.0.0.1:8080/memgov\"");
                pj_pop(c, old);
        } else if (r > 0)
                w->url = dup_or_oom(c, url);

        r = pj_get_string(c, o, "secret_file", &secret);
        old = pj_push_key(c, "secret_file");
        if (r > 0 &&
            (secret[0] != '/' || has_control_chars(secret) || secret[strlen(secret) - 1] == '/'))
                pj_problem(c,
                           "expected an absolute file name like \"/etc/memgov/app.secret\", "
                           "got %s",
                           PJ_GOT(json_object_object_get(o, "secret_file")));
        else if (r > 0)
                w->secret_file = dup_or_oom(c, secret);
        else if (r == 0 && w->url && !host_is_loopback(host))
                pj_problem(c,
                           "required for a webhook to \"%s\": unsigned events may go only to "
                           "127.0.0.0/8 or [::1]",
                           host);
        pj_pop(c, old);

        (void)pj_get_name_list(c, o, "events", names, _EVENT_MAX, WEBHOOK_EVENTS, &w->events_mask);
        r = pj_get_duration(c, o, "timeout", 100 * USEC_PER_MSEC, USEC_PER_MINUTE,
                            &w->timeout_usec);
        r2 = pj_get_duration(c, o, "deadline", 100 * USEC_PER_MSEC, USEC_PER_HOUR,
                             &w->deadline_usec);
        if (r >= 0 && r2 >= 0 && w->deadline_usec < w->timeout_usec) {
                if (r2 > 0) {
                        old = pj_push_key(c, "deadline");
                        pj_problem(c, "must be at least the timeout of one attempt (%s), got %s",
                                   PJ_DURATION(w->timeout_usec),
                                   PJ_GOT(json_object_object_get(o, "deadline")));
                } else {
                        old = pj_push_key(c, "timeout");
                        pj_problem(c, "must be at most the deadline (%s, the default), got %s",
                                   PJ_DURATION(w->deadline_usec),
                                   PJ_GOT(json_object_object_get(o, "timeout")));
                }
                pj_pop(c, old);
        }
}

/* Load an array of objects under key with load() for each element. */
static void load_collectors(struct pj *c, struct json_object *root, struct policy *p)
{
        struct json_object *arr;
        size_t old, n;

        if (pj_get_array(c, root, "collectors", POLICY_MAX_COLLECTORS, &arr) <= 0)
                return;
        n = json_object_array_length(arr);
        p->collectors = calloc(n ? n : 1, sizeof(*p->collectors));
        if (!p->collectors) {
                c->oom = true;
                return;
        }
        p->n_collectors = n;
        old = pj_push_key(c, "collectors");
        for (size_t i = 0; i < n; i++) {
                struct json_object *o = json_object_array_get_idx(arr, i);
                size_t o2 = pj_push_index(c, i);
                if (pj_expect_object(c, o, "{\"argv\": [\"gcore\", \"{pid}\"]}"))
                        load_collector(c, o, &p->collectors[i]);
                pj_pop(c, o2);
        }
        pj_pop(c, old);
}

static void load_webhooks(struct pj *c, struct json_object *root, struct policy *p)
{
        struct json_object *arr;
        size_t old, n;

        if (pj_get_array(c, root, "webhooks", POLICY_MAX_WEBHOOKS, &arr) <= 0)
                return;
        n = json_object_array_length(arr);
        p->webhooks = calloc(n ? n : 1, sizeof(*p->webhooks));
        if (!p->webhooks) {
                c->oom = true;
                return;
        }
        p->n_webhooks = n;
        old = pj_push_key(c, "webhooks");
        for (size_t i = 0; i < n; i++) {
                struct json_object *o = json_object_array_get_idx(arr, i);
                size_t o2 = pj_push_index(c, i);
                if (pj_expect_object(c, o, "{\"url\": \"http://127.0.0.1:8080/memgov\"}"))
                        load_webhook(c, o, &p->webhooks[i]);
                pj_pop(c, o2);
        }
        pj_pop(c, old);
}

/* The default service name: the file's base name without ".json". */
static char *service_from_name(const char *name)
{
        const char *base = strrchr(name, '/');
        size_t n;

        base = base ? base + 1 : name;
        n = strlen(base);
        if (n > 5 && strcmp(base + n - 5, ".json") == 0)
                n -= 5;
        return strndup(base, n);
}

static void load_root(struct pj *c, struct json_object *root, struct policy *p,
                      struct policy_given *g)
{
        const char *s, *why;
        char buf[512];
        int r;

        pj_check_keys(c, root, root_keys);
        (void)pj_get_string(c, root, "$schema", &s);

        r = pj_get_string(c, root, "service", &s);
        if (r > 0 && !policy_service_name_valid(s))
                pj_problem_at(c, ".service",
                              "must be 1 to 64 letters, digits, '_', '.' or '-' (and not \".\" "
                              "or \"..\"), got %s",
                              PJ_GOT(json_object_object_get(root, "service")));
        else if (r > 0)
                p->service = dup_or_oom(c, s);
        else if (r == 0) {
                p->service = service_from_name(c->file);
                if (!p->service)
                        c->oom = true;
                else if (!policy_service_name_valid(p->service))
                        pj_problem_at(c, ".service",
                                      "required, since the file name does not make a service "
                                      "name (1 to 64 letters, digits, '_', '.' or '-')");
        }

        r = pj_get_string(c, root, "cgroup", &s);
        if (r == 0)
                pj_problem_at(c, ".cgroup",
                              "required (a path or glob relative to the cgroup root, e.g. "
                              "\"system.slice/app.service\")");
        else if (r > 0 && (why = cgroup_problem(s, PJ_GOT(json_object_object_get(root, "cgroup")),
                                                buf, sizeof(buf))))
                pj_problem_at(c, ".cgroup", "%s", why);
        else if (r > 0)
                p->cgroup = dup_or_oom(c, s);

        g->sample_interval = pj_get_duration(c, root, "sample_interval", 100 * USEC_PER_MSEC,
                                             USEC_PER_HOUR, &p->sample_interval_usec);
        load_forecast(c, root, p, g);
        load_levels(c, root, p, g);
        load_memory_high(c, root, p);
        load_pprof(c, root, p);
        load_runtime(c, root, p);
        load_collectors(c, root, p);
        load_webhooks(c, root, p);
}

static inline void json_object_putp(struct json_object **o)
{
        if (*o)
                json_object_put(*o);
}

int policy_load_buffer(const char *name, const char *buf, size_t len, struct diag *diag,
                       struct policy **ret)
{
        _cleanup_(json_object_putp) struct json_object *root = NULL;
        _cleanup_(policy_freep) struct policy *p = NULL;
        struct pj c = {.diag = diag, .file = name, .objects = policy_objects};
        struct policy_given g = {};
        int r;

        r = pj_parse(&c, buf, len, &root);
        if (r < 0)
                return r;
        if (!pj_expect_object(&c, root, "{\"cgroup\": \"system.slice/app.service\"}"))
                return -EINVAL;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        policy_set_defaults(p);
        p->path = strdup(name);
        if (!p->path)
                return -ENOMEM;

        load_root(&c, root, p, &g);
        policy_check(&c, p, &g);
        if (c.oom)
                return -ENOMEM;
        if (c.n_problems > 0)
                return -EINVAL;
        *ret = TAKE_PTR(p);
        return 0;
}

int policy_load_file(const char *path, struct diag *diag, struct policy **ret)
{
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r;

        r = pj_read_file(path, diag, &buf, &len);
        if (r < 0)
                return r;
        return policy_load_buffer(path, buf, len, diag, ret);
}

struct policy *policy_free(struct policy *p)
{
        if (!p)
                return NULL;
        free(p->path);
        free(p->service);
        free(p->cgroup);
        free(p->pprof.url);
        free(p->runtime.url);
        for (size_t i = 0; i < p->n_collectors; i++) {
                for (char **a = p->collectors[i].argv; a && *a; a++)
                        free(*a);
                free(p->collectors[i].argv);
        }
        free(p->collectors);
        for (size_t i = 0; i < p->n_webhooks; i++) {
                free(p->webhooks[i].url);
                free(p->webhooks[i].secret_file);
        }
        free(p->webhooks);
        free(p);
        return NULL;
}

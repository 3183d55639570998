/* SPDX-License-Identifier: MIT */
/*
 * probe → decide, from the service's side: its goroutine count and Go heap figures, read
 * from expvar or Prometheus text, polled at a low rate over http.h, and the goroutine
 * conditions they make for decide.
 */
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "memgov/signals.h"

/* ---- expvar ------------------------------------------------------------------------- */

/* A whole number >= 0 at obj[key]; false when absent or anything else. */
static bool json_whole(struct json_object *obj, const char *key, uint64_t *ret)
{
        struct json_object *v;

        if (!json_object_is_type(obj, json_type_object) || !json_object_object_get_ex(obj, key, &v))
                return false;
        if (json_object_is_type(v, json_type_int)) {
                /* json-c keeps large unsigned values apart; negative ones are not counts */
                if (json_object_get_int64(v) < 0)
                        return false;
                *ret = json_object_get_uint64(v);
                return true;
        }
        if (json_object_is_type(v, json_type_double)) {
                double d = json_object_get_double(v);
                if (!isfinite(d) || d < 0 || d != floor(d) || d >= 18446744073709551616.0)
                        return false;
                *ret = (uint64_t)d;
                return true;
        }
        return false;
}

int signals_parse_expvar(const char *buf, size_t len, struct runtime_figures *ret)
{
        struct runtime_figures f = {};
        struct json_object *root, *memstats = NULL;

        if (len > SIGNALS_INPUT_MAX)
                return -EFBIG;
        struct json_tokener *tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, buf, (int)len);
        bool ok = json_tokener_get_error(tok) == json_tokener_success;
        size_t end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        /* what follows the document may only be white space (expvar ends with "\n") */
        while (root && end < len && buf[end] != '\0' && strchr(" \t\r\n", buf[end]))
                end++;
        if (!root || !ok || end != len || !json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                return -EINVAL;
        }

        if (json_whole(root, "goroutines", &f.goroutines))
                f.has |= RUNTIME_HAS_GOROUTINES;
        (void)json_object_object_get_ex(root, "memstats", &memstats);
        if (json_whole(memstats, "HeapInuse", &f.heap_inuse_bytes))
                f.has |= RUNTIME_HAS_HEAP_INUSE;
        if (json_whole(memstats, "HeapAlloc", &f.heap_alloc_bytes))
                f.has |= RUNTIME_HAS_HEAP_ALLOC;
        if (json_whole(memstats, "Sys", &f.sys_bytes))
                f.has |= RUNTIME_HAS_SYS;
        if (json_whole(memstats, "NumGC", &f.num_gc))
                f.has |= RUNTIME_HAS_NUM_GC;
        json_object_put(root);
        if (f.has == 0)
                return -ENODATA;
        *ret = f;
        return 0;
}

/* ---- Prometheus text ---------------------------------------------------------------- */

static const struct {
        const char *name;
        unsigned flag;
        size_t offset;
} prom_names[] = {
        {"go_goroutines", RUNTIME_HAS_GOROUTINES, offsetof(struct runtime_figures, goroutines)},
        {"go_memstats_heap_inuse_bytes", RUNTIME_HAS_HEAP_INUSE,
         offsetof(struct runtime_figures, heap_inuse_bytes)},
        {"go_memstats_heap_alloc_bytes", RUNTIME_HAS_HEAP_ALLOC,
         offsetof(struct runtime_figures, heap_alloc_bytes)},
        {"go_memstats_sys_bytes", RUNTIME_HAS_SYS, offsetof(struct runtime_figures, sys_bytes)},
        {"go_gc_duration_seconds_count", RUNTIME_HAS_NUM_GC,
         offsetof(struct runtime_figures, num_gc)},
};

static bool is_name_char(char c, bool first)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
               (!first && c >= '0' && c <= '9');
}

/* One sample line [p, e): its name and value; false when it is not one. */
static bool prom_line(const char *p, const char *e, const char **ret_name, size_t *ret_len,
                      double *ret_value)
{
        while (p < e && (*p == ' ' || *p == '\t'))
                p++;
        const char *name = p;
        if (p == e || !is_name_char(*p, true))
                return false;
        while (p < e && is_name_char(*p, false))
                p++;
        size_t n = (size_t)(p - name);
        if (p < e && *p == '{') {
                /* labels: quoted values may hold '}', escaped quotes and backslashes */
                bool quoted = false;
                for (p++; p < e && (quoted || *p != '}'); p++) {
                        if (quoted && *p == '\\' && p + 1 < e)
                                p++;
                        else if (*p == '"')
                                quoted = !quoted;
                }
                if (p == e)
                        return false;
                p++;
        }
        if (p == e || (*p != ' ' && *p != '\t'))
                return false;
        while (p < e && (*p == ' ' || *p == '\t'))
                p++;
        char tok[64];
        size_t k = 0;
        while (p < e && *p != ' ' && *p != '\t' && k + 1 < sizeof(tok))
                tok[k++] = *p++;
        if (k == 0 || (p < e && *p != ' ' && *p != '\t'))
                return false;
        tok[k] = '\0';
        char *end;
        double v = strtod(tok, &end);
        if (*end != '\0')
                return false;
        *ret_name = name;
        *ret_len = n;
        *ret_value = v;
        return true;
}

int signals_parse_prometheus(const char *buf, size_t len, struct runtime_figures *ret)
{
        struct runtime_figures f = {};
        const char *p = buf, *end = buf + len;

        if (len > SIGNALS_INPUT_MAX)
                return -EFBIG;
        if (memchr(buf, '\0', len))
                return -EINVAL;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl ? nl : end;
                const char *name;
                size_t n;
                double v;

                if (e > p && e[-1] == '\r')
                        e--;
                if (p < e && *p != '#' && prom_line(p, e, &name, &n, &v))
                        for (size_t i = 0; i < ELEMENTSOF(prom_names); i++) {
                                if (strlen(prom_names[i].name) != n ||
                                    memcmp(prom_names[i].name, name, n) != 0 ||
                                    (f.has & prom_names[i].flag))
                                        continue;
                                /* counts and bytes: finite, >= 0, and within int64 */
                                if (isfinite(v) && v >= 0 && v < 9.2e18) {
                                        *(uint64_t *)((char *)&f + prom_names[i].offset) =
                                                (uint64_t)llround(v);
                                        f.has |= prom_names[i].flag;
                                }
                                break;
                        }
                p = nl ? nl + 1 : end;
        }
        if (f.has == 0)
                return -ENODATA;
        *ret = f;
        return 0;
}

int signals_parse(enum runtime_format fmt, const char *buf, size_t len, struct runtime_figures *ret)
{
        switch (fmt) {
        case RUNTIME_FORMAT_EXPVAR:
                return signals_parse_expvar(buf, len, ret);
        case RUNTIME_FORMAT_PROMETHEUS:
                return signals_parse_prometheus(buf, len, ret);
        default:
                return -EINVAL;
        }
}

/* ---- the condition ------------------------------------------------------------------ */

void signals_init(struct signals_state *st)
{
        *st = (struct signals_state){};
}

void signals_observe(struct signals_state *st, uint64_t now_usec, const struct runtime_figures *f)
{
        if (st->has_last && now_usec < st->last_usec)
                return;
        st->has_last = true;
        st->last_usec = now_usec;
        st->last = *f;
        if (!(f->has & RUNTIME_HAS_GOROUTINES))
                return;
        size_t k;
        if (st->n == SIGNALS_HISTORY) {
                k = st->head;
                st->head = (st->head + 1) % SIGNALS_HISTORY;
        } else
                k = (st->head + st->n++) % SIGNALS_HISTORY;
        st->t_usec[k] = now_usec;
        st->goroutines[k] = f->goroutines;
}

/*
 * Goroutines per minute: the least-squares slope of the counts within the growth window
 * before now. A fit, not the difference of two points: a burst of requests that comes and
 * goes between two polls is not a trend.
 */
static bool growth_per_min(const struct signals_state *st, uint64_t window_usec, uint64_t now_usec,
                           double *ret)
{
        double sx = 0, sy = 0, sxx = 0, sxy = 0;
        uint64_t first = UINT64_MAX, last = 0;
        size_t n = 0;

        for (size_t i = 0; i < st->n; i++) {
                size_t k = (st->head + i) % SIGNALS_HISTORY;
                uint64_t t = st->t_usec[k];
                if (t > now_usec || now_usec - t > window_usec)
                        continue;
                /* seconds before now, so that the sums stay small */
                double x = -(double)(now_usec - t) / 1e6, y = (double)st->goroutines[k];
                sx += x;
                sy += y;
                sxx += x * x;
                sxy += x * y;
                first = MIN(first, t);
                last = MAX(last, t);
                n++;
        }
        if (n < SIGNALS_GROWTH_MIN_POINTS || last - first < window_usec / 2)
                return false;
        double den = (double)n * sxx - sx * sx;
        if (den <= 0)
                return false;
        *ret = ((double)n * sxy - sx * sy) / den * 60.0;
        return true;
}

void signals_evaluate(const struct signals_state *st, const struct policy_runtime *rt,
                      uint64_t now_usec, struct signals_verdict *ret)
{
        struct signals_verdict v = {.level = LEVEL_OK};

        if (!rt->url || !st->has_last || now_usec < st->last_usec ||
            now_usec - st->last_usec > SIGNALS_STALE_INTERVALS * rt->interval_usec) {
                *ret = v;
                return;
        }
        v.fresh = true;
        if (st->last.has & RUNTIME_HAS_GOROUTINES) {
                v.has_goroutines = true;
                v.goroutines = st->last.goroutines;
        }
        v.has_rate = growth_per_min(st, MAX(SIGNALS_GROWTH_WINDOW_USEC, 4 * rt->interval_usec),
                                    now_usec, &v.goroutines_per_min);
        v.over_max =
                rt->goroutines_max > 0 && v.has_goroutines && v.goroutines >= rt->goroutines_max;
        v.over_growth = rt->goroutines_growth_per_min > 0 && v.has_rate &&
                        v.goroutines_per_min >= (double)rt->goroutines_growth_per_min;
        if ((v.over_max || v.over_growth) && rt->level > LEVEL_OK && rt->level < _LEVEL_MAX)
                v.level = rt->level;
        *ret = v;
}

void signals_decide_extra(const struct signals_verdict *v, struct decide_extra *extra)
{
        if (v->level > LEVEL_OK && v->level < _LEVEL_MAX)
                extra->conditions[v->level] |= DECIDE_CONDITION(DECIDE_REASON_GOROUTINES);
}

/* ---- the poller --------------------------------------------------------------------- */

struct signals_poller {
        sd_event *event;
        struct http_client *http;
        sd_event_source *timer;
        struct http_request *req; /* the poll in flight, or NULL */
        char *url;
        enum runtime_format format;
        uint64_t interval_usec, timeout_usec;
        signals_poll_fn cb;
        void *userdata;
        struct signals_state state;
        uint64_t n_ok, n_failed;
};

static void on_done(struct http_request *req, struct http_result *res, void *userdata)
{
        struct signals_poller *p = userdata;
        struct runtime_figures f = {};
        uint64_t now = 0;
        int r;

        (void)req;
        p->req = NULL;
        if (res->error < 0)
                r = res->error;
        else if (res->status != 200)
                r = -EBADMSG;
        else
                r = signals_parse(p->format, res->body ?: "", res->body ? res->body_size : 0, &f);
        if (r >= 0) {
                (void)sd_event_now(p->event, CLOCK_MONOTONIC, &now);
                signals_observe(&p->state, now, &f);
                p->n_ok++;
        } else
                p->n_failed++;
        if (p->cb)
                p->cb(p, r < 0 ? r : 0, r < 0 ? NULL : &f, p->userdata);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct signals_poller *p = userdata;
        const char *accept = p->format == RUNTIME_FORMAT_PROMETHEUS
                                     ? "Accept: text/plain;version=0.0.4"
                                     : "Accept: application/json";
        const char *headers[] = {accept, NULL};

        (void)usec;
        /* a poll still running (as slow as its timeout) is not doubled */
        if (!p->req) {
                int r = http_request_start(p->http,
                                           &(struct http_request_opts){
                                                   .url = p->url,
                                                   .headers = headers,
                                                   .timeout_usec = p->timeout_usec,
                                                   .max_response_bytes = SIGNALS_INPUT_MAX,
                                           },
                                           on_done, p, &p->req);
                if (r < 0) {
                        p->req = NULL;
                        p->n_failed++;
                        if (p->cb)
                                p->cb(p, r, NULL, p->userdata);
                }
        }
        (void)sd_event_source_set_time_relative(s, p->interval_usec);
        (void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

int signals_poller_new(sd_event *event, struct http_client *http, const struct policy_runtime *rt,
                       signals_poll_fn cb, void *userdata, struct signals_poller **ret)
{
        if (!rt->url || rt->interval_usec == 0)
                return -EINVAL;
        struct signals_poller *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        *p = (struct signals_poller){
                .event = sd_event_ref(event),
                .http = http,
                .url = strdup(rt->url),
                .format = rt->format,
                .interval_usec = rt->interval_usec,
                .timeout_usec = rt->timeout_usec,
                .cb = cb,
                .userdata = userdata,
        };
        signals_init(&p->state);
        if (!p->url) {
                signals_poller_free(p);
                return -ENOMEM;
        }
        int r = sd_event_add_time_relative(event, &p->timer, CLOCK_MONOTONIC, rt->interval_usec,
                                           rt->interval_usec / 20, on_timer, p);
        if (r < 0) {
                signals_poller_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

int signals_poller_set_policy(struct signals_poller *p, const struct policy_runtime *rt)
{
        if (!rt->url || rt->interval_usec == 0)
                return -EINVAL;
        if (strcmp(p->url, rt->url) != 0 || p->format != rt->format) {
                char *url = strdup(rt->url);
                if (!url)
                        return -ENOMEM;
                free(p->url);
                p->url = url;
                p->format = rt->format;
                signals_init(&p->state);
                p->req = http_request_cancel(p->req);
        }
        p->timeout_usec = rt->timeout_usec;
        if (p->interval_usec != rt->interval_usec) {
                p->interval_usec = rt->interval_usec;
                (void)sd_event_source_set_time_relative(p->timer, p->interval_usec);
                (void)sd_event_source_set_enabled(p->timer, SD_EVENT_ONESHOT);
        }
        return 0;
}

struct signals_poller *signals_poller_free(struct signals_poller *p)
{
        if (!p)
                return NULL;
        http_request_cancel(p->req);
        sd_event_source_disable_unref(p->timer);
        sd_event_unref(p->event);
        free(p->url);
        free(p);
        return NULL;
}

const struct signals_state *signals_poller_state(const struct signals_poller *p)
{
        return &p->state;
}

uint64_t signals_poller_n_ok(const struct signals_poller *p)
{
        return p->n_ok;
}

uint64_t signals_poller_n_failed(const struct signals_poller *p)
{
        return p->n_failed;
}

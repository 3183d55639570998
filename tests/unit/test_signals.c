/* SPDX-License-Identifier: MIT */
/*
 * Runtime signals: expvar as examples/leaky serves it (a real capture) and Prometheus text
 * as client_golang writes it, hostile input to both, the goroutine conditions (ceiling,
 * fitted growth, stale figures) through decide to a level with reason "goroutines", and the
 * poller against a scripted server on loopback.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "loopback-server.h"
#include "memgov/decide.h"
#include "memgov/forecast.h"
#include "memgov/signals.h"

#define S USEC_PER_SEC

static char *read_fixture(const char *name, size_t *ret_size)
{
        char path[512];
        char *buf = NULL;
        size_t size = 0;

        snprintf(path, sizeof(path), "%s/tests/fixtures/runtime/%s", MEMGOV_SOURCE_DIR, name);
        FILE *f = fopen(path, "re"), *m = open_memstream(&buf, &size);
        assert_non_null(f);
        assert_non_null(m);
        int c;
        while ((c = fgetc(f)) != EOF)
                fputc(c, m);
        fclose(f);
        fclose(m);
        *ret_size = size;
        return buf;
}

/* ---- expvar ------------------------------------------------------------------------- */

static void test_signals_parse_expvar_leaky(void **state _unused_)
{
        size_t size;
        _cleanup_free_ char *buf = read_fixture("leaky-goroutine-debug-vars.json", &size);
        struct runtime_figures f;

        assert_int_equal(signals_parse_expvar(buf, size, &f), 0);
        assert_int_equal(f.has, RUNTIME_HAS_GOROUTINES | RUNTIME_HAS_HEAP_INUSE |
                                        RUNTIME_HAS_HEAP_ALLOC | RUNTIME_HAS_SYS |
                                        RUNTIME_HAS_NUM_GC);
        assert_int_equal(f.goroutines, 174);
        assert_int_equal(f.heap_inuse_bytes, 12918784);
        assert_int_equal(f.heap_alloc_bytes, 12280992);
        assert_int_equal(f.sys_bytes, 27374856);
        assert_int_equal(f.num_gc, 2);
        assert_int_equal(signals_parse(RUNTIME_FORMAT_EXPVAR, buf, size, &f), 0);
}

static void test_signals_parse_expvar_hostile(void **state _unused_)
{
        static const struct {
                const char *in;
                int r;
                unsigned has;
        } cases[] = {
                {"", -EINVAL, 0},
                {"not json", -EINVAL, 0},
                {"[1, 2]", -EINVAL, 0},
                {"{\"goroutines\": 5} x", -EINVAL, 0},
                {"{\"goroutines\": 5", -EINVAL, 0},
                {"{}", -ENODATA, 0},
                {"{\"memstats\": \"HeapInuse\"}", -ENODATA, 0},
                {"{\"memstats\": {\"HeapInuse\": \"12\"}, \"goroutines\": -3}", -ENODATA, 0},
                {"{\"goroutines\": 12.5, \"memstats\": {\"Sys\": 1e3}}", 0, RUNTIME_HAS_SYS},
                {"{\"goroutines\": 7}\n", 0, RUNTIME_HAS_GOROUTINES},
                {"{\"goroutines\": 18446744073709551615}", 0, RUNTIME_HAS_GOROUTINES},
                {"{\"memstats\": {\"NumGC\": null, \"HeapAlloc\": true}}", -ENODATA, 0},
        };
        struct runtime_figures f;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int r = signals_parse_expvar(cases[i].in, strlen(cases[i].in), &f);
                if (r != cases[i].r)
                        fail_msg("%s: %d, expected %d", cases[i].in, r, cases[i].r);
                if (r == 0)
                        assert_int_equal(f.has, cases[i].has);
        }
        /* a NUL inside, deep nesting, too much */
        assert_int_equal(signals_parse_expvar("{\"goroutines\": 1}\0", 18, &f), -EINVAL);
        char deep[4001];
        for (size_t i = 0; i < 2000; i++) {
                deep[i] = '[';
                deep[2000 + i] = ']';
        }
        deep[4000] = '\0';
        assert_int_equal(signals_parse_expvar(deep, 4000, &f), -EINVAL);
        assert_int_equal(signals_parse_expvar("{}", SIGNALS_INPUT_MAX + 1, &f), -EFBIG);
}

/* ---- Prometheus --------------------------------------------------------------------- */

static void test_signals_parse_prometheus_client_golang(void **state _unused_)
{
        size_t size;
        _cleanup_free_ char *buf = read_fixture("go-client-metrics.txt", &size);
        struct runtime_figures f;

        assert_int_equal(signals_parse_prometheus(buf, size, &f), 0);
        assert_int_equal(f.has, RUNTIME_HAS_GOROUTINES | RUNTIME_HAS_HEAP_INUSE |
                                        RUNTIME_HAS_HEAP_ALLOC | RUNTIME_HAS_SYS |
                                        RUNTIME_HAS_NUM_GC);
        assert_int_equal(f.goroutines, 1234);
        assert_int_equal(f.heap_inuse_bytes, 46948352);
        assert_int_equal(f.heap_alloc_bytes, 45318936);
        assert_int_equal(f.sys_bytes, 63652872);
        assert_int_equal(f.num_gc, 57); /* the summary's _count, not a quantile */
        assert_int_equal(signals_parse(RUNTIME_FORMAT_PROMETHEUS, buf, size, &f), 0);
}

static void test_signals_parse_prometheus_hostile(void **state _unused_)
{
        static const struct {
                const char *in;
                int r;
                uint64_t goroutines; /* when r == 0 */
        } cases[] = {
                {"", -ENODATA, 0},
                {"# go_goroutines 5\n", -ENODATA, 0},
                {"go_goroutines_total 5\ngo_goroutine 6\n", -ENODATA, 0},
                {"go_goroutines\n", -ENODATA, 0},
                {"go_goroutines NaN\ngo_goroutines +Inf\ngo_goroutines -4\n", -ENODATA, 0},
                {"go_goroutines 12abc\n", -ENODATA, 0},
                {"go_goroutines{a=\"}\\\"\"} 41 1700000000000\r\n", 0, 41},
                {"go_goroutines{a=\"x\"\n", -ENODATA, 0},
                {"  go_goroutines 3\ngo_goroutines 4\n", 0, 3},
                {"go_goroutines 2.6e2", 0, 260},
                {"go_goroutines 1e300\n", -ENODATA, 0},
                {"go_goroutines 9.1e18\n", 0, UINT64_C(9100000000000000000)},
                {"\xff\xfe go_goroutines 5\ngo_goroutines\t7\n", 0, 7},
                {"go_goroutines 123456789012345678901234567890123456789012345678901234567890123\n",
                 -ENODATA, 0},
        };
        struct runtime_figures f;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int r = signals_parse_prometheus(cases[i].in, strlen(cases[i].in), &f);
                if (r != cases[i].r)
                        fail_msg("%s: %d, expected %d", cases[i].in, r, cases[i].r);
                if (r == 0)
                        assert_int_equal(f.goroutines, cases[i].goroutines);
        }
        assert_int_equal(signals_parse_prometheus("go_goroutines 1\n\0", 17, &f), -EINVAL);
        assert_int_equal(signals_parse_prometheus("", SIGNALS_INPUT_MAX + 1, &f), -EFBIG);
        assert_int_equal(signals_parse(_RUNTIME_FORMAT_MAX, "", 0, &f), -EINVAL);
}

/* ---- the condition ------------------------------------------------------------------ */

static const struct policy_runtime runtime_policy = {
        .url = (char *)"http://127.0.0.1:6060/debug/vars",
        .interval_usec = 10 * S,
        .timeout_usec = 2 * S,
        .goroutines_max = 10000,
        .goroutines_growth_per_min = 500,
        .level = LEVEL_DEGRADE,
};

static void observe(struct signals_state *st, uint64_t t_usec, uint64_t goroutines)
{
        struct runtime_figures f = {.has = RUNTIME_HAS_GOROUTINES | RUNTIME_HAS_HEAP_INUSE,
                                    .goroutines = goroutines,
                                    .heap_inuse_bytes = 1 << 20};
        signals_observe(st, t_usec, &f);
}

static void test_signals_growth_needs_a_minute_of_rise(void **state _unused_)
{
        struct signals_state st;
        struct signals_verdict v;

        signals_init(&st);
        signals_evaluate(&st, &runtime_policy, 100 * S, &v);
        assert_false(v.fresh);
        assert_int_equal(v.level, LEVEL_OK);

        /* 20 goroutines a second = 1200 a minute, polled every 10 s from t = 100 s */
        for (uint64_t t = 100; t <= 150; t += 10) {
                observe(&st, t * S, 50 + (t - 100) * 20);
                signals_evaluate(&st, &runtime_policy, t * S, &v);
                assert_true(v.fresh);
                /* less than half the 2-minute window seen: no rate yet */
                assert_false(v.has_rate);
                assert_int_equal(v.level, LEVEL_OK);
        }
        observe(&st, 160 * S, 50 + 60 * 20);
        signals_evaluate(&st, &runtime_policy, 160 * S, &v);
        assert_true(v.has_rate);
        assert_true(v.goroutines_per_min > 1199 && v.goroutines_per_min < 1201);
        assert_true(v.over_growth);
        assert_false(v.over_max);
        assert_int_equal(v.level, LEVEL_DEGRADE);
        assert_int_equal(v.goroutines, 1250);

        /* the leak stops: the fit over the last 2 minutes flattens below 500/min */
        uint64_t t = 160;
        do {
                t += 10;
                observe(&st, t * S, 1250);
                signals_evaluate(&st, &runtime_policy, t * S, &v);
        } while (v.over_growth && t < 400);
        assert_true(t < 300);
        assert_int_equal(v.level, LEVEL_OK);

        /* the service stops answering: after 3 intervals its figures count for nothing */
        signals_evaluate(&st, &runtime_policy, (t + 30) * S, &v);
        assert_true(v.fresh);
        signals_evaluate(&st, &runtime_policy, (t + 31) * S, &v);
        assert_false(v.fresh);
        assert_false(v.has_goroutines);
}

static void test_signals_ceiling_burst_and_no_policy(void **state _unused_)
{
        struct signals_state st;
        struct signals_verdict v;

        signals_init(&st);
        /* a burst of requests that comes and goes is no growth; a ceiling is a ceiling */
        static const uint64_t counts[] = {100, 100, 3000, 100, 100, 100, 100, 100, 100, 100};
        for (size_t i = 0; i < ELEMENTSOF(counts); i++) {
                observe(&st, (uint64_t)i * 10 * S, counts[i]);
                signals_evaluate(&st, &runtime_policy, (uint64_t)i * 10 * S, &v);
                assert_false(v.over_growth);
        }
        observe(&st, 100 * S, 10000);
        signals_evaluate(&st, &runtime_policy, 100 * S, &v);
        assert_true(v.over_max);
        assert_int_equal(v.level, LEVEL_DEGRADE);

        /* an older observation is ignored */
        observe(&st, 50 * S, 5);
        assert_int_equal(st.last.goroutines, 10000);

        /* figures without a goroutine count: the heap is known, no condition */
        struct runtime_figures heap_only = {.has = RUNTIME_HAS_HEAP_INUSE, .heap_inuse_bytes = 1};
        signals_observe(&st, 110 * S, &heap_only);
        signals_evaluate(&st, &runtime_policy, 110 * S, &v);
        assert_true(v.fresh);
        assert_false(v.has_goroutines);
        assert_false(v.over_max);

        /* a policy without runtime.url never makes a level */
        struct policy_runtime none = runtime_policy;
        none.url = NULL;
        observe(&st, 120 * S, 50000);
        signals_evaluate(&st, &none, 120 * S, &v);
        assert_int_equal(v.level, LEVEL_OK);

        /* a full history keeps the newest */
        signals_init(&st);
        for (uint64_t i = 0; i < SIGNALS_HISTORY + 10; i++)
                observe(&st, i * S, i);
        assert_int_equal(st.n, SIGNALS_HISTORY);
        assert_int_equal(st.goroutines[st.head], 10);
}

/* The condition through decide: a level the forecast alone would never reach. */
static void test_signals_decide_enters_and_leaves(void **state _unused_)
{
        struct policy p = {
                .hold_usec = 30 * S,
                .levels = {[LEVEL_WARN] = {.usage_permille = 800},
                           [LEVEL_DEGRADE] = {.usage_permille = 900},
                           [LEVEL_CRITICAL] = {.usage_permille = 970}},
                .runtime = runtime_policy,
        };
        struct decide_state ds;
        struct signals_state st;
        struct decision d;
        enum level seen = LEVEL_OK;
        enum decide_reason entered_by = DECIDE_REASON_NONE, left_by = DECIDE_REASON_NONE;

        decide_init(&ds);
        signals_init(&st);
        for (uint64_t t = 0; t <= 600; t += 10) {
                /* goroutines leak at 15/s for 3 minutes, then stay; usage stays at 40% */
                observe(&st, t * S, 100 + MIN(t, (uint64_t)180) * 15);
                struct signals_verdict v;
                struct decide_extra extra = {};
                signals_evaluate(&st, &p.runtime, t * S, &v);
                signals_decide_extra(&v, &extra);
                struct forecast f = {.t_usec = t * S,
                                     .limit_bytes = 1 << 30,
                                     .usage_permille = 400,
                                     .eta_usec = USEC_INFINITY,
                                     .eta_lower_usec = USEC_INFINITY,
                                     .eta_upper_usec = USEC_INFINITY};
                decide_update_extra(&ds, &p, &f, &extra, &d);
                if (d.changed && d.level > seen) {
                        entered_by = d.reason;
                        assert_int_equal(d.level, LEVEL_DEGRADE);
                }
                if (d.changed && d.level < seen)
                        left_by = d.reason;
                seen = d.level;
        }
        assert_int_equal(entered_by, DECIDE_REASON_GOROUTINES);
        assert_string_equal(decide_reason_to_string(entered_by), "goroutines");
        assert_int_equal(left_by, DECIDE_REASON_HOLD_EXPIRED);
        assert_int_equal(seen, LEVEL_OK);

        /* no extra: exactly decide_update() */
        struct signals_verdict quiet = {.level = LEVEL_OK};
        struct decide_extra none = {};
        signals_decide_extra(&quiet, &none);
        for (int l = 0; l < _LEVEL_MAX; l++)
                assert_int_equal(none.conditions[l], 0);
}

/* ---- the poller --------------------------------------------------------------------- */

struct poll_log {
        int n;
        int errors[8];
        uint64_t goroutines[8];
};

static void on_poll(struct signals_poller *p _unused_, int error, const struct runtime_figures *f,
                    void *userdata)
{
        struct poll_log *log = userdata;

        if (log->n < 8) {
                log->errors[log->n] = error;
                log->goroutines[log->n] = f ? f->goroutines : 0;
        }
        log->n++;
}

static void test_signals_poller_against_loopback(void **state _unused_)
{
        size_t size;
        _cleanup_free_ char *vars = read_fixture("leaky-goroutine-debug-vars.json", &size);
        const struct ls_response script[] = {
                {.status = 200, .headers = "Content-Type: application/json\r\n", .body = vars},
                {.status = 503, .body = "busy"},
                {.status = 200, .body = "<html>not expvar</html>"},
        };
        struct ls_server s;
        sd_event *e = NULL;
        struct http_client *http = NULL;
        struct signals_poller *p = NULL;
        struct poll_log log = {};
        char url[128], accept[128];

        assert_int_equal(ls_start(&s, script, ELEMENTSOF(script)), 0);
        snprintf(url, sizeof(url), "%s/debug/vars", s.url);
        struct policy_runtime rt = runtime_policy;
        rt.url = url;
        rt.interval_usec = 1 * S;
        rt.timeout_usec = 1 * S;

        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(http_client_new(e, &http), 0);
        assert_int_equal(signals_poller_new(e, http, &rt, on_poll, &log, &p), 0);
        uint64_t deadline = ls_now_ms() + 15000;
        while (log.n < 3 && ls_now_ms() < deadline)
                assert_true(sd_event_run(e, 100 * USEC_PER_MSEC) >= 0);
        assert_int_equal(log.n, 3);

        assert_int_equal(log.errors[0], 0);
        assert_int_equal(log.goroutines[0], 174);
        assert_int_equal(log.errors[1], -EBADMSG);
        assert_int_equal(log.errors[2], -EINVAL);
        assert_int_equal(signals_poller_n_ok(p), 1);
        assert_int_equal(signals_poller_n_failed(p), 2);
        assert_true(signals_poller_state(p)->has_last);
        assert_int_equal(signals_poller_state(p)->last.heap_inuse_bytes, 12918784);

        assert_string_equal(s.requests[0].path, "/debug/vars");
        assert_non_null(ls_header(&s.requests[0], "Accept", accept, sizeof(accept)));
        assert_string_equal(accept, "application/json");

        /* another URL forgets what the old one said */
        char other[160];
        snprintf(other, sizeof(other), "%s/metrics", s.url);
        rt.url = other;
        rt.format = RUNTIME_FORMAT_PROMETHEUS;
        assert_int_equal(signals_poller_set_policy(p, &rt), 0);
        assert_false(signals_poller_state(p)->has_last);
        rt.url = NULL;
        assert_int_equal(signals_poller_set_policy(p, &rt), -EINVAL);

        signals_poller_free(p);
        http_client_free(http);
        sd_event_unref(e);
        ls_stop(&s);
        ls_free(&s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_signals_parse_expvar_leaky),
                cmocka_unit_test(test_signals_parse_expvar_hostile),
                cmocka_unit_test(test_signals_parse_prometheus_client_golang),
                cmocka_unit_test(test_signals_parse_prometheus_hostile),
                cmocka_unit_test(test_signals_growth_needs_a_minute_of_rise),
                cmocka_unit_test(test_signals_ceiling_burst_and_no_policy),
                cmocka_unit_test(test_signals_decide_enters_and_leaves),
                cmocka_unit_test(test_signals_poller_against_loopback),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

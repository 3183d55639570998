/* SPDX-License-Identifier: MIT */
/*
 * Runtime signals under fuzzing: what a service's expvar /debug/vars or Prometheus /metrics
 * page answers (signals_parse_expvar(), signals_parse_prometheus()), read from the exact
 * bytes received (no terminating NUL), and the figures fed to the goroutine condition.
 * The service is outside our control: no page may make a parser read past its buffer,
 * report a figure it did not find, or fill *ret on an error.
 */
#include <errno.h>
#include <math.h>

#include "fuzz.h"
#include "memgov/macro.h"
#include "memgov/signals.h"

#define ALL_FIGURES                                                                                \
        (RUNTIME_HAS_GOROUTINES | RUNTIME_HAS_HEAP_INUSE | RUNTIME_HAS_HEAP_ALLOC |                \
         RUNTIME_HAS_SYS | RUNTIME_HAS_NUM_GC)

/* Parse the page as fmt; 0 with *ret, or -errno with *ret untouched. */
static int check_parse(enum runtime_format fmt, const uint8_t *data, size_t size,
                       struct runtime_figures *ret)
{
        struct runtime_figures before;
        int r;

        memset(ret, 0x5a, sizeof(*ret));
        before = *ret;
        r = signals_parse(fmt, (const char *)data, size, ret);
        fuzz_check(r == 0 || r == -EINVAL || r == -ENODATA || r == -EFBIG || r == -ENOMEM);
        if (r < 0) {
                fuzz_check(memcmp(ret, &before, sizeof(*ret)) == 0);
                return r;
        }
        fuzz_check(ret->has != 0 && (ret->has & ~ALL_FIGURES) == 0);
        if (fmt == RUNTIME_FORMAT_PROMETHEUS) {
                /* a Prometheus value is at most 9.2e18, rounded */
                const uint64_t v[] = {ret->goroutines, ret->heap_inuse_bytes, ret->heap_alloc_bytes,
                                      ret->sys_bytes, ret->num_gc};
                for (size_t i = 0; i < ELEMENTSOF(v); i++)
                        fuzz_check(!(ret->has & (1u << i)) ||
                                   v[i] <= UINT64_C(9200000000000000000));
        }
        return 0;
}

/*
 * The figures polled every 10 s as many times as the page's size says, the goroutine count
 * growing by itself each time (wrapping), then the condition: whatever the counts, the
 * verdict must be one the policy allows.
 */
static void check_condition(const struct runtime_figures *f, size_t polls)
{
        const struct policy_runtime rt = {
                .url = (char *)"http://127.0.0.1:1/debug/vars",
                .interval_usec = 10 * USEC_PER_SEC,
                .goroutines_max = 1000,
                .goroutines_growth_per_min = 10,
                .level = LEVEL_CRITICAL,
        };
        struct runtime_figures g = *f;
        struct signals_state st;
        struct signals_verdict v;
        uint64_t now = 1000 * USEC_PER_SEC;

        signals_init(&st);
        for (size_t i = 0; i < polls; i++, now += rt.interval_usec) {
                signals_observe(&st, now, &g);
                fuzz_check(st.n <= SIGNALS_HISTORY && st.head < SIGNALS_HISTORY);
                g.goroutines += f->goroutines;
        }
        signals_evaluate(&st, &rt, now - rt.interval_usec, &v);
        fuzz_check(v.fresh);
        fuzz_check(v.has_goroutines == !!(f->has & RUNTIME_HAS_GOROUTINES));
        fuzz_check(v.level == LEVEL_OK || v.level == rt.level);
        fuzz_check((v.level != LEVEL_OK) == (v.over_max || v.over_growth));
        fuzz_check(!v.has_rate || !isnan(v.goroutines_per_min));
        if (v.has_rate)
                fuzz_check(polls >= SIGNALS_GROWTH_MIN_POINTS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct runtime_figures f;
        size_t polls = 1 + size % 16; /* the fit needs a minute of them: 7 */

        if (check_parse(RUNTIME_FORMAT_EXPVAR, data, size, &f) == 0)
                check_condition(&f, polls);
        if (check_parse(RUNTIME_FORMAT_PROMETHEUS, data, size, &f) == 0)
                check_condition(&f, polls);
        return 0;
}

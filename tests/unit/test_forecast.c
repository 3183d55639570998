/* SPDX-License-Identifier: MIT */
/* Unit tests for governor/forecast.c: small hand-made series with a known answer. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "memgov/decide.h"
#include "memgov/forecast.h"

#define MIB   (1024.0 * 1024.0)
#define LIMIT ((uint64_t)(1024 * MIB))

/* The policy fields the forecast reads: 5 min window, 1 s samples, 30 min horizon. */
static struct policy test_policy(void)
{
        return (struct policy){
                .sample_interval_usec = USEC_PER_SEC,
                .forecast_window_usec = 5 * USEC_PER_MINUTE,
                .forecast_horizon_usec = 30 * USEC_PER_MINUTE,
                .hold_usec = 60 * USEC_PER_SEC,
        };
}

/* Deterministic jitter in [-1, 1): the tests must not depend on a random seed. */
static double jitter(uint64_t *state)
{
        *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
        return (double)(*state >> 11) / 4503599627370496.0 - 1.0;
}

static struct sample make_sample(double t_s, double current_share)
{
        return (struct sample){
                .t_usec = (uint64_t)(t_s * 1e6) + 1000 * USEC_PER_SEC,
                .current_bytes = (uint64_t)(current_share * (double)LIMIT),
                .max_bytes = LIMIT,
                .high_bytes = CGROUP_LIMIT_MAX,
                .limit_bytes = LIMIT,
        };
}

static double eta_s(uint64_t usec)
{
        return usec == USEC_INFINITY ? INFINITY : (double)usec / 1e6;
}

/*
 * A clean linear leak: 30% of the limit, then +0.1%/s with 0.2% jitter. 10 minutes into
 * the leak the level is at 90%, the true ETA is 100 s: the point estimate must be within
 * 15% of it and the band must contain it.
 */
static void test_forecast_linear_leak_eta(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct forecast_state st;
        struct forecast f = {};
        uint64_t rng = 1;

        forecast_init(&st, &p);
        for (int t = 0; t <= 900; t++) {
                double share = 0.30 + (t > 300 ? 0.001 * (t - 300) : 0) + 0.002 * jitter(&rng);
                struct sample s = make_sample(t, share);
                forecast_update(&st, &s, &f);
        }
        /* at t = 900: 90%, growing 0.1%/s: 100 s to go */
        assert_true(f.known);
        assert_in_range((uint64_t)eta_s(f.eta_usec), 85, 115);
        assert_true(eta_s(f.eta_lower_usec) <= 100 && eta_s(f.eta_upper_usec) >= 100);
        assert_true(f.slope_bytes_per_s > 0.0009 * (double)LIMIT &&
                    f.slope_bytes_per_s < 0.0011 * (double)LIMIT);
        assert_in_range(f.usage_permille, 890, 910);
}

/*
 * A Go-like sawtooth that does not grow: 40% of live heap, collected every 20 s after
 * growing to 65%, with jitter. Half an hour of it gives no ETA at all.
 */
static void test_forecast_steady_sawtooth_no_eta(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct forecast_state st;
        struct forecast f;
        uint64_t rng = 2;
        bool saw_cycle = false;

        forecast_init(&st, &p);
        for (int t = 0; t <= 1800; t++) {
                double phase = fmod(t, 20.0) / 20.0;
                double share = 0.40 + 0.25 * phase + 0.005 * jitter(&rng);
                struct sample s = make_sample(t, share);
                forecast_update(&st, &s, &f);
                assert_true(f.eta_lower_usec == USEC_INFINITY);
                saw_cycle = saw_cycle || (f.flags & FORECAST_SAWTOOTH);
        }
        /* the envelope follows the peaks, not the wave */
        assert_true(saw_cycle);
        assert_int_equal(f.cycle_usec / USEC_PER_SEC, 20);
        assert_true(f.envelope_bytes > (uint64_t)(0.62 * (double)LIMIT));
}

/*
 * Page cache filling the limit over ten minutes while anon stays at 30%: current reaches the
 * limit and stays there (the kernel reclaims the cache), nothing can be OOM-killed. The level
 * grows while the cache fills (a quarter of it is held back as possibly unreclaimable), but
 * that growth ends where current meets the limit: no ETA at all, and none short enough even
 * for a warning (10 min) as a lower bound; the level stays far below the limit.
 */
static void test_forecast_page_cache_fill_no_warning(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct forecast_state st;
        struct forecast f;
        uint64_t rng = 3;

        bool growth_seen = false;

        forecast_init(&st, &p);
        for (int t = 0; t <= 1800; t++) {
                double anon = 0.30 + 0.003 * jitter(&rng), kernel = 0.02;
                double file = MIN(0.02 + (t > 300 ? 0.001 * (t - 300) : 0), 0.995 - anon - kernel);
                struct sample s = make_sample(t, anon + kernel + file);
                s.anon_bytes = (uint64_t)(anon * (double)LIMIT);
                s.file_bytes = (uint64_t)(file * (double)LIMIT);
                s.has |= SAMPLE_HAS_ANON | SAMPLE_HAS_FILE;
                forecast_update(&st, &s, &f);
                assert_true(eta_s(f.eta_lower_usec) > 600);
                /* the level grows while the cache fills, yet that growth has no end in OOM */
                growth_seen = growth_seen || (f.known && f.slope_bytes_per_s > 0.0002 * LIMIT);
                assert_true(f.eta_usec == USEC_INFINITY);
        }
        assert_true(growth_seen);
        assert_true(f.current_bytes > (uint64_t)(0.99 * (double)LIMIT));
        assert_in_range(f.usage_permille, 450, 550);
        assert_true(f.reclaimable_bytes > (uint64_t)(0.4 * (double)LIMIT));
}

/*
 * A leak (anon +0.05%/s) while page cache fills at 0.1%/s: the level grows by the leak plus
 * the quarter of the cache held back, but the cache stops growing once current meets the
 * limit (about 50 s from t = 700), and only the leak goes on. At t = 700 the truth is 660 s
 * (anon reaching the limit); a straight line through the level says ~360 s; the forecast
 * must follow the squeeze: between 450 s (the held-back quarter is pessimistic) and the truth.
 */
static void test_forecast_leak_with_page_cache_eta(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct forecast_state st;
        struct forecast f;

        forecast_init(&st, &p);
        for (int t = 0; t <= 700; t++) {
                double kernel = 0.02, anon = 0.30 + 0.0005 * t;
                double file = MIN(0.05 + (t > 500 ? 0.001 * (t - 500) : 0), 0.995 - anon - kernel);
                struct sample s = make_sample(t, anon + kernel + file);
                s.anon_bytes = (uint64_t)(anon * (double)LIMIT);
                s.file_bytes = (uint64_t)(file * (double)LIMIT);
                s.has |= SAMPLE_HAS_ANON | SAMPLE_HAS_FILE;
                forecast_update(&st, &s, &f);
        }
        assert_in_range((uint64_t)eta_s(f.eta_usec), 450, 700);
}

/*
 * A burst: from 40%, +10% in 20 s, held 20 s, back down. Extrapolated, its rise would meet
 * the limit in under two minutes, but a rise seen for 20 s does not stand for a forecast
 * five times as long: no ETA short enough for degrade (3 min), before, during or after.
 */
static void test_forecast_short_burst_no_degrade(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct forecast_state st;
        struct forecast f;
        uint64_t rng = 7;

        forecast_init(&st, &p);
        for (int t = 0; t <= 1200; t++) {
                double x = t - 600, burst = 0;
                if (x >= 0 && x < 20)
                        burst = 0.005 * x;
                else if (x >= 20 && x < 40)
                        burst = 0.10;
                else if (x >= 40)
                        burst = 0.10 * exp(-(x - 40) / 20);
                struct sample s = make_sample(t, 0.40 + burst + 0.002 * jitter(&rng));
                forecast_update(&st, &s, &f);
                assert_true(eta_s(f.eta_lower_usec) > 180);
        }
}

/*
 * A step from 30% to 60% (a cache warmed at once), then flat: the fit restarts at the step,
 * no ETA short enough for degrade (3 min) ever, and none at all two minutes later.
 */
static void test_forecast_step_then_flat(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct forecast_state st;
        struct forecast f;
        uint64_t rng = 4;
        bool restarted = false;

        forecast_init(&st, &p);
        for (int t = 0; t <= 1200; t++) {
                double share = (t < 600 ? 0.30 : 0.60) + 0.003 * jitter(&rng);
                struct sample s = make_sample(t, share);
                forecast_update(&st, &s, &f);
                assert_true(eta_s(f.eta_lower_usec) > 180);
                restarted = restarted || (f.flags & FORECAST_RESTARTED);
                if (t >= 720)
                        assert_true(f.eta_usec == USEC_INFINITY);
        }
        assert_true(restarted);
}

/*
 * A leak held at memory.high (80%): usage flattens just above high while memory.events high
 * climbs and tasks stall (PSI some ~40%). The growth did not stop, the kernel holds it back:
 * the lower bound keeps a finite ETA from the slope before the throttling, for as long as
 * it lasts.
 */
static void test_forecast_throttled_keeps_lower_bound(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct forecast_state st;
        struct forecast f;
        uint64_t rng = 5, high_events = 0, some_usec = 0;
        double high = 0.80, usage = 0.40;

        forecast_init(&st, &p);
        for (int t = 0; t <= 1500; t++) {
                /* demand grows 0.05%/s; above high only a tenth of that gets through */
                double step = 0.0005;
                if (usage + step > high)
                        step *= 0.1;
                usage += step;
                bool over = usage > high;
                high_events += over ? 80 : 0;
                some_usec += over ? 400000 : 0;

                struct sample s = make_sample(t, usage + 0.002 * jitter(&rng));
                s.high_bytes = (uint64_t)(high * (double)LIMIT);
                s.events.high = high_events;
                s.pressure.some.total_usec = some_usec;
                s.has |= SAMPLE_HAS_HIGH | SAMPLE_HAS_EVENTS | SAMPLE_HAS_PSI_SOME;
                forecast_update(&st, &s, &f);
                if (t >= 900) {
                        /* 800 s before the throttling, 600 s into it */
                        assert_true(f.flags & FORECAST_THROTTLED);
                        assert_true(f.eta_lower_usec != USEC_INFINITY);
                        /* the pre-throttle slope: ~19% to go at ~0.05%/s, about 400 s */
                        assert_true(eta_s(f.eta_lower_usec) < 600);
                }
        }
        assert_true(f.psi_source == FORECAST_PSI_TOTALS);
        assert_true(f.psi_some_avg10_pct > 35 && f.psi_some_avg10_pct < 45);
        assert_true(f.high_events_per_s > 70 && f.high_events_per_s < 90);
}

/* No limit known: figures, but no ETA and no usage share. */
static void test_forecast_no_limit_no_eta(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct forecast_state st;
        struct forecast f;

        forecast_init(&st, &p);
        for (int t = 0; t <= 900; t++) {
                struct sample s = make_sample(t, 0.2 + 0.001 * t);
                s.max_bytes = s.limit_bytes = CGROUP_LIMIT_MAX;
                forecast_update(&st, &s, &f);
                assert_true(f.eta_usec == USEC_INFINITY && f.eta_lower_usec == USEC_INFINITY);
        }
        assert_true(f.flags & FORECAST_NO_LIMIT);
        assert_int_equal(f.usage_permille, 0);
        assert_true(f.slope_bytes_per_s > 0);
}

/* PSI: the kernel's avg10 when the sample carries it, else derived from the totals. */
static void test_forecast_psi_sources(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct forecast_state st;
        struct forecast f;

        forecast_init(&st, &p);
        for (int t = 0; t <= 120; t++) {
                struct sample s = make_sample(t, 0.5);
                /* stalled 25% of the time, some; 10% full */
                s.pressure.some.total_usec = (uint64_t)t * 250000;
                s.pressure.full.total_usec = (uint64_t)t * 100000;
                s.pressure.has_full = true;
                s.has |= SAMPLE_HAS_PSI_SOME | SAMPLE_HAS_PSI_FULL;
                forecast_update(&st, &s, &f);
        }
        assert_int_equal(f.psi_source, FORECAST_PSI_TOTALS);
        assert_true(fabs(f.psi_some_avg10_pct - 25) < 0.1);
        assert_true(fabs(f.psi_full_avg10_pct - 10) < 0.1);
        assert_string_equal(forecast_psi_source_to_string(f.psi_source), "totals");

        struct sample s = make_sample(121, 0.5);
        s.pressure.some.avg10_pct = 12.5;
        s.pressure.full.avg10_pct = 3.25;
        s.pressure.has_full = true;
        s.has |= SAMPLE_HAS_PSI_AVG;
        forecast_update(&st, &s, &f);
        assert_int_equal(f.psi_source, FORECAST_PSI_KERNEL);
        assert_true(f.psi_some_avg10_pct == 12.5 && f.psi_full_avg10_pct == 3.25);

        forecast_init(&st, &p);
        s = make_sample(0, 0.5);
        forecast_update(&st, &s, &f);
        assert_int_equal(f.psi_source, FORECAST_PSI_NONE);
}

/* memory.events: rates per second, oom_kill increases as they happen, counter resets. */
static void test_forecast_events(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct forecast_state st;
        struct forecast f;

        forecast_init(&st, &p);
        for (int t = 0; t <= 120; t++) {
                struct sample s = make_sample(t, 0.5);
                s.events.max = (uint64_t)t * 4;
                s.events.oom_kill = t >= 100 ? 1 : 0;
                s.has |= SAMPLE_HAS_EVENTS;
                forecast_update(&st, &s, &f);
                if (t == 100)
                        assert_int_equal(f.oom_kills, 1);
                else
                        assert_int_equal(f.oom_kills, 0);
        }
        assert_true(fabs(f.max_events_per_s - 4) < 0.05);
        assert_true(f.high_events_per_s == 0);

        /* a re-created cgroup starts its counters again: no increase, no kill */
        struct sample s = make_sample(121, 0.5);
        s.has |= SAMPLE_HAS_EVENTS;
        forecast_update(&st, &s, &f);
        assert_int_equal(f.oom_kills, 0);
        assert_true(f.max_events_per_s < 4);
}

/* Reclaimable page cache: 3/4 of `file` from a trace; inactive + active/2 − dirty from stat. */
static void test_forecast_reclaimable(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct forecast_state st;
        struct forecast f;

        forecast_init(&st, &p);
        struct sample s = make_sample(0, 0.6);
        s.anon_bytes = (uint64_t)(0.2 * (double)LIMIT);
        s.file_bytes = (uint64_t)(0.4 * (double)LIMIT);
        s.has |= SAMPLE_HAS_ANON | SAMPLE_HAS_FILE;
        forecast_update(&st, &s, &f);
        assert_int_equal(f.reclaimable_bytes, s.file_bytes / 4 * 3);
        assert_int_equal(f.level_bytes, s.current_bytes - f.reclaimable_bytes);

        s.has |= SAMPLE_HAS_STAT;
        s.stat.file = s.file_bytes;
        s.stat.inactive_file = 100 * (uint64_t)MIB;
        s.stat.active_file = 200 * (uint64_t)MIB;
        s.stat.file_dirty = 10 * (uint64_t)MIB;
        s.t_usec += USEC_PER_SEC;
        forecast_update(&st, &s, &f);
        assert_int_equal(f.reclaimable_bytes, 190 * (uint64_t)MIB);
}

/*
 * The state is a fixed-size plain struct whatever the window: no heap, copyable. A copy fed
 * the same samples gives the same forecasts.
 */
static void test_forecast_state_fixed_size(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct forecast_state a, b;
        struct forecast fa, fb;
        uint64_t rng = 6;

        assert_true(sizeof(struct forecast_state) < 8192);
        p.forecast_window_usec = 24 * USEC_PER_HOUR;
        forecast_init(&a, &p);
        for (int t = 0; t < 5000; t++) {
                struct sample s = make_sample(t * 30.0, 0.3 + 0.00001 * t + 0.01 * jitter(&rng));
                forecast_update(&a, &s, &fa);
                if (t == 2500)
                        b = a;
                if (t > 2500) {
                        forecast_update(&b, &s, &fb);
                        assert_memory_equal(&fa, &fb, sizeof(fa));
                }
        }
        assert_true(a.count <= FORECAST_BUCKETS);
}

/*
 * A reload with the same window keeps the history (even one widened for 30 s samples); a
 * new window starts over.
 */
static void test_forecast_set_policy_keeps_history(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct forecast_state st;
        struct forecast f;

        forecast_init(&st, &p);
        for (int t = 0; t <= 3000; t += 30) {
                struct sample s = make_sample(t, 0.3 + 0.0001 * t);
                forecast_update(&st, &s, &f);
        }
        uint64_t n = st.n_samples, window = st.window_usec;
        assert_true(window > p.forecast_window_usec);

        p.hold_usec = 10 * USEC_PER_SEC;
        forecast_set_policy(&st, &p);
        assert_int_equal(st.n_samples, n);
        assert_int_equal(st.window_usec, window);

        p.forecast_window_usec = 10 * USEC_PER_MINUTE;
        forecast_set_policy(&st, &p);
        assert_int_equal(st.n_samples, 0);
        assert_int_equal(st.window_usec, 10 * USEC_PER_MINUTE);
}

/* Samples out of order or repeated leave the history alone. */
static void test_forecast_time_not_advancing(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct forecast_state st;
        struct forecast f;

        forecast_init(&st, &p);
        struct sample s = make_sample(10, 0.5);
        forecast_update(&st, &s, &f);
        uint64_t n = st.n_samples;
        s.current_bytes /= 2;
        forecast_update(&st, &s, &f);
        s.t_usec -= USEC_PER_SEC;
        forecast_update(&st, &s, &f);
        assert_int_equal(st.n_samples, n);
        /* the instantaneous figures are the sample's */
        assert_int_equal(f.level_bytes, s.current_bytes);
}

/*
 * growth_age_usec: how long the growth behind the lower bound has been seen. A leak that began
 * at t = 300 is, at t = 900, about 600 s old (the regime may start a little after the knee);
 * nothing growing: 0.
 */
static void test_forecast_growth_age(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct forecast_state st;
        struct forecast f = {};
        uint64_t rng = 1;

        forecast_init(&st, &p);
        for (int t = 0; t <= 900; t++) {
                double share = 0.30 + (t > 300 ? 0.001 * (t - 300) : 0) + 0.002 * jitter(&rng);
                struct sample s = make_sample(t, share);
                forecast_update(&st, &s, &f);
        }
        assert_true(f.eta_lower_usec != USEC_INFINITY);
        assert_in_range(f.growth_age_usec / USEC_PER_SEC, 450, 620);
        /* three times the lower bound at least: critical may act on it (decide.h) */
        assert_true(f.growth_age_usec >= DECIDE_CRITICAL_AGE_RATIO * f.eta_lower_usec);

        forecast_init(&st, &p);
        for (int t = 0; t <= 600; t++) {
                struct sample s = make_sample(t, 0.5 + 0.002 * jitter(&rng));
                forecast_update(&st, &s, &f);
        }
        assert_true(f.eta_lower_usec == USEC_INFINITY);
        assert_int_equal(f.growth_age_usec, 0);
}

/* cycle_peak_permille: under a steady GC sawtooth (60% → 90%, 20 s), the peak in a trough. */
static void test_forecast_cycle_peak(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct forecast_state st;
        struct forecast f = {};

        forecast_init(&st, &p);
        for (int t = 0; t <= 605; t++) {
                double share = 0.60 + 0.30 * (t % 20) / 19.0;
                struct sample s = make_sample(t, share);
                forecast_update(&st, &s, &f);
        }
        /* t = 605: five seconds after a collection */
        assert_true(f.cycle_usec > 0);
        assert_in_range(f.usage_permille, 640, 700);
        assert_in_range(f.cycle_peak_permille, 880, 910);

        /* no sawtooth: the peak is the usage */
        forecast_init(&st, &p);
        for (int t = 0; t <= 300; t++) {
                struct sample s = make_sample(t, 0.5);
                forecast_update(&st, &s, &f);
        }
        assert_int_equal(f.cycle_usec, 0);
        assert_int_equal(f.cycle_peak_permille, f.usage_permille);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_forecast_linear_leak_eta),
                cmocka_unit_test(test_forecast_steady_sawtooth_no_eta),
                cmocka_unit_test(test_forecast_page_cache_fill_no_warning),
                cmocka_unit_test(test_forecast_short_burst_no_degrade),
                cmocka_unit_test(test_forecast_leak_with_page_cache_eta),
                cmocka_unit_test(test_forecast_step_then_flat),
                cmocka_unit_test(test_forecast_throttled_keeps_lower_bound),
                cmocka_unit_test(test_forecast_no_limit_no_eta),
                cmocka_unit_test(test_forecast_psi_sources),
                cmocka_unit_test(test_forecast_events),
                cmocka_unit_test(test_forecast_reclaimable),
                cmocka_unit_test(test_forecast_state_fixed_size),
                cmocka_unit_test(test_forecast_set_policy_keeps_history),
                cmocka_unit_test(test_forecast_time_not_advancing),
                cmocka_unit_test(test_forecast_growth_age),
                cmocka_unit_test(test_forecast_cycle_peak),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

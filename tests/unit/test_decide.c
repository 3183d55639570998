/* SPDX-License-Identifier: MIT */
/* Unit tests for governor/decide.c: the level state machine, alone and behind the forecast. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "memgov/decide.h"

#define LIMIT ((uint64_t)1 << 30)

/* warn: ETA 10 min or 80%; degrade: 3 min or 90% or PSI some 20%; critical: 45 s or 97%,
 * PSI full 30% or 50 high events/s; hold 60 s. */
static struct policy test_policy(void)
{
        struct policy p = {
                .sample_interval_usec = USEC_PER_SEC,
                .forecast_window_usec = 5 * USEC_PER_MINUTE,
                .forecast_horizon_usec = 30 * USEC_PER_MINUTE,
                .hold_usec = 60 * USEC_PER_SEC,
        };
        p.levels[LEVEL_WARN] =
                (struct policy_level){.eta_usec = 10 * USEC_PER_MINUTE, .usage_permille = 800};
        p.levels[LEVEL_DEGRADE] = (struct policy_level){.eta_usec = 3 * USEC_PER_MINUTE,
                                                        .usage_permille = 900,
                                                        .has_psi_some_avg10 = true,
                                                        .psi_some_avg10_pct = 20};
        p.levels[LEVEL_CRITICAL] = (struct policy_level){.eta_usec = 45 * USEC_PER_SEC,
                                                         .usage_permille = 970,
                                                         .has_psi_full_avg10 = true,
                                                         .psi_full_avg10_pct = 30,
                                                         .has_high_rate = true,
                                                         .high_events_per_s = 50};
        return p;
}

/* A quiet forecast at t seconds: 50% used, nothing growing. */
static struct forecast quiet(double t_s)
{
        return (struct forecast){
                .t_usec = (uint64_t)(t_s * 1e6),
                .known = true,
                .limit_bytes = LIMIT,
                .usage_permille = 500,
                .eta_usec = USEC_INFINITY,
                .eta_lower_usec = USEC_INFINITY,
                .eta_upper_usec = USEC_INFINITY,
                .psi_source = FORECAST_PSI_TOTALS,
        };
}

static struct decision step(struct decide_state *st, const struct policy *p, struct forecast f)
{
        struct decision d;
        decide_update(st, p, &f, &d);
        assert_int_equal(d.t_usec, f.t_usec);
        assert_memory_equal(&d.forecast, &f, sizeof(f));
        return d;
}

/* An ETA lower bound under the warn ETA must hold on two samples before it enters warn. */
static void test_decide_eta_needs_confirmation(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct decide_state st;
        struct forecast f;
        struct decision d;

        decide_init(&st);
        step(&st, &p, quiet(0));
        f = quiet(1);
        f.eta_lower_usec = 5 * USEC_PER_MINUTE;
        d = step(&st, &p, f);
        assert_int_equal(d.level, LEVEL_OK);
        assert_false(d.changed);

        /* a single sample spike goes away: still ok */
        d = step(&st, &p, quiet(2));
        assert_int_equal(d.level, LEVEL_OK);

        /* two samples are not enough for a 5 min ETA: it must stand 5 min / 20 = 15 s */
        for (int t = 3; t < 17; t++) {
                f.t_usec = (uint64_t)t * USEC_PER_SEC;
                d = step(&st, &p, f);
                assert_int_equal(d.level, LEVEL_OK);
        }
        f.t_usec = 17 * USEC_PER_SEC;
        d = step(&st, &p, f);
        assert_int_equal(d.level, LEVEL_WARN);
        assert_int_equal(d.previous_level, LEVEL_OK);
        assert_true(d.changed);
        assert_int_equal(d.reason, DECIDE_REASON_ETA);
        assert_string_equal(decide_reason_to_string(d.reason), "eta");

        /* sampled slowly (>= 5 s apart), one sample is enough */
        decide_init(&st);
        step(&st, &p, quiet(0));
        f = quiet(30);
        f.eta_lower_usec = 30 * USEC_PER_SEC;
        f.growth_age_usec = 5 * USEC_PER_MINUTE;
        d = step(&st, &p, f);
        assert_int_equal(d.level, LEVEL_CRITICAL);
}

/* The level is the highest whose conditions hold, entered at once from ok. */
static void test_decide_highest_level_at_once(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct decide_state st;

        decide_init(&st);
        struct forecast f = quiet(0);
        f.usage_permille = 980;
        struct decision d = step(&st, &p, f);
        assert_int_equal(d.level, LEVEL_CRITICAL);
        assert_int_equal(d.previous_level, LEVEL_OK);
        assert_int_equal(d.reason, DECIDE_REASON_USAGE);
        /* every lower level's usage condition holds too */
        assert_true(d.conditions[LEVEL_WARN] & DECIDE_CONDITION(DECIDE_REASON_USAGE));
        assert_true(d.conditions[LEVEL_DEGRADE] & DECIDE_CONDITION(DECIDE_REASON_USAGE));
}

/* PSI and event-rate conditions, each with its reason; PSI needs a source. */
static void test_decide_psi_and_rates(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct decide_state st;
        struct forecast f;
        struct decision d;

        decide_init(&st);
        f = quiet(0);
        f.psi_some_avg10_pct = 25;
        d = step(&st, &p, f);
        assert_int_equal(d.level, LEVEL_DEGRADE);
        assert_string_equal(decide_reason_to_string(d.reason), "psi_some");

        f.t_usec += USEC_PER_SEC;
        f.psi_full_avg10_pct = 31;
        d = step(&st, &p, f);
        assert_int_equal(d.level, LEVEL_CRITICAL);
        assert_string_equal(decide_reason_to_string(d.reason), "psi_full");

        decide_init(&st);
        f = quiet(0);
        f.high_events_per_s = 60;
        d = step(&st, &p, f);
        assert_int_equal(d.level, LEVEL_CRITICAL);
        assert_string_equal(decide_reason_to_string(d.reason), "high_rate");

        /* without a pressure source the averages mean nothing */
        decide_init(&st);
        f = quiet(0);
        f.psi_source = FORECAST_PSI_NONE;
        f.psi_some_avg10_pct = 99;
        d = step(&st, &p, f);
        assert_int_equal(d.level, LEVEL_OK);
}

/*
 * Leaving: only once all of the level's conditions have been clear for the hold time, and
 * a condition that comes back during the hold starts it over.
 */
static void test_decide_hold_then_recovered(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct decide_state st;
        struct forecast f;
        struct decision d;

        decide_init(&st);
        f = quiet(0);
        f.usage_permille = 850;
        assert_int_equal(step(&st, &p, f).level, LEVEL_WARN);

        /* clear from t = 1; back at t = 30 (the hold starts over); clear again from t = 31 */
        for (int t = 1; t <= 90; t++) {
                f = quiet(t);
                if (t == 30)
                        f.usage_permille = 850;
                d = step(&st, &p, f);
                assert_int_equal(d.level, LEVEL_WARN);
                assert_false(d.changed);
        }
        d = step(&st, &p, quiet(91));
        assert_int_equal(d.level, LEVEL_OK);
        assert_int_equal(d.previous_level, LEVEL_WARN);
        assert_true(d.changed);
        assert_int_equal(d.reason, DECIDE_REASON_HOLD_EXPIRED);
        assert_int_equal(event_for_level(d.level), EVENT_RECOVERED);
}

/* From critical, after the hold, down to the highest level whose conditions still hold. */
static void test_decide_falls_to_highest_holding(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct decide_state st;
        struct forecast f;
        struct decision d;

        decide_init(&st);
        f = quiet(0);
        f.usage_permille = 990;
        assert_int_equal(step(&st, &p, f).level, LEVEL_CRITICAL);
        for (int t = 1; t <= 61; t++) {
                f = quiet(t);
                f.usage_permille = 850; /* warn's condition only */
                d = step(&st, &p, f);
        }
        assert_int_equal(d.level, LEVEL_WARN);
        assert_int_equal(d.previous_level, LEVEL_CRITICAL);
        assert_int_equal(d.reason, DECIDE_REASON_HOLD_EXPIRED);
}

/* memory.events oom_kill grew: flagged on that sample only. */
static void test_decide_oom_kill(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct decide_state st;
        struct forecast f = quiet(0);

        decide_init(&st);
        f.oom_kills = 1;
        assert_true(step(&st, &p, f).oom_kill);
        assert_false(step(&st, &p, quiet(1)).oom_kill);
}

static void test_decide_reason_names(void **state)
{
        (void)state;
        static const char *const names[] = {"none",     "eta",       "usage",    "psi_some",
                                            "psi_full", "high_rate", "max_rate", "hold_expired"};
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                assert_string_equal(decide_reason_to_string((enum decide_reason)i), names[i]);
        assert_null(decide_reason_to_string(_DECIDE_REASON_MAX));
        assert_null(decide_reason_to_string(_DECIDE_REASON_INVALID));
}

/* ---- behind the forecast, on hand-made samples ---- */

static struct sample sample_at(int t, double share)
{
        return (struct sample){
                .t_usec = (uint64_t)t * USEC_PER_SEC + 1000 * USEC_PER_SEC,
                .current_bytes = (uint64_t)(share * (double)LIMIT),
                .max_bytes = LIMIT,
                .high_bytes = CGROUP_LIMIT_MAX,
                .limit_bytes = LIMIT,
        };
}

/*
 * A leak from 40% (+0.1%/s) that stops at 75%: the ETA enters warn while it grows; once it
 * plateaus the ETA goes away, and warn clears after the hold time, "recovered". The usage
 * condition (80%) is never met.
 */
static void test_decide_plateau_clears_warn_after_hold(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct forecast_state fs;
        struct decide_state ds;
        struct forecast f;
        struct decision d;
        uint64_t warned = 0, eta_gone = 0, recovered = 0;

        forecast_init(&fs, &p);
        decide_init(&ds);
        for (int t = 0; t <= 2400; t++) {
                double share = MIN(0.40 + (t > 300 ? 0.001 * (t - 300) : 0), 0.75);
                struct sample s = sample_at(t, share + 0.001 * ((t * 7919) % 11 - 5) / 5);
                forecast_update(&fs, &s, &f);
                decide_update(&ds, &p, &f, &d);
                if (d.changed && d.level == LEVEL_WARN && !warned) {
                        warned = (uint64_t)t;
                        assert_int_equal(d.reason, DECIDE_REASON_ETA);
                }
                if (warned && !eta_gone && f.eta_lower_usec > p.levels[LEVEL_WARN].eta_usec)
                        eta_gone = (uint64_t)t;
                if (d.changed && d.level == LEVEL_OK) {
                        recovered = (uint64_t)t;
                        assert_int_equal(d.reason, DECIDE_REASON_HOLD_EXPIRED);
                        break;
                }
        }
        /* the plateau begins at t = 650 */
        assert_true(warned > 300 && warned < 650);
        assert_true(eta_gone >= 650);
        assert_true(recovered >= eta_gone + 60 && recovered <= eta_gone + 62);
        /* ... and well within a window of the plateau */
        assert_true(recovered < 650 + 300 + 60);
}

/* A steady GC sawtooth peaking at 75%: an hour without any level. */
static void test_decide_steady_sawtooth_no_alarm(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct forecast_state fs;
        struct decide_state ds;
        struct forecast f;
        struct decision d;

        forecast_init(&fs, &p);
        decide_init(&ds);
        for (int t = 0; t <= 3600; t++) {
                /* every 45 s the collector frees what the service allocated since */
                double share = 0.45 + 0.30 * fmod(t, 45.0) / 45.0;
                struct sample s = sample_at(t, share);
                forecast_update(&fs, &s, &f);
                decide_update(&ds, &p, &f, &d);
                assert_int_equal(d.level, LEVEL_OK);
        }
}

/*
 * The ETA condition stands for a twentieth of the ETA, whatever the sample interval: a 3 min
 * ETA enters degrade after 9 s of it, sampled every second or every 3 s.
 */
static void test_decide_eta_confirmed_by_elapsed_time(void **state)
{
        (void)state;
        struct policy p = test_policy();

        for (int dt = 1; dt <= 3; dt += 2) {
                struct decide_state st;
                struct decision d = {};
                int entered = -1;

                decide_init(&st);
                step(&st, &p, quiet(0));
                for (int t = dt; t <= 30 && entered < 0; t += dt) {
                        struct forecast f = quiet(t);
                        f.eta_lower_usec = 150 * USEC_PER_SEC; /* degrade, not critical */
                        f.growth_age_usec = 10 * USEC_PER_MINUTE;
                        d = step(&st, &p, f);
                        if (d.level != LEVEL_OK)
                                entered = t;
                }
                /* 150 s / 20 = 7.5 s since the last sample without the condition (t = 0) */
                assert_int_equal(d.level, LEVEL_DEGRADE);
                assert_int_equal(d.reason, DECIDE_REASON_ETA);
                assert_int_equal(entered, dt == 1 ? 8 : 9);
        }
}

/*
 * critical by ETA needs growth seen for three times the ETA: a rise of 60 s heading for the
 * limit in 30 s (a burst) is degrade; the same ETA behind 90 s of growth is critical.
 */
static void test_decide_critical_needs_old_growth(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct decide_state st;
        struct forecast f;
        struct decision d = {};

        decide_init(&st);
        for (int t = 0; t <= 20; t++) {
                f = quiet(t);
                f.eta_lower_usec = 30 * USEC_PER_SEC;
                f.growth_age_usec = 60 * USEC_PER_SEC;
                d = step(&st, &p, f);
        }
        assert_int_equal(d.level, LEVEL_DEGRADE);
        assert_false(d.conditions[LEVEL_CRITICAL] & DECIDE_CONDITION(DECIDE_REASON_ETA));

        decide_init(&st);
        for (int t = 0; t <= 20; t++) {
                f = quiet(t);
                f.eta_lower_usec = 30 * USEC_PER_SEC;
                f.growth_age_usec = 90 * USEC_PER_SEC;
                d = step(&st, &p, f);
        }
        assert_int_equal(d.level, LEVEL_CRITICAL);
        assert_int_equal(d.reason, DECIDE_REASON_ETA);
}

/*
 * Usage hysteresis: entered at 97%, critical's usage condition still holds at 95.5% (within
 * 2% of the limit below the threshold) and no longer at 94.5%; from ok, 95.5% is not critical.
 * And the last GC cycle's peak keeps a level, never enters one.
 */
static void test_decide_usage_hysteresis(void **state)
{
        (void)state;
        struct policy p = test_policy();
        struct decide_state st;
        struct forecast f;
        struct decision d;

        decide_init(&st);
        f = quiet(0);
        f.usage_permille = 970;
        assert_int_equal(step(&st, &p, f).level, LEVEL_CRITICAL);
        f = quiet(1);
        f.usage_permille = 955;
        d = step(&st, &p, f);
        assert_true(d.conditions[LEVEL_CRITICAL] & DECIDE_CONDITION(DECIDE_REASON_USAGE));
        assert_int_equal(d.reason, DECIDE_REASON_USAGE);
        f = quiet(2);
        f.usage_permille = 945;
        d = step(&st, &p, f);
        assert_false(d.conditions[LEVEL_CRITICAL] & DECIDE_CONDITION(DECIDE_REASON_USAGE));
        assert_int_equal(d.level, LEVEL_CRITICAL); /* held for the hold time */

        decide_init(&st);
        f = quiet(0);
        f.usage_permille = 955;
        d = step(&st, &p, f);
        assert_int_equal(d.level, LEVEL_DEGRADE);

        /*
         * Under a GC sawtooth, a level entered by usage stays on the last cycle's peak: the
         * trough after a collection (70%) does not clear critical while the peak was 98%.
         */
        decide_init(&st);
        f = quiet(0);
        f.usage_permille = f.cycle_peak_permille = 980;
        assert_int_equal(step(&st, &p, f).level, LEVEL_CRITICAL);
        f = quiet(1);
        f.usage_permille = 700;
        f.cycle_peak_permille = 980;
        d = step(&st, &p, f);
        assert_true(d.conditions[LEVEL_CRITICAL] & DECIDE_CONDITION(DECIDE_REASON_USAGE));
        /* ... but the peak never enters a level: from ok, a 70% trough is ok */
        decide_init(&st);
        d = step(&st, &p, f);
        assert_int_equal(d.level, LEVEL_OK);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_decide_eta_needs_confirmation),
                cmocka_unit_test(test_decide_highest_level_at_once),
                cmocka_unit_test(test_decide_psi_and_rates),
                cmocka_unit_test(test_decide_hold_then_recovered),
                cmocka_unit_test(test_decide_falls_to_highest_holding),
                cmocka_unit_test(test_decide_oom_kill),
                cmocka_unit_test(test_decide_reason_names),
                cmocka_unit_test(test_decide_plateau_clears_warn_after_hold),
                cmocka_unit_test(test_decide_steady_sawtooth_no_alarm),
                cmocka_unit_test(test_decide_eta_confirmed_by_elapsed_time),
                cmocka_unit_test(test_decide_critical_needs_old_growth),
                cmocka_unit_test(test_decide_usage_hysteresis),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Governance stage: the memory.high controller on hand-made series of samples and
 * decisions (the forecast written by hand: level, slope, ETA lower bound, PSI), the way the
 * daemon feeds it after decide_update(). The cgroup is simulated as the kernel would show
 * it: memory.high reads back what the controller set.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "memgov/decide.h"
#include "memgov/forecast.h"
#include "memgov/govern.h"
#include "memgov/macro.h"
#include "memgov/policy.h"

#define MiB ((uint64_t)1 << 20)
#define L   (1024 * MiB) /* the effective limit of every scenario */
#define S   USEC_PER_SEC

static struct policy *load(const char *memory_high)
{
        char json[512];
        struct diag d = {};
        struct policy *p = NULL;

        snprintf(json, sizeof(json), "{\"cgroup\": \"app.service\", \"memory_high\": %s}",
                 memory_high);
        int r = policy_load_buffer("test.json", json, strlen(json), &d, &p);
        if (r < 0)
                diag_print(&d, stderr);
        assert_int_equal(r, 0);
        diag_clear(&d);
        return p;
}

/* The simulated cgroup and what the controller last said about it. */
struct world {
        struct govern_state st;
        struct policy *p;
        uint64_t high;  /* memory.high as the kernel shows it */
        bool follow;    /* memory.high follows the intents (false: a dry run) */
        uint64_t level; /* the forecast's level = memory.current (no page cache) */
        uint64_t anon, file, low;
        double slope; /* bytes/s */
        uint64_t eta; /* ETA lower bound; 0: computed from level and slope */
        bool known;
        enum level lvl;
        bool has_psi;
        double psi_full, high_rate;
        unsigned flags; /* FORECAST_* */
        struct govern_intent in;
        unsigned n_set;
};

static void world_init(struct world *w, const char *memory_high)
{
        *w = (struct world){
                .p = load(memory_high),
                .high = CGROUP_LIMIT_MAX,
                .follow = true,
                .known = true,
        };
        govern_init(&w->st);
}

static void world_done(struct world *w)
{
        policy_free(w->p);
}

/* One sample at time t (seconds); returns whether memory.high was to change. */
static bool step(struct world *w, double t)
{
        struct sample s = {
                .t_usec = (uint64_t)(t * 1e6),
                .current_bytes = w->level + w->file,
                .max_bytes = CGROUP_LIMIT_MAX,
                .high_bytes = w->high,
                .low_bytes = w->low,
                .limit_bytes = L,
                .anon_bytes = w->anon ? w->anon : w->level,
                .file_bytes = w->file,
                .has = SAMPLE_HAS_HIGH | SAMPLE_HAS_ANON | SAMPLE_HAS_FILE | SAMPLE_HAS_LOW_MIN,
        };
        uint64_t eta = w->eta;
        if (!eta)
                eta = w->slope > 0 ? (uint64_t)((double)(L - w->level) / w->slope * 1e6)
                                   : USEC_INFINITY;
        struct decision d = {
                .t_usec = s.t_usec,
                .level = w->lvl,
                .forecast =
                        {
                                .t_usec = s.t_usec,
                                .known = w->known,
                                .flags = w->flags,
                                .current_bytes = s.current_bytes,
                                .limit_bytes = L,
                                .reclaimable_bytes = w->file,
                                .level_bytes = w->level,
                                .envelope_bytes = w->level,
                                .slope_bytes_per_s = w->slope,
                                .eta_usec = eta,
                                .eta_lower_usec = eta,
                                .eta_upper_usec = eta,
                                .psi_source = w->has_psi ? FORECAST_PSI_KERNEL : FORECAST_PSI_NONE,
                                .psi_full_avg10_pct = w->psi_full,
                                .high_events_per_s = w->high_rate,
                        },
        };
        govern_update(&w->st, w->p, &s, &d, &w->in);
        if (w->in.set) {
                w->n_set++;
                assert_true(w->in.reason[0] != '\0');
                assert_true(w->in.high_bytes == CGROUP_LIMIT_MAX ||
                            w->in.high_bytes % GOVERN_PAGE_BYTES == 0);
                if (w->follow)
                        w->high = w->in.high_bytes;
        }
        return w->in.set;
}

static uint64_t page_down(uint64_t v)
{
        return v / GOVERN_PAGE_BYTES * GOVERN_PAGE_BYTES;
}

static uint64_t page_up(uint64_t v)
{
        return (v + GOVERN_PAGE_BYTES - 1) / GOVERN_PAGE_BYTES * GOVERN_PAGE_BYTES;
}

/* ETA above 1.5 × budget: nothing; below it: limit − slope × budget; faster: lower again. */
static void test_govern_guard_lowers_as_eta_shrinks(void **state)
{
        struct world w;
        double t = 0;

        (void)state;
        world_init(&w, "{\"mode\": \"guard\", \"budget\": \"2m\", \"min_interval\": \"5s\"}");
        w.slope = (double)MiB; /* 1 MiB/s */

        /* 700M growing 1 MiB/s: ETA 324 s, then shrinking; engage at ETA <= 180 s */
        for (w.level = 700 * MiB; w.level < 844 * MiB; w.level += MiB, t += 1) {
                assert_false(step(&w, t));
                assert_int_equal(w.in.cause, GOVERN_CAUSE_NONE);
        }
        /* 844M: ETA 180 s */
        assert_true(step(&w, t));
        assert_int_equal(w.in.cause, GOVERN_CAUSE_GUARD);
        assert_int_equal(w.in.high_bytes, page_down(L - 120 * MiB)); /* 904M */
        assert_false(w.in.restores_original);
        assert_non_null(strstr(w.in.reason, "guard: ETA 180s <= 180s"));

        /* the same growth: the same target, no change */
        for (int i = 0; i < 6; i++) {
                w.level += MiB;
                t += 1;
                assert_false(step(&w, t));
        }

        /* growth accelerates to 3 MiB/s: ETA 54 s; L − 3 × 120 MiB is below the working set */
        w.slope = 3.0 * (double)MiB;
        t += 1;
        w.level = 860 * MiB;
        assert_true(step(&w, t));
        assert_int_equal(w.in.cause, GOVERN_CAUSE_GUARD);
        assert_int_equal(w.in.high_bytes, page_up(860 * MiB + L / 50));
        assert_non_null(strstr(w.in.reason, "floor: working set"));
        assert_int_equal(w.n_set, 2);
        world_done(&w);
}

/* Never below the policy's min or memory.low; never above the limit. */
static void test_govern_guard_respects_floor_and_ceiling(void **state)
{
        struct world w;

        (void)state;
        /* policy min above the guard's target */
        world_init(&w, "{\"budget\": \"2m\", \"min\": \"950M\"}");
        w.slope = (double)MiB;
        w.level = 850 * MiB;
        assert_true(step(&w, 0));
        assert_int_equal(w.in.high_bytes, 950 * MiB);
        world_done(&w);

        /* memory.low above the guard's target */
        world_init(&w, "{\"budget\": \"2m\"}");
        w.slope = (double)MiB;
        w.level = 850 * MiB;
        w.low = 960 * MiB;
        assert_true(step(&w, 0));
        assert_int_equal(w.in.high_bytes, 960 * MiB);
        world_done(&w);

        /* a floor above the limit: nothing to lower to, memory.high stays */
        world_init(&w, "{\"budget\": \"2m\", \"min\": \"2G\"}");
        w.slope = (double)MiB;
        w.level = 850 * MiB;
        assert_false(step(&w, 0));
        assert_int_equal(w.high, CGROUP_LIMIT_MAX);
        world_done(&w);

        /* growth so fast that limit − slope × budget is negative: the working set */
        world_init(&w, "{\"budget\": \"2m\"}");
        w.slope = 20.0 * (double)MiB;
        w.level = 500 * MiB;
        w.anon = 520 * MiB;
        assert_true(step(&w, 0));
        assert_int_equal(w.in.high_bytes, page_up(520 * MiB + L / 50));
        assert_true(w.in.high_bytes < L);
        world_done(&w);
}

/* A second change within min_interval waits; it goes out once the interval has passed. */
static void test_govern_guard_rate_limited(void **state)
{
        struct world w;

        (void)state;
        world_init(&w, "{\"budget\": \"2m\", \"min_interval\": \"10s\"}");
        w.slope = (double)MiB;
        w.level = 850 * MiB;
        assert_true(step(&w, 100));
        assert_int_equal(w.in.high_bytes, page_down(L - 120 * MiB));

        w.slope = 2.0 * (double)MiB; /* target L − 240M, below the floor: floor 870.5M */
        for (double t = 101; t < 110; t += 1)
                assert_false(step(&w, t));
        assert_true(step(&w, 110));
        assert_int_equal(w.in.high_bytes, page_up(850 * MiB + L / 50));
        world_done(&w);
}

/* A new target within 1 % of the limit of the value in force is not worth a write. */
static void test_govern_guard_small_change_suppressed(void **state)
{
        struct world w;

        (void)state;
        world_init(&w, "{\"budget\": \"100s\", \"min_interval\": \"1s\"}");
        w.slope = (double)MiB;
        w.level = 874 * MiB; /* ETA 150 s */
        assert_true(step(&w, 0));
        assert_int_equal(w.in.high_bytes, L - 100 * MiB);

        /* 1.05 MiB/s: 5 MiB lower, under 1 % of 1 GiB */
        w.slope = 1.05 * (double)MiB;
        assert_false(step(&w, 10));
        /* 1.2 MiB/s: 20 MiB lower */
        w.slope = 1.2 * (double)MiB;
        assert_true(step(&w, 20));
        assert_int_equal(w.in.high_bytes, page_down(L - 120 * MiB));
        world_done(&w);
}

/* Lowered, then the danger passes: steps up by a quarter of the gap, then gives back "max". */
static void test_govern_guard_raises_after_recovery(void **state)
{
        struct world w;

        (void)state;
        world_init(&w, "{\"budget\": \"2m\", \"min_interval\": \"5s\"}");
        w.slope = (double)MiB;
        w.level = 850 * MiB;
        w.lvl = LEVEL_DEGRADE;
        assert_true(step(&w, 0));
        uint64_t held = w.high;
        assert_int_equal(held, page_down(L - 120 * MiB));

        /* growth stopped, but the level is still degrade: held */
        w.slope = 0;
        for (double t = 1; t <= 30; t += 1)
                assert_false(step(&w, t));
        /* ETA between 1.5 and 3 × budget: the hysteresis band, held */
        w.lvl = LEVEL_OK;
        w.slope = (double)MiB;
        w.level = 800 * MiB; /* ETA 224 s */
        for (double t = 31; t <= 60; t += 1)
                assert_false(step(&w, t));

        /* comfortable from t = 61: the first step after min_interval */
        w.slope = 0;
        assert_false(step(&w, 61));
        assert_false(step(&w, 65));
        assert_true(step(&w, 66));
        assert_int_equal(w.in.cause, GOVERN_CAUSE_RAISE);
        uint64_t gap = L - held;
        uint64_t want = page_down(held + MAX(gap / 1000 * 250, L * 50 / 1000));
        assert_int_equal(w.in.high_bytes, want);

        /* more steps up, rate-limited, each higher, until "max" is given back */
        uint64_t prev = w.high;
        double t = 67;
        unsigned steps = 0;
        for (; t < 200 && w.high != CGROUP_LIMIT_MAX; t += 1) {
                if (!step(&w, t))
                        continue;
                steps++;
                assert_true(w.high > prev);
                prev = w.high;
        }
        assert_int_equal(w.high, CGROUP_LIMIT_MAX);
        assert_int_equal(w.in.cause, GOVERN_CAUSE_RELEASE);
        assert_true(w.in.restores_original);
        assert_true(steps >= 1);
        /* and quiet afterwards */
        for (double u = t; u < t + 60; u += 1)
                assert_false(step(&w, u));
        world_done(&w);
}

/*
 * Pinned at memory.high with PSI full above the threshold for the livelock duration: raised
 * by 10 % of the gap (at least 2 % of the limit) per step, escalated to critical, one
 * livelock event per episode, up to "max".
 */
static void test_govern_livelock_raises_stepwise_and_escalates(void **state)
{
        struct world w;
        double t = 0;

        (void)state;
        world_init(&w, "{\"budget\": \"2m\", \"min_interval\": \"5s\", "
                       "\"livelock_psi_full_avg10\": 60, \"livelock_duration\": \"10s\"}");
        w.slope = (double)MiB;
        w.level = 850 * MiB;
        w.has_psi = true;
        assert_true(step(&w, t));
        uint64_t held = w.high;

        /* pinned at memory.high, PSI full 75 %: nothing for 10 s, then a step */
        w.level = held - held / 200; /* 99.5 % of memory.high */
        w.psi_full = 75;
        for (t = 20; t < 30; t += 1) {
                assert_false(step(&w, t));
                assert_false(w.in.escalate);
        }
        assert_true(step(&w, 30));
        assert_int_equal(w.in.cause, GOVERN_CAUSE_LIVELOCK);
        assert_true(w.in.livelock);
        assert_true(w.in.escalate);
        uint64_t gap = L - held;
        assert_int_equal(w.high, page_down(held + MAX(gap / 1000 * 100, L * 20 / 1000)));
        assert_non_null(strstr(w.in.reason, "PSI full avg10 75.0%"));

        /* still pinned at the new value: escalated throughout, one step per 10 s, no new event */
        uint64_t prev = w.high;
        unsigned steps = 1;
        for (t = 31; t < 400 && w.high != CGROUP_LIMIT_MAX; t += 1) {
                w.level = w.high - w.high / 200;
                bool changed = step(&w, t);
                assert_true(w.in.escalate);
                assert_false(w.in.livelock);
                if (changed) {
                        steps++;
                        assert_int_equal(w.in.cause, GOVERN_CAUSE_LIVELOCK);
                        assert_true(w.high > prev);
                        prev = w.high;
                }
        }
        assert_int_equal(w.high, CGROUP_LIMIT_MAX);
        assert_true(steps >= 3);

        /* the stall is over: escalation ends after the livelock duration */
        w.psi_full = 0;
        for (double u = t; u < t + 10; u += 1) {
                assert_false(step(&w, u));
                assert_true(w.in.escalate);
        }
        assert_false(step(&w, t + 10));
        assert_false(w.in.escalate);

        /* and the guard does not lower under a value that stalled the workload */
        w.level = 900 * MiB;
        w.slope = 2.0 * (double)MiB;
        for (double u = t + 11; u < t + 60; u += 1)
                assert_false(step(&w, u));

        /* ... until the danger has passed: then a new danger is guarded again */
        w.slope = 0;
        w.lvl = LEVEL_OK;
        for (double u = t + 60; u < t + 70; u += 1)
                assert_false(step(&w, u));
        w.slope = (double)MiB;
        w.level = 850 * MiB;
        assert_true(step(&w, t + 70));
        assert_int_equal(w.in.cause, GOVERN_CAUSE_GUARD);
        assert_int_equal(w.high, page_down(L - 120 * MiB));
        world_done(&w);
}

/*
 * An operator's memory.high that stalls a workload that does not grow (no ETA: the guard's
 * comfortable zone): the livelock guard raises it, and memgov neither gives the stalling
 * value back between the steps of the episode nor after it.
 */
static void test_govern_livelock_keeps_operator_original_away(void **state)
{
        struct world w;
        double t;

        (void)state;
        world_init(&w, "{\"min_interval\": \"2s\", \"livelock_duration\": \"10s\"}");
        w.high = 300 * MiB; /* the operator's */
        w.has_psi = true;
        w.psi_full = 80;
        w.level = w.high - w.high / 200;
        for (t = 0; t < 10; t += 1)
                assert_false(step(&w, t));
        assert_true(step(&w, 10));
        assert_int_equal(w.in.cause, GOVERN_CAUSE_LIVELOCK);
        uint64_t first = w.high;
        assert_true(first > 300 * MiB);

        /* still stalled at the raised value: the next step up, nothing in between */
        w.level = w.high - w.high / 200;
        for (t = 11; t < 20; t += 1) {
                assert_false(step(&w, t));
                assert_true(w.in.escalate);
        }
        assert_true(step(&w, 20));
        assert_int_equal(w.in.cause, GOVERN_CAUSE_LIVELOCK);
        assert_true(w.high > first);
        uint64_t held = w.high;

        /* the stall is over; the workload stays as it is: the raised value stays too */
        w.level = first;
        w.psi_full = 0;
        for (t = 21; t < 200; t += 1) {
                assert_false(step(&w, t));
                assert_int_equal(w.high, held);
        }
        assert_false(w.in.escalate);
        assert_true(w.st.touched);
        assert_int_equal(w.st.original_bytes, 300 * MiB);
        world_done(&w);
}

/*
 * The level flat under memgov's own throttle (the forecast says FORECAST_THROTTLED) is not
 * recovery: no step up while it lasts; once the throttling has ended, the steps come.
 */
static void test_govern_guard_holds_while_throttled(void **state)
{
        struct world w;

        (void)state;
        world_init(&w, "{\"budget\": \"2m\", \"min_interval\": \"5s\"}");
        w.slope = (double)MiB;
        w.level = 850 * MiB;
        assert_true(step(&w, 0));
        assert_int_equal(w.in.cause, GOVERN_CAUSE_GUARD);
        uint64_t held = w.high;

        /* at memory.high, growth flat: throttled, ETA none, level ok */
        w.level = held;
        w.slope = 0;
        w.lvl = LEVEL_OK;
        w.flags = FORECAST_THROTTLED;
        for (double t = 1; t < 120; t += 1) {
                assert_false(step(&w, t));
                assert_int_equal(w.high, held);
        }
        /* the throttling is over (the demand stopped): stepped up again */
        w.flags = 0;
        w.level = held - 50 * MiB;
        bool raised = false;
        for (double t = 120; t < 140 && !raised; t += 1)
                raised = step(&w, t);
        assert_true(raised);
        assert_true(w.high > held);
        world_done(&w);
}

/* Without PSI: memory.events high climbing and no growth over the duration is a livelock. */
static void test_govern_livelock_without_psi(void **state)
{
        struct world w;

        (void)state;
        world_init(&w, "{\"mode\": \"fixed\", \"fixed\": \"50%\", \"livelock_duration\": \"10s\"}");
        assert_true(step(&w, 0));
        assert_int_equal(w.high, L / 2);

        /* pinned, high events, but growing: progress, no livelock */
        w.high_rate = 50;
        for (double t = 1; t < 40; t += 1) {
                w.level = L / 2 - MiB + (uint64_t)(t * 2 * (double)MiB);
                assert_false(step(&w, t));
                assert_false(w.in.escalate);
        }
        /* stuck: a step once a whole duration passed without growth, and escalation */
        unsigned changes = 0;
        bool event = false;
        for (double t = 40; t < 60; t += 1) {
                if (step(&w, t)) {
                        changes++;
                        assert_int_equal(w.in.cause, GOVERN_CAUSE_LIVELOCK);
                        assert_non_null(strstr(w.in.reason, "memory.events high 50.0/s"));
                }
                event = event || w.in.livelock;
        }
        assert_int_equal(changes, 1);
        assert_true(event);
        assert_true(w.in.escalate);
        assert_int_equal(w.high, page_down(L / 2 + (L / 2) / 1000 * 100));
        world_done(&w);
}

/* fixed: the policy's value once; a new limit share re-applies; off: never touched. */
static void test_govern_fixed_and_off(void **state)
{
        struct world w;

        (void)state;
        world_init(&w, "{\"mode\": \"fixed\", \"fixed\": \"75%\"}");
        w.level = 100 * MiB;
        assert_true(step(&w, 0));
        assert_int_equal(w.in.cause, GOVERN_CAUSE_FIXED);
        assert_int_equal(w.high, L / 4 * 3);
        for (double t = 1; t < 100; t += 1)
                assert_false(step(&w, t));
        world_done(&w);

        world_init(&w, "{\"mode\": \"fixed\", \"fixed\": \"600M\", \"min\": \"100M\"}");
        w.low = 700 * MiB; /* memory.low above the fixed value wins */
        assert_true(step(&w, 0));
        assert_int_equal(w.high, 700 * MiB);
        world_done(&w);

        world_init(&w, "{\"mode\": \"off\"}");
        w.slope = 10.0 * (double)MiB;
        w.level = 1000 * MiB;
        w.has_psi = true;
        w.psi_full = 90;
        w.high = 500 * MiB; /* pinned at an operator's memory.high */
        for (double t = 0; t < 100; t += 1) {
                assert_false(step(&w, t));
                assert_false(w.in.escalate);
                assert_int_equal(w.in.reclaim_bytes, 0);
        }
        world_done(&w);
}

/* A policy switched to off after memgov lowered memory.high gives the original back. */
static void test_govern_off_after_guard_gives_back(void **state)
{
        struct world w;

        (void)state;
        world_init(&w, "{\"budget\": \"2m\"}");
        w.high = 1000 * MiB; /* an operator's value */
        w.slope = (double)MiB;
        w.level = 850 * MiB;
        assert_true(step(&w, 0));
        assert_int_equal(w.high, page_down(L - 120 * MiB));

        policy_free(w.p);
        w.p = load("{\"mode\": \"off\"}");
        assert_true(step(&w, 1));
        assert_int_equal(w.in.cause, GOVERN_CAUSE_OFF);
        assert_true(w.in.restores_original);
        assert_int_equal(w.high, 1000 * MiB);
        assert_false(step(&w, 2));
        world_done(&w);
}

/* An operator's new memory.high, while memgov holds none of its own, is the new original. */
static void test_govern_operator_change_becomes_original(void **state)
{
        struct world w;

        (void)state;
        world_init(&w, "{\"budget\": \"2m\", \"min_interval\": \"1s\"}");
        w.level = 500 * MiB;
        assert_false(step(&w, 0));
        w.high = 990 * MiB;
        assert_false(step(&w, 1));
        assert_int_equal(w.st.original_bytes, 990 * MiB);

        /* lowered, recovered: 990M comes back, not "max" */
        w.slope = (double)MiB;
        w.level = 850 * MiB;
        assert_true(step(&w, 2));
        w.slope = 0;
        double t = 3;
        for (; t < 300 && w.high != 990 * MiB; t += 1)
                (void)step(&w, t);
        assert_int_equal(w.high, 990 * MiB);
        assert_true(w.in.restores_original);
        world_done(&w);
}

/* A dry run: memory.high never changes, the controller still says what it would do, once. */
static void test_govern_dry_run_consistent(void **state)
{
        struct world w;

        (void)state;
        world_init(&w, "{\"budget\": \"2m\"}");
        w.follow = false;
        w.slope = (double)MiB;
        w.level = 850 * MiB;
        assert_true(step(&w, 0));
        for (double t = 1; t < 60; t += 1)
                assert_false(step(&w, t));
        assert_int_equal(w.n_set, 1);
        world_done(&w);
}

/* reclaim: near the limit with much page cache, a bounded memory.reclaim request. */
static void test_govern_reclaim_page_cache(void **state)
{
        struct world w;

        (void)state;
        world_init(&w, "{\"budget\": \"2m\", \"reclaim\": true, \"min_interval\": \"5s\"}");
        w.slope = (double)MiB;
        w.level = 700 * MiB;
        w.file = 150 * MiB;
        assert_false(step(&w, 0)); /* ETA 324 s: not near */
        assert_int_equal(w.in.reclaim_bytes, 0);
        w.level = 850 * MiB; /* ETA 174 s */
        assert_true(step(&w, 1));
        assert_int_equal(w.in.reclaim_bytes, page_down(L / 10));
        assert_false(step(&w, 2));
        assert_int_equal(w.in.reclaim_bytes, 0); /* rate-limited */
        (void)step(&w, 6);
        assert_int_equal(w.in.reclaim_bytes, page_down(L / 10));

        /* little page cache: nothing to gain */
        w.file = 50 * MiB;
        (void)step(&w, 20);
        assert_int_equal(w.in.reclaim_bytes, 0);
        world_done(&w);

        /* without reclaim in the policy: never */
        world_init(&w, "{\"budget\": \"2m\"}");
        w.slope = (double)MiB;
        w.level = 850 * MiB;
        w.file = 150 * MiB;
        (void)step(&w, 0);
        assert_int_equal(w.in.reclaim_bytes, 0);
        world_done(&w);
}

static void test_govern_cause_names(void **state)
{
        (void)state;
        assert_string_equal(govern_cause_to_string(GOVERN_CAUSE_GUARD), "guard");
        assert_string_equal(govern_cause_to_string(GOVERN_CAUSE_LIVELOCK), "livelock");
        assert_string_equal(govern_cause_to_string(GOVERN_CAUSE_RELEASE), "release");
        assert_null(govern_cause_to_string(_GOVERN_CAUSE_MAX));
        assert_null(govern_cause_to_string(_GOVERN_CAUSE_INVALID));
}

/* The level memgovd and replay act on: decide's, or critical while a livelock lasts. */
static void test_govern_level_escalation(void **state)
{
        struct govern_intent in = {};
        const char *why = "unset";

        (void)state;
        /* no episode: decide's level and reason stand */
        assert_int_equal(govern_level(LEVEL_WARN, LEVEL_OK, false, &in, &why), LEVEL_WARN);
        assert_null(why);
        /* an episode: critical, because of the livelock */
        in.escalate = true;
        assert_int_equal(govern_level(LEVEL_OK, LEVEL_OK, false, &in, &why), LEVEL_CRITICAL);
        assert_string_equal(why, "livelock");
        /* decide says critical on its own: its reason stands */
        assert_int_equal(govern_level(LEVEL_CRITICAL, LEVEL_WARN, false, &in, &why),
                         LEVEL_CRITICAL);
        assert_null(why);
        /* the episode ends: back to decide's level, because the livelock is over */
        in.escalate = false;
        assert_int_equal(govern_level(LEVEL_WARN, LEVEL_CRITICAL, true, &in, &why), LEVEL_WARN);
        assert_string_equal(why, "livelock_over");
        /* a later fall is decide's own */
        assert_int_equal(govern_level(LEVEL_OK, LEVEL_WARN, false, &in, NULL), LEVEL_OK);
}

/*
 * The whole pure chain (forecast → decide → govern, as memgovd and replay run it) over a
 * leak that the service then gets rid of. The simulated kernel holds memory.current at
 * memory.high while the demand is above it, counting memory.events high. Once decide's
 * level is back to ok, memory.high must return to its original value ("max") within a
 * bounded time: the forecast window (the ETA needs a settled fit), then a few raise steps
 * at min_interval apart.
 */
struct chain {
        struct policy *p;
        struct forecast_state fs;
        struct decide_state ds;
        struct govern_state gs;
        uint64_t high, ev_high;
        enum level level;
        uint64_t n_lowered;
};

static void chain_step(struct chain *c, uint64_t t_usec, uint64_t demand)
{
        uint64_t current = MIN(demand, c->high);
        if (demand > c->high)
                c->ev_high += 50;
        struct sample s = {
                .t_usec = t_usec,
                .current_bytes = current,
                .max_bytes = L,
                .high_bytes = c->high,
                .limit_bytes = L,
                .anon_bytes = current,
                .events = {.high = c->ev_high},
                .has = SAMPLE_HAS_HIGH | SAMPLE_HAS_ANON | SAMPLE_HAS_EVENTS,
        };
        struct forecast f;
        struct decision d;
        struct govern_intent in;

        forecast_update(&c->fs, &s, &f);
        decide_update(&c->ds, c->p, &f, &d);
        govern_update(&c->gs, c->p, &s, &d, &in);
        c->level = govern_level(d.level, c->level, false, &in, NULL);
        if (in.set) {
                if (in.high_bytes < c->high)
                        c->n_lowered++;
                c->high = in.high_bytes;
        }
}

/*
 * 10 min flat at 300M, a leak of rate MiB/s for leak_s, then the demand settles at after
 * (the leak fixed and freed, or only stopped). Returns how long after decide's level was
 * back at ok memory.high was its original again (seconds), asserting it was lowered first.
 */
static uint64_t chain_leak_then_recover(uint64_t rate, uint64_t leak_s, uint64_t after)
{
        const char *json = "{\"cgroup\": \"app.service\", \"sample_interval\": \"1s\", "
                           "\"forecast\": {\"window\": \"5m\"}, \"memory_high\": "
                           "{\"mode\": \"guard\", \"budget\": \"2m\", \"min_interval\": "
                           "\"10s\"}}";
        struct diag diag = {};
        struct chain c = {.high = CGROUP_LIMIT_MAX, .level = LEVEL_OK};
        uint64_t t = 0, worst = LEVEL_OK, ok_at = 0, back_at = 0;

        assert_int_equal(policy_load_buffer("leak.json", json, strlen(json), &diag, &c.p), 0);
        forecast_init(&c.fs, c.p);
        decide_init(&c.ds);
        govern_init(&c.gs);

        for (; t < 600; t++)
                chain_step(&c, t * S, 300 * MiB);
        for (uint64_t k = 0; k < leak_s; k++, t++) {
                chain_step(&c, t * S, 300 * MiB + k * rate * MiB);
                worst = MAX(worst, (uint64_t)c.level);
        }
        assert_true(c.n_lowered >= 1);
        assert_true(c.high < L);
        assert_true(worst >= LEVEL_DEGRADE);

        for (uint64_t end = t + 3600; t < end && !back_at; t++) {
                chain_step(&c, t * S, after);
                if (c.level != LEVEL_OK)
                        ok_at = 0;
                else if (!ok_at)
                        ok_at = t;
                if (ok_at && c.high == CGROUP_LIMIT_MAX)
                        back_at = t;
        }
        assert_true(ok_at > 0);
        assert_true(back_at > 0);
        assert_int_equal(c.high, CGROUP_LIMIT_MAX);
        assert_false(c.gs.touched);
        policy_free(c.p);
        return back_at - ok_at;
}

static void test_govern_chain_leak_then_recover_gives_back(void **state)
{
        (void)state;
        /*
         * Bounded: the forecast window (300 s, for the fit to show the growth gone) plus a
         * few raise steps min_interval (10 s) apart; 10 minutes is well beyond both.
         */
        /* 1 MiB/s toward 900M of 1G, then freed: back to 300M */
        assert_true(chain_leak_then_recover(1, 600, 300 * MiB) <= 600);
        /* 3 MiB/s for 100 s, then it only stops: 600M stays in use */
        assert_true(chain_leak_then_recover(3, 100, 600 * MiB) <= 600);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_govern_guard_lowers_as_eta_shrinks),
                cmocka_unit_test(test_govern_guard_respects_floor_and_ceiling),
                cmocka_unit_test(test_govern_guard_rate_limited),
                cmocka_unit_test(test_govern_guard_small_change_suppressed),
                cmocka_unit_test(test_govern_guard_raises_after_recovery),
                cmocka_unit_test(test_govern_livelock_raises_stepwise_and_escalates),
                cmocka_unit_test(test_govern_livelock_keeps_operator_original_away),
                cmocka_unit_test(test_govern_guard_holds_while_throttled),
                cmocka_unit_test(test_govern_livelock_without_psi),
                cmocka_unit_test(test_govern_fixed_and_off),
                cmocka_unit_test(test_govern_off_after_guard_gives_back),
                cmocka_unit_test(test_govern_operator_change_becomes_original),
                cmocka_unit_test(test_govern_dry_run_consistent),
                cmocka_unit_test(test_govern_reclaim_page_cache),
                cmocka_unit_test(test_govern_cause_names),
                cmocka_unit_test(test_govern_level_escalation),
                cmocka_unit_test(test_govern_chain_leak_then_recover_gives_back),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

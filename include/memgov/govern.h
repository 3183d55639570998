/* SPDX-License-Identifier: MIT */
/*
 * The governance stage (forecast → decide → govern → actuate): what memory.high should be
 * for one cgroup, decided from the policy, the sample and decide's verdict. Pure: the time
 * is the decision's, nothing is read, written, logged or allocated; the state lives in a
 * caller-owned struct govern_state of fixed size. The effect (writing the file, or asking
 * systemd) is governor/actuate.c's; `memgovctl replay` runs this same code over a trace.
 *
 * Modes (policy .memory_high.mode):
 *   off     memgov never touches memory.high (a value it had set is given back once).
 *   fixed   memory.high = .fixed (bytes, or a share of the effective limit L).
 *   guard   (the default) memory.high follows the forecast: when the ETA lower bound falls
 *           below GOVERN_ENGAGE(budget) (1.5 × budget), memory.high is put where the
 *           headroom left above it covers the budget at the pessimistic slope s:
 *
 *               high = L − s × budget,   s = max(slope, (L − envelope) / eta_lower)
 *
 *           clamped to [floor, ceiling]. It only goes down while the danger lasts. When the
 *           ETA is comfortable again (>= GOVERN_COMFORT(budget), 3 × budget, or no growth),
 *           the level is ok or warn, the forecast does not say FORECAST_THROTTLED (a level
 *           held flat by the throttle is not recovery) and no livelock episode is on, it
 *           steps up by a quarter of the gap to the ceiling per change and is then given
 *           back (the value memgov found, usually "max").
 *
 *   floor   max(policy .min, memory.min, memory.low, working set), the working set being
 *           what reclaim cannot take now, max(anon, forecast level), plus
 *           GOVERN_MARGIN_PERMILLE of L: memory.high below it would stall the workload at
 *           once rather than slow its growth (without swap, anon cannot be reclaimed).
 *   ceiling min(memory.max, L): a memory.high above it never bites.
 *
 * Every change is at least GOVERN_MIN_CHANGE_PERMILLE of L (smaller ones are dropped; giving
 * the original back always goes out) and at least the policy's .min_interval after the
 * previous one. Values are multiples of GOVERN_PAGE_BYTES (the kernel keeps pages).
 *
 * Livelock guard (guard and fixed): when the cgroup sits at memory.high (memory.current >=
 * GOVERN_PINNED_PERMILLE of it) and either PSI full avg10 >= .livelock_psi_full_avg10 or,
 * when no PSI is known, memory.events high climbs while the level grows less than
 * GOVERN_NO_PROGRESS_PERMILLE of L, for .livelock_duration: a livelock. memory.high is
 * raised by max(10 % of the gap to the ceiling, GOVERN_LIVELOCK_MIN_STEP_PERMILLE of L) per
 * step (each once the condition has held again for .livelock_duration, and at least
 * .min_interval after the previous change), and removed ("max") when a step would reach the
 * ceiling; the level is escalated to critical while the episode
 * lasts (until the condition has been clear for .livelock_duration), and the episode's
 * start is its own event (EVENT_LIVELOCK). The guard never lowers memory.high below a value
 * the livelock guard set, until it gives the original back; an original below such a value
 * (an operator's memory.high that stalled the workload) is not given back while memgov
 * governs: the raised value stays, and the exit's restore puts the original back.
 *
 * Proactive reclaim (.reclaim = true): when the ETA lower bound is below
 * GOVERN_ENGAGE(budget) or memory.high is held down, and page cache (memory.stat file) is at
 * least GOVERN_RECLAIM_FILE_PERMILLE of L, ask memory.reclaim (kernel >= 5.19) for the
 * estimated reclaimable page cache, at most GOVERN_RECLAIM_MAX_PERMILLE of L, at most once
 * per .min_interval: page cache then does not hold a throttle in place.
 *
 * The intent is assumed to be carried out: the state records the new value at once (a
 * failed write is actuate's to log; the restore record keeps the original regardless).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "memgov/decide.h"
#include "memgov/policy.h"
#include "memgov/sample.h"

#define GOVERN_PAGE_BYTES                 4096
#define GOVERN_MARGIN_PERMILLE            20  /* working-set margin above max(anon, level) */
#define GOVERN_MIN_CHANGE_PERMILLE        10  /* smaller changes are not made */
#define GOVERN_RAISE_STEP_PERMILLE        250 /* of the gap to the ceiling, per step up */
#define GOVERN_RAISE_MIN_STEP_PERMILLE    50  /* of L, per step up */
#define GOVERN_PINNED_PERMILLE            980 /* memory.current / memory.high: "at high" */
#define GOVERN_NO_PROGRESS_PERMILLE       10  /* of L: level growth that counts as progress */
#define GOVERN_LIVELOCK_STEP_PERMILLE     100 /* of the gap to the ceiling, per step */
#define GOVERN_LIVELOCK_MIN_STEP_PERMILLE 20  /* of L, per step */
#define GOVERN_RECLAIM_FILE_PERMILLE      100 /* page cache of L worth reclaiming */
#define GOVERN_RECLAIM_MAX_PERMILLE       100 /* of L, per memory.reclaim request */

/* ETA thresholds of the guard: engage below, release at or above (hysteresis between). */
#define GOVERN_ENGAGE(budget_usec)  ((budget_usec) + (budget_usec) / 2)
#define GOVERN_COMFORT(budget_usec) ((budget_usec)*3)

/* Why memory.high changes. Names appear in logs and in `memgovctl replay`. */
enum govern_cause {
        GOVERN_CAUSE_NONE,     /* "none": no change */
        GOVERN_CAUSE_GUARD,    /* "guard": lowered ahead of the limit */
        GOVERN_CAUSE_RAISE,    /* "raise": a step up as the danger passes */
        GOVERN_CAUSE_RELEASE,  /* "release": the original value given back */
        GOVERN_CAUSE_FIXED,    /* "fixed": the policy's fixed value */
        GOVERN_CAUSE_LIVELOCK, /* "livelock": raised to end a stall at memory.high */
        GOVERN_CAUSE_OFF,      /* "off": the mode is off; the original given back */
        _GOVERN_CAUSE_MAX,
        _GOVERN_CAUSE_INVALID = -1,
};

struct govern_intent {
        bool set;            /* write memory.high = high_bytes now */
        uint64_t high_bytes; /* CGROUP_LIMIT_MAX: "max" */
        enum govern_cause cause;
        bool restores_original; /* high_bytes is the value memgov found: its record may go */
        char reason[320];       /* why, in words, for the log and the journal */
        bool livelock;          /* a livelock episode began at this sample: EVENT_LIVELOCK */
        bool escalate;          /* a livelock episode is on: treat the level as critical */
        uint64_t reclaim_bytes; /* write this to memory.reclaim now; 0: nothing */
};

/* Everything the controller remembers. Fixed size, no pointers; private to govern.c. */
struct govern_state {
        bool started;            /* a sample has been seen */
        uint64_t original_bytes; /* memory.high as memgov found it (CGROUP_LIMIT_MAX: max) */
        uint64_t applied_bytes;  /* memory.high as memgov last set it, else the original */
        bool touched;            /* applied_bytes is memgov's doing (not given back) */
        bool has_change;
        uint64_t last_change_usec;
        bool has_reclaim;
        uint64_t last_reclaim_usec;
        bool comfortable;                /* guard: ETA comfortable and level <= warn ... */
        uint64_t comfortable_since_usec; /* ... since then */

        /* livelock guard */
        bool ll_holding;               /* the livelock condition holds ... */
        uint64_t ll_since_usec;        /* ... since then */
        uint64_t ll_level_bytes;       /* the level when it began to hold */
        bool ll_clearing;              /* during an episode, the condition is clear ... */
        uint64_t ll_clear_since_usec;  /* ... since then */
        bool livelock;                 /* an episode is on */
        uint64_t livelock_floor_bytes; /* the guard stays at or above this; 0: none */
        uint32_t livelock_episodes;
        uint32_t livelock_steps;

        bool has_stale; /* just given back: the old value may be read once more */
        uint64_t stale_bytes;

        uint64_t n_changes;
};

/* Start with no history: the next sample's memory.high is taken as the original. */
void govern_init(struct govern_state *st);

/*
 * One step, after decide_update() on the same sample: s is the sample (memory.high, .max,
 * .min, .low, anon, file), d the decision (its level and its forecast, whose t_usec is the
 * time). Fills *ret; ret->set says whether memory.high is to change. While memgov has not
 * changed memory.high, a new value read in s (an operator's change) becomes the original.
 * Never fails.
 */
void govern_update(struct govern_state *st, const struct policy *p, const struct sample *s,
                   const struct decision *d, struct govern_intent *ret);

/*
 * The level memgovd acts on after decide and govern: decide's level, raised to critical while
 * a livelock episode lasts (in->escalate). previous is the level acted on before this sample,
 * was_escalated the escalate flag of the previous intent. *ret_reason (optional) is set to
 * "livelock" when the escalation made the level, "livelock_over" when the level falls
 * because an episode just ended, else NULL (decide's reason stands). memgovd and
 * `memgovctl replay` both take their level from here.
 */
enum level govern_level(enum level decided, enum level previous, bool was_escalated,
                        const struct govern_intent *in, const char **ret_reason);

/* "none", "guard", "raise", …; NULL when invalid. */
const char *govern_cause_to_string(enum govern_cause c);

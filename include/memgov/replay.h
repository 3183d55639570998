/* SPDX-License-Identifier: MIT */
/*
 * Replay: the daemon's own forecast → decide → govern code run over a trace, with the
 * trace's timestamps as the clock, and scored against the trace's ground-truth OOM. Shared by
 * `memgovctl replay` and bench/forecast, so that both judge exactly what memgovd would do.
 * Pure apart from the allocation of the transitions and memory.high lists.
 *
 * The level is the one memgovd acts on (govern_level(): decide's, raised to critical while
 * govern sees a livelock at memory.high). memory.high changes are govern's intents, taken as
 * carried out; the trace's own memory.high column is what govern reads back, so a trace
 * recorded without memgov shows every change against the value it found there.
 *
 * Scoring (DESIGN.md §3, `memgovctl replay --json`):
 *   - entering a level L means rising from below L to L or above (ok → critical enters
 *     warn, degrade and critical at once); first[L] is the first such time;
 *   - lead[L] = oom − first[L], when there is an OOM and first[L] is not after it;
 *   - a false alarm at L is an entry into L that no OOM followed within the policy's
 *     horizon (forecast.horizon): no OOM at all, an OOM before it, or one further away.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memgov/decide.h"
#include "memgov/govern.h"
#include "memgov/level.h"
#include "memgov/macro.h"
#include "memgov/policy.h"
#include "memgov/trace.h"

struct replay_transition {
        uint64_t t_usec; /* the trace's clock */
        enum level from, to;
        enum decide_reason reason;
        const char *reason_name; /* "livelock", "livelock_over" (static), else NULL: reason */
        uint64_t eta_usec;       /* the forecast's point ETA then; USEC_INFINITY: none */
        uint64_t eta_lower_usec; /* its lower bound */
        uint32_t usage_permille;
};

/* A memory.high change govern would have made (DESIGN.md §3, "memory_high"). */
struct replay_memory_high {
        uint64_t t_usec;     /* the trace's clock */
        uint64_t high_bytes; /* CGROUP_LIMIT_MAX: "max" (JSON null) */
        enum govern_cause cause;
};

struct replay_result {
        size_t n_samples;
        uint64_t start_usec, duration_usec; /* first sample's time; last − first */
        bool has_oom;
        uint64_t oom_usec; /* the trace's clock */
        bool has_first[_LEVEL_MAX];
        uint64_t first_usec[_LEVEL_MAX]; /* [LEVEL_WARN..LEVEL_CRITICAL] */
        unsigned entries[_LEVEL_MAX];
        unsigned false_alarms[_LEVEL_MAX];
        struct replay_transition *transitions; /* owned */
        size_t n_transitions;
        struct replay_memory_high *memory_high; /* owned */
        size_t n_memory_high;
        uint64_t n_updates; /* forecast_update + decide_update calls (one per sample) */
};

/*
 * Run policy p over trace t. Fills *ret (clear it with replay_result_clear()). Returns 0 or
 * -ENOMEM. A trace without samples gives an empty result.
 */
int replay_run(const struct policy *p, const struct trace *t, struct replay_result *ret);

/* lead[l] in *ret_usec when there is one (an OOM, and level l entered not after it). */
bool replay_lead(const struct replay_result *r, enum level l, uint64_t *ret_usec);

/* Free the lists and zero *r. */
void replay_result_clear(struct replay_result *r);

/*
 * Score one level's entry times against an OOM: the number of entries that no OOM followed
 * within horizon_usec. Shared with the benchmark's peer rules.
 */
unsigned replay_count_false_alarms(const uint64_t *entries_usec, size_t n, bool has_oom,
                                   uint64_t oom_usec, uint64_t horizon_usec);

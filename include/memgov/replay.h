/* SPDX-License-Identifier: MIT */
/*
 * Replay: the daemon's own forecast → decide code run over a trace, with the trace's
 * timestamps as the clock, and scored against the trace's ground-truth OOM. Shared by
 * `memgovctl replay` and bench/forecast, so that both judge exactly what memgovd would do.
 * Pure apart from the allocation of the transitions list.
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
#include "memgov/level.h"
#include "memgov/macro.h"
#include "memgov/policy.h"
#include "memgov/trace.h"

struct replay_transition {
        uint64_t t_usec; /* the trace's clock */
        enum level from, to;
        enum decide_reason reason;
        uint64_t eta_usec;       /* the forecast's point ETA then; USEC_INFINITY: none */
        uint64_t eta_lower_usec; /* its lower bound */
        uint32_t usage_permille;
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
        uint64_t n_updates; /* forecast_update + decide_update calls (one per sample) */
};

/*
 * Run policy p over trace t. Fills *ret (clear it with replay_result_clear()). Returns 0 or
 * -ENOMEM. A trace without samples gives an empty result.
 */
int replay_run(const struct policy *p, const struct trace *t, struct replay_result *ret);

/* lead[l] in *ret_usec when there is one (an OOM, and level l entered not after it). */
bool replay_lead(const struct replay_result *r, enum level l, uint64_t *ret_usec);

/* Free the transitions and zero *r. */
void replay_result_clear(struct replay_result *r);

/*
 * Score one level's entry times against an OOM: the number of entries that no OOM followed
 * within horizon_usec. Shared with the benchmark's peer rules.
 */
unsigned replay_count_false_alarms(const uint64_t *entries_usec, size_t n, bool has_oom,
                                   uint64_t oom_usec, uint64_t horizon_usec);

/* SPDX-License-Identifier: MIT */
/*
 * bench/forecast: the forecast-quality benchmark. A seeded generator of synthetic traces with
 * ground truth (gen.c), the peer rules memgov is compared with (peers.c), and the runner that
 * scores everything on the same corpus and prints the table (main.c).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memgov/level.h"
#include "memgov/policy.h"
#include "memgov/trace.h"

/* The families of synthetic traces (the list). */
enum family {
        FAMILY_LINEAR_LEAK,
        FAMILY_GC_LEAK,
        FAMILY_SAWTOOTH,
        FAMILY_BURSTS,
        FAMILY_STEPS,
        FAMILY_STEP_LEAK,
        FAMILY_EXPONENTIAL,
        FAMILY_LEAK_PLATEAU,
        FAMILY_PAGE_CACHE,
        FAMILY_SLOW_LEAK,
        FAMILY_THROTTLED_LEAK,
        FAMILY_THROTTLED_STOP,
        _FAMILY_MAX,
};

const char *family_to_string(enum family f);

/* How many traces of each family the corpus has (full size). */
extern const unsigned family_counts[_FAMILY_MAX];

/*
 * Write trace number `index` of `family` (deterministic in seed, family and index) as CSV to
 * path. Returns 0 or -errno.
 */
int gen_write_trace(uint64_t seed, enum family family, unsigned index, const char *path);

/* The result of one rule (memgov or a peer) on one trace. */
struct rule_result {
        bool has_oom;
        uint64_t oom_usec;
        uint64_t duration_usec;
        /*
         * Lead per level: how long before the OOM the level had been standing without a break
         * (0: not standing at the OOM).
         */
        uint64_t lead_usec[_LEVEL_MAX];
        /* Entries per level that no OOM followed within the horizon. */
        unsigned false_alarms[_LEVEL_MAX];
};

/*
 * Score a per-sample level sequence (levels[i] for t->samples[i]) against the trace's OOM,
 * with the horizon for false alarms.
 */
void score_levels(const struct trace *t, const enum level *levels, uint64_t horizon_usec,
                  struct rule_result *ret);

/* The peer rules. Each fills levels[i] for every sample of t. */
enum peer {
        PEER_STATIC, /* memory.current >= 90% of the limit */
        PEER_OOMD,   /* oomd: current / decaying average >= 1.25 (decay 4, every 5 s) */
        PEER_HOLMES, /* holmes mem rule: min 10%, diff 25%, abs 80% (every 5 s, ring of 10) */
        PEER_LSQ60,  /* least squares over the last 60 s of memory.current, policy ETAs */
        _PEER_MAX,
};

const char *peer_to_string(enum peer p);
void peer_run(enum peer peer, const struct policy *p, const struct trace *t, enum level *levels);

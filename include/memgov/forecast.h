/* SPDX-License-Identifier: MIT */
/*
 * The forecast stage (probe → forecast → decide): from the stream of samples of one cgroup,
 * the memory that can cause an OOM, how fast it grows, and when it reaches the limit the
 * OOM killer enforces, with a confidence band; plus PSI and memory.events rates derived
 * from cumulative counters, so that a trace replays exactly as the daemon saw it.
 *
 * Pure: no I/O, no clock (time comes from sample->t_usec), no logging, no allocation. All
 * state is in a caller-owned struct forecast_state of fixed size; the cost of one update is
 * bounded whatever the policy's window (see "Cost" below).
 *
 * The model, in short (docs/forecast.md has the long form and the reasons):
 *
 *   level      current − reclaimable page cache: inactive_file + active_file/2 − dirty −
 *              writeback with the whole memory.stat (the daemon), 3/4 of `file` with only
 *              that (traces; `file` also counts shmem and dirty pages), else current.
 *   envelope   the level's maximum per time bucket (the window, at least 20 sample intervals,
 *              cut in 30); with a GC sawtooth (sharp drops at most 2 min apart), the maximum
 *              over ~1.25 cycles: the fit follows the peaks, which meet the limit, not the wave.
 *   fit        least squares of the envelope since the last restart; its error widened for
 *              correlated residuals. When a bucket closes, the fit restarts where two lines
 *              explain the window far better than one (a step, a burst gone, growth stopped,
 *              slowed or taken off). No ETA before half a window of history, nor from fewer
 *              than three envelope spans of points.
 *   growth     significant at 3 standard errors; also the recent fifth of the window when it
 *              grows significantly faster (acceleration). A lower bound counts only when the
 *              growth behind it has been seen for at least half of it (a Copernican
 *              persistence prior), and not when the newest points fall below its line;
 *              the accelerated rate is as old as the recent part at most. The age behind
 *              the lower bound is reported (growth_age_usec) for decide's critical rule.
 *   ETA        point: the fitted slope from the envelope now; lower bound (what decide uses):
 *              the slope's upper 95% from the peaks' upper prediction band; upper bound: the
 *              slope's lower 95%. Page cache grows only until memory.current meets the limit:
 *              after that, only what is not page cache grows toward the OOM.
 *   throttled  near memory.high, while high events climb and (where known) PSI shows tasks
 *              stalling, the lower bound keeps the slope from before the throttling began.
 *   PSI        some/full avg10: the kernel's own value when the sample carries it
 *              (SAMPLE_HAS_PSI_AVG), else an exponential average of the total_usec deltas
 *              with the kernel's 10 s time constant (forecast.psi_source says which).
 *   events     memory.events high and max increase rates, per second, averaged with the
 *              same 10 s time constant; oom_kill increases are reported as they happen.
 *
 * Cost: O(FORECAST_BUCKETS) per sample (fits over at most 32 points) plus
 * O(FORECAST_BUCKETS × envelope span) when a bucket closes, whatever the window; about six
 * thousand instructions per update (bench/forecast/instructions.sh).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "memgov/policy.h"
#include "memgov/sample.h"

/* Buckets in the ring: the window is cut into FORECAST_BUCKETS - 2 of them. */
#define FORECAST_BUCKETS 32

/* Where the PSI averages in a struct forecast come from. */
enum forecast_psi_source {
        FORECAST_PSI_NONE,   /* the samples carry no pressure: the averages are 0 */
        FORECAST_PSI_KERNEL, /* the kernel's avg10 as read (SAMPLE_HAS_PSI_AVG) */
        FORECAST_PSI_TOTALS, /* derived from total_usec deltas, 10 s exponential average */
        _FORECAST_PSI_SOURCE_MAX,
};

/* What a struct forecast's flags say about how it was made. */
enum {
        FORECAST_WARMING_UP = 1u << 0,    /* less than half a window of history: no ETA yet */
        FORECAST_THROTTLED = 1u << 1,     /* memory.high throttling: pre-throttle slope kept */
        FORECAST_ACCELERATING = 1u << 2,  /* recent growth significantly faster than the fit's */
        FORECAST_SAWTOOTH = 1u << 3,      /* a cycle of sharp drops was detected (GC) */
        FORECAST_RESTARTED = 1u << 4,     /* the fit restarted at this sample (regime change) */
        FORECAST_NO_LIMIT = 1u << 5,      /* no limit known: no ETA */
        FORECAST_SHORT_HISTORY = 1u << 6, /* growth seen, too briefly to extrapolate: no ETA */
};

struct forecast {
        uint64_t t_usec; /* the sample's time */
        bool known;      /* false while warming up: slope and ETAs are not estimates yet */

        uint64_t current_bytes;     /* memory.current as sampled */
        uint64_t limit_bytes;       /* the effective limit; CGROUP_LIMIT_MAX when none is known */
        uint64_t reclaimable_bytes; /* estimated reclaimable page cache */
        uint64_t level_bytes;       /* current − reclaimable: the memory that can cause an OOM */
        uint64_t envelope_bytes;    /* the fitted peak level now, where the ETA starts from */
        uint32_t usage_permille;    /* level / limit, in ‰ (may exceed 1000); 0 without limit */
        /*
         * With a sawtooth (cycle_usec > 0): the highest level over the last 1.25 cycles / limit,
         * in ‰; else usage_permille. A collector's trough is not a recovery: decide keeps a
         * level entered by usage on this.
         */
        uint32_t cycle_peak_permille;

        double slope_bytes_per_s; /* growth of the level's envelope (point; may be < 0) */
        uint64_t eta_usec;        /* time until the limit (point); USEC_INFINITY: not growing */
        uint64_t eta_lower_usec;  /* pessimistic bound (what decide uses) */
        uint64_t eta_upper_usec;  /* optimistic bound */
        /*
         * How long the growth behind eta_lower_usec has been seen (the persistence rule's
         * age); 0 when eta_lower_usec is USEC_INFINITY, USEC_INFINITY under throttling (the
         * demand held back is not an observation of its end).
         */
        uint64_t growth_age_usec;

        enum forecast_psi_source psi_source;
        double psi_some_avg10_pct; /* 0..100 */
        double psi_full_avg10_pct;
        double high_events_per_s; /* memory.events high, increase rate */
        double max_events_per_s;  /* memory.events max, increase rate */
        uint64_t oom_kills;       /* memory.events oom_kill increase since the previous sample */

        uint64_t cycle_usec;  /* detected sawtooth period; 0: none */
        uint64_t regime_usec; /* how long the current regime (fit) has lasted */
        unsigned flags;       /* FORECAST_* */
};

/* One time bucket of the envelope: the maximum of each series within it. */
struct forecast_bucket {
        uint64_t t_start_usec;
        uint64_t t_peak_usec; /* when the level's maximum was seen */
        double level_max;     /* bytes */
        double squeeze_max;   /* level minus what the kernel squeezes last (see forecast.c) */
        double current_max;   /* memory.current */
        uint32_t n;           /* samples in it */
};

/* One point of the envelope: the maxima over the envelope span ending at a bucket. */
struct forecast_point {
        uint64_t t_usec; /* when the level's maximum was seen */
        double level;
        double squeeze;
        double current;
};

/* A least-squares line of one series against time (seconds, relative to now). */
struct forecast_fit {
        bool valid;
        uint32_t n;
        double slope;     /* bytes/s */
        double se;        /* standard error of the slope, bytes/s */
        double at_origin; /* fitted value now */
        double mean_x;    /* mean time of the points, seconds relative to now (<= 0) */
        double resid_sd;  /* standard deviation of the residuals, bytes */
        double dof;       /* effective degrees of freedom */
};

/*
 * Everything the forecast remembers between samples. Fixed size (a few KiB), no pointers:
 * copy it freely. Fields are private to governor/forecast.c.
 */
struct forecast_state {
        /* from the policy */
        uint64_t policy_window_usec; /* forecast.window as the policy says */
        uint64_t window_usec;        /* the window used: at least 20 sample intervals */
        uint64_t bucket_usec;        /* window / (FORECAST_BUCKETS - 2) */
        uint64_t sample_interval_usec;

        /* the bucket ring: oldest at head; the newest (count - 1) is open */
        struct forecast_bucket buckets[FORECAST_BUCKETS];
        uint32_t head, count;
        uint64_t fit_start_usec;     /* the last restart */
        uint64_t growth_start_usec;  /* the last restart that growth did not go on across */
        uint64_t history_start_usec; /* the first sample since init or a reset */
        uint64_t n_samples;          /* since init */

        /* the envelope of the closed buckets, oldest first, rebuilt when a bucket closes */
        struct forecast_point env[FORECAST_BUCKETS];
        uint32_t n_env;

        /* the previous sample */
        bool has_prev;
        uint64_t prev_t_usec;
        double prev_level;
        struct memory_events prev_events;
        uint64_t prev_psi_some_usec, prev_psi_full_usec;
        bool prev_has_events, prev_has_psi_some, prev_has_psi_full;

        /* noise and sawtooth */
        double step_scale;          /* robust mean of |level change| between samples, bytes */
        double drop_run;            /* bytes fallen in the current run of falling samples */
        double drop_run_top;        /* the level where that run began */
        bool drop_counted;          /* that run already counted as a drop */
        uint64_t last_drop_usec;    /* the last sharp drop (GC); 0: none */
        uint64_t cycle_usec;        /* median of the last intervals between drops; 0: none */
        uint64_t intervals_usec[3]; /* the last intervals between drops, a ring */
        uint32_t n_drops;           /* drops since the cycle was last lost */
        uint32_t envelope_span;     /* buckets per envelope maximum (>= 1) */

        /* 10 s exponential averages */
        double psi_some_avg10, psi_full_avg10; /* percent, from totals */
        double high_rate, max_rate;            /* events per second */

        /* memory.high throttling */
        bool throttled;
        double pre_throttle_slope; /* the lower-bound slope when throttling began, bytes/s */
        double last_slope_hi;      /* the lower-bound slope of the previous update */
};

/*
 * Reset st for a new instance of policy p: keeps p's window and sample interval (copied;
 * p is not referenced afterwards). Any history is forgotten.
 */
void forecast_init(struct forecast_state *st, const struct policy *p);

/*
 * The policy changed (reload): keep the history when the window is the same, else start
 * over as forecast_init() does.
 */
void forecast_set_policy(struct forecast_state *st, const struct policy *p);

/*
 * Feed one sample (in time order) and return the forecast as of it in *ret. A sample whose
 * t_usec is not after the previous one only refreshes the instantaneous figures (level,
 * usage) and leaves the history alone. Never fails.
 */
void forecast_update(struct forecast_state *st, const struct sample *s, struct forecast *ret);

/* "none", "kernel", "totals". */
const char *forecast_psi_source_to_string(enum forecast_psi_source s);

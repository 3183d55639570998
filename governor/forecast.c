/* SPDX-License-Identifier: MIT */
/*
 * forecast: the stage between probe and decide. Turns each sample into the level that can
 * cause an OOM, its growth and the time until it meets the limit (include/memgov/forecast.h
 * states the model; docs/forecast.md explains the choices). Pure: time comes from samples.
 *
 * Longer than most files (~900 lines) on purpose: the model is one piece. Its parts (the
 * envelope, the fit, the restarts, the persistence rule, the page-cache squeeze, the
 * throttling latch) share one state and each exists to keep another from raising false
 * alarms; read apart they would hide why each is there.
 */
#include <math.h>
#include <string.h>

#include "memgov/forecast.h"
#include "memgov/macro.h"

/*
 * Growth counts when the slope exceeds this many standard errors (scaled up for short fits
 * like Student's t). Stricter than the 2 of the band: the test runs at every sample for as
 * long as the daemon runs, and an alarm from noise is what memgov must not raise.
 */
#define GROWTH_SIGMAS 3.0

/*
 * A lower bound counts only when the growth behind it has been seen for at least 1/this of
 * it (see forecast_update()).
 */
#define ETA_TRUST_RATIO 2.0

/* Exponential averages of PSI and event rates: the kernel's avg10 time constant. */
#define AVG10_TAU_S 10.0

/* The window spans at least this many sample intervals. */
#define WINDOW_MIN_SAMPLES 20

/* The fit needs this many envelope points (buckets) before its slope is an estimate. */
#define FIT_MIN_POINTS 4

/* A change-point restart keeps at least this many buckets on each side. */
#define CP_MIN_SEGMENT 3

/*
 * Two lines must leave less than this share of one line's squared residuals to restart the
 * fit: a regime change, not a wiggle.
 */
#define CP_GAIN 0.25

/* A GC drop: a fall of at least this share of the level, and 5 noise steps. */
#define DROP_MIN_SHARE   0.03
#define DROP_NOISE_STEPS 5.0

/*
 * The longest interval between drops that counts as a garbage collector's cycle: Go forces a
 * collection every 2 minutes at least (runtime.forcegcperiod); JVM young collections and
 * others come more often. Longer intervals are bursts receding.
 */
#define CYCLE_MAX_USEC (120 * USEC_PER_SEC)

/* The envelope spans this many detected cycles. */
#define ENVELOPE_CYCLES 1.25

/*
 * Throttled: usage within 1/32 (3%) of memory.high while memory.events high climbs at least
 * this fast (events/s, 10 s average) and, where PSI is known, tasks stall on memory at least
 * this share of the time (some avg10, %): the kernel's penalty for charges over high is a
 * memory stall. Charges over high from a service that has stopped growing (churn) stall
 * little.
 */
#define THROTTLE_MIN_RATE     0.05
#define THROTTLE_MIN_PSI_SOME 5.0

static double usec_to_s(uint64_t usec)
{
        return (double)usec / (double)USEC_PER_SEC;
}

static uint64_t s_to_usec(double s)
{
        if (!(s >= 0))
                return 0;
        if (s >= 1e12 || isinf(s))
                return USEC_INFINITY;
        return (uint64_t)(s * (double)USEC_PER_SEC);
}

static uint64_t sub_sat(uint64_t a, uint64_t b)
{
        return a > b ? a - b : 0;
}

/*
 * Student's t 97.5% quantile for nu degrees of freedom, close enough (within 10% for nu >= 2)
 * to make short fits humble without a table.
 */
static double t_quantile(double nu)
{
        if (nu < 2)
                nu = 2;
        return 1.96 + 2.4 / nu + 3.0 / (nu * nu);
}

const char *forecast_psi_source_to_string(enum forecast_psi_source s)
{
        static const char *const names[_FORECAST_PSI_SOURCE_MAX] = {
                [FORECAST_PSI_NONE] = "none",
                [FORECAST_PSI_KERNEL] = "kernel",
                [FORECAST_PSI_TOTALS] = "totals",
        };
        if ((unsigned)s >= _FORECAST_PSI_SOURCE_MAX)
                return NULL;
        return names[s];
}

static void forget_history(struct forecast_state *st)
{
        st->head = st->count = 0;
        st->n_env = 0;
        st->last_drop_usec = 0;
        st->cycle_usec = 0;
        st->n_drops = 0;
        st->drop_run = 0;
        st->envelope_span = 1;
        st->throttled = false;
        st->pre_throttle_slope = 0;
        st->last_slope_hi = 0;
}

void forecast_init(struct forecast_state *st, const struct policy *p)
{
        *st = (struct forecast_state){};
        st->window_usec =
                p && p->forecast_window_usec ? p->forecast_window_usec : 5 * USEC_PER_MINUTE;
        st->sample_interval_usec =
                p && p->sample_interval_usec ? p->sample_interval_usec : USEC_PER_SEC;
        st->policy_window_usec = st->window_usec;
        st->bucket_usec = MAX(st->window_usec / (FORECAST_BUCKETS - 2), USEC_PER_MSEC);
        st->envelope_span = 1;
}

/*
 * A regression over fewer than WINDOW_MIN_SAMPLES points says little: when samples come
 * further apart than the policy's window allows for (a trace recorded every 30 s replayed
 * with a 5 min window), widen the window. Decided on the first intervals seen, so that
 * little history is lost; later changes of pace are left alone.
 */
static void fit_window_to_interval(struct forecast_state *st, uint64_t interval_usec)
{
        if (st->n_samples > 3)
                return;
        uint64_t want = WINDOW_MIN_SAMPLES * interval_usec;
        if (want <= st->window_usec)
                return;
        st->window_usec = want;
        st->bucket_usec = MAX(want / (FORECAST_BUCKETS - 2), USEC_PER_MSEC);
        forget_history(st);
}

void forecast_set_policy(struct forecast_state *st, const struct policy *p)
{
        struct forecast_state fresh;

        forecast_init(&fresh, p);
        /* compared with the policy's window: the state's may have been widened (see above) */
        if (fresh.policy_window_usec == st->policy_window_usec) {
                st->sample_interval_usec = fresh.sample_interval_usec;
                return;
        }
        *st = fresh;
}

/*
 * The memory that can cause an OOM, and the part of it the kernel squeezes only after page
 * cache. Reclaimable page cache: with the whole memory.stat, the inactive file LRU plus half
 * the active one (the other half is the working set the service would thrash on), minus
 * dirty and writeback pages; with only `file` (a trace), three quarters of it, since `file`
 * also counts shmem and dirty pages that cannot be dropped.
 *
 * *ret_squeeze is the level without any page cache at all: page cache grows only until
 * memory.current meets the limit, and from there on only what is not page cache can grow.
 */
static void estimate_level(const struct sample *s, double *ret_level, double *ret_squeeze,
                           double *ret_reclaimable)
{
        uint64_t current = s->current_bytes, reclaimable = 0, squeezable = 0;

        if (s->has & SAMPLE_HAS_STAT) {
                const struct memory_stat *m = &s->stat;
                uint64_t lru = m->inactive_file + m->active_file;

                reclaimable = sub_sat(m->inactive_file + m->active_file / 2,
                                      m->file_dirty + m->file_writeback);
                squeezable = lru;
        } else if (s->has & SAMPLE_HAS_FILE) {
                reclaimable = s->file_bytes / 4 * 3;
                squeezable = s->file_bytes;
        }
        reclaimable = MIN(reclaimable, current);
        squeezable = MIN(MAX(squeezable, reclaimable), current);

        *ret_reclaimable = (double)reclaimable;
        *ret_level = (double)(current - reclaimable);
        *ret_squeeze = (double)(current - squeezable);
}

static double avg10_step(double avg, double value, double dt_s)
{
        double a = exp(-dt_s / AVG10_TAU_S);
        return avg * a + value * (1 - a);
}

/* PSI and memory.events: derived from the cumulative counters of two samples in a row. */
static void update_counters(struct forecast_state *st, const struct sample *s, double dt_s,
                            struct forecast *f)
{
        bool has_some = s->has & SAMPLE_HAS_PSI_SOME, has_full = s->has & SAMPLE_HAS_PSI_FULL;
        bool has_events = s->has & SAMPLE_HAS_EVENTS;

        if (dt_s > 0 && has_some && st->prev_has_psi_some &&
            s->pressure.some.total_usec >= st->prev_psi_some_usec) {
                double pct = (double)(s->pressure.some.total_usec - st->prev_psi_some_usec) /
                             (dt_s * 1e6) * 100;
                st->psi_some_avg10 = avg10_step(st->psi_some_avg10, MIN(pct, 100.0), dt_s);
        }
        if (dt_s > 0 && has_full && st->prev_has_psi_full &&
            s->pressure.full.total_usec >= st->prev_psi_full_usec) {
                double pct = (double)(s->pressure.full.total_usec - st->prev_psi_full_usec) /
                             (dt_s * 1e6) * 100;
                st->psi_full_avg10 = avg10_step(st->psi_full_avg10, MIN(pct, 100.0), dt_s);
        }

        if (dt_s > 0 && has_events && st->prev_has_events) {
                const struct memory_events *e = &s->events, *p = &st->prev_events;
                /* A counter that went back belongs to a re-created cgroup: no increase. */
                double high = e->high >= p->high ? (double)(e->high - p->high) : 0;
                double max = e->max >= p->max ? (double)(e->max - p->max) : 0;

                st->high_rate = avg10_step(st->high_rate, high / dt_s, dt_s);
                st->max_rate = avg10_step(st->max_rate, max / dt_s, dt_s);
                if (e->oom_kill > p->oom_kill)
                        f->oom_kills = e->oom_kill - p->oom_kill;
        }

        st->prev_has_psi_some = has_some;
        st->prev_psi_some_usec = s->pressure.some.total_usec;
        st->prev_has_psi_full = has_full;
        st->prev_psi_full_usec = s->pressure.full.total_usec;
        st->prev_has_events = has_events;
        st->prev_events = s->events;
}

static uint64_t median3(uint64_t a, uint64_t b, uint64_t c)
{
        return MAX(MIN(a, b), MIN(MAX(a, b), c));
}

/*
 * Sawtooth detection: a garbage collector frees memory in sharp drops, one per cycle. A
 * drop is a run of falling samples whose total exceeds both a share of the level and a few
 * noise steps (a robust average of |change| between samples, clipped so that the drops
 * themselves do not inflate it). The cycle is the median of the last three intervals between
 * drops (the longer of two, with two), so that one stray drop does not move it; the envelope
 * then takes the maximum over ~1.25 cycles so that it follows the peaks.
 */
static void update_cycle(struct forecast_state *st, uint64_t t_usec, double level)
{
        double d = level - st->prev_level, ad = fabs(d);

        if (st->step_scale <= 0)
                st->step_scale = ad;
        else
                st->step_scale = 0.95 * st->step_scale + 0.05 * MIN(ad, 2.5 * st->step_scale);

        if (d < 0) {
                if (st->drop_run == 0)
                        st->drop_run_top = st->prev_level;
                st->drop_run += -d;
                double thr =
                        MAX(DROP_NOISE_STEPS * st->step_scale, DROP_MIN_SHARE * st->drop_run_top);
                if (!st->drop_counted && st->drop_run > thr) {
                        st->drop_counted = true;
                        uint64_t gap = st->last_drop_usec > 0 ? t_usec - st->last_drop_usec : 0;
                        if (gap > CYCLE_MAX_USEC) {
                                /* drops this far apart are bursts ending, not a collector */
                                st->cycle_usec = 0;
                                st->n_drops = 0;
                        } else if (st->last_drop_usec > 0 && gap >= 2 * st->sample_interval_usec) {
                                uint64_t *iv = st->intervals_usec;
                                iv[st->n_drops % 3] = t_usec - st->last_drop_usec;
                                st->n_drops++;
                                if (st->n_drops >= 3)
                                        st->cycle_usec = median3(iv[0], iv[1], iv[2]);
                                else if (st->n_drops == 2)
                                        st->cycle_usec = MAX(iv[0], iv[1]);
                                else
                                        st->cycle_usec = iv[0];
                        }
                        st->last_drop_usec = t_usec;
                }
        } else {
                st->drop_run = 0;
                st->drop_counted = false;
        }

        /* The sawtooth stopped: four cycles without a drop. */
        if (st->cycle_usec && t_usec - st->last_drop_usec > 4 * st->cycle_usec) {
                st->cycle_usec = 0;
                st->n_drops = 0;
        }

        uint32_t span = 1;
        if (st->cycle_usec) {
                double b = ENVELOPE_CYCLES * (double)st->cycle_usec / (double)st->bucket_usec;
                span = (uint32_t)MIN(ceil(b), (double)(FORECAST_BUCKETS - 2) / 3);
                span = MAX(span, 1u);
        }
        st->envelope_span = span;
}

static struct forecast_bucket *bucket_at(struct forecast_state *st, uint32_t i)
{
        return &st->buckets[(st->head + i) % FORECAST_BUCKETS];
}

/* Drop the k oldest buckets. */
static void drop_oldest(struct forecast_state *st, uint32_t k)
{
        k = MIN(k, st->count);
        st->head = (st->head + k) % FORECAST_BUCKETS;
        st->count -= k;
}

/*
 * The envelope point of closed bucket i (0: oldest): the maximum of each series over the
 * envelope span ending at i, at the time of the level's peak.
 */
static void envelope_point(struct forecast_state *st, uint32_t i, struct forecast_point *ret)
{
        uint32_t first = i + 1 >= st->envelope_span ? i + 1 - st->envelope_span : 0;
        const struct forecast_bucket *b = bucket_at(st, i);
        struct forecast_point p = {
                .t_usec = b->t_peak_usec,
                .level = b->level_max,
                .squeeze = b->squeeze_max,
                .current = b->current_max,
        };

        for (uint32_t j = first; j < i; j++) {
                const struct forecast_bucket *o = bucket_at(st, j);
                if (o->level_max > p.level) {
                        p.level = o->level_max;
                        p.t_usec = o->t_peak_usec;
                }
                p.squeeze = MAX(p.squeeze, o->squeeze_max);
                p.current = MAX(p.current, o->current_max);
        }
        *ret = p;
}

static void rebuild_envelope(struct forecast_state *st)
{
        uint32_t closed = st->count > 0 ? st->count - 1 : 0;

        for (uint32_t i = 0; i < closed; i++)
                envelope_point(st, i, &st->env[i]);
        st->n_env = closed;
}

/*
 * Least squares of y on x (seconds, relative to now). Two passes for accuracy with byte-sized
 * values. inflate scales the standard error for points that are not independent (an
 * envelope repeats its maximum over its span).
 */
static void ols(const double *x, const double *y, uint32_t n, double inflate,
                struct forecast_fit *ret)
{
        double mx = 0, my = 0, sxx = 0, sxy = 0, syy = 0;

        *ret = (struct forecast_fit){};
        if (n < 3)
                return;
        for (uint32_t i = 0; i < n; i++) {
                mx += x[i];
                my += y[i];
        }
        mx /= n;
        my /= n;
        for (uint32_t i = 0; i < n; i++) {
                double dx = x[i] - mx, dy = y[i] - my;
                sxx += dx * dx;
                sxy += dx * dy;
                syy += dy * dy;
        }
        if (!(sxx > 0))
                return;

        double b = sxy / sxx, sse = MAX(syy - b * sxy, 0.0);

        /*
         * Residuals that follow each other (a GC phase, a burst, the envelope holding a peak)
         * carry less information than their number says: scale the error by the usual AR(1)
         * factor sqrt((1 + rho) / (1 - rho)) of the lag-1 autocorrelation rho.
         */
        double r_prev = 0, c0 = 0, c1 = 0;
        for (uint32_t i = 0; i < n; i++) {
                double r = y[i] - my - b * (x[i] - mx);
                c0 += r * r;
                if (i > 0)
                        c1 += r * r_prev;
                r_prev = r;
        }
        double rho = c0 > 0 ? MIN(MAX(c1 / c0, 0.0), 0.9) : 0;
        inflate = MAX(inflate, sqrt((1 + rho) / (1 - rho)));

        ret->valid = true;
        ret->n = n;
        ret->slope = b;
        ret->se = sqrt(sse / (n - 2) / sxx) * inflate;
        ret->at_origin = my - b * mx;
        ret->mean_x = mx;
        ret->resid_sd = sqrt(sse / (n - 2));
        ret->dof = MAX((double)n / inflate / inflate - 2, 1.0);
}

/*
 * At each closed bucket: would two lines explain the envelope much better than one? Then
 * the regime changed (a step, a burst that receded, growth that stopped or took off) and the
 * fit restarts where the second line begins. O(n) with prefix sums.
 */
static void maybe_restart(struct forecast_state *st, uint64_t now_usec, struct forecast *f)
{
        uint32_t n = st->n_env;
        double px[FORECAST_BUCKETS + 1], py[FORECAST_BUCKETS + 1], pxx[FORECAST_BUCKETS + 1],
                pxy[FORECAST_BUCKETS + 1], pyy[FORECAST_BUCKETS + 1];
        double mx = 0, my = 0;

        /*
         * Each side needs CP_MIN_SEGMENT independent points: with an envelope over several
         * buckets (a sawtooth), that many spans, since neighbours share their maximum.
         */
        uint32_t min_seg = CP_MIN_SEGMENT * st->envelope_span;
        if (n < 2 * min_seg)
                return;

        for (uint32_t i = 0; i < n; i++) {
                mx += usec_to_s(st->env[i].t_usec - st->env[0].t_usec);
                my += st->env[i].level;
        }
        mx /= n;
        my /= n;
        px[0] = py[0] = pxx[0] = pxy[0] = pyy[0] = 0;
        for (uint32_t i = 0; i < n; i++) {
                double x = usec_to_s(st->env[i].t_usec - st->env[0].t_usec) - mx;
                double y = st->env[i].level - my;
                px[i + 1] = px[i] + x;
                py[i + 1] = py[i] + y;
                pxx[i + 1] = pxx[i] + x * x;
                pxy[i + 1] = pxy[i] + x * y;
                pyy[i + 1] = pyy[i] + y * y;
        }

        /* One line through points [a, b): squared residuals, slope, slope's standard error. */
        struct seg {
                double sse, slope, se;
        };
#define SEG(a, b)                                                                                  \
        ({                                                                                         \
                double _m = (double)((b) - (a));                                                   \
                double _sx = px[b] - px[a], _sy = py[b] - py[a];                                   \
                double _sxx = pxx[b] - pxx[a] - _sx * _sx / _m;                                    \
                double _sxy = pxy[b] - pxy[a] - _sx * _sy / _m;                                    \
                double _syy = pyy[b] - pyy[a] - _sy * _sy / _m;                                    \
                struct seg _s = {.sse = MAX(_syy, 0.0)};                                           \
                if (_sxx > 0) {                                                                    \
                        _s.slope = _sxy / _sxx;                                                    \
                        _s.sse = MAX(_syy - _s.slope * _sxy, 0.0);                                 \
                        _s.se = _m > 2 ? sqrt(_s.sse / (_m - 2) / _sxx) : INFINITY;                \
                }                                                                                  \
                _s;                                                                                \
        })

        double one = SEG(0, n).sse;
        /*
         * The noise floor: one line already fits within the noise of a bucket maximum (about
         * half the typical step between samples), or within 0.1% of the level, and there is
         * nothing to improve on.
         */
        double floor_sd = MAX(0.5 * st->step_scale, 1e-3 * fabs(my));
        if (one <= 4.0 * n * floor_sd * floor_sd)
                return;

        double best = one;
        uint32_t best_j = 0;
        for (uint32_t j = min_seg; j + min_seg <= n; j++) {
                double two = SEG(0, j).sse + SEG(j, n).sse;
                if (two < best) {
                        best = two;
                        best_j = j;
                }
        }
        if (best_j == 0 || best >= CP_GAIN * one)
                return;

        struct seg left = SEG(0, best_j), right = SEG(best_j, n);
#undef SEG

        /*
         * The new regime must be one: a right segment that still straddles the change (a
         * step one bucket ago) fits its own line badly; wait for the buckets after it.
         */
        double var_right = right.sse / (n - best_j - 2), var_left = left.sse / (best_j - 2);
        if (var_right > 4 * MAX(var_left, floor_sd * floor_sd))
                return;

        /* env[j] is closed bucket j: drop the buckets before it. */
        drop_oldest(st, best_j);
        st->fit_start_usec = bucket_at(st, 0)->t_start_usec;
        /*
         * Growth that goes on across the change (slower or faster, e.g. page cache squeezed
         * while anon still grows) keeps its age; anything else starts a new one.
         */
        if (!(left.slope > 2 * left.se && right.slope > 2 * right.se))
                st->growth_start_usec = st->fit_start_usec;
        rebuild_envelope(st);
        f->flags |= FORECAST_RESTARTED;
        (void)now_usec;
}

static void close_bucket(struct forecast_state *st, uint64_t now_usec, struct forecast *f)
{
        rebuild_envelope(st);
        maybe_restart(st, now_usec, f);
}

/* Put one sample into the open bucket, opening (and closing) buckets as time goes. */
static void ingest(struct forecast_state *st, uint64_t t_usec, double level, double squeeze,
                   double current, struct forecast *f)
{
        struct forecast_bucket *open = st->count > 0 ? bucket_at(st, st->count - 1) : NULL;

        if (!open || t_usec >= open->t_start_usec + st->bucket_usec) {
                uint64_t start = t_usec;

                if (!open)
                        st->fit_start_usec = st->history_start_usec = st->growth_start_usec =
                                t_usec;

                if (open) {
                        uint64_t k = (t_usec - open->t_start_usec) / st->bucket_usec;
                        start = open->t_start_usec + k * st->bucket_usec;
                }
                /* Keep only buckets that overlap the window ending at t_usec, and room. */
                while (st->count > 0 &&
                       bucket_at(st, 0)->t_start_usec + st->bucket_usec + st->window_usec <= t_usec)
                        drop_oldest(st, 1);
                if (st->count >= FORECAST_BUCKETS)
                        drop_oldest(st, st->count - FORECAST_BUCKETS + 1);

                st->count++;
                open = bucket_at(st, st->count - 1);
                *open = (struct forecast_bucket){.t_start_usec = start};
                if (st->count > 1)
                        close_bucket(st, t_usec, f);
                open = bucket_at(st, st->count - 1);
        }

        if (open->n == 0 || level > open->level_max) {
                open->level_max = level;
                open->t_peak_usec = t_usec;
        }
        open->squeeze_max = open->n == 0 ? squeeze : MAX(open->squeeze_max, squeeze);
        open->current_max = open->n == 0 ? current : MAX(open->current_max, current);
        open->n++;
}

/*
 * How long the growth has been going on, in seconds: from the last time the envelope was
 * near its low point of the fit to the first time after that it came near its high point
 * (near: within tol, the noise of a bucket maximum). A leak still growing is as old as the
 * distance from its start to now (to the regime's start when the low is the oldest point,
 * regime_x); a step or a burst that stopped rising is only as old as its rise, however long
 * ago that was.
 */
static double growth_age(const double *x, const double *y, uint32_t n, double tol, double regime_x)
{
        double lo = y[0], hi = y[0];
        uint32_t i_lo = 0, i_hi;

        for (uint32_t i = 1; i < n; i++) {
                lo = MIN(lo, y[i]);
                hi = MAX(hi, y[i]);
        }
        for (uint32_t i = 0; i < n; i++)
                if (y[i] <= lo + tol)
                        i_lo = i;
        for (i_hi = i_lo; i_hi < n - 1 && y[i_hi] < hi - tol; i_hi++)
                ;
        double from = i_lo == 0 ? MIN(regime_x, x[0]) : x[i_lo];
        return MAX(x[i_hi] - from, 0.0);
}

/*
 * Seconds until the level (lvl0, growing at rate) reaches the limit, when page cache stops
 * growing once memory.current (cur0, growing at cur_rate) meets the limit: from then on the
 * level grows only at tail_rate, the growth of what is not page cache. INFINITY: never.
 */
static double eta_piecewise(double limit, double lvl0, double rate, double cur0, double cur_rate,
                            double tail_rate)
{
        double t_squeeze;

        if (lvl0 >= limit)
                return 0;
        if (cur0 >= limit)
                t_squeeze = 0;
        else if (cur_rate > 0)
                t_squeeze = (limit - cur0) / cur_rate;
        else
                t_squeeze = INFINITY;

        if (rate > 0) {
                double t = (limit - lvl0) / rate;
                if (t <= t_squeeze)
                        return t;
        }
        if (isinf(t_squeeze))
                return INFINITY;

        double lvl_squeeze = lvl0 + rate * t_squeeze;
        if (lvl_squeeze >= limit)
                return t_squeeze;
        if (tail_rate <= 0)
                return INFINITY;
        return t_squeeze + (limit - lvl_squeeze) / tail_rate;
}

void forecast_update(struct forecast_state *st, const struct sample *s, struct forecast *ret)
{
        struct forecast f = {.t_usec = s->t_usec, .current_bytes = s->current_bytes};
        double level, squeeze, reclaimable;
        uint64_t limit = s->limit_bytes;
        bool has_limit = limit != 0 && limit != CGROUP_LIMIT_MAX;

        estimate_level(s, &level, &squeeze, &reclaimable);

        if (!st->has_prev || s->t_usec > st->prev_t_usec) {
                double dt_s = st->has_prev ? usec_to_s(s->t_usec - st->prev_t_usec) : 0;

                if (st->has_prev && s->t_usec - st->prev_t_usec > st->window_usec)
                        forget_history(st);
                else if (st->has_prev)
                        fit_window_to_interval(st, s->t_usec - st->prev_t_usec);
                update_counters(st, s, dt_s, &f);
                /* The OOM killer struck: what was growing is gone, the fit starts over. */
                if (f.oom_kills > 0)
                        forget_history(st);
                if (st->has_prev)
                        update_cycle(st, s->t_usec, level);

                /*
                 * memory.high holds the usage back: the kernel throttles and reclaims, growth
                 * flattens, high events climb. The demand has not stopped, so the slope from
                 * before the throttling stays in the lower bound until it ends.
                 */
                bool near_high = (s->has & SAMPLE_HAS_HIGH) && s->high_bytes != CGROUP_LIMIT_MAX &&
                                 (!has_limit || s->high_bytes < limit) &&
                                 s->current_bytes + s->high_bytes / 32 >= s->high_bytes;
                bool stalled = !(s->has & (SAMPLE_HAS_PSI_SOME | SAMPLE_HAS_PSI_AVG)) ||
                               ((s->has & SAMPLE_HAS_PSI_AVG)
                                        ? s->pressure.some.avg10_pct
                                        : st->psi_some_avg10) >= THROTTLE_MIN_PSI_SOME;
                bool throttling = near_high && st->high_rate >= THROTTLE_MIN_RATE && stalled;
                if (throttling && !st->throttled)
                        st->pre_throttle_slope = st->last_slope_hi;
                else if (!throttling)
                        st->pre_throttle_slope = 0;
                st->throttled = throttling;

                ingest(st, s->t_usec, level, squeeze, (double)s->current_bytes, &f);

                st->has_prev = true;
                st->prev_t_usec = s->t_usec;
                st->prev_level = level;
                st->n_samples++;
        }

        /* Instantaneous figures. */
        f.limit_bytes = has_limit ? limit : CGROUP_LIMIT_MAX;
        f.reclaimable_bytes = (uint64_t)reclaimable;
        f.level_bytes = (uint64_t)level;
        f.envelope_bytes = f.level_bytes;
        if (has_limit) {
                double u = level * 1000.0 / (double)limit;
                f.usage_permille = (uint32_t)MIN(u, (double)UINT32_MAX);
                /* the peak of the last GC cycle (and a bit): the buckets it touches */
                double peak = level;
                if (st->cycle_usec > 0) {
                        uint64_t since = sub_sat(s->t_usec, st->cycle_usec * 5 / 4);
                        for (uint32_t i = 0; i < st->count; i++) {
                                const struct forecast_bucket *b = bucket_at(st, i);
                                if (b->n > 0 && b->t_peak_usec >= since)
                                        peak = MAX(peak, b->level_max);
                        }
                }
                double up = peak * 1000.0 / (double)limit;
                f.cycle_peak_permille = (uint32_t)MIN(up, (double)UINT32_MAX);
        } else
                f.flags |= FORECAST_NO_LIMIT;

        if (s->has & SAMPLE_HAS_PSI_AVG) {
                f.psi_source = FORECAST_PSI_KERNEL;
                f.psi_some_avg10_pct = s->pressure.some.avg10_pct;
                f.psi_full_avg10_pct = s->pressure.has_full ? s->pressure.full.avg10_pct : 0;
        } else if (s->has & (SAMPLE_HAS_PSI_SOME | SAMPLE_HAS_PSI_FULL)) {
                f.psi_source = FORECAST_PSI_TOTALS;
                f.psi_some_avg10_pct = st->psi_some_avg10;
                f.psi_full_avg10_pct = st->psi_full_avg10;
        }
        f.high_events_per_s = st->high_rate;
        f.max_events_per_s = st->max_rate;
        f.cycle_usec = st->cycle_usec;
        if (f.cycle_usec)
                f.flags |= FORECAST_SAWTOOTH;
        if (st->throttled)
                f.flags |= FORECAST_THROTTLED;

        f.eta_usec = f.eta_lower_usec = f.eta_upper_usec = USEC_INFINITY;

        /* The points: the closed envelope, and the open bucket's as of now. */
        double x[FORECAST_BUCKETS + 1], yl[FORECAST_BUCKETS + 1], ys[FORECAST_BUCKETS + 1],
                yc[FORECAST_BUCKETS + 1];
        uint32_t n = 0;

        for (uint32_t i = 0; i < st->n_env; i++, n++) {
                x[n] = -usec_to_s(sub_sat(s->t_usec, st->env[i].t_usec));
                yl[n] = st->env[i].level;
                ys[n] = st->env[i].squeeze;
                yc[n] = st->env[i].current;
        }
        if (st->count > 0 && bucket_at(st, st->count - 1)->n > 0) {
                struct forecast_point p;
                envelope_point(st, st->count - 1, &p);
                x[n] = -usec_to_s(sub_sat(s->t_usec, p.t_usec));
                yl[n] = p.level;
                ys[n] = p.squeeze;
                yc[n] = p.current;
                n++;
        }

        double inflate = sqrt((double)st->envelope_span);
        struct forecast_fit fl, fs, fc;
        ols(x, yl, n, inflate, &fl);
        ols(x, ys, n, inflate, &fs);
        ols(x, yc, n, inflate, &fc);

        /*
         * Half a window before the first ETA: a fit over less cannot tell the first ramp of
         * a GC cycle, or of a burst, from a leak. And three envelope spans at least: the
         * envelope repeats a maximum over its span, so fewer are not three independent
         * points (after a restart, a slow sawtooth waits for three cycles).
         */
        if (n < MAX(FIT_MIN_POINTS, 3 * st->envelope_span) || !fl.valid ||
            s->t_usec - st->history_start_usec < st->window_usec / 2) {
                f.flags |= FORECAST_WARMING_UP;
                st->last_slope_hi = st->throttled ? st->pre_throttle_slope : 0;
                if (st->throttled && has_limit && st->pre_throttle_slope > 0)
                        f.eta_lower_usec =
                                s_to_usec(((double)limit - level) / st->pre_throttle_slope);
                f.growth_age_usec = f.eta_lower_usec == USEC_INFINITY ? 0 : USEC_INFINITY;
                *ret = f;
                return;
        }

        f.known = true;
        f.regime_usec = sub_sat(s->t_usec, st->fit_start_usec);
        double env_now = fl.at_origin;
        f.envelope_bytes = (uint64_t)MAX(env_now, 0.0);
        f.slope_bytes_per_s = fl.slope;

        /*
         * Candidate growth rates, each with the time it has been seen: the whole fit (since the
         * regime began), the recent part when it grows significantly faster (accelerating
         * growth), and the slope from before memory.high throttling began.
         */
        struct candidate {
                bool ok;
                double point, hi, lo; /* bytes/s */
                double from;          /* the level it starts from */
                double age_s;         /* how long this growth has been observed */
                /*
                 * bytes: the envelope's scatter around its line, at most the noise between
                 * samples (beyond that it is misfit, a burst the line does not follow)
                 */
                double spread;
                double line_now;   /* the candidate's fitted line, now (bytes) */
                double line_slope; /* ... and its slope, bytes/s */
        } cand[3] = {};

        /*
         * How long the growth has been seen: when one line fits the envelope within its
         * noise, the growth is spread over the whole regime; when it does not, the growth
         * came in a part of it (a step, a burst) and only that part counts.
         */
        double regime_s = usec_to_s(sub_sat(s->t_usec, st->growth_start_usec));
        double floor_sd = MAX(0.5 * st->step_scale, 1e-3 * fabs(level));
        double age_s = fl.resid_sd <= 2 * floor_sd
                               ? regime_s
                               : growth_age(x, yl, n, st->step_scale, -regime_s);
        double k = t_quantile(fl.dof);
        if (fl.slope > 0 && fl.slope > GROWTH_SIGMAS * k / 2 * fl.se)
                cand[0] = (struct candidate){
                        .ok = true,
                        .point = fl.slope,
                        .hi = fl.slope + k * fl.se,
                        .lo = fl.slope - k * fl.se,
                        .from = MAX(env_now, level),
                        .age_s = age_s,
                        .spread = MIN(fl.resid_sd, st->step_scale),
                        .line_now = fl.at_origin,
                        .line_slope = fl.slope,
                };

        /*
         * The recent part: a fifth of the window, at least 3 points and 4 envelope spans (the
         * envelope repeats its maximum over a span: fewer spans are too few independent
         * points to call anything an acceleration).
         */
        uint32_t m =
                (uint32_t)MAX(3.0, ceil((double)st->window_usec / 5 / (double)st->bucket_usec));
        m = MAX(m, 4 * st->envelope_span);
        if (n >= m + 3) {
                struct forecast_fit sh;
                ols(x + (n - m), yl + (n - m), m, inflate, &sh);
                double ks = t_quantile(sh.dof);
                if (sh.valid && sh.slope > GROWTH_SIGMAS * ks / 2 * sh.se &&
                    sh.slope - fl.slope >
                            GROWTH_SIGMAS * ks / 2 * sqrt(sh.se * sh.se + fl.se * fl.se)) {
                        f.flags |= FORECAST_ACCELERATING;
                        f.slope_bytes_per_s = sh.slope;
                        cand[1] = (struct candidate){
                                .ok = true,
                                .point = sh.slope,
                                .hi = sh.slope + ks * sh.se,
                                .lo = sh.slope - ks * sh.se,
                                .from = MAX(MAX(sh.at_origin, env_now), level),
                                /* the faster rate has been seen only over the recent part */
                                .age_s = MIN(age_s, -x[n - m]),
                                .spread = MIN(sh.resid_sd, st->step_scale),
                                .line_now = sh.at_origin,
                                .line_slope = sh.slope,
                        };
                }
        }
        if (st->throttled && st->pre_throttle_slope > 0)
                cand[2] = (struct candidate){
                        .ok = true,
                        .point = 0,
                        .hi = st->pre_throttle_slope,
                        .from = MAX(env_now, level),
                        .age_s = INFINITY,
                };

        st->last_slope_hi = 0;
        if (!has_limit) {
                *ret = f;
                return;
        }

        double L = (double)limit;
        double cur0 = MAX(fc.at_origin, (double)s->current_bytes);
        double cur_rate = fc.valid ? fc.slope : 0;
        double ks = fs.valid ? t_quantile(fs.dof) : 0;
        double tail = fs.valid ? MAX(fs.slope, 0.0) : 0;
        double tail_hi = fs.valid ? MAX(fs.slope + ks * fs.se, 0.0) : 0;
        bool any_growth = false;
        uint64_t point = USEC_INFINITY, lower = USEC_INFINITY, upper = USEC_INFINITY;
        uint64_t lower_age = 0;

        /* the newest evidence: the higher of the last two envelope points */
        uint32_t i_new = n >= 2 && yl[n - 2] > yl[n - 1] ? n - 2 : n - 1;

        for (int c = 0; c < 3; c++) {
                const struct candidate *cd = &cand[c];
                if (!cd->ok)
                        continue;
                any_growth = true;

                /*
                 * Stalled: the newest points stand below the line by more than twice the noise.
                 * A ramp that flattened (a burst topping out) still fits a rising line through
                 * the buckets before; the line is not what the cgroup does now.
                 */
                if (cd->line_slope > 0 && yl[i_new] < cd->line_now + cd->line_slope * x[i_new] -
                                                              2 * MAX(cd->spread, floor_sd))
                        continue;

                /* Under throttling the level itself is held: no page cache reasoning. */
                double cr = st->throttled ? 0 : cur_rate;
                double t_hi = st->throttled ? cd->hi : MIN(tail_hi, cd->hi);
                /*
                 * The pessimistic bound starts from the upper prediction band of the peaks
                 * (line + 2 residual deviations): the OOM comes with the first peak that
                 * reaches the limit, not when the fitted line does.
                 */
                double lb = eta_piecewise(L, cd->from + 2 * cd->spread, cd->hi, cur0, cr, t_hi);

                /*
                 * Persistence: a rise seen for S goes on for another 2S with probability 1/3
                 * (Gott's Copernican argument); a lower bound further away than that is an
                 * extrapolation the history does not stand for, and a GC ramp or a burst
                 * would raise alarms from it.
                 */
                if (lb > ETA_TRUST_RATIO * cd->age_s)
                        continue;
                st->last_slope_hi = MAX(st->last_slope_hi, cd->hi);
                if (s_to_usec(lb) < lower) {
                        lower = s_to_usec(lb);
                        lower_age = isinf(cd->age_s) ? USEC_INFINITY : s_to_usec(cd->age_s);
                }
                if (cd->point > 0) {
                        double t_pt = st->throttled ? cd->point : MIN(tail, cd->point);
                        double e = eta_piecewise(L, cd->from, cd->point, cur0, cr, t_pt);
                        uint64_t pt = s_to_usec(e);
                        /* the most recent growth leads: acceleration over the whole fit */
                        if (c == 1 || point == USEC_INFINITY)
                                point = pt;
                }
                if (c == 0 && cd->lo > 0)
                        upper = s_to_usec(
                                eta_piecewise(L, cd->from, cd->lo, cur0, cr, MIN(tail, cd->lo)));
        }
        if (any_growth && lower == USEC_INFINITY)
                f.flags |= FORECAST_SHORT_HISTORY;

        f.eta_usec = point;
        f.eta_lower_usec = MIN(lower, point);
        f.growth_age_usec = f.eta_lower_usec == USEC_INFINITY ? 0 : lower_age;
        f.eta_upper_usec = point == USEC_INFINITY ? USEC_INFINITY : MAX(upper, point);
        *ret = f;
}

/* SPDX-License-Identifier: MIT */
/*
 * The synthetic half of the forecast benchmark's corpus: traces with ground truth, one per
 * (seed, family, index), written in the trace CSV format `memgovctl record` writes.
 *
 * Each family gives a demand over time: the anonymous memory the service wants (a leak, a
 * GC sawtooth, bursts, steps, …) and the page cache it would fill. A small model of the
 * kernel turns demand into what a cgroup reports:
 *   - page cache fills what anon leaves free and is squeezed at the limit (reclaimed), with
 *     memory.events max counting the reclaim and a little PSI "some";
 *   - above memory.high, usage follows the demand only slowly (charges wait for reclaim and
 *     a penalty sleep), high events climb with every charge, PSI rises while tasks are held
 *     back and falls back once usage has caught up with the demand;
 *   - anon (plus kernel memory) reaching the limit is an OOM kill: oom and oom_kill grow,
 *     the service restarts small, and the trace ends shortly after;
 *   - PSI grows steeply in the last 10% before the limit, where reclaim turns to thrashing.
 * Parameters are drawn from ranges meant to look like services, not from what the model
 * handles: they were fixed before the model was scored on them (docs/benchmarks.md). The
 * families without an OOM are redrawn when noise happens to reach the limit anyway.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "memgov/macro.h"

const unsigned family_counts[_FAMILY_MAX] = {
        [FAMILY_LINEAR_LEAK] = 36, [FAMILY_GC_LEAK] = 36,        [FAMILY_SAWTOOTH] = 24,
        [FAMILY_BURSTS] = 24,      [FAMILY_STEPS] = 16,          [FAMILY_STEP_LEAK] = 8,
        [FAMILY_EXPONENTIAL] = 20, [FAMILY_LEAK_PLATEAU] = 20,   [FAMILY_PAGE_CACHE] = 20,
        [FAMILY_SLOW_LEAK] = 16,   [FAMILY_THROTTLED_LEAK] = 10, [FAMILY_THROTTLED_STOP] = 8,
};

const char *family_to_string(enum family f)
{
        static const char *const names[_FAMILY_MAX] = {
                [FAMILY_LINEAR_LEAK] = "linear-leak",
                [FAMILY_GC_LEAK] = "gc-leak",
                [FAMILY_SAWTOOTH] = "sawtooth",
                [FAMILY_BURSTS] = "bursts",
                [FAMILY_STEPS] = "steps",
                [FAMILY_STEP_LEAK] = "step-then-leak",
                [FAMILY_EXPONENTIAL] = "exponential",
                [FAMILY_LEAK_PLATEAU] = "leak-then-plateau",
                [FAMILY_PAGE_CACHE] = "page-cache-fill",
                [FAMILY_SLOW_LEAK] = "slow-leak-hours",
                [FAMILY_THROTTLED_LEAK] = "throttled-leak",
                [FAMILY_THROTTLED_STOP] = "throttled-stop",
        };
        return (unsigned)f < _FAMILY_MAX ? names[f] : NULL;
}

/* ---- randomness: splitmix64, seeded per trace ---- */

struct rng {
        uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
        uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static double unif(struct rng *r)
{
        return (double)(rng_next(r) >> 11) / 9007199254740992.0;
}

static double uniform(struct rng *r, double a, double b)
{
        return a + (b - a) * unif(r);
}

static double log_uniform(struct rng *r, double a, double b)
{
        return exp(uniform(r, log(a), log(b)));
}

static double gauss(struct rng *r)
{
        double u = MAX(unif(r), 1e-12), v = unif(r);
        return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

static double pick(struct rng *r, const double *v, size_t n)
{
        return v[(size_t)(unif(r) * (double)n) % n];
}

/* ---- the demand of one trace ---- */

#define MAX_BURSTS 64
#define MAX_STEPS  4

struct params {
        double dt, duration;          /* seconds */
        double base;                  /* anon at rest, share of the limit */
        double leak_start, leak_rate; /* share/s */
        double leak_stop;             /* time the leak stops; INFINITY: never */
        double exp_c, exp_tau;        /* base + c (e^((t-start)/tau) - 1) after leak_start */
        double noise;                 /* sd of allocation jitter, share */
        double gc_garbage;           /* garbage at the end of a GC cycle, share of live; 0: no GC */
        double gc_period, gc_retain; /* seconds; share of garbage a GC leaves behind */
        double file0, file_start, file_rate; /* page cache demand, share and share/s */
        double high;                         /* memory.high share; INFINITY: none */
        double throttle_rate; /* above high, usage grows toward the demand this fast, share/s */
        double kernel;        /* kernel memory and others, share */
        unsigned n_bursts;
        struct {
                double t, height, rise, hold, decay;
        } bursts[MAX_BURSTS];
        unsigned n_steps;
        struct {
                double t, height, rise;
        } steps[MAX_STEPS];
};

static double burst_at(const struct params *p, double t)
{
        double sum = 0;

        for (unsigned i = 0; i < p->n_bursts; i++) {
                double x = t - p->bursts[i].t, h = p->bursts[i].height;
                if (x < 0)
                        continue;
                if (x < p->bursts[i].rise)
                        sum += h * x / p->bursts[i].rise;
                else if ((x -= p->bursts[i].rise) < p->bursts[i].hold)
                        sum += h;
                else if ((x -= p->bursts[i].hold) < 4 * p->bursts[i].decay)
                        sum += h * exp(-x / p->bursts[i].decay);
        }
        return sum;
}

static double steps_at(const struct params *p, double t)
{
        double sum = 0;

        for (unsigned i = 0; i < p->n_steps; i++) {
                double x = t - p->steps[i].t;
                if (x <= 0)
                        continue;
                sum += p->steps[i].rise > 0 ? p->steps[i].height * MIN(x / p->steps[i].rise, 1.0)
                                            : p->steps[i].height;
        }
        return sum;
}

/* The live (non-garbage) anon demand at t, share of the limit. */
static double live_at(const struct params *p, double t)
{
        double live = p->base + burst_at(p, t) + steps_at(p, t);

        if (t > p->leak_start) {
                double x = MIN(t, p->leak_stop) - p->leak_start;
                if (p->exp_tau > 0)
                        live += p->exp_c * (exp(x / p->exp_tau) - 1);
                else
                        live += p->leak_rate * x;
        }
        return live;
}

/* Typical shares: the limit is cut into anon, page cache and kernel memory. */
static void draw_common(struct rng *r, struct params *p)
{
        static const double intervals[] = {0.5, 1, 1, 1, 2, 5};

        p->dt = pick(r, intervals, ELEMENTSOF(intervals));
        p->kernel = uniform(r, 0.01, 0.04);
        p->leak_start = INFINITY;
        p->leak_stop = INFINITY;
        p->high = INFINITY;
        p->throttle_rate = 0.001;
        p->file0 = uniform(r, 0.0, 0.15);
        p->file_start = INFINITY;
        static const double noises[] = {0, 0.002, 0.005, 0.01, 0.02, 0.04};
        p->noise = pick(r, noises, ELEMENTSOF(noises));
}

static void draw_gc(struct rng *r, struct params *p)
{
        /* GOGC-like: the heap grows by 25%..100% of the live heap between collections. */
        p->gc_garbage = uniform(r, 0.25, 1.0);
        p->gc_period = log_uniform(r, 2, 90);
        p->gc_retain = uniform(r, 0, 0.3);
}

/* A leak whose peaks (live plus a full cycle's garbage) reach the limit after tto seconds. */
static void draw_leak_to_oom(struct rng *r, struct params *p, double tto)
{
        double peak_factor = 1 + p->gc_garbage, top = (1 - p->kernel) / peak_factor;

        p->base = uniform(r, 0.15, 0.7) * top;
        p->leak_start = uniform(r, 120, 900);
        p->leak_rate = (top - p->base) / tto;
        p->duration = p->leak_start + tto * 1.2 + 600;
}

static void draw_params(struct rng *r, enum family fam, struct params *p)
{
        *p = (struct params){};
        draw_common(r, p);

        switch (fam) {
        case FAMILY_LINEAR_LEAK:
                draw_leak_to_oom(r, p, log_uniform(r, 180, 3600));
                break;
        case FAMILY_GC_LEAK:
                draw_gc(r, p);
                draw_leak_to_oom(r, p, log_uniform(r, 180, 3600));
                break;
        case FAMILY_SAWTOOTH:
                draw_gc(r, p);
                /* peaks from 40% to 92% of the limit */
                p->base = (uniform(r, 0.4, 0.92) - p->kernel) / (1 + p->gc_garbage);
                p->duration = uniform(r, 1800, 5400);
                break;
        case FAMILY_BURSTS: {
                p->base = uniform(r, 0.2, 0.55);
                p->duration = uniform(r, 1800, 5400);
                double gap = uniform(r, 180, 900), t = uniform(r, 60, gap);
                while (t < p->duration && p->n_bursts < MAX_BURSTS) {
                        typeof(p->bursts[0]) *b = &p->bursts[p->n_bursts++];
                        b->t = t;
                        b->height = uniform(r, 0.05, MAX(0.06, MIN(0.35, 0.9 - p->base)));
                        b->rise = log_uniform(r, 2, 60);
                        b->hold = uniform(r, 0, 60);
                        b->decay = log_uniform(r, 5, 120);
                        t += b->rise + b->hold + 4 * b->decay + gap * -log(MAX(unif(r), 1e-9));
                }
                if (unif(r) < 0.5)
                        draw_gc(r, p), p->base /= 1 + p->gc_garbage;
                break;
        }
        case FAMILY_STEPS:
        case FAMILY_STEP_LEAK: {
                p->base = uniform(r, 0.15, 0.4);
                p->duration = uniform(r, 1800, 5400);
                double room = 0.88 - p->base - p->kernel, t = uniform(r, 300, 900);
                p->n_steps = 1 + (unsigned)(unif(r) * 3);
                for (unsigned i = 0; i < p->n_steps; i++) {
                        p->steps[i].t = t;
                        p->steps[i].height = uniform(r, 0.3, 1.0) * room / p->n_steps;
                        p->steps[i].rise = unif(r) < 0.5 ? 0 : uniform(r, 1, 10);
                        t += uniform(r, 300, 1200);
                }
                if (fam == FAMILY_STEP_LEAK) {
                        double after = p->base + steps_at(p, INFINITY);
                        double tto = log_uniform(r, 300, 1800);
                        p->leak_start = t;
                        p->leak_rate = (1 - p->kernel - after) / tto;
                        p->duration = t + tto * 1.2 + 600;
                }
                break;
        }
        case FAMILY_EXPONENTIAL: {
                p->base = uniform(r, 0.15, 0.5);
                p->leak_start = uniform(r, 300, 900);
                p->exp_tau = log_uniform(r, 30, 600);
                double grow = uniform(r, 3, 6) * p->exp_tau;
                p->exp_c = (1 - p->kernel - p->base) / (exp(grow / p->exp_tau) - 1);
                p->duration = p->leak_start + grow * 1.2 + 600;
                if (unif(r) < 0.3)
                        draw_gc(r, p), p->base /= 1 + p->gc_garbage;
                break;
        }
        case FAMILY_LEAK_PLATEAU: {
                p->base = uniform(r, 0.15, 0.45);
                double plateau = uniform(r, 0.55, 0.9) - p->kernel;
                double to_plateau = log_uniform(r, 120, 2400);
                p->leak_start = uniform(r, 120, 900);
                p->leak_rate = (plateau - p->base) / to_plateau;
                p->leak_stop = p->leak_start + to_plateau;
                p->duration = p->leak_stop + uniform(r, 1200, 3600);
                if (unif(r) < 0.3) {
                        draw_gc(r, p);
                        p->base /= 1 + p->gc_garbage;
                        p->leak_rate /= 1 + p->gc_garbage;
                }
                break;
        }
        case FAMILY_PAGE_CACHE:
                p->base = uniform(r, 0.15, 0.5);
                p->file_start = uniform(r, 120, 900);
                /* fills what anon leaves free in 30 s .. 30 min, then keeps wanting more */
                p->file_rate = (1 - p->base - p->kernel) / log_uniform(r, 30, 1800);
                p->duration = p->file_start + uniform(r, 1800, 3600);
                if (unif(r) < 0.4)
                        draw_gc(r, p), p->base /= 1 + p->gc_garbage;
                break;
        case FAMILY_SLOW_LEAK: {
                static const double slow[] = {10, 15, 30};
                double tto = uniform(r, 3600, 8 * 3600);
                draw_leak_to_oom(r, p, tto);
                p->dt = pick(r, slow, ELEMENTSOF(slow));
                p->leak_start = uniform(r, 600, 1800);
                p->duration = p->leak_start + tto * 1.2 + 600;
                break;
        }
        case FAMILY_THROTTLED_LEAK:
        case FAMILY_THROTTLED_STOP: {
                p->high = uniform(r, 0.75, 0.9);
                double throttle = uniform(r, 0.05, 0.3);
                double tto = log_uniform(r, 300, 2400);
                draw_leak_to_oom(r, p, tto);
                p->throttle_rate = throttle * p->leak_rate;
                double to_high = (p->high - p->kernel - p->base) / p->leak_rate;
                double through = (1 - p->high) / p->throttle_rate;
                p->duration = p->leak_start + to_high + through * 1.2 + 600;
                if (fam == FAMILY_THROTTLED_STOP) {
                        /* the demand stops 1..5 min after reaching memory.high */
                        p->leak_stop = p->leak_start + to_high + uniform(r, 60, 300);
                        p->duration = p->leak_stop + uniform(r, 1200, 3600);
                }
                break;
        }
        default:
                break;
        }
}

/* ---- the kernel's side ---- */

struct sim {
        struct rng rng;
        const struct params *p;
        FILE *f;
        double L;    /* bytes */
        double anon; /* what got through throttling, share */
        bool has_prev;
        double gc_cycle_start, gc_period;
        double ev_high, ev_max; /* fractional accumulators */
        uint64_t ev_oom, ev_oom_kill;
        double psi_some_us, psi_full_us;
};

static double garbage_at(struct sim *s, double t, double live)
{
        const struct params *p = s->p;

        if (p->gc_garbage <= 0)
                return 0;
        while (t >= s->gc_cycle_start + s->gc_period) {
                s->gc_cycle_start += s->gc_period;
                s->gc_period = p->gc_period * uniform(&s->rng, 0.8, 1.2);
        }
        double phase = (t - s->gc_cycle_start) / s->gc_period;
        return live * p->gc_garbage * (p->gc_retain + (1 - p->gc_retain) * phase);
}

static int write_row(struct sim *s, double t, double current, double anon, double file)
{
        const struct params *p = s->p;
        char high[32];

        if (isfinite(p->high))
                snprintf(high, sizeof(high), "%" PRIu64, (uint64_t)(p->high * s->L));
        else
                snprintf(high, sizeof(high), "max");
        return fprintf(s->f,
                       "%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%s,%" PRIu64
                       ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "\n",
                       (uint64_t)llround(t * 1000), (uint64_t)(current * s->L),
                       (uint64_t)(anon * s->L), (uint64_t)(file * s->L), (uint64_t)s->L, high,
                       (uint64_t)s->ev_high, (uint64_t)s->ev_max, s->ev_oom, s->ev_oom_kill,
                       (uint64_t)s->psi_some_us, (uint64_t)s->psi_full_us) < 0
                       ? -EIO
                       : 0;
}

/* One sample at t: returns 1 when the OOM killer struck, 0 otherwise, or -errno. */
static int sim_step(struct sim *s, double t)
{
        const struct params *p = s->p;
        double dt = p->dt;
        double live = live_at(p, t);
        double demand = MAX(live + garbage_at(s, t, live) + p->noise * gauss(&s->rng), 0.0);
        bool held = false;

        /*
         * memory.high: charges above it succeed only after reclaim and a penalty sleep, so
         * usage follows the demand slowly (throttle_rate) while tasks stall.
         */
        if (!s->has_prev || demand <= s->anon || demand + p->kernel <= p->high)
                s->anon = demand;
        else {
                double free_to = MAX(s->anon, p->high - p->kernel);
                s->anon = MIN(demand, free_to + p->throttle_rate * dt);
                held = demand > s->anon;
        }
        s->has_prev = true;

        double nonfile = s->anon + p->kernel;
        double file_want = p->file0;
        if (t > p->file_start)
                file_want += p->file_rate * (t - p->file_start);
        /* page cache is reclaimed down to what fits, with a little slack */
        double slack = uniform(&s->rng, 0.001, 0.005);
        double room = MAX(1 - nonfile - slack, 0.0);
        double file = MIN(file_want, room);
        bool squeezed = file_want > room;
        bool over_high = nonfile + file > p->high;

        if (over_high && !squeezed) {
                /* above memory.high the kernel reclaims page cache first, down to high */
                double fit = MAX(p->high - nonfile, 0.0);
                if (file > fit) {
                        file = fit;
                        squeezed = true;
                }
                over_high = nonfile > p->high;
        }

        double some = 0, full = 0;
        if (squeezed) {
                some += uniform(&s->rng, 0.5, 2);
                s->ev_max += uniform(&s->rng, 5, 30) * dt;
        }
        double u = nonfile;
        if (u > 0.9) {
                double x = MIN((u - 0.9) / 0.1, 1.0);
                some += 60 * x * x;
                full += 40 * x * x;
        }
        if (over_high) {
                s->ev_high += (held ? uniform(&s->rng, 50, 200) : uniform(&s->rng, 1, 10)) * dt;
                some += held ? uniform(&s->rng, 20, 60) : uniform(&s->rng, 1, 5);
                full += held ? uniform(&s->rng, 5, 20) : 0;
        }
        s->psi_some_us += MIN(some, 100.0) / 100 * dt * 1e6;
        s->psi_full_us += MIN(full, 100.0) / 100 * dt * 1e6;

        if (nonfile >= 1) {
                s->ev_oom++;
                s->ev_oom_kill++;
                int r = write_row(s, t, 1.0 - slack, s->anon, MAX(1 - slack - nonfile, 0.0));
                return r < 0 ? r : 1;
        }
        int r = write_row(s, t, nonfile + file, s->anon, file);
        return r < 0 ? r : 0;
}

static bool family_ooms(enum family f)
{
        switch (f) {
        case FAMILY_LINEAR_LEAK:
        case FAMILY_GC_LEAK:
        case FAMILY_STEP_LEAK:
        case FAMILY_EXPONENTIAL:
        case FAMILY_SLOW_LEAK:
        case FAMILY_THROTTLED_LEAK:
                return true;
        default:
                return false;
        }
}

/* One attempt: 1 when the OOM killer struck, 0 when not, or -errno. */
static int write_attempt(uint64_t seed, enum family family, unsigned index, unsigned attempt,
                         const char *path)
{
        struct params p;
        struct rng r = {seed ^ ((uint64_t)family << 40) ^ ((uint64_t)index << 20) ^
                        ((uint64_t)attempt << 56)};
        bool oomed = false;
        static const double limits_mib[] = {256, 512, 1024, 2048, 4096, 8192};

        (void)rng_next(&r);
        draw_params(&r, family, &p);

        FILE *f = fopen(path, "we");
        if (!f)
                return negative_errno();

        struct sim s = {
                .rng = {rng_next(&r)},
                .p = &p,
                .f = f,
                .L = pick(&r, limits_mib, ELEMENTSOF(limits_mib)) * 1024 * 1024,
                .gc_period = p.gc_period,
        };
        int ret = fprintf(f, "t_ms,current,anon,file,max,high,ev_high,ev_max,ev_oom,ev_oom_kill,"
                             "psi_some_us,psi_full_us\n") < 0
                          ? -EIO
                          : 0;

        for (double t = 0; ret >= 0 && t <= p.duration; t += p.dt) {
                int k = sim_step(&s, t);
                if (k < 0) {
                        ret = k;
                        break;
                }
                if (k == 0)
                        continue;
                oomed = true;
                /* OOM killed: the service restarts small; keep a minute of it, then stop. */
                for (double u = t + p.dt; u <= t + 60; u += p.dt) {
                        double anon = p.base * uniform(&s.rng, 0.3, 0.6);
                        ret = write_row(&s, u, anon + p.kernel + p.file0 * 0.2, anon,
                                        p.file0 * 0.2);
                        if (ret < 0)
                                break;
                }
                break;
        }
        if (fclose(f) != 0 && ret >= 0)
                ret = -EIO;
        return ret < 0 ? ret : oomed;
}

int gen_write_trace(uint64_t seed, enum family family, unsigned index, const char *path)
{
        /*
         * The families without an OOM are defined by not having one: when the noise or a
         * burst happened to reach the limit, draw the trace again (a new attempt seed).
         */
        for (unsigned attempt = 0;; attempt++) {
                int r = write_attempt(seed, family, index, attempt, path);
                if (r < 0)
                        return r;
                if (r == 0 || family_ooms(family) || attempt >= 20)
                        return 0;
        }
}

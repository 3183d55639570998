/* SPDX-License-Identifier: MIT */
/*
 * govern: memory.high for one cgroup from the forecast and decide's level (forecast → decide →
 * govern → actuate). Pure; include/memgov/govern.h has the rules and the formulas.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "memgov/govern.h"
#include "memgov/macro.h"

const char *govern_cause_to_string(enum govern_cause c)
{
        static const char *const names[_GOVERN_CAUSE_MAX] = {
                [GOVERN_CAUSE_NONE] = "none",   [GOVERN_CAUSE_GUARD] = "guard",
                [GOVERN_CAUSE_RAISE] = "raise", [GOVERN_CAUSE_RELEASE] = "release",
                [GOVERN_CAUSE_FIXED] = "fixed", [GOVERN_CAUSE_LIVELOCK] = "livelock",
                [GOVERN_CAUSE_OFF] = "off",
        };
        if (c < 0 || c >= _GOVERN_CAUSE_MAX)
                return NULL;
        return names[c];
}

void govern_init(struct govern_state *st)
{
        *st = (struct govern_state){};
}

static uint64_t permille_of(uint64_t v, uint32_t permille)
{
        return (uint64_t)((unsigned __int128)v * permille / 1000);
}

static uint64_t page_down(uint64_t v)
{
        return v == CGROUP_LIMIT_MAX ? v : v & ~(uint64_t)(GOVERN_PAGE_BYTES - 1);
}

static uint64_t page_up(uint64_t v)
{
        if (v >= CGROUP_LIMIT_MAX - GOVERN_PAGE_BYTES)
                return CGROUP_LIMIT_MAX;
        return page_down(v + GOVERN_PAGE_BYTES - 1);
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
        return a > CGROUP_LIMIT_MAX - b ? CGROUP_LIMIT_MAX : a + b;
}

/* "max", "512.0M", "1.25G": short enough for a log line. */
static const char *fmt_bytes(char *buf, size_t size, uint64_t b)
{
        if (b == CGROUP_LIMIT_MAX)
                snprintf(buf, size, "max");
        else if (b >= (uint64_t)1 << 30)
                snprintf(buf, size, "%.2fG", (double)b / (double)((uint64_t)1 << 30));
        else
                snprintf(buf, size, "%.1fM", (double)b / (double)((uint64_t)1 << 20));
        return buf;
}

static const char *fmt_usec(char *buf, size_t size, uint64_t usec)
{
        if (usec == USEC_INFINITY)
                snprintf(buf, size, "none");
        else
                snprintf(buf, size, "%.0fs", (double)usec / 1e6);
        return buf;
}

/* What the policy's rate limit allows now. */
static bool may_change(const struct govern_state *st, const struct policy_memory_high *m,
                       uint64_t now)
{
        return !st->has_change || now - st->last_change_usec >= m->min_interval_usec;
}

/* Record a change in st and put it in *in. */
static void commit(struct govern_state *st, struct govern_intent *in, uint64_t now, uint64_t bytes,
                   enum govern_cause cause)
{
        in->set = true;
        in->high_bytes = bytes;
        in->cause = cause;
        in->restores_original = bytes == st->original_bytes;
        if (in->restores_original && st->touched) {
                /* The old value may still be read back once (systemd applies it later). */
                st->has_stale = true;
                st->stale_bytes = st->applied_bytes;
        }
        st->applied_bytes = bytes;
        st->touched = !in->restores_original;
        st->has_change = true;
        st->last_change_usec = now;
        st->n_changes++;
        if (in->restores_original && cause != GOVERN_CAUSE_LIVELOCK) {
                st->livelock_floor_bytes = 0;
                st->comfortable = false;
        }
}

/*
 * The memory.high memgov starts from: the value read the first time, and afterwards any
 * value an operator writes while memgov holds nothing of its own there.
 */
static void track_original(struct govern_state *st, const struct sample *s)
{
        uint64_t seen = (s->has & SAMPLE_HAS_HIGH) ? s->high_bytes : CGROUP_LIMIT_MAX;

        if (!st->started) {
                st->started = true;
                st->original_bytes = st->applied_bytes = seen;
                return;
        }
        if (st->touched)
                return;
        if (seen == st->original_bytes) {
                st->has_stale = false;
                return;
        }
        if (st->has_stale && seen == st->stale_bytes)
                return; /* our old value, on its way out */
        st->has_stale = false;
        st->original_bytes = st->applied_bytes = seen;
}

/* Everything one update needs, worked out once. */
struct view {
        uint64_t now;
        uint64_t limit;       /* L */
        uint64_t ceiling;     /* min(memory.max, L) */
        uint64_t floor;       /* guard's floor, <= ceiling */
        uint64_t floor_fixed; /* fixed mode's floor (no working set), <= ceiling */
        uint64_t ws;          /* working set estimate, margin included */
        uint64_t high_now;    /* memory.high in force (read, else the one set) */
        uint64_t eta;         /* ETA lower bound; USEC_INFINITY: none */
};

static void make_view(const struct govern_state *st, const struct policy_memory_high *m,
                      const struct sample *s, const struct decision *d, struct view *v)
{
        const struct forecast *f = &d->forecast;
        uint64_t protect = 0;

        v->now = d->t_usec;
        v->limit = f->limit_bytes;
        v->ceiling = page_down(MIN(v->limit, s->max_bytes));
        if (s->has & SAMPLE_HAS_LOW_MIN)
                protect = MAX(s->min_bytes, s->low_bytes);
        uint64_t held = MAX(f->level_bytes, (s->has & SAMPLE_HAS_ANON) ? s->anon_bytes : 0);
        v->ws = add_sat(held, permille_of(v->limit, GOVERN_MARGIN_PERMILLE));
        v->floor_fixed = page_up(MAX(policy_size_resolve(&m->min, v->limit), protect));
        v->floor = MIN(MAX(v->floor_fixed, page_up(v->ws)), v->ceiling);
        v->floor_fixed = MIN(v->floor_fixed, v->ceiling);
        v->high_now = (s->has & SAMPLE_HAS_HIGH) ? s->high_bytes : st->applied_bytes;
        v->eta = f->eta_lower_usec;
}

/*
 * The livelock guard. Returns true when it changed memory.high at this sample (the other
 * rules then wait for the next one).
 */
static bool livelock_guard(struct govern_state *st, const struct policy_memory_high *m,
                           const struct sample *s, const struct forecast *f, const struct view *v,
                           struct govern_intent *in)
{
        bool pinned = v->high_now != CGROUP_LIMIT_MAX && v->high_now > 0 &&
                      s->current_bytes >= permille_of(v->high_now, GOVERN_PINNED_PERMILLE);
        bool psi = f->psi_source != FORECAST_PSI_NONE;
        bool trigger = false, holding;
        char a[32], b[32], c[32];

        if (psi) {
                holding = pinned && f->psi_full_avg10_pct >= m->livelock_psi_full_avg10_pct;
                if (holding && !st->ll_holding)
                        st->ll_since_usec = v->now;
                trigger = holding && v->now - st->ll_since_usec >= m->livelock_duration_usec;
        } else {
                /*
                 * Without PSI, a stall shows as memory.events high climbing while the level
                 * stays where it was over a whole livelock duration: the kernel is throttling
                 * and the workload gets nowhere.
                 */
                if (!pinned || !st->ll_holding) {
                        st->ll_since_usec = v->now;
                        st->ll_level_bytes = f->level_bytes;
                }
                holding = pinned;
                if (pinned && v->now - st->ll_since_usec >= m->livelock_duration_usec) {
                        trigger =
                                f->high_events_per_s > 0 &&
                                f->level_bytes <
                                        add_sat(st->ll_level_bytes,
                                                permille_of(v->limit, GOVERN_NO_PROGRESS_PERMILLE));
                        if (!trigger) {
                                /* progress: measure the next window from here */
                                st->ll_since_usec = v->now;
                                st->ll_level_bytes = f->level_bytes;
                        }
                }
        }
        st->ll_holding = holding;

        if (!trigger) {
                if (st->livelock && !holding) {
                        if (!st->ll_clearing) {
                                st->ll_clearing = true;
                                st->ll_clear_since_usec = v->now;
                        }
                        if (v->now - st->ll_clear_since_usec >= m->livelock_duration_usec) {
                                st->livelock = false;
                                st->ll_clearing = false;
                        }
                } else
                        st->ll_clearing = false;
                in->escalate = st->livelock;
                return false;
        }

        st->ll_clearing = false;
        if (!st->livelock) {
                st->livelock = true;
                st->livelock_episodes++;
                in->livelock = true;
        }
        in->escalate = true;
        if (!may_change(st, m, v->now))
                return false;

        uint64_t base = v->high_now;
        uint64_t gap = v->ceiling > base ? v->ceiling - base : 0;
        uint64_t step = MAX(gap / 1000 * GOVERN_LIVELOCK_STEP_PERMILLE,
                            permille_of(v->limit, GOVERN_LIVELOCK_MIN_STEP_PERMILLE));
        uint64_t next = page_down(add_sat(base, step));
        if (next >= v->ceiling)
                next = CGROUP_LIMIT_MAX;

        st->livelock_steps++;
        st->livelock_floor_bytes = MAX(st->livelock_floor_bytes, next);
        commit(st, in, v->now, next, GOVERN_CAUSE_LIVELOCK);
        /* reached through a new window of the condition */
        st->ll_since_usec = v->now;
        st->ll_level_bytes = f->level_bytes;
        if (psi)
                snprintf(in->reason, sizeof(in->reason),
                         "livelock: memory.current %s at memory.high %s with PSI full avg10 "
                         "%.1f%% >= %.1f%%; raised to %s",
                         fmt_bytes(a, sizeof(a), s->current_bytes),
                         fmt_bytes(b, sizeof(b), v->high_now), f->psi_full_avg10_pct,
                         m->livelock_psi_full_avg10_pct, fmt_bytes(c, sizeof(c), next));
        else
                snprintf(in->reason, sizeof(in->reason),
                         "livelock: memory.current %s at memory.high %s, memory.events high "
                         "%.1f/s and no growth; raised to %s",
                         fmt_bytes(a, sizeof(a), s->current_bytes),
                         fmt_bytes(b, sizeof(b), v->high_now), f->high_events_per_s,
                         fmt_bytes(c, sizeof(c), next));
        return true;
}

/* Give the original value back. */
static void release(struct govern_state *st, struct govern_intent *in, uint64_t now,
                    enum govern_cause cause, const char *why)
{
        char a[32];

        commit(st, in, now, st->original_bytes, cause);
        snprintf(in->reason, sizeof(in->reason), "%s; memory.high back to %s", why,
                 fmt_bytes(a, sizeof(a), st->original_bytes));
}

static void guard(struct govern_state *st, const struct policy *p, const struct decision *d,
                  const struct view *v, struct govern_intent *in)
{
        const struct policy_memory_high *m = &p->memory_high;
        const struct forecast *f = &d->forecast;
        uint64_t budget = m->budget_usec;
        uint64_t small = permille_of(v->limit, GOVERN_MIN_CHANGE_PERMILLE);
        char a[32], b[32], c[32], e[32], g[32], h[32];

        if (v->eta != USEC_INFINITY && v->eta <= GOVERN_ENGAGE(budget)) {
                st->comfortable = false;
                if (st->livelock || st->livelock_floor_bytes == CGROUP_LIMIT_MAX)
                        return;

                /* The pessimistic growth: the one that meets the limit at the lower bound. */
                double slope = f->slope_bytes_per_s;
                if (v->eta > 0 && v->limit > f->envelope_bytes)
                        slope = MAX(slope, (double)(v->limit - f->envelope_bytes) /
                                                   ((double)v->eta / 1e6));
                double headroom = MAX(slope, 0.0) * ((double)budget / 1e6);
                uint64_t target = headroom >= (double)v->limit ? 0 : v->limit - (uint64_t)headroom;
                const char *bound = "";
                if (target < v->floor) {
                        target = v->floor;
                        bound = v->floor == page_up(v->ws) ? " (floor: working set)" : " (floor)";
                }
                if (target < st->livelock_floor_bytes) {
                        target = st->livelock_floor_bytes;
                        bound = " (floor: a value that stalled the workload lies below)";
                }
                target = page_down(MIN(target, v->ceiling));

                uint64_t in_force = MIN(st->applied_bytes, v->ceiling);
                if (target >= in_force || in_force - target < small || !may_change(st, m, v->now))
                        return;
                commit(st, in, v->now, target, GOVERN_CAUSE_GUARD);
                snprintf(in->reason, sizeof(in->reason),
                         "guard: ETA %s <= %s (budget %s): memory.high %s = limit %s - %s/s x "
                         "budget%s",
                         fmt_usec(a, sizeof(a), v->eta),
                         fmt_usec(b, sizeof(b), GOVERN_ENGAGE(budget)),
                         fmt_usec(c, sizeof(c), budget), fmt_bytes(e, sizeof(e), target),
                         fmt_bytes(g, sizeof(g), v->limit),
                         fmt_bytes(h, sizeof(h), (uint64_t)MAX(slope, 0.0)), bound);
                return;
        }

        /*
         * Not comfortable while memory.high throttling is what holds the level flat (the
         * forecast says so), nor while a livelock episode lasts: then only the livelock guard
         * changes memory.high, and a step up here could give back the very value that stalled.
         */
        bool comfortable =
                f->known && (v->eta == USEC_INFINITY || v->eta >= GOVERN_COMFORT(budget)) &&
                d->level <= LEVEL_WARN && !(f->flags & FORECAST_THROTTLED) && !st->livelock;
        if (!comfortable || (!st->touched && !st->livelock_floor_bytes)) {
                st->comfortable = false;
                return;
        }
        if (!st->comfortable) {
                st->comfortable = true;
                st->comfortable_since_usec = v->now;
        }
        if (v->now - st->comfortable_since_usec < m->min_interval_usec ||
            !may_change(st, m, v->now))
                return;
        if (!st->touched) {
                /* The livelock guard gave the original back; the danger is over now. */
                st->livelock_floor_bytes = 0;
                st->comfortable = false;
                return;
        }

        /*
         * An original below a value the livelock guard had to raise to (an operator's
         * memory.high that stalled the workload) is not given back while memgov governs: it
         * would stall it again. memgov holds the raised value; the exit restores the original.
         */
        if (st->original_bytes < st->livelock_floor_bytes)
                return;

        uint64_t top = MIN(st->original_bytes, v->ceiling);
        uint64_t from = MIN(st->applied_bytes, v->ceiling);
        uint64_t gap = top > from ? top - from : 0;
        uint64_t step = MAX(gap / 1000 * GOVERN_RAISE_STEP_PERMILLE,
                            permille_of(v->limit, GOVERN_RAISE_MIN_STEP_PERMILLE));
        uint64_t next = page_down(add_sat(from, step));

        snprintf(b, sizeof(b), "%s", fmt_usec(a, sizeof(a), v->eta));
        if (add_sat(next, small) >= top) {
                char why[120];
                snprintf(why, sizeof(why), "danger passed: ETA %s, level %s", b,
                         level_to_string(d->level));
                release(st, in, v->now, GOVERN_CAUSE_RELEASE, why);
                return;
        }
        commit(st, in, v->now, next, GOVERN_CAUSE_RAISE);
        snprintf(in->reason, sizeof(in->reason),
                 "danger passing: ETA %s >= %s, level %s; memory.high stepped up to %s", b,
                 fmt_usec(c, sizeof(c), GOVERN_COMFORT(budget)), level_to_string(d->level),
                 fmt_bytes(e, sizeof(e), next));
}

static void fixed(struct govern_state *st, const struct policy_memory_high *m, const struct view *v,
                  struct govern_intent *in)
{
        uint64_t small = permille_of(v->limit, GOVERN_MIN_CHANGE_PERMILLE);
        uint64_t target;
        char a[32];

        if (st->livelock || st->livelock_floor_bytes == CGROUP_LIMIT_MAX)
                return;
        target = policy_size_resolve(&m->fixed, v->limit);
        target = MAX(target, v->floor_fixed);
        target = MAX(target, st->livelock_floor_bytes);
        target = page_down(MIN(target, v->ceiling));

        uint64_t in_force = MIN(st->applied_bytes, v->ceiling);
        uint64_t diff = target > in_force ? target - in_force : in_force - target;
        if (target == st->applied_bytes || diff < small || !may_change(st, m, v->now))
                return;
        commit(st, in, v->now, target, GOVERN_CAUSE_FIXED);
        snprintf(in->reason, sizeof(in->reason), "fixed: memory.high %s by policy",
                 fmt_bytes(a, sizeof(a), target));
}

static void reclaim(struct govern_state *st, const struct policy_memory_high *m,
                    const struct sample *s, const struct forecast *f, const struct view *v,
                    struct govern_intent *in)
{
        bool near = v->eta != USEC_INFINITY && v->eta <= GOVERN_ENGAGE(m->budget_usec);
        bool held = st->touched && st->applied_bytes < st->original_bytes;

        if (!m->reclaim || !(s->has & SAMPLE_HAS_FILE) || !(near || held) ||
            s->file_bytes < permille_of(v->limit, GOVERN_RECLAIM_FILE_PERMILLE))
                return;
        if (st->has_reclaim && v->now - st->last_reclaim_usec < m->min_interval_usec)
                return;
        uint64_t bytes = page_down(
                MIN(f->reclaimable_bytes, permille_of(v->limit, GOVERN_RECLAIM_MAX_PERMILLE)));
        if (bytes < permille_of(v->limit, GOVERN_MIN_CHANGE_PERMILLE))
                return;
        in->reclaim_bytes = bytes;
        st->has_reclaim = true;
        st->last_reclaim_usec = v->now;
}

void govern_update(struct govern_state *st, const struct policy *p, const struct sample *s,
                   const struct decision *d, struct govern_intent *ret)
{
        const struct policy_memory_high *m = &p->memory_high;
        const struct forecast *f = &d->forecast;
        struct govern_intent in = {.cause = GOVERN_CAUSE_NONE};
        struct view v;

        track_original(st, s);

        if (m->mode == MEMORY_HIGH_OFF) {
                st->livelock = st->ll_holding = st->ll_clearing = false;
                if (st->touched)
                        release(st, &in, d->t_usec, GOVERN_CAUSE_OFF, "mode off");
                *ret = in;
                return;
        }
        /* Without a limit there is nothing to measure against. */
        if ((f->flags & FORECAST_NO_LIMIT) || f->limit_bytes == CGROUP_LIMIT_MAX ||
            f->limit_bytes == 0) {
                *ret = in;
                return;
        }

        make_view(st, m, s, d, &v);
        if (!livelock_guard(st, m, s, f, &v, &in)) {
                if (m->mode == MEMORY_HIGH_FIXED)
                        fixed(st, m, &v, &in);
                else
                        guard(st, p, d, &v, &in);
        }
        reclaim(st, m, s, f, &v, &in);
        *ret = in;
}

enum level govern_level(enum level decided, enum level previous, bool was_escalated,
                        const struct govern_intent *in, const char **ret_reason)
{
        const char *why = NULL;
        enum level l = decided;

        if (in->escalate && l < LEVEL_CRITICAL) {
                l = LEVEL_CRITICAL;
                why = "livelock";
        } else if (was_escalated && !in->escalate && l < previous)
                why = "livelock_over";
        if (ret_reason)
                *ret_reason = why;
        return l;
}

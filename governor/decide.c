/* SPDX-License-Identifier: MIT */
/*
 * decide: the level state machine between forecast and the effects (actuate, capture,
 * notify, record, export). Enter on any condition, leave after the hold time with all clear.
 */
#include "memgov/decide.h"
#include "memgov/macro.h"

const char *decide_reason_to_string(enum decide_reason r)
{
        static const char *const names[_DECIDE_REASON_MAX] = {
                [DECIDE_REASON_NONE] = "none",
                [DECIDE_REASON_ETA] = "eta",
                [DECIDE_REASON_USAGE] = "usage",
                [DECIDE_REASON_PSI_SOME] = "psi_some",
                [DECIDE_REASON_PSI_FULL] = "psi_full",
                [DECIDE_REASON_HIGH_RATE] = "high_rate",
                [DECIDE_REASON_MAX_RATE] = "max_rate",
                [DECIDE_REASON_HOLD_EXPIRED] = "hold_expired",
                [DECIDE_REASON_GOROUTINES] = "goroutines",
        };
        if (r < 0 || r >= _DECIDE_REASON_MAX)
                return NULL;
        return names[r];
}

void decide_init(struct decide_state *st)
{
        *st = (struct decide_state){.level = LEVEL_OK};
}

/*
 * The conditions of one level that hold now (DECIDE_CONDITION bits). PSI conditions need a
 * pressure source; usage needs a limit. The caller says whether the ETA condition has been
 * confirmed (decide.h).
 */
static unsigned level_conditions(const struct policy_level *pl, const struct forecast *f,
                                 bool eta_confirmed, bool at_or_above)
{
        unsigned c = 0;
        uint32_t usage = pl->usage_permille, seen = f->usage_permille;

        /* staying: a little below the threshold, and on the last GC cycle's peak */
        if (at_or_above) {
                usage = usage > DECIDE_USAGE_HYSTERESIS_PERMILLE
                                ? usage - DECIDE_USAGE_HYSTERESIS_PERMILLE
                                : 1;
                seen = MAX(seen, f->cycle_peak_permille);
        }
        if (pl->eta_usec > 0 && eta_confirmed)
                c |= DECIDE_CONDITION(DECIDE_REASON_ETA);
        if (pl->usage_permille > 0 && !(f->flags & FORECAST_NO_LIMIT) && seen >= usage)
                c |= DECIDE_CONDITION(DECIDE_REASON_USAGE);
        if (f->psi_source != FORECAST_PSI_NONE) {
                if (pl->has_psi_some_avg10 && f->psi_some_avg10_pct >= pl->psi_some_avg10_pct)
                        c |= DECIDE_CONDITION(DECIDE_REASON_PSI_SOME);
                if (pl->has_psi_full_avg10 && f->psi_full_avg10_pct >= pl->psi_full_avg10_pct)
                        c |= DECIDE_CONDITION(DECIDE_REASON_PSI_FULL);
        }
        if (pl->has_high_rate && f->high_events_per_s >= pl->high_events_per_s)
                c |= DECIDE_CONDITION(DECIDE_REASON_HIGH_RATE);
        if (pl->has_max_rate && f->max_events_per_s >= pl->max_events_per_s)
                c |= DECIDE_CONDITION(DECIDE_REASON_MAX_RATE);
        return c;
}

static enum decide_reason first_reason(unsigned conditions)
{
        for (int r = DECIDE_REASON_ETA; r < _DECIDE_REASON_MAX; r++)
                if (r != DECIDE_REASON_HOLD_EXPIRED && (conditions & DECIDE_CONDITION(r)))
                        return (enum decide_reason)r;
        return DECIDE_REASON_NONE;
}

void decide_update(struct decide_state *st, const struct policy *p, const struct forecast *f,
                   struct decision *ret)
{
        decide_update_extra(st, p, f, NULL, ret);
}

void decide_update_extra(struct decide_state *st, const struct policy *p, const struct forecast *f,
                         const struct decide_extra *extra, struct decision *ret)
{
        struct decision d = {
                .t_usec = f->t_usec,
                .previous_level = st->level,
                .oom_kill = f->oom_kills > 0,
                .forecast = *f,
        };
        enum level target = LEVEL_OK;
        uint64_t now = f->t_usec;

        for (int l = LEVEL_WARN; l < _LEVEL_MAX; l++) {
                const struct policy_level *pl = &p->levels[l];
                bool eta_holds = pl->eta_usec > 0 && f->eta_lower_usec != USEC_INFINITY &&
                                 f->eta_lower_usec <= pl->eta_usec;

                /* critical acts hardest: the growth must be DECIDE_CRITICAL_AGE_RATIO × its ETA old
                 */
                if (eta_holds && l == LEVEL_CRITICAL &&
                    f->growth_age_usec / DECIDE_CRITICAL_AGE_RATIO < f->eta_lower_usec)
                        eta_holds = false;
                if (!eta_holds || !st->has_prev)
                        st->eta_clear_usec[l] = now;
                st->eta_streak[l] = eta_holds ? MIN(st->eta_streak[l] + 1, UINT32_MAX - 1) : 0;
                uint64_t stood = now - st->eta_clear_usec[l];
                bool confirmed = (st->eta_streak[l] >= DECIDE_ETA_CONFIRM ||
                                  (st->eta_streak[l] >= 1 && st->has_prev &&
                                   now - st->prev_usec >= DECIDE_ETA_CONFIRM_USEC)) &&
                                 stood >= f->eta_lower_usec / DECIDE_ETA_CONFIRM_DIV;
                d.conditions[l] = level_conditions(pl, f, confirmed, st->level >= l) |
                                  (extra ? extra->conditions[l] : 0);
                if (d.conditions[l])
                        target = (enum level)l;
        }

        if (target > st->level) {
                st->level = target;
                st->entered_usec = now;
                st->clearing = false;
                d.changed = true;
                d.reason = first_reason(d.conditions[target]);
        } else if (st->level != LEVEL_OK && d.conditions[st->level]) {
                st->clearing = false;
                d.reason = first_reason(d.conditions[st->level]);
        } else if (st->level != LEVEL_OK) {
                /* All clear at the current level: fall once that has lasted the hold time. */
                if (!st->clearing) {
                        st->clearing = true;
                        st->clear_since_usec = now;
                }
                if (now - st->clear_since_usec >= p->hold_usec) {
                        st->level = target;
                        st->entered_usec = now;
                        st->clearing = false;
                        d.changed = true;
                        d.reason = DECIDE_REASON_HOLD_EXPIRED;
                }
        }

        d.level = st->level;
        st->has_prev = true;
        st->prev_usec = now;
        /* Intents for the effects (memory.high, …) are computed here, from d, f and p. */
        *ret = d;
}

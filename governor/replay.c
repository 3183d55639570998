/* SPDX-License-Identifier: MIT */
/*
 * replay: forecast → decide → govern over a recorded trace, the trace's timestamps as the
 * clock, and the verdict scored against the trace's OOM (memgovctl replay, bench/forecast).
 */
#include <stdlib.h>
#include <string.h>

#include "memgov/forecast.h"
#include "memgov/replay.h"

static bool followed_by_oom(uint64_t t_usec, bool has_oom, uint64_t oom_usec, uint64_t horizon_usec)
{
        return has_oom && t_usec <= oom_usec && oom_usec - t_usec <= horizon_usec;
}

unsigned replay_count_false_alarms(const uint64_t *entries_usec, size_t n, bool has_oom,
                                   uint64_t oom_usec, uint64_t horizon_usec)
{
        unsigned false_alarms = 0;

        for (size_t i = 0; i < n; i++)
                if (!followed_by_oom(entries_usec[i], has_oom, oom_usec, horizon_usec))
                        false_alarms++;
        return false_alarms;
}

static int push_transition(struct replay_result *r, size_t *cap, const struct replay_transition *tr)
{
        if (r->n_transitions == *cap) {
                size_t ncap = *cap ? *cap * 2 : 16;
                struct replay_transition *n = reallocarray(r->transitions, ncap, sizeof(*n));
                if (!n)
                        return -ENOMEM;
                r->transitions = n;
                *cap = ncap;
        }
        r->transitions[r->n_transitions++] = *tr;
        return 0;
}

static int push_memory_high(struct replay_result *r, size_t *cap,
                            const struct replay_memory_high *m)
{
        if (r->n_memory_high == *cap) {
                size_t ncap = *cap ? *cap * 2 : 16;
                struct replay_memory_high *n = reallocarray(r->memory_high, ncap, sizeof(*n));
                if (!n)
                        return -ENOMEM;
                r->memory_high = n;
                *cap = ncap;
        }
        r->memory_high[r->n_memory_high++] = *m;
        return 0;
}

int replay_run(const struct policy *p, const struct trace *t, struct replay_result *ret)
{
        struct replay_result r = {};
        struct forecast_state fs;
        struct decide_state ds;
        struct govern_state gs;
        size_t cap = 0, cap_high = 0;
        enum level level = LEVEL_OK;
        bool escalated = false;

        forecast_init(&fs, p);
        decide_init(&ds);
        govern_init(&gs);

        ssize_t oom = trace_oom_index(t);
        if (oom >= 0) {
                r.has_oom = true;
                r.oom_usec = t->samples[oom].t_usec;
        }
        r.n_samples = t->n_samples;
        if (t->n_samples > 0) {
                r.start_usec = t->samples[0].t_usec;
                r.duration_usec = t->samples[t->n_samples - 1].t_usec - r.start_usec;
        }

        for (size_t i = 0; i < t->n_samples; i++) {
                struct forecast f;
                struct decision d;
                struct govern_intent gi;
                const char *reason_name;

                forecast_update(&fs, &t->samples[i], &f);
                decide_update(&ds, p, &f, &d);
                govern_update(&gs, p, &t->samples[i], &d, &gi);
                r.n_updates++;
                if (gi.set && push_memory_high(&r, &cap_high,
                                               &(struct replay_memory_high){
                                                       .t_usec = d.t_usec,
                                                       .high_bytes = gi.high_bytes,
                                                       .cause = gi.cause,
                                               }) < 0) {
                        replay_result_clear(&r);
                        return -ENOMEM;
                }

                /* The level memgovd acts on, as memgovd works it out. */
                enum level previous = level;
                level = govern_level(d.level, previous, escalated, &gi, &reason_name);
                escalated = gi.escalate;
                if (level == previous)
                        continue;

                struct replay_transition tr = {
                        .t_usec = d.t_usec,
                        .from = previous,
                        .to = level,
                        .reason = reason_name ? DECIDE_REASON_NONE : d.reason,
                        .reason_name = reason_name,
                        .eta_usec = f.eta_usec,
                        .eta_lower_usec = f.eta_lower_usec,
                        .usage_permille = f.usage_permille,
                };
                if (push_transition(&r, &cap, &tr) < 0) {
                        replay_result_clear(&r);
                        return -ENOMEM;
                }
                for (int l = previous + 1; l <= (int)level; l++) {
                        r.entries[l]++;
                        if (!r.has_first[l]) {
                                r.has_first[l] = true;
                                r.first_usec[l] = d.t_usec;
                        }
                        if (!followed_by_oom(d.t_usec, r.has_oom, r.oom_usec,
                                             p->forecast_horizon_usec))
                                r.false_alarms[l]++;
                }
        }
        *ret = r;
        return 0;
}

bool replay_lead(const struct replay_result *r, enum level l, uint64_t *ret_usec)
{
        if (l <= LEVEL_OK || l >= _LEVEL_MAX || !r->has_oom || !r->has_first[l] ||
            r->first_usec[l] > r->oom_usec)
                return false;
        *ret_usec = r->oom_usec - r->first_usec[l];
        return true;
}

void replay_result_clear(struct replay_result *r)
{
        free(r->transitions);
        free(r->memory_high);
        *r = (struct replay_result){};
}

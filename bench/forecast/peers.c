/* SPDX-License-Identifier: MIT */
/*
 * The peer rules memgov's forecast is scored against, implemented here only, plus the
 * scoring every rule shares. Each peer turns a trace into a level per sample; all go through
 * the same hysteresis as memgov's decide (rise at once, fall after the policy's hold time
 * clear), so that flapping is not what tells them apart. A single-alarm rule raises
 * critical (and so enters warn, degrade and critical at once).
 *
 *   static  memory.current >= 90% of the limit, every sample (kubelet-, earlyoom-style).
 *   oomd    oomd's memory growth: memory.current over its decaying average, average =
 *           average * (decay - 1) / decay + current / decay with decay 4, updated every 5 s
 *           (oomd's interval); alarm at >= 1.25. oomd starts the average at 0, which alarms
 *           on the first reads; here it starts at the first value.
 *   holmes  mosn/holmes mem rule with its defaults: every 5 s, usage = RSS (anon when the
 *           trace has it, else memory.current) as a whole percent of the limit, pushed into
 *           a ring of the last 10; after 10 collections, alarm when usage >= 10 and
 *           (usage > 80 or usage >= ring average * 125%).
 *   lsq60   ordinary least squares of memory.current over the last 60 s; ETA to the limit
 *           from the slope; a level when ETA <= that level's policy ETA.
 */
#include <math.h>
#include <stdlib.h>

#include "bench.h"
#include "memgov/macro.h"

const char *peer_to_string(enum peer p)
{
        static const char *const names[_PEER_MAX] = {
                [PEER_STATIC] = "static 90%",
                [PEER_OOMD] = "oomd growth 1.25",
                [PEER_HOLMES] = "holmes 10/25/80",
                [PEER_LSQ60] = "least squares 60 s",
        };
        return (unsigned)p < _PEER_MAX ? names[p] : NULL;
}

/* The same hysteresis as decide: up at once, down after hold_usec with the level's raw clear. */
static void apply_hold(const struct trace *t, const enum level *raw, uint64_t hold_usec,
                       enum level *levels)
{
        enum level cur = LEVEL_OK;
        bool clearing = false;
        uint64_t since = 0;

        for (size_t i = 0; i < t->n_samples; i++) {
                uint64_t now = t->samples[i].t_usec;

                if (raw[i] > cur) {
                        cur = raw[i];
                        clearing = false;
                } else if (raw[i] == cur)
                        clearing = false;
                else if (cur != LEVEL_OK) {
                        if (!clearing) {
                                clearing = true;
                                since = now;
                        }
                        if (now - since >= hold_usec) {
                                cur = raw[i];
                                clearing = false;
                        }
                }
                levels[i] = cur;
        }
}

static bool has_limit(const struct sample *s)
{
        return s->max_bytes != 0 && s->max_bytes != CGROUP_LIMIT_MAX;
}

static void raw_static(const struct trace *t, enum level *raw)
{
        for (size_t i = 0; i < t->n_samples; i++) {
                const struct sample *s = &t->samples[i];
                raw[i] = has_limit(s) && (double)s->current_bytes >= 0.9 * (double)s->max_bytes
                                 ? LEVEL_CRITICAL
                                 : LEVEL_OK;
        }
}

#define PEER_INTERVAL_USEC (5 * USEC_PER_SEC)

static void raw_oomd(const struct trace *t, enum level *raw)
{
        const double decay = 4;
        double avg = 0;
        bool started = false, alarm = false;
        uint64_t next = 0;

        for (size_t i = 0; i < t->n_samples; i++) {
                const struct sample *s = &t->samples[i];

                if (!started || s->t_usec >= next) {
                        double cur = (double)s->current_bytes;
                        avg = started ? avg * (decay - 1) / decay + cur / decay : cur;
                        started = true;
                        alarm = avg > 0 && cur / avg >= 1.25;
                        next = s->t_usec + PEER_INTERVAL_USEC;
                }
                raw[i] = alarm ? LEVEL_CRITICAL : LEVEL_OK;
        }
}

static void raw_holmes(const struct trace *t, enum level *raw)
{
        long ring[10] = {};
        size_t n = 0, head = 0, collections = 0;
        bool alarm = false;
        uint64_t next = 0;

        for (size_t i = 0; i < t->n_samples; i++) {
                const struct sample *s = &t->samples[i];

                if (collections == 0 || s->t_usec >= next) {
                        next = s->t_usec + PEER_INTERVAL_USEC;
                        alarm = false;
                        if (has_limit(s)) {
                                uint64_t rss = (s->has & SAMPLE_HAS_ANON) ? s->anon_bytes
                                                                          : s->current_bytes;
                                long cur = (long)((double)rss * 100 / (double)s->max_bytes);

                                ring[head] = cur;
                                head = (head + 1) % ELEMENTSOF(ring);
                                n = MIN(n + 1, ELEMENTSOF(ring));
                                collections++;
                                long sum = 0;
                                for (size_t k = 0; k < n; k++)
                                        sum += ring[k];
                                long avg = sum / (long)n;
                                alarm = collections >= 10 && cur >= 10 &&
                                        (cur > 80 || cur >= avg * 125 / 100);
                        }
                }
                raw[i] = alarm ? LEVEL_CRITICAL : LEVEL_OK;
        }
}

static void raw_lsq60(const struct policy *p, const struct trace *t, enum level *raw)
{
        size_t first = 0;

        for (size_t i = 0; i < t->n_samples; i++) {
                const struct sample *s = &t->samples[i];

                raw[i] = LEVEL_OK;
                while (t->samples[first].t_usec + 60 * USEC_PER_SEC < s->t_usec)
                        first++;
                size_t n = i - first + 1;
                if (n < 3 || !has_limit(s))
                        continue;

                double mx = 0, my = 0, sxx = 0, sxy = 0;
                for (size_t k = first; k <= i; k++) {
                        mx -= (double)(s->t_usec - t->samples[k].t_usec) / 1e6;
                        my += (double)t->samples[k].current_bytes;
                }
                mx /= (double)n;
                my /= (double)n;
                for (size_t k = first; k <= i; k++) {
                        double dx = -(double)(s->t_usec - t->samples[k].t_usec) / 1e6 - mx;
                        sxx += dx * dx;
                        sxy += dx * ((double)t->samples[k].current_bytes - my);
                }
                if (sxx <= 0)
                        continue;
                double slope = sxy / sxx;
                if (slope <= 0)
                        continue;
                double eta = ((double)s->max_bytes - (double)s->current_bytes) / slope;
                for (int l = LEVEL_WARN; l < _LEVEL_MAX; l++)
                        if (p->levels[l].eta_usec > 0 && eta * 1e6 <= (double)p->levels[l].eta_usec)
                                raw[i] = (enum level)l;
        }
}

void peer_run(enum peer peer, const struct policy *p, const struct trace *t, enum level *levels)
{
        enum level *raw = calloc(MAX(t->n_samples, (size_t)1), sizeof(*raw));

        if (!raw)
                abort();
        switch (peer) {
        case PEER_STATIC:
                raw_static(t, raw);
                break;
        case PEER_OOMD:
                raw_oomd(t, raw);
                break;
        case PEER_HOLMES:
                raw_holmes(t, raw);
                break;
        case PEER_LSQ60:
                raw_lsq60(p, t, raw);
                break;
        default:
                abort();
        }
        apply_hold(t, raw, p->hold_usec, levels);
        free(raw);
}

void score_levels(const struct trace *t, const enum level *levels, uint64_t horizon_usec,
                  struct rule_result *ret)
{
        struct rule_result r = {};
        ssize_t oom = trace_oom_index(t);

        if (t->n_samples > 0)
                r.duration_usec = t->samples[t->n_samples - 1].t_usec - t->samples[0].t_usec;
        if (oom >= 0) {
                r.has_oom = true;
                r.oom_usec = t->samples[oom].t_usec;
        }

        for (int l = LEVEL_WARN; l < _LEVEL_MAX; l++) {
                for (size_t i = 0; i < t->n_samples; i++) {
                        bool entry = levels[i] >= l && (i == 0 || levels[i - 1] < l);
                        uint64_t at = t->samples[i].t_usec;

                        if (entry &&
                            !(r.has_oom && at <= r.oom_usec && r.oom_usec - at <= horizon_usec))
                                r.false_alarms[l]++;
                }
                /* The lead: how long the level had been standing at the last sample before. */
                if (oom > 0 && levels[oom - 1] >= l) {
                        size_t j = (size_t)oom - 1;
                        while (j > 0 && levels[j - 1] >= l)
                                j--;
                        r.lead_usec[l] = r.oom_usec - t->samples[j].t_usec;
                }
        }
        *ret = r;
}

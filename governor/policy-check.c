/* SPDX-License-Identifier: MIT */
/*
 * The checks of a policy that span sections (policy stage, before probe): thresholds that
 * must tighten from warn to critical, a forecast window that holds enough samples, a
 * horizon that reaches the longest level eta. When a default is involved, the message says
 * so: the user did not write that value and may not know it.
 */
#include <inttypes.h>
#include <string.h>

#include "policy-internal.h"

static const struct {
        const char *key;
        bool descending; /* eta: shorter is tighter; the rest: higher is tighter */
} thresholds[] = {
        {"eta", true},
        {"usage", false},
        {"psi_some_avg10", false},
        {"psi_full_avg10", false},
        {"high_events_rate", false},
        {"max_events_rate", false},
};

static bool threshold_get(const struct policy_level *l, size_t k, double *ret)
{
        switch (k) {
        case 0:
                *ret = (double)l->eta_usec;
                return l->eta_usec > 0;
        case 1:
                *ret = l->usage_permille;
                return l->usage_permille > 0;
        case 2:
                *ret = l->psi_some_avg10_pct;
                return l->has_psi_some_avg10;
        case 3:
                *ret = l->psi_full_avg10_pct;
                return l->has_psi_full_avg10;
        case 4:
                *ret = l->high_events_per_s;
                return l->has_high_rate;
        default:
                *ret = l->max_events_per_s;
                return l->has_max_rate;
        }
}

static const char *threshold_format(size_t k, double v, char *buf, size_t size)
{
        if (k == 0)
                return pj_format_duration((uint64_t)v, buf, size);
        if (k == 1)
                return pj_format_permille((uint32_t)v, buf, size);
        (void)snprintf(buf, size, "%g", v);
        return buf;
}
#define THRESHOLD(k, v) threshold_format((k), (v), (char[32]){}, 32)

/* Compare each set threshold with the same one of the nearest looser level that sets it. */
static void check_levels_tighten(struct pj *c, const struct policy *p, const struct policy_given *g)
{
        for (size_t k = 0; k < ELEMENTSOF(thresholds); k++)
                for (int j = LEVEL_DEGRADE; j < _LEVEL_MAX; j++) {
                        double vj, vi;

                        if (!threshold_get(&p->levels[j], k, &vj))
                                continue;
                        for (int i = j - 1; i >= LEVEL_WARN; i--) {
                                const char *key = thresholds[k].key;
                                bool desc = thresholds[k].descending;
                                char path[64];

                                if (!threshold_get(&p->levels[i], k, &vi))
                                        continue;
                                if (desc ? vj < vi : vj > vi)
                                        break;
                                /* blame the value the user wrote, naming the other one */
                                if (g->level[j]) {
                                        (void)snprintf(path, sizeof(path), ".levels.%s.%s",
                                                       level_to_string((enum level)j), key);
                                        pj_problem_at(c, path,
                                                      "must be %s than .levels.%s.%s (%s%s): "
                                                      "levels tighten from warn to critical; "
                                                      "got %s",
                                                      desc ? "shorter" : "higher",
                                                      level_to_string((enum level)i), key,
                                                      THRESHOLD(k, vi),
                                                      g->level[i] ? "" : ", the default",
                                                      THRESHOLD(k, vj));
                                } else {
                                        (void)snprintf(path, sizeof(path), ".levels.%s.%s",
                                                       level_to_string((enum level)i), key);
                                        pj_problem_at(c, path,
                                                      "must be %s than .levels.%s.%s (%s, the "
                                                      "default): levels tighten from warn to "
                                                      "critical; got %s",
                                                      desc ? "longer" : "lower",
                                                      level_to_string((enum level)j), key,
                                                      THRESHOLD(k, vj), THRESHOLD(k, vi));
                                }
                                break;
                        }
                }
}

static void check_window(struct pj *c, const struct policy *p, const struct policy_given *g)
{
        uint64_t si = p->sample_interval_usec, w = p->forecast_window_usec;

        /* a regression over fewer than 10 points is noise, not a forecast */
        if (g->sample_interval < 0 || g->window < 0 || w >= 10 * si)
                return;
        if (g->window > 0)
                pj_problem_at(c, ".forecast.window",
                              "must hold at least 10 samples: at least %s with sample_interval "
                              "%s%s; got %s",
                              PJ_DURATION(10 * si), PJ_DURATION(si),
                              g->sample_interval > 0 ? "" : " (the default)", PJ_DURATION(w));
        else
                pj_problem_at(c, ".sample_interval",
                              "must be at most a tenth of .forecast.window (%s, the default), so "
                              "that a forecast holds 10 samples; got %s",
                              PJ_DURATION(w), PJ_DURATION(si));
}

static void check_horizon(struct pj *c, const struct policy *p, const struct policy_given *g)
{
        int longest = -1;

        if (g->horizon < 0)
                return;
        for (int l = LEVEL_WARN; l < _LEVEL_MAX; l++)
                if (p->levels[l].eta_usec > 0 &&
                    (longest < 0 || p->levels[l].eta_usec > p->levels[longest].eta_usec))
                        longest = l;
        if (longest < 0 || p->levels[longest].eta_usec <= p->forecast_horizon_usec)
                return;
        if (g->horizon > 0) {
                pj_problem_at(c, ".forecast.horizon",
                              "must be at least the longest level eta, .levels.%s.eta (%s%s); "
                              "got %s",
                              level_to_string((enum level)longest),
                              PJ_DURATION(p->levels[longest].eta_usec),
                              g->level[longest] ? "" : ", the default",
                              PJ_DURATION(p->forecast_horizon_usec));
        } else {
                char path[64];
                (void)snprintf(path, sizeof(path), ".levels.%s.eta",
                               level_to_string((enum level)longest));
                pj_problem_at(c, path,
                              "must be at most .forecast.horizon (%s, the default), since the "
                              "forecast looks no further; got %s",
                              PJ_DURATION(p->forecast_horizon_usec),
                              PJ_DURATION(p->levels[longest].eta_usec));
        }
}

void policy_check(struct pj *c, const struct policy *p, const struct policy_given *g)
{
        check_levels_tighten(c, p, g);
        check_window(c, p, g);
        check_horizon(c, p, g);
}

/* SPDX-License-Identifier: MIT */
/*
 * Policy stage under fuzzing: policy_load_buffer(), the strict JSON → struct policy
 * validator that every policy file and `memgovctl check-policy` go through. A rejected
 * policy must say why; an accepted one must hold what the rest of the flow relies on.
 */
#include <errno.h>

#include "fuzz.h"
#include "memgov/diag.h"
#include "memgov/macro.h"
#include "memgov/policy.h"

static void check_accepted(const struct policy *p)
{
        fuzz_check(p->path && p->service && p->cgroup);
        fuzz_check(p->service[0] != '\0' && p->cgroup[0] != '/');
        fuzz_check(p->sample_interval_usec > 0);
        fuzz_check(p->forecast_window_usec >= p->sample_interval_usec);
        fuzz_check(p->forecast_horizon_usec > 0);
        fuzz_check(p->memory_high.mode >= 0 && p->memory_high.mode < _MEMORY_HIGH_MODE_MAX);
        fuzz_check(p->memory_high.backend >= 0 && p->memory_high.backend < _ACTUATE_BACKEND_MAX);
        fuzz_check(memory_high_mode_to_string(p->memory_high.mode));
        fuzz_check(actuate_backend_to_string(p->memory_high.backend));
        for (enum level l = LEVEL_WARN; l < _LEVEL_MAX; l++) {
                const struct policy_level *v = &p->levels[l];

                fuzz_check(v->usage_permille <= 1000);
                fuzz_check(!v->has_psi_some_avg10 ||
                           (v->psi_some_avg10_pct >= 0 && v->psi_some_avg10_pct <= 100));
                fuzz_check(!v->has_psi_full_avg10 ||
                           (v->psi_full_avg10_pct >= 0 && v->psi_full_avg10_pct <= 100));
        }
        for (unsigned k = 0; k < _PPROF_KIND_MAX; k++)
                if (p->pprof.kinds_mask & (1u << k))
                        fuzz_check(pprof_kind_to_string((enum pprof_kind)k));
        fuzz_check(p->pprof.kinds_mask < (1u << _PPROF_KIND_MAX));
        fuzz_check(p->n_collectors == 0 || p->collectors);
        for (size_t i = 0; i < p->n_collectors; i++)
                fuzz_check(p->collectors[i].argv && p->collectors[i].argv[0]);
        fuzz_check(p->n_webhooks == 0 || p->webhooks);
        for (size_t i = 0; i < p->n_webhooks; i++)
                fuzz_check(p->webhooks[i].url && p->webhooks[i].deadline_usec > 0);

        /* sizes resolve against any limit without overflowing past it */
        const uint64_t limits[] = {
                0, 1, 4096, UINT64_C(1) << 40, UINT64_C(1) << 62, CGROUP_LIMIT_MAX};
        for (size_t k = 0; k < ELEMENTSOF(limits); k++) {
                (void)policy_size_resolve(&p->memory_high.min, limits[k]);
                (void)policy_size_resolve(&p->memory_high.fixed, limits[k]);
                if (p->memory_high.min.permille > 0)
                        fuzz_check(policy_size_resolve(&p->memory_high.min, limits[k]) <=
                                   limits[k]);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_(policy_freep) struct policy *p = NULL;
        struct diag d = {};
        int r;

        r = policy_load_buffer("fuzz.json", (const char *)data, size, &d, &p);
        fuzz_check(r == 0 || r == -EINVAL || r == -ENOMEM || r == -EFBIG);
        if (r == 0) {
                fuzz_check(p && d.n_lines == 0);
                check_accepted(p);
        } else {
                fuzz_check(!p);
                /* a refusal always tells the user why, on lines naming the file */
                fuzz_check(r == -ENOMEM || d.n_lines > 0);
                for (size_t i = 0; i < d.n_lines; i++)
                        fuzz_check(strncmp(d.lines[i], "fuzz.json:", 10) == 0);
        }
        diag_clear(&d);
        return 0;
}

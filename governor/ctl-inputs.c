/* SPDX-License-Identifier: MIT */
/*
 * The common start of `memgovctl replay` and `memgovctl report`: a policy and one trace,
 * checked and loaded with the same messages.
 */
#include <stdio.h>
#include <string.h>

#include "memgov/ctl.h"
#include "memgov/diag.h"
#include "memgov/policy.h"
#include "memgov/trace.h"

int ctl_load_policy_and_trace(const struct ctl_inputs *in, struct policy **ret_policy,
                              struct trace **ret_trace)
{
        if (!in->policy_path || in->optind != in->argc - 1) {
                fprintf(stderr, "memgovctl %s: %s\n", in->command,
                        !in->policy_path         ? "--policy FILE is required"
                        : in->optind == in->argc ? "a TRACE.csv is required"
                                                 : "only one TRACE.csv at a time");
                in->help(stderr);
                return 2;
        }
        const char *trace_path = in->argv[in->optind];

        _cleanup_(policy_freep) struct policy *p = NULL;
        struct diag d = {};
        int r = policy_load_file(in->policy_path, &d, &p);
        if (r < 0) {
                if (d.n_lines == 0)
                        fprintf(stderr, "%s: %s\n", in->policy_path, strerror(-r));
                diag_print(&d, stderr);
                diag_clear(&d);
                return 1;
        }
        _cleanup_(trace_freep) struct trace *t = NULL;
        r = trace_load_file(trace_path, &d, &t);
        if (r < 0) {
                if (d.n_lines == 0)
                        fprintf(stderr, "%s: %s\n", trace_path, strerror(-r));
                diag_print(&d, stderr);
                diag_clear(&d);
                return 1;
        }
        diag_clear(&d);
        *ret_policy = TAKE_PTR(p);
        *ret_trace = TAKE_PTR(t);
        return 0;
}

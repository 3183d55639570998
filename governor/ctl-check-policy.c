/* SPDX-License-Identifier: MIT */
/* memgovctl check-policy: run the daemon's own policy validation over files, before a reload. */
#include <stdio.h>
#include <string.h>

#include "memgov/ctl.h"
#include "memgov/diag.h"
#include "memgov/policy.h"

int ctl_check_policy(int argc, char *argv[])
{
        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                FILE *f = argc < 2 ? stderr : stdout;
                fprintf(f, "Usage: memgovctl check-policy FILE...\n\n"
                           "Validates each policy as memgovd would load it. Exit 0 when all\n"
                           "are valid; otherwise exit 1 with one 'FILE: JSON.PATH: message'\n"
                           "line per problem on stderr.\n\n"
                           "Example:\n  memgovctl check-policy /etc/memgov/policies.d/*.json\n");
                return argc < 2 ? 2 : 0;
        }

        int status = 0;
        for (int i = 1; i < argc; i++) {
                _cleanup_(policy_freep) struct policy *p = NULL;
                struct diag d = {};

                int r = policy_load_file(argv[i], &d, &p);
                if (r < 0) {
                        if (d.n_lines == 0)
                                fprintf(stderr, "%s: %s\n", argv[i], strerror(-r));
                        diag_print(&d, stderr);
                        status = 1;
                }
                diag_clear(&d);
        }
        return status;
}

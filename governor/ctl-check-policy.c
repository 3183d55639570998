/* SPDX-License-Identifier: MIT */
/* memgovctl check-policy: run the daemon's own policy validation over files, before a reload. */
#include <stdio.h>
#include <stdlib.h>
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

        /* the valid ones, to find clashes between files as memgovd would over its directory */
        struct policy **loaded = calloc((size_t)argc, sizeof(struct policy *));
        size_t n_loaded = 0;
        int status = 0;

        if (!loaded) {
                fprintf(stderr, "memgovctl: %s\n", strerror(ENOMEM));
                return 1;
        }
        for (int i = 1; i < argc; i++) {
                struct policy *p = NULL;
                struct diag d = {};

                int r = policy_load_file(argv[i], &d, &p);
                if (r < 0) {
                        if (d.n_lines == 0)
                                fprintf(stderr, "%s: %s\n", argv[i], strerror(-r));
                        diag_print(&d, stderr);
                        status = 1;
                } else
                        loaded[n_loaded++] = p;
                diag_clear(&d);
        }

        struct diag d = {};
        int r = policy_check_unique(loaded, n_loaded, &d);
        diag_print(&d, stderr);
        diag_clear(&d);
        if (r != 0)
                status = 1;
        for (size_t i = 0; i < n_loaded; i++)
                policy_free(loaded[i]);
        free(loaded);
        return status;
}

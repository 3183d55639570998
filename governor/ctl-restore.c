/* SPDX-License-Identifier: MIT */
/*
 * memgovctl restore: put back by hand the memory.high memgovd found before it changed it,
 * from the restore records in the state dir (actuate stage; see include/memgov/restore.h).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "memgov/cgfs.h"
#include "memgov/ctl.h"
#include "memgov/restore.h"

/* memgovd's default (struct memgov_config.state_dir). */
#define CTL_RESTORE_DEFAULT_STATE_DIR "/var/lib/memgov"

static void help(FILE *f)
{
        fprintf(f,
                "Usage: memgovctl restore SERVICE|CGROUP|--all [--state-dir DIR]\n"
                "                 [--cgroup-root DIR] [--dry-run]\n\n"
                "Puts back the memory.high that memgovd found on a cgroup before it first\n"
                "changed it, from the records in STATE-DIR/restore, and deletes the records.\n"
                "memgovd does this itself on exit and, after a crash, at its next start; this\n"
                "is for when it cannot. A running memgovd governs on, so stop it first.\n\n"
                "A record whose cgroup is gone, or was made anew since, is dropped. A record\n"
                "that cannot be read is renamed to NAME.json.corrupt and reported.\n"
                "Cgroups set through systemd are restored through systemd (MemoryHigh=).\n\n"
                "Options:\n"
                "  SERVICE|CGROUP     the records of that service (the policy's name) or\n"
                "                     cgroup (relative to the cgroup root)\n"
                "  --all              every record\n"
                "  --state-dir DIR    memgovd's state dir (default %s)\n"
                "  --cgroup-root DIR  the cgroup2 mount (default: found in /proc/self/mountinfo)\n"
                "  --dry-run          say what would be restored; change nothing\n"
                "  -h, --help         this text\n\n"
                "Exit status: 0 when every record was restored or dropped (or there was\n"
                "none), 1 when one could not be restored or read, 2 on a usage error.\n\n"
                "Example:\n"
                "  memgovctl restore checkout-api\n",
                CTL_RESTORE_DEFAULT_STATE_DIR);
}

int ctl_restore(int argc, char *argv[])
{
        enum {
                ARG_ALL = 0x100,
                ARG_STATE_DIR,
                ARG_CGROUP_ROOT,
                ARG_DRY_RUN,
        };
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},
                {"all", no_argument, NULL, ARG_ALL},
                {"state-dir", required_argument, NULL, ARG_STATE_DIR},
                {"cgroup-root", required_argument, NULL, ARG_CGROUP_ROOT},
                {"dry-run", no_argument, NULL, ARG_DRY_RUN},
                {},
        };
        const char *state_dir = CTL_RESTORE_DEFAULT_STATE_DIR, *cgroup_root = NULL;
        const char *match = NULL;
        struct restore_stats stats = {};
        struct cgfs *cgfs = NULL;
        bool all = false, dry_run = false;
        int opt, r;

        optind = 0; /* a fresh scan, also when called twice in one process (tests) */
        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (opt) {
                case 'h':
                        help(stdout);
                        return 0;
                case ARG_ALL:
                        all = true;
                        break;
                case ARG_STATE_DIR:
                        state_dir = optarg;
                        break;
                case ARG_CGROUP_ROOT:
                        cgroup_root = optarg;
                        break;
                case ARG_DRY_RUN:
                        dry_run = true;
                        break;
                default:
                        fprintf(stderr, "See 'memgovctl restore --help'.\n");
                        return 2;
                }
        }
        if (optind < argc)
                match = argv[optind++];
        if (optind < argc) {
                fprintf(stderr, "memgovctl restore: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        if (!!match == all) {
                fprintf(stderr, "memgovctl restore: name a SERVICE or CGROUP, or give --all\n"
                                "See 'memgovctl restore --help'.\n");
                return 2;
        }

        r = cgfs_new(cgroup_root, NULL, &cgfs);
        if (r < 0) {
                fprintf(stderr, "memgovctl restore: cannot open the cgroup root %s: %s\n",
                        cgroup_root ? cgroup_root : "(the cgroup2 mount)", strerror(-r));
                return 1;
        }
        struct restore_env env = {.cgfs = cgfs, .open_bus = true, .dry_run = dry_run};
        r = restore_all(state_dir, match, &env, &stats);
        sd_bus_flush_close_unref(env.bus);
        cgfs_free(cgfs);

        if (r == -ENOENT && match) {
                fprintf(stderr,
                        "memgovctl restore: no record of '%s' in %s/" RESTORE_SUBDIR
                        ": nothing to restore\n",
                        match, state_dir);
                return 0;
        }
        if (r < 0) {
                fprintf(stderr,
                        "memgovctl restore: cannot read the records in %s/" RESTORE_SUBDIR ": %s\n",
                        state_dir, strerror(-r));
                return 1;
        }
        printf("%u %s, %u dropped (cgroup gone or made anew), %u failed, %u unreadable\n",
               dry_run ? stats.skipped : stats.restored,
               dry_run ? "would be restored (dry run)" : "restored", stats.dropped, stats.failed,
               stats.corrupt);
        return stats.failed || stats.corrupt ? 1 : 0;
}

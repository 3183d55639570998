/* SPDX-License-Identifier: MIT */
/* memgovd: the daemon that runs the flow (probe → forecast → decide → effects) on one loop. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "memgov/cgfs.h"
#include "memgov/daemon.h"
#include "memgov/diag.h"
#include "memgov/log.h"
#include "memgov/policy.h"

static void help(FILE *f)
{
        fprintf(f,
                "Usage: memgovd [OPTIONS...]\n"
                "\n"
                "Keeps services from being OOM-killed by surprise: samples the cgroup v2 memory\n"
                "files and PSI of every cgroup its policies match, forecasts time-to-OOM and\n"
                "acts before the kernel does. Reloads on SIGHUP, exits on SIGTERM/SIGINT.\n"
                "\n"
                "Options:\n"
                "      --config FILE      daemon config (JSON); default: the built-in defaults\n"
                "      --policy-dir DIR   one *.json policy per service (default "
                "%s/memgov/policies.d)\n"
                "      --cgroup-root DIR  the cgroup2 tree to govern (default: the cgroup2 mount)\n"
                "      --proc-root DIR    the /proc to read (default /proc)\n"
                "      --state-dir DIR    dumps and state (default %s/lib/memgov)\n"
                "      --dry-run          decide and report, write nothing outside the state "
                "dir;\n"
                "                         webhooks are still sent (they change nothing here)\n"
                "  -v, --log-level LEVEL  debug, info, notice, warning or error (default info);\n"
                "                         -v alone is debug\n"
                "  -h, --help             show this help\n"
                "      --version          show the version\n"
                "\n"
                "Flags override the config file.\n"
                "\n"
                "Example:\n"
                "  memgovctl check-policy /etc/memgov/policies.d/*.json &&\n"
                "      memgovd --policy-dir /etc/memgov/policies.d --dry-run -v\n",
                MEMGOV_SYSCONFDIR, MEMGOV_LOCALSTATEDIR);
}

enum {
        ARG_CONFIG = 0x100,
        ARG_POLICY_DIR,
        ARG_CGROUP_ROOT,
        ARG_PROC_ROOT,
        ARG_STATE_DIR,
        ARG_DRY_RUN,
        ARG_VERSION,
};

/* Returns 0 to run, 1 to exit 0 (help, version), -EINVAL for a usage error (said). */
static int parse_argv(int argc, char *argv[], struct daemon_args *args)
{
        static const struct option options[] = {
                {"config", required_argument, NULL, ARG_CONFIG},
                {"policy-dir", required_argument, NULL, ARG_POLICY_DIR},
                {"cgroup-root", required_argument, NULL, ARG_CGROUP_ROOT},
                {"proc-root", required_argument, NULL, ARG_PROC_ROOT},
                {"state-dir", required_argument, NULL, ARG_STATE_DIR},
                {"dry-run", no_argument, NULL, ARG_DRY_RUN},
                {"log-level", required_argument, NULL, 'v'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION},
                {},
        };
        int c, level;

        /* "-v" takes no argument (debug); a level is given with --log-level LEVEL. */
        while ((c = getopt_long(argc, argv, "hv", options, NULL)) >= 0) {
                switch (c) {
                case ARG_CONFIG:
                        args->config_path = optarg;
                        break;
                case ARG_POLICY_DIR:
                        args->policy_dir = optarg;
                        break;
                case ARG_CGROUP_ROOT:
                        args->cgroup_root = optarg;
                        break;
                case ARG_PROC_ROOT:
                        args->proc_root = optarg;
                        break;
                case ARG_STATE_DIR:
                        args->state_dir = optarg;
                        break;
                case ARG_DRY_RUN:
                        args->dry_run = true;
                        break;
                case 'v':
                        level = optarg ? log_level_from_string(optarg) : LOG_DEBUG;
                        if (level < 0) {
                                fprintf(stderr,
                                        "memgovd: unknown log level '%s' (debug, info, notice, "
                                        "warning, error)\n",
                                        optarg);
                                return -EINVAL;
                        }
                        log_set_max_level(level);
                        break;
                case 'h':
                        help(stdout);
                        return 1;
                case ARG_VERSION:
                        printf("memgovd %s\n", MEMGOV_VERSION);
                        return 1;
                default:
                        fprintf(stderr, "memgovd: see 'memgovd --help'\n");
                        return -EINVAL;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "memgovd: unexpected argument '%s'; see 'memgovd --help'\n",
                        argv[optind]);
                return -EINVAL;
        }
        return 0;
}

#define CGROUP_V2_ADVICE                                                                           \
        "memgov governs cgroup v2 memory only: boot with systemd.unified_cgroup_hierarchy=1 "      \
        "(or cgroup_no_v1=memory), or point --cgroup-root at a cgroup2 tree with the memory "      \
        "controller."

/* Open the cgroup root and refuse, with what to do, one that memgov cannot govern. */
static int open_root(const struct memgov_config *config, const struct daemon_args *args,
                     struct cgfs **ret)
{
        const char *what = config->cgroup_root ? "the cgroup root" : "the cgroup2 mount";
        struct cgfs *c = NULL;
        char controllers[4096];

        int r = cgfs_new(config->cgroup_root, args->proc_root, &c);
        if (r == -ENOENT && !config->cgroup_root)
                return log_error_errno(r, "found no cgroup2 mount in %s/self/mountinfo. %s",
                                       args->proc_root ?: "/proc", CGROUP_V2_ADVICE);
        if (r < 0)
                return log_error_errno(r, "cannot open %s %s: %m", what, config->cgroup_root ?: "");

        ssize_t n =
                cgfs_read_at(c->cgroup_fd, "cgroup.controllers", controllers, sizeof(controllers));
        if (n < 0) {
                log_error_errno((int)n,
                                "%s %s has no readable cgroup.controllers (%m): it is not "
                                "a cgroup2 tree. %s",
                                what, c->cgroup_path, CGROUP_V2_ADVICE);
                cgfs_free(c);
                return -ENOTSUP;
        }
        r = cgfs_has_memory_controller(c);
        if (r <= 0) {
                controllers[strcspn(controllers, "\n")] = '\0';
                log_error("%s %s has no memory controller (its cgroup.controllers lists: %s). %s",
                          what, c->cgroup_path, controllers[0] ? controllers : "nothing",
                          CGROUP_V2_ADVICE);
                cgfs_free(c);
                return -ENOTSUP;
        }
        if (cgfs_root_is_cgroup2(c) == 0)
                log_notice("%s is not a cgroup2 filesystem (a test tree?): no PSI triggers, "
                           "sampling on timers and inotify",
                           c->cgroup_path);
        *ret = c;
        return 0;
}

/*
 * Each instance holds a directory fd and a PSI trigger fd, and sd-event polls with epoll
 * (no select() limit): raise the soft fd limit to the hard one so that thousands of
 * cgroups fit.
 */
static void bump_nofile(void)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
                return;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                log_debug("cannot raise the open file limit: %m");
}

#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4 /* Linux 4.4; older headers lack it */
#endif

/*
 * memgovd must keep running when memory is short: that is when it is needed. Its pages are
 * locked in RAM (only those it touches, with MCL_ONFAULT, so that reserved but unused
 * address space costs nothing), and the kernel's OOM killer is told to pass it by. Neither
 * is fatal: without them memgovd still works, it is only easier to push out.
 */
static void protect_self(void)
{
        if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) < 0) {
                int onfault_errno = errno;
                /* Kernels before 4.4 refuse MCL_ONFAULT with EINVAL: lock everything then. */
                if (onfault_errno != EINVAL || mlockall(MCL_CURRENT | MCL_FUTURE) < 0)
                        log_warning("cannot lock memgovd's memory (%m): under memory pressure "
                                    "it may be paged out and react late; grant CAP_IPC_LOCK or "
                                    "raise LimitMEMLOCK=");
        }

        _cleanup_close_ int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "-1000", 5) != 5)
                log_warning("cannot set memgovd's oom_score_adj to -1000 (%m): the OOM killer "
                            "may pick memgovd; run it as root or with CAP_SYS_RESOURCE, or set "
                            "OOMScoreAdjust=-1000 in its unit");
}

/* The state dir (dumps, restore records), 0700, made if missing (its parent must exist). */
static int make_state_dir(const char *path)
{
        struct stat st;

        if (!path)
                return 0;
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return log_error_errno(errno,
                                       "cannot create the state directory %s: %m; create it or "
                                       "point --state-dir elsewhere",
                                       path);
        if (stat(path, &st) < 0)
                return log_error_errno(errno, "cannot use the state directory %s: %m", path);
        if (!S_ISDIR(st.st_mode))
                return log_error_errno(-ENOTDIR, "the state directory %s is not a directory", path);
        if (st.st_mode & 077)
                log_warning("the state directory %s is open to others (mode %04o): dumps and "
                            "restore records are private; chmod 700 %s",
                            path, (unsigned)(st.st_mode & 07777), path);
        return 0;
}

int main(int argc, char *argv[])
{
        struct daemon_args args = {};
        struct memgov_config config = {};
        struct policy_set *set = NULL;
        struct cgfs *cgfs = NULL;
        struct daemon *d = NULL;
        struct diag diag = {};
        int r;

        r = parse_argv(argc, argv, &args);
        if (r != 0)
                return r > 0 ? 0 : 2;
        log_open();
        bump_nofile();

        r = daemon_config_load(&args, &diag, &config);
        if (r < 0) {
                diag_print(&diag, stderr);
                if (diag.n_lines == 0)
                        log_error_errno(r, "cannot load the config %s: %m", args.config_path);
                diag_clear(&diag);
                return 1;
        }

        r = open_root(&config, &args, &cgfs);
        if (r < 0)
                goto finish;

        r = policy_set_load_dir(config.policy_dir, &diag, &set);
        if (r < 0) {
                for (size_t k = 0; k < diag.n_lines; k++)
                        log_error("%s", diag.lines[k]);
                if (diag.n_lines == 0)
                        log_error_errno(r, "cannot read the policy directory %s: %m",
                                        config.policy_dir);
                goto finish;
        }

        r = make_state_dir(config.state_dir);
        if (r < 0)
                goto finish;
        protect_self();

        r = daemon_new(&args, &config, cgfs, set, &d);
        if (r < 0) {
                log_error_errno(r, "cannot set up the daemon: %m");
                goto finish;
        }
        cgfs = NULL;
        set = NULL;

        r = daemon_setup_signals(d);
        if (r < 0) {
                log_error_errno(r, "cannot handle signals: %m");
                goto finish;
        }
        r = daemon_start(d);
        if (r < 0) {
                log_error_errno(r, "cannot start: %m");
                goto finish;
        }
        r = daemon_run(d);
        if (r < 0)
                log_error_errno(r, "the event loop failed: %m");

finish:
        daemon_free(d);
        policy_set_free(set);
        cgfs_free(cgfs);
        memgov_config_clear(&config);
        diag_clear(&diag);
        return r < 0 ? 1 : 0;
}

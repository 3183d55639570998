/* SPDX-License-Identifier: MIT */
/*
 * memgovctl record: sample one cgroup with the daemon's probe (cgfs_read_sample and
 * cgfs_effective_limit) and write the trace CSV (record stage, offline) that
 * `memgovctl replay` and the forecast benchmark read.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "memgov/cgfs.h"
#include "memgov/ctl.h"
#include "memgov/parse.h"
#include "memgov/trace.h"

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
        stop_signal = sig;
}

static void help(FILE *f)
{
        fprintf(f, "Usage: memgovctl record --cgroup PATH -o FILE.csv [OPTIONS...]\n\n"
                   "Samples a cgroup's memory files with memgovd's own probe and writes a trace\n"
                   "CSV (t_ms,current,anon,file,max,high,ev_*,psi_*_us), one row per sample.\n"
                   "The max column is the effective limit: the smallest memory.max from the\n"
                   "cgroup up to the top, else MemTotal. Each row is flushed as it is taken;\n"
                   "the file appears under its name when recording ends (duration, OOM kill,\n"
                   "the cgroup removed, or Ctrl-C).\n\n"
                   "Options:\n"
                   "  --cgroup PATH       the cgroup, relative to the cgroup root\n"
                   "  -o, --output FILE   the CSV to write (written as FILE.tmp, then renamed)\n"
                   "  --cgroup-root DIR   default: the cgroup2 mount from /proc/self/mountinfo\n"
                   "  --proc-root DIR     default: /proc (MemTotal is read from DIR/meminfo)\n"
                   "  --interval-ms N     time between samples, default 500\n"
                   "  --duration-s N      stop after N seconds, default: no limit\n"
                   "  --until-oom         stop one sample after memory.events oom_kill grows\n\n"
                   "Example:\n"
                   "  memgovctl record --cgroup system.slice/checkout.service \\\n"
                   "          --interval-ms 250 --until-oom -o checkout.csv\n");
}

/* A positive integer option within [min, max]. */
static int parse_uint_option(const char *name, const char *arg, uint64_t min, uint64_t max,
                             uint64_t *ret)
{
        uint64_t v;

        if (parse_u64(arg, &v) < 0 || v < min || v > max) {
                fprintf(stderr,
                        "memgovctl record: %s: expected a whole number from %" PRIu64 " to %" PRIu64
                        ", got '%s'\n",
                        name, min, max, arg);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

/* Sleep until the CLOCK_MONOTONIC deadline; returns early (-EINTR) on a signal. */
static int sleep_until(uint64_t deadline_usec)
{
        struct timespec ts = {
                .tv_sec = (time_t)(deadline_usec / USEC_PER_SEC),
                .tv_nsec = (long)(deadline_usec % USEC_PER_SEC * 1000),
        };
        int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        return -r;
}

/*
 * One sample as a trace row carries it: the daemon's probe, with the effective limit in
 * max (a cgroup without its own memory.max is still bounded by its ancestors and the
 * machine, and replay forecasts against that bound).
 */
static int take_sample(const struct cgfs *c, int dirfd, const char *relpath, struct sample *ret)
{
        struct sample s;
        uint64_t limit;

        int r = cgfs_read_sample(dirfd, monotonic_usec(), &s);
        if (r < 0)
                return r;
        r = cgfs_effective_limit(c, relpath, &limit);
        if (r < 0)
                return r;
        s.limit_bytes = limit;
        s.max_bytes = MIN(s.max_bytes, limit);
        *ret = s;
        return 0;
}

static bool is_vanished(int r)
{
        return r == -ENOENT || r == -ENODEV;
}

/* Make the rows durable and give the file its name. */
static int finish_file(FILE **f, const char *tmp, const char *out)
{
        int r = 0;

        if (fflush(*f) != 0 || fsync(fileno(*f)) < 0)
                r = negative_errno();
        if (fclose(*f) != 0 && r == 0)
                r = negative_errno();
        *f = NULL;
        if (r < 0) {
                fprintf(stderr, "memgovctl record: writing %s: %s (partial rows kept there)\n", tmp,
                        strerror(-r));
                return r;
        }
        if (rename(tmp, out) < 0) {
                r = negative_errno();
                fprintf(stderr, "memgovctl record: renaming %s to %s: %s\n", tmp, out,
                        strerror(-r));
                return r;
        }
        return 0;
}

int ctl_record(int argc, char *argv[])
{
        enum {
                ARG_CGROUP = 0x100,
                ARG_CGROUP_ROOT,
                ARG_PROC_ROOT,
                ARG_INTERVAL_MS,
                ARG_DURATION_S,
                ARG_UNTIL_OOM,
        };
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},
                {"cgroup", required_argument, NULL, ARG_CGROUP},
                {"output", required_argument, NULL, 'o'},
                {"cgroup-root", required_argument, NULL, ARG_CGROUP_ROOT},
                {"proc-root", required_argument, NULL, ARG_PROC_ROOT},
                {"interval-ms", required_argument, NULL, ARG_INTERVAL_MS},
                {"duration-s", required_argument, NULL, ARG_DURATION_S},
                {"until-oom", no_argument, NULL, ARG_UNTIL_OOM},
                {},
        };
        const char *cgroup = NULL, *output = NULL, *cgroup_root = NULL, *proc_root = NULL;
        uint64_t interval_ms = 500, duration_s = 0;
        bool until_oom = false;
        int opt, r;

        while ((opt = getopt_long(argc, argv, "ho:", options, NULL)) >= 0) {
                switch (opt) {
                case 'h':
                        help(stdout);
                        return 0;
                case ARG_CGROUP:
                        cgroup = optarg;
                        break;
                case 'o':
                        output = optarg;
                        break;
                case ARG_CGROUP_ROOT:
                        cgroup_root = optarg;
                        break;
                case ARG_PROC_ROOT:
                        proc_root = optarg;
                        break;
                case ARG_INTERVAL_MS:
                        if (parse_uint_option("--interval-ms", optarg, 10, 3600 * 1000,
                                              &interval_ms) < 0)
                                return 2;
                        break;
                case ARG_DURATION_S:
                        if (parse_uint_option("--duration-s", optarg, 1, 366 * 24 * 3600,
                                              &duration_s) < 0)
                                return 2;
                        break;
                case ARG_UNTIL_OOM:
                        until_oom = true;
                        break;
                default:
                        fprintf(stderr, "See 'memgovctl record --help'.\n");
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "memgovctl record: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        if (!cgroup || !output) {
                fprintf(stderr, "memgovctl record: %s is required\n\n",
                        !cgroup ? "--cgroup PATH" : "-o FILE.csv");
                help(stderr);
                return 2;
        }

        _cleanup_(cgfs_freep) struct cgfs *c = NULL;
        r = cgfs_new(cgroup_root, proc_root, &c);
        if (r == -ENOENT && !cgroup_root)
                fprintf(stderr,
                        "memgovctl record: no cgroup2 mount in %s/self/mountinfo; mount one "
                        "or give --cgroup-root DIR\n",
                        proc_root ? proc_root : "/proc");
        else if (r < 0)
                fprintf(stderr, "memgovctl record: opening %s and %s: %s\n",
                        cgroup_root ? cgroup_root : "the cgroup2 mount",
                        proc_root ? proc_root : "/proc", strerror(-r));
        if (r < 0)
                return 1;

        _cleanup_close_ int dirfd = -1;
        r = cgfs_open_cgroup(c, cgroup, &dirfd);
        if (r < 0) {
                fprintf(stderr, "memgovctl record: cgroup %s/%s: %s\n", c->cgroup_path, cgroup,
                        r == -EINVAL ? "'..' is not allowed" : strerror(-r));
                return 1;
        }

        /* The first sample decides whether there is anything to record, before any file. */
        struct sample s;
        r = take_sample(c, dirfd, cgroup, &s);
        if (r == -ENOENT && faccessat(dirfd, "memory.current", F_OK, 0) < 0 &&
            faccessat(dirfd, "cgroup.procs", F_OK, 0) == 0) {
                fprintf(stderr,
                        "memgovctl record: %s/%s has no memory.current: the memory controller "
                        "is not enabled for it (add +memory to its parent's "
                        "cgroup.subtree_control; on a host with memory on cgroup v1, boot with "
                        "systemd.unified_cgroup_hierarchy=1)\n",
                        c->cgroup_path, cgroup);
                return 1;
        }
        if (r < 0) {
                fprintf(stderr, "memgovctl record: sampling %s/%s: %s\n", c->cgroup_path, cgroup,
                        strerror(-r));
                return 1;
        }

        _cleanup_free_ char *tmp = NULL;
        if (asprintf(&tmp, "%s.tmp", output) < 0)
                return 1;
        _cleanup_fclose_ FILE *f = fopen(tmp, "we");
        if (!f) {
                fprintf(stderr, "memgovctl record: creating %s: %m\n", tmp);
                return 1;
        }

        struct sigaction sa = {.sa_handler = on_stop_signal}; /* no SA_RESTART: wake up */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);

        const uint64_t t0 = s.t_usec, interval_usec = interval_ms * USEC_PER_MSEC;
        const uint64_t oom_kill0 = s.events.oom_kill;
        uint64_t n_rows = 0, n_skipped = 0, deadline = t0, last_usec = t0;
        bool oom_seen = false;
        const char *why = "the duration ended";
        int status = 0;

        if (until_oom && !(s.has & SAMPLE_HAS_EVENTS))
                fprintf(stderr, "memgovctl record: warning: no readable memory.events; "
                                "--until-oom cannot see an OOM kill\n");

        r = trace_write_header(f);
        if (r >= 0 && fflush(f) != 0)
                r = negative_errno();
        for (bool have_sample = true;;) {
                if (have_sample) {
                        r = trace_write_row(f, t0, &s);
                        if (r >= 0 && fflush(f) != 0)
                                r = negative_errno();
                }
                if (r < 0) {
                        fprintf(stderr,
                                "memgovctl record: writing %s: %s (the rows before are kept "
                                "there)\n",
                                tmp, strerror(-r));
                        return 1;
                }
                if (have_sample) {
                        n_rows++;
                        last_usec = s.t_usec;
                        if (oom_seen) {
                                why = "the cgroup had an OOM kill";
                                break;
                        }
                        if (until_oom && (s.has & SAMPLE_HAS_EVENTS) &&
                            s.events.oom_kill > oom_kill0)
                                oom_seen = true; /* one more sample shows the aftermath */
                }

                /* Absolute deadlines: a slow sample does not shift the ones after it. */
                uint64_t now = monotonic_usec();
                do
                        deadline += interval_usec;
                while (deadline <= now);
                if (duration_s > 0 && deadline - t0 > duration_s * USEC_PER_SEC && !oom_seen)
                        break;

                while (!stop_signal && sleep_until(deadline) == -EINTR)
                        ;
                if (stop_signal) {
                        why = stop_signal == SIGINT ? "interrupted" : "terminated";
                        break;
                }

                r = take_sample(c, dirfd, cgroup, &s);
                have_sample = r >= 0;
                if (r == -EINVAL) {
                        /* A value the parser refused (a file caught mid-rewrite): skip it. */
                        n_skipped++;
                        r = 0;
                        continue;
                }
                if (is_vanished(r)) {
                        why = "the cgroup was removed";
                        break;
                }
                if (r < 0) {
                        fprintf(stderr, "memgovctl record: sampling %s/%s: %s\n", c->cgroup_path,
                                cgroup, strerror(-r));
                        status = 1;
                        why = "sampling failed";
                        break;
                }
        }

        if (finish_file(&f, tmp, output) < 0)
                return 1;
        fprintf(stderr, "memgovctl record: %s: %" PRIu64 " samples over %.1f s written to %s", why,
                n_rows, (double)(last_usec - t0) / (double)USEC_PER_SEC, output);
        if (n_skipped > 0)
                fprintf(stderr, " (%" PRIu64 " unreadable samples skipped)", n_skipped);
        fputc('\n', stderr);
        return status;
}

/* SPDX-License-Identifier: MIT */
/*
 * bench-daemon: memgovd's own cost on temporary cgroup trees, printed as Markdown tables for
 * docs/benchmarks.md, with the peers' published figures beside ours.
 *
 *   cpu        CPU (utime + stime) over a fixed wall time, 10 / 100 / 1,000 cgroups at 1 Hz
 *   memory     RSS and anonymous memory with 1 / 100 / 1,000 instances, after the start and
 *              once the sample rings are full (max(window, 15 min) later)
 *   latency    memory.events change → sample taken (inotify) → decision (an oom_kill event
 *              in the log), p50 / p99 over many events at random phases of the timer
 *   callgrind  instructions inside instance_sample() per sample (valgrind, repeatable)
 *   actuate    the sample whose decision changes memory.high → the write (actuate.c)
 *   soak       RSS and anonymous memory over a long run whose files a writer keeps changing
 *   memcheck   the same run under valgrind memcheck: errors and leaks
 *
 * BENCH_KEEP=1 in the environment keeps valgrind's output files in the tmpdir; BENCH_LOG=FILE
 * keeps memgovd's log (of the last daemon started) where the mode does not read it itself;
 * BENCH_VERBOSE=1 echoes cgroup 0's log lines of the actuate mode to stderr.
 *
 * Nothing timed is asserted: the CTest run (--small) shows that every mode works, and memcheck
 * fails it on any memory error or definite or indirect leak.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "memgov/macro.h"

#ifndef MEMGOV_SOURCE_DIR
#define MEMGOV_SOURCE_DIR "."
#endif

#define READY_TIMEOUT_MS     (300 * 1000) /* valgrind and 1,000 cgroups take a while */
#define BENCH_MAX_BYTES      UINT64_C(209715200)
#define LATENCY_EVENTS       200
#define LATENCY_EVENTS_SMALL 10
/* The ring spans the forecast window and at least INSTANCE_RING_LOOKBACK_USEC (15 min). */
#define RING_LOOKBACK_S 900

static struct {
        const char *memgovd;
        const char *fixtures;
        const char *tmpdir;
        bool small;
        unsigned cpu_seconds;
        unsigned soak_seconds;
        unsigned soak_interval_ms; /* the soak's sample interval: faster than life, to age it */
        unsigned memcheck_seconds;
        unsigned callgrind_seconds;
        unsigned window_s; /* the forecast window of the bench policy */
} arg = {
        .fixtures = MEMGOV_SOURCE_DIR "/tests/fixtures/kernel-6.1",
        .cpu_seconds = 60,
        .soak_seconds = 1200, /* past the 15 min the rings take to fill */
        .soak_interval_ms = 1000,
        .memcheck_seconds = 120,
        .callgrind_seconds = 30,
        .window_s = 300,
};

/* A small deterministic generator (the phases of the latency events, the soak's values). */
static uint64_t rng_state = 0x5eed;

static uint64_t rng_next(void)
{
        uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));

        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

static int die(int r, const char *what)
{
        fprintf(stderr, "bench-daemon: %s: %s\n", what, strerror(r < 0 ? -r : r));
        return r < 0 ? r : -r;
}

static int start_on_tree(unsigned n, unsigned interval_ms, unsigned usage_permille,
                         char *const *wrap, const char *log_level, bool capture_log,
                         const char *log_path, struct bench_tree *t, struct bench_daemon *d)
{
        int r;

        r = bench_tree_make(arg.tmpdir, arg.fixtures, n, interval_ms, arg.window_s, usage_permille,
                            t);
        if (r < 0)
                return die(r, "cannot make the temporary tree");
        r = bench_daemon_start(arg.memgovd, wrap, t, log_level, capture_log,
                               log_path ?: getenv("BENCH_LOG"), d);
        if (r < 0) {
                bench_tree_remove(t);
                return die(r, "cannot start memgovd");
        }
        r = bench_daemon_wait_ready(d, READY_TIMEOUT_MS);
        if (r < 0) {
                (void)bench_daemon_stop(d, 5000);
                bench_tree_remove(t);
                return die(r, "memgovd did not send READY=1");
        }
        return 0;
}

/* Seconds until the sample rings are full: they span max(window, the look-back). */
static unsigned ring_fill_s(void)
{
        return arg.small ? arg.window_s : MAX(arg.window_s, RING_LOOKBACK_S);
}

static void anchors(void)
{
        printf("\nAnchors (published figures of the peers, not measured here): earlyoom ~2 MiB "
               "RSS, polls every 100–1000 ms; systemd-oomd polls pressure every 1 s; oomd's "
               "interval is 1–5 s.\n");
}

/* ---- cpu ---- */

static int bench_cpu(void)
{
        static const unsigned sizes[] = {10, 100, 1000};
        size_t n_sizes = arg.small ? 1 : ELEMENTSOF(sizes);

        printf("\n### CPU at 1 Hz\n\n");
        printf("| governed cgroups | wall time | CPU time (user + system) | share of one core | "
               "CPU per sample | open fds |\n|---:|---:|---:|---:|---:|---:|\n");
        for (size_t k = 0; k < n_sizes; k++) {
                struct bench_tree t;
                struct bench_daemon d;
                uint64_t u0, s0, u1 = 0, s1 = 0, t0, t1;
                unsigned fds = 0;
                int r;

                r = start_on_tree(sizes[k], 1000, 500, NULL, NULL, false, NULL, &t, &d);
                if (r < 0)
                        return r;
                bench_sleep_usec(3 * USEC_PER_SEC); /* past the start */
                t0 = bench_now_usec();
                r = bench_proc_cpu_usec(d.pid, &u0, &s0);
                bench_sleep_usec((uint64_t)arg.cpu_seconds * USEC_PER_SEC);
                t1 = bench_now_usec();
                if (r >= 0)
                        r = bench_proc_cpu_usec(d.pid, &u1, &s1);
                (void)bench_proc_fds(d.pid, &fds);
                (void)bench_daemon_stop(&d, 10000);
                bench_tree_remove(&t);
                if (r < 0)
                        return die(r, "cannot read /proc/PID/stat");

                double wall_s = (double)(t1 - t0) / 1e6, user_s = (double)(u1 - u0) / 1e6,
                       system_s = (double)(s1 - s0) / 1e6, cpu_s = user_s + system_s;
                double samples = wall_s * sizes[k];
                printf("| %u | %.0f s | %.2f s (%.2f + %.2f) | %.2f%% | %.1f µs | %u |\n", sizes[k],
                       wall_s, cpu_s, user_s, system_s, 100.0 * cpu_s / wall_s,
                       cpu_s * 1e6 / samples, fds);
                fflush(stdout);
        }
        printf("\nGoal: ≤ 2%% of one core for 1,000 cgroups at 1 Hz. utime+stime is counted "
               "in clock ticks (10 ms), so short runs are coarse.\n");
        anchors();
        return 0;
}

/* ---- memory ---- */

static void print_mem_row(unsigned n, const char *when, const struct bench_mem *m)
{
        printf("| %u | %s | %.2f MiB | %.2f MiB | %.2f MiB | %.2f MiB | %.2f MiB |\n", n, when,
               (double)m->rss_kib / 1024, (double)m->rss_anon_kib / 1024,
               (double)m->anon_kib / 1024, (double)m->heap_kib / 1024, (double)m->pss_kib / 1024);
}

static int bench_memory(void)
{
        static const unsigned sizes[] = {1, 100, 1000};
        struct bench_tree t[ELEMENTSOF(sizes)];
        struct bench_daemon d[ELEMENTSOF(sizes)];
        struct bench_mem start[ELEMENTSOF(sizes)] = {}, full[ELEMENTSOF(sizes)] = {};
        size_t n = arg.small ? 2 : ELEMENTSOF(sizes), started = 0;
        int r = 0;

        /* All at once: memory does not care, and the rings take 15 minutes to fill. */
        for (; started < n; started++) {
                r = start_on_tree(sizes[started], 1000, 500, NULL, NULL, false, NULL, &t[started],
                                  &d[started]);
                if (r < 0)
                        break;
        }
        if (r >= 0) {
                bench_sleep_usec(5 * USEC_PER_SEC);
                for (size_t k = 0; k < n && r >= 0; k++)
                        r = bench_proc_mem(d[k].pid, &start[k]);
                bench_sleep_usec((uint64_t)(ring_fill_s() + 5) * USEC_PER_SEC);
                for (size_t k = 0; k < n && r >= 0; k++)
                        r = bench_proc_mem(d[k].pid, &full[k]);
        }
        for (size_t k = 0; k < started; k++) {
                (void)bench_daemon_stop(&d[k], 10000);
                bench_tree_remove(&t[k]);
        }
        if (r < 0)
                return die(r, "cannot read memgovd's memory");

        printf("\n### Memory\n\n");
        printf("| instances | when | VmRSS | RssAnon | Anonymous (smaps_rollup) | [heap] RSS | "
               "Pss |\n|---:|---|---:|---:|---:|---:|---:|\n");
        for (size_t k = 0; k < n; k++) {
                char when[64];

                print_mem_row(sizes[k], "5 s after READY", &start[k]);
                snprintf(when, sizeof(when), "%u s later%s", ring_fill_s(),
                         arg.small ? "" : ": rings full");
                print_mem_row(sizes[k], when, &full[k]);
        }
        printf("\nGoal: anonymous memory ≤ 2 MiB at 100 instances.\n");
        anchors();
        return 0;
}

/* ---- latency ---- */

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return x < y ? -1 : x > y;
}

static uint64_t percentile(const uint64_t *sorted, size_t n, double p)
{
        size_t k = (size_t)ceil(p * (double)n) - 1;

        return sorted[MIN(k, n - 1)];
}

static void print_latency_row(const char *when, const char *what, uint64_t *v, size_t n)
{
        size_t slow = 0;

        if (n == 0)
                return;
        qsort(v, n, sizeof(*v), cmp_u64);
        for (size_t k = 0; k < n; k++)
                slow += v[k] > 50 * USEC_PER_MSEC;
        printf("| %s | %s | %zu | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %zu |\n", when, what, n,
               (double)percentile(v, n, 0.5) / 1e3, (double)percentile(v, n, 0.9) / 1e3,
               (double)percentile(v, n, 0.99) / 1e3, (double)v[n - 1] / 1e3, slow);
}

/*
 * Time n_events memory.events changes of cgroup 0 to the sample that reads them and to the
 * decision (the oom_kill event in the log). after_sample: each change comes 300–700 ms after
 * a timer sample of the cgroup, past the event gap; otherwise at a random phase of the timer.
 * Returns the number of events timed, or -errno.
 */
static ssize_t latency_run(struct bench_tree *t, struct bench_daemon *d, bool after_sample,
                           uint64_t *serial, size_t n_events, uint64_t *to_sample,
                           uint64_t *to_decision, uint64_t *in_loop, size_t *n_in_loop)
{
        size_t n = 0;
        int r;

        *n_in_loop = 0;

        for (size_t k = 0; k < n_events; k++) {
                uint64_t current, t0, ts = 0, td = 0;
                char needle[64];

                if (after_sample) {
                        r = bench_log_wait(d, "svc-0000.service: current=", 5 * USEC_PER_SEC, NULL);
                        if (r <= 0)
                                return r < 0 ? r : -ETIMEDOUT;
                        bench_sleep_usec(300 * USEC_PER_MSEC + rng_next() % (400 * USEC_PER_MSEC));
                } else
                        bench_sleep_usec(300 * USEC_PER_MSEC + rng_next() % (1000 * USEC_PER_MSEC));

                ++*serial;
                current = BENCH_MAX_BYTES / 2 + *serial * 4096;
                t0 = bench_now_usec();
                r = bench_write_usage(t, 0, current);
                if (r >= 0)
                        r = bench_write_events(t, 0, 0, *serial, *serial);
                if (r < 0)
                        return r;
                snprintf(needle, sizeof(needle), "current=%" PRIu64 " ", current);
                /*
                 * Three lines of cgroup 0 follow, in an order that depends on the path: the
                 * sample that reads the change ("current=N"), the decision (the oom_kill
                 * event), and memgovd's own probe. After an immediate sample the probe comes
                 * last ("memory.events wake-up: decided N us after the loop woke"); when the
                 * event came within the gap after the last sample, it comes first ("wake-up
                 * N us after the last sample: sampled when the event gap has passed") and
                 * the timer's sample decides. Each line is taken as it comes.
                 */
                bool probe_seen = false;
                while (!ts || !td || !probe_seen) {
                        char line[512];
                        uint64_t at;
                        unsigned long long us;
                        const char *p;

                        r = bench_log_wait_line(d, "svc-0000.service: ", 5 * USEC_PER_SEC, &at,
                                                line, sizeof(line));
                        if (r <= 0) {
                                fprintf(stderr, "bench-daemon: event %zu: no %s in memgovd's log\n",
                                        k,
                                        !ts   ? "sample"
                                        : !td ? "decision"
                                              : "probe line");
                                return r < 0 ? r : -ETIMEDOUT;
                        }
                        if (!ts && strstr(line, needle))
                                ts = at;
                        else if (ts && !td && strstr(line, "the kernel OOM-killed"))
                                td = at;
                        else if (!probe_seen && (p = strstr(line, "memory.events wake-up"))) {
                                probe_seen = true;
                                if (sscanf(p, "memory.events wake-up: decided %llu us", &us) == 1)
                                        in_loop[(*n_in_loop)++] = us;
                        }
                }
                to_sample[n] = ts - t0;
                to_decision[n] = td - t0;
                n++;
        }
        return (ssize_t)n;
}

static int bench_latency(void)
{
        size_t n_events = arg.small ? LATENCY_EVENTS_SMALL : LATENCY_EVENTS;
        uint64_t *v = calloc(6 * n_events, sizeof(uint64_t)), serial = 0;
        size_t n_loop_random = 0, n_loop_after = 0;
        struct bench_tree t;
        struct bench_daemon d;
        ssize_t n_random = 0, n_after = 0;
        int r;

        if (!v)
                return die(-ENOMEM, "latency");
        /* ten cgroups, events on the first: the others keep the loop as busy as in life */
        r = start_on_tree(10, 1000, 500, NULL, "debug", true, NULL, &t, &d);
        if (r < 0)
                goto out;
        n_random = latency_run(&t, &d, false, &serial, n_events, v, v + n_events, v + 4 * n_events,
                               &n_loop_random);
        if (n_random >= 0)
                n_after = latency_run(&t, &d, true, &serial, n_events, v + 2 * n_events,
                                      v + 3 * n_events, v + 5 * n_events, &n_loop_after);
        (void)bench_daemon_stop(&d, 10000);
        bench_tree_remove(&t);
        if (n_random < 0 || n_after < 0) {
                r = die((int)(n_random < 0 ? n_random : n_after), "latency");
                goto out;
        }

        printf("\n### Reaction latency (temporary tree, inotify)\n\n");
        printf("| a memory.events write … | to | events | p50 | p90 | p99 | max | over 50 ms "
               "|\n|---|---|---:|---:|---:|---:|---:|---:|\n");
        print_latency_row("at a random phase of the 1 s timer", "the sample that reads it", v,
                          (size_t)n_random);
        print_latency_row("at a random phase of the 1 s timer", "the decision", v + n_events,
                          (size_t)n_random);
        print_latency_row("300–700 ms after a sample", "the sample that reads it", v + 2 * n_events,
                          (size_t)n_after);
        print_latency_row("300–700 ms after a sample", "the decision", v + 3 * n_events,
                          (size_t)n_after);
        print_latency_row("at a random phase (memgovd's probe)",
                          "memgovd's loop woke → decision made", v + 4 * n_events, n_loop_random);
        print_latency_row("300–700 ms after a sample (memgovd's probe)",
                          "memgovd's loop woke → decision made", v + 5 * n_events, n_loop_after);
        printf("\nGoal: event-to-decision p99 ≤ 2 ms. 10 governed cgroups, sample interval 1 s, "
               "memgovd at --log-level debug (its log is the probe, read through a pipe; the "
               "decision is the oom_kill event the change raises). An event less than "
               "min(interval / 4, 250 ms) after the cgroup's last sample waits until that gap "
               "has passed (INSTANCE_EVENT_MIN_GAP_USEC in governor/instance.c). The probe "
               "rows are memgovd's own debug line: from the moment its event loop woke on the "
               "inotify event (sd_event_now()) to the decision made, for the events sampled at "
               "once (%zu and %zu of them); they leave out the kernel's wake-up of memgovd and "
               "the log pipe.\n",
               n_loop_random, n_loop_after);
        anchors();
        r = 0;
out:
        free(v);
        return r;
}

/* ---- callgrind ---- */

/* "summary: N" (or "totals: N") of a callgrind output file: the instructions collected. */
static int callgrind_total(const char *path, uint64_t *ret)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char line[4096];
        unsigned long long v;

        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "summary: %llu", &v) == 1 ||
                    sscanf(line, "totals: %llu", &v) == 1) {
                        *ret = v;
                        return 0;
                }
        return -ENODATA;
}

/*
 * The calls of fn recorded in a callgrind output file: the calls= lines of the arcs to it.
 * Names are compressed: "fn=(12) name" or "cfn=(12) name" defines id 12, "cfn=(12)" refers
 * to it later.
 */
static int callgrind_calls(const char *path, const char *fn, uint64_t *ret)
{
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char line[4096], id[64] = "";
        bool in_arc = false;
        uint64_t calls = 0;

        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                unsigned long long v;
                bool is_cfn = strncmp(line, "cfn=(", 5) == 0;
                char *name, *close;

                line[strcspn(line, "\n")] = '\0';
                if (is_cfn || strncmp(line, "fn=(", 4) == 0) {
                        char *open = strchr(line, '(');

                        close = strchr(line, ')');
                        name = strchr(line, ' ');
                        if (close && name && strcmp(name + 1, fn) == 0)
                                snprintf(id, sizeof(id), "%.*s", (int)(close - open + 1), open);
                        in_arc = is_cfn && id[0] && close &&
                                 strncmp(open, id, (size_t)(close - open + 1)) == 0 &&
                                 strlen(id) == (size_t)(close - open + 1);
                } else if (in_arc && sscanf(line, "calls=%llu", &v) == 1) {
                        calls += v;
                        in_arc = false;
                }
        }
        *ret = calls;
        return calls > 0 ? 0 : -ENODATA;
}

static int bench_callgrind(void)
{
        static const unsigned sizes[] = {1, 100};
        size_t n_sizes = ELEMENTSOF(sizes);

        printf("\n### Instructions per sample (callgrind)\n\n");
        printf("| governed cgroups | samples | instructions in instance_sample() | per sample "
               "|\n|---:|---:|---:|---:|\n");
        for (size_t k = 0; k < n_sizes; k++) {
                char out[512], opt[600];
                char *wrap[] = {(char *)"valgrind", (char *)"--tool=callgrind",
                                (char *)"--toggle-collect=instance_sample", opt, NULL};
                struct bench_tree t;
                struct bench_daemon d;
                uint64_t ir = 0, calls = 0;
                unsigned n = arg.small ? 10 : sizes[k];
                int r;

                snprintf(out, sizeof(out), "%s/callgrind-%u.out", arg.tmpdir, n);
                snprintf(opt, sizeof(opt), "--callgrind-out-file=%s", out);
                r = start_on_tree(n, 1000, 500, wrap, NULL, false, NULL, &t, &d);
                if (r < 0)
                        return r;
                bench_sleep_usec((uint64_t)(arg.small ? 5 : arg.callgrind_seconds) * USEC_PER_SEC);
                (void)bench_daemon_stop(&d, 120000);
                bench_tree_remove(&t);
                r = callgrind_total(out, &ir);
                if (r >= 0)
                        /* instance_sample() reads the cgroup once per call: its calls, seen from
                         * inside */
                        r = callgrind_calls(out, "cgfs_files_read_sample", &calls);
                if (!getenv("BENCH_KEEP"))
                        (void)unlink(out);
                if (r < 0)
                        return die(r, "cannot read callgrind's output");
                printf("| %u | %" PRIu64 " | %" PRIu64 " | %" PRIu64 " |\n", n, calls, ir,
                       ir / calls);
                fflush(stdout);
                if (arg.small)
                        break;
        }
        printf("\nInclusive: reading the cgroup's files (pread of the kept fds, parsing), the "
               "ancestors' limits every 10 s, forecast, decide, govern and the effects they "
               "ask for. The loop itself (epoll, timers) is outside.\n");
        return 0;
}

/* ---- soak and memcheck ---- */

/*
 * Rewrite every cgroup's usage once a second for seconds: a GC-like sawtooth with noise at
 * 30–60% of the limit, each cgroup at its own phase, with a memory.events "high" bump now and
 * then; every tenth cgroup leaks instead, from 40% to the limit in three minutes, where it
 * is OOM-killed (oom_kill bumped) and starts again, so that levels, captures, webhooks and
 * memory.high changes happen too. Every every_s, call back with the elapsed time.
 */
static int rewrite_loop(const struct bench_tree *t, unsigned seconds, unsigned every_s,
                        void (*cb)(unsigned elapsed_s, void *userdata), void *userdata)
{
        uint64_t start = bench_now_usec();
        uint64_t *high = calloc(t->n_cgroups, sizeof(uint64_t));
        uint64_t *kills = calloc(t->n_cgroups, sizeof(uint64_t));
        int r = 0;

        if (!high || !kills) {
                free(high);
                free(kills);
                return -ENOMEM;
        }
        for (unsigned s = 1; s <= seconds; s++) {
                for (unsigned k = 0; k < t->n_cgroups; k++) {
                        double phase = (double)((s + k * 7) % 40) / 40.0; /* 40 s cycles */
                        uint64_t base = BENCH_MAX_BYTES * (300 + k % 300) / 1000;
                        uint64_t current = base +
                                           (uint64_t)(phase * (double)BENCH_MAX_BYTES * 0.2) +
                                           rng_next() % (BENCH_MAX_BYTES / 100);
                        if (k % 10 == 0) {
                                unsigned at = (s + k) % 180;

                                current = BENCH_MAX_BYTES * (400 + at * 600 / 179) / 1000;
                                if (at == 179)
                                        kills[k]++;
                        }
                        r = bench_write_usage(t, k, MIN(current, BENCH_MAX_BYTES - 4096));
                        if (r >= 0 &&
                            (rng_next() % 20 == 0 || (k % 10 == 0 && (s + k) % 180 == 179)))
                                r = bench_write_events(t, k, ++high[k], 0, kills[k]);
                        if (r < 0)
                                goto out;
                }
                uint64_t due = start + (uint64_t)s * USEC_PER_SEC, now = bench_now_usec();
                if (due > now)
                        bench_sleep_usec(due - now);
                if (cb && s % every_s == 0)
                        cb(s, userdata);
        }
out:
        free(high);
        free(kills);
        return r;
}

struct soak_series {
        pid_t pid;
        unsigned n;
        unsigned elapsed[256];
        struct bench_mem mem[256];
        uint64_t cpu_usec[256]; /* user + system so far: a stuck daemon would look flat too */
};

static void soak_sample(unsigned elapsed_s, void *userdata)
{
        struct soak_series *s = userdata;

        uint64_t user, system;

        if (s->n < ELEMENTSOF(s->mem) && bench_proc_mem(s->pid, &s->mem[s->n]) >= 0 &&
            bench_proc_cpu_usec(s->pid, &user, &system) >= 0) {
                s->cpu_usec[s->n] = user + system;
                s->elapsed[s->n++] = elapsed_s;
        }
}

static int bench_soak(void)
{
        unsigned n = arg.small ? 10 : 100, seconds = arg.small ? 12 : arg.soak_seconds;
        unsigned every = arg.small ? 2 : 30;
        struct soak_series *series = calloc(1, sizeof(*series));
        struct bench_tree t;
        struct bench_daemon d;
        int r, status;

        if (!series)
                return die(-ENOMEM, "soak");
        r = start_on_tree(n, arg.soak_interval_ms, 500, NULL, NULL, false, NULL, &t, &d);
        if (r < 0) {
                free(series);
                return r;
        }
        series->pid = d.pid;
        r = rewrite_loop(&t, seconds, every, soak_sample, series);
        status = bench_daemon_stop(&d, 10000);
        bench_tree_remove(&t);
        if (r < 0) {
                free(series);
                return die(r, "cannot rewrite the tree");
        }

        printf("\n### Soak: %u cgroups sampled every %u ms, rewritten every second for %u s\n\n", n,
               arg.soak_interval_ms, seconds);
        printf("| elapsed | VmRSS | RssAnon | Anonymous | [heap] RSS | CPU time so far "
               "|\n|---:|---:|---:|---:|---:|---:|\n");
        for (unsigned k = 0; k < series->n; k++)
                printf("| %u s | %" PRIu64 " KiB | %" PRIu64 " KiB | %" PRIu64 " KiB | %" PRIu64
                       " KiB | %.2f s |\n",
                       series->elapsed[k], series->mem[k].rss_kib, series->mem[k].rss_anon_kib,
                       series->mem[k].anon_kib, series->mem[k].heap_kib,
                       (double)series->cpu_usec[k] / 1e6);
        /* after the rings have filled, memory must not grow */
        unsigned first = 0;
        while (first + 1 < series->n && series->elapsed[first] < ring_fill_s() + 30)
                first++;
        if (series->n > 0)
                printf("\nAnonymous memory from %u s%s to %u s: %+" PRId64 " KiB.\n",
                       series->elapsed[first], arg.small ? "" : " (rings full)",
                       series->elapsed[series->n - 1],
                       (int64_t)series->mem[series->n - 1].anon_kib -
                               (int64_t)series->mem[first].anon_kib);
        printf("memgovd after SIGTERM: %s %d.\n", WIFEXITED(status) ? "exit status" : "signal",
               WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        free(series);
        return 0;
}

/* The line of a valgrind log that starts with key (after the ==PID== prefix), or NULL. */
static char *valgrind_line(const char *log, const char *key, char *buf, size_t size)
{
        _cleanup_fclose_ FILE *f = fopen(log, "re");
        char *hit = NULL;

        if (!f)
                return NULL;
        while (fgets(buf, (int)size, f)) {
                char *p = strstr(buf, "== ");
                if (p && strncmp(p + 3, key, strlen(key)) == 0) {
                        buf[strcspn(buf, "\n")] = '\0';
                        hit = p + 3;
                        break;
                }
        }
        return hit;
}

static int bench_memcheck(void)
{
        unsigned n = arg.small ? 3 : 100, seconds = arg.small ? 5 : arg.memcheck_seconds;
        char log[512], opt[600];
        char *wrap[] = {(char *)"valgrind",
                        (char *)"--tool=memcheck",
                        (char *)"--leak-check=full",
                        (char *)"--show-leak-kinds=definite,indirect,possible",
                        (char *)"--errors-for-leak-kinds=definite,indirect",
                        (char *)"--error-exitcode=99",
                        (char *)"--track-fds=no",
                        opt,
                        NULL};
        char errors[512] = "", lost[512] = "", indirect[512] = "", possible[512] = "";
        char buf[1024], *l;
        struct bench_tree t;
        struct bench_daemon d;
        int r, status;

        snprintf(log, sizeof(log), "%s/memcheck-%d.log", arg.tmpdir, (int)getpid());
        snprintf(opt, sizeof(opt), "--log-file=%s", log);
        r = start_on_tree(n, 1000, 500, wrap, NULL, false, NULL, &t, &d);
        if (r < 0)
                return r;
        r = rewrite_loop(&t, seconds, seconds, NULL, NULL);
        status = bench_daemon_stop(&d, 120000);
        bench_tree_remove(&t);
        if (r < 0)
                return die(r, "cannot rewrite the tree");

        if ((l = valgrind_line(log, "ERROR SUMMARY:", buf, sizeof(buf))))
                snprintf(errors, sizeof(errors), "%s", l);
        if ((l = valgrind_line(log, "   definitely lost:", buf, sizeof(buf))))
                snprintf(lost, sizeof(lost), "%s", l + 3);
        if ((l = valgrind_line(log, "   indirectly lost:", buf, sizeof(buf))))
                snprintf(indirect, sizeof(indirect), "%s", l + 3);
        if ((l = valgrind_line(log, "     possibly lost:", buf, sizeof(buf))))
                snprintf(possible, sizeof(possible), "%s", l + 5);
        if ((l = valgrind_line(log, "All heap blocks were freed", buf, sizeof(buf))))
                snprintf(lost, sizeof(lost), "definitely lost: 0 bytes (all heap blocks freed)");

        printf("\n### valgrind memcheck: %u cgroups rewritten every second for %u s, then "
               "SIGTERM\n\n",
               n, seconds);
        printf("| what | valgrind says |\n|---|---|\n");
        printf("| exit (99: valgrind found errors or definite/indirect leaks) | %s %d |\n",
               WIFEXITED(status) ? "status" : "signal",
               WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        printf("| errors | %s |\n", errors[0] ? errors : "(no summary: see the log)");
        printf("| definitely lost | %s |\n", lost[0] ? lost : "-");
        printf("| indirectly lost | %s |\n", indirect[0] ? indirect : "-");
        printf("| possibly lost | %s |\n", possible[0] ? possible : "-");
        bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (getenv("BENCH_KEEP") || !clean)
                fprintf(stderr, "bench-daemon: valgrind's log: %s\n", log);
        else
                (void)unlink(log);
        /* the one verdict of the bench: memory errors and lost blocks are bugs */
        return clean ? 0 : die(-EIO, "memcheck found errors or leaks, or memgovd failed");
}

static int bench_actuate_mode(void)
{
        int r = bench_actuate(arg.memgovd, arg.tmpdir, arg.fixtures, arg.small ? 30 : 300);

        return r < 0 ? die(r, "actuate") : 0;
}

/* ---- main ---- */

static void help(void)
{
        printf("Usage: bench-daemon --memgovd PATH [OPTIONS] [MODE...]\n"
               "\n"
               "Modes: cpu memory latency actuate callgrind soak memcheck (default: cpu memory "
               "latency)\n"
               "\n"
               "  --memgovd PATH       the memgovd binary to measure\n"
               "  --fixtures DIR       kernel files to copy (default tests/fixtures/kernel-6.1)\n"
               "  --tmpdir DIR         where the temporary trees go (default $TMPDIR or /tmp)\n"
               "  --small              a quick run of each mode (CTest)\n"
               "  --cpu-seconds N      wall time of each CPU measurement (default 60)\n"
               "  --soak-seconds N     (default 1200)\n"
               "  --soak-interval-ms N the soak's sample interval (default 1000)\n"
               "  --memcheck-seconds N (default 120)\n"
               "  --window-seconds N   forecast window of the bench policy (default 300)\n");
}

int main(int argc, char **argv)
{
        enum {
                ARG_MEMGOVD = 0x100,
                ARG_FIXTURES,
                ARG_TMPDIR,
                ARG_SMALL,
                ARG_CPU_SECONDS,
                ARG_SOAK_SECONDS,
                ARG_SOAK_INTERVAL_MS,
                ARG_MEMCHECK_SECONDS,
                ARG_WINDOW_SECONDS,
        };
        static const struct option options[] = {
                {"memgovd", required_argument, NULL, ARG_MEMGOVD},
                {"fixtures", required_argument, NULL, ARG_FIXTURES},
                {"tmpdir", required_argument, NULL, ARG_TMPDIR},
                {"small", no_argument, NULL, ARG_SMALL},
                {"cpu-seconds", required_argument, NULL, ARG_CPU_SECONDS},
                {"soak-seconds", required_argument, NULL, ARG_SOAK_SECONDS},
                {"soak-interval-ms", required_argument, NULL, ARG_SOAK_INTERVAL_MS},
                {"memcheck-seconds", required_argument, NULL, ARG_MEMCHECK_SECONDS},
                {"window-seconds", required_argument, NULL, ARG_WINDOW_SECONDS},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        static const struct {
                const char *name;
                int (*fn)(void);
        } modes[] = {
                {"cpu", bench_cpu},
                {"memory", bench_memory},
                {"latency", bench_latency},
                {"callgrind", bench_callgrind},
                {"soak", bench_soak},
                {"memcheck", bench_memcheck},
                {"actuate", bench_actuate_mode},
        };
        static const char *const defaults[] = {"cpu", "memory", "latency"};
        const char *const *run;
        size_t n_run;
        int c, r = 0;

        arg.tmpdir = getenv("TMPDIR") ?: "/tmp";
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_MEMGOVD:
                        arg.memgovd = optarg;
                        break;
                case ARG_FIXTURES:
                        arg.fixtures = optarg;
                        break;
                case ARG_TMPDIR:
                        arg.tmpdir = optarg;
                        break;
                case ARG_SMALL:
                        arg.small = true;
                        arg.cpu_seconds = 3;
                        arg.window_s = 10;
                        break;
                case ARG_CPU_SECONDS:
                        arg.cpu_seconds = (unsigned)atoi(optarg);
                        break;
                case ARG_SOAK_SECONDS:
                        arg.soak_seconds = (unsigned)atoi(optarg);
                        break;
                case ARG_SOAK_INTERVAL_MS:
                        arg.soak_interval_ms = (unsigned)atoi(optarg);
                        break;
                case ARG_MEMCHECK_SECONDS:
                        arg.memcheck_seconds = (unsigned)atoi(optarg);
                        break;
                case ARG_WINDOW_SECONDS:
                        arg.window_s = (unsigned)atoi(optarg);
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return 2;
                }
        }
        if (!arg.memgovd) {
                fprintf(stderr, "bench-daemon: --memgovd PATH is required (see --help)\n");
                return 2;
        }
        if (optind < argc) {
                run = (const char *const *)argv + optind;
                n_run = (size_t)(argc - optind);
        } else {
                run = defaults;
                n_run = ELEMENTSOF(defaults);
        }
        for (size_t k = 0; k < n_run && r >= 0; k++) {
                size_t m = 0;

                while (m < ELEMENTSOF(modes) && strcmp(modes[m].name, run[k]) != 0)
                        m++;
                if (m == ELEMENTSOF(modes)) {
                        fprintf(stderr, "bench-daemon: unknown mode '%s' (see --help)\n", run[k]);
                        return 2;
                }
                r = modes[m].fn();
        }
        return r < 0 ? 1 : 0;
}

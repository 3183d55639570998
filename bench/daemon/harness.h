/* SPDX-License-Identifier: MIT */
/*
 * bench/daemon: what it takes to run memgovd itself — CPU per sample and per second, memory
 * per instance, the delay from a memory.events change to the sample and the decision, and
 * whether its memory stays flat. The harness (harness.c) builds temporary cgroup trees whose
 * files look like a 6.1 kernel's, starts memgovd on them and reads its /proc files; the
 * measurements and tables are in main.c.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A temporary tree: ROOT/cg (the cgroup root), ROOT/pol, ROOT/state, ROOT/run. */
struct bench_tree {
        char root[256];
        char cg[300];
        char pol[300];
        char state[300];
        char config[300];
        unsigned n_cgroups;
};

/*
 * Make a tree under tmpdir with n cgroups bench.slice/svc-NNNN.service, each with the files
 * of tests/fixtures/kernel-6.1 (memory.current at usage_permille of memory.max), and one
 * policy "bench" whose glob matches them all, sampling every interval_ms with a forecast
 * window of window_s. Returns 0 or -errno.
 */
int bench_tree_make(const char *tmpdir, const char *fixtures, unsigned n, unsigned interval_ms,
                    unsigned window_s, unsigned usage_permille, struct bench_tree *ret);
void bench_tree_remove(struct bench_tree *t);

/* "bench.slice/svc-0007.service" for cgroup k, into buf. */
const char *bench_cgroup_name(unsigned k, char *buf, size_t size);

/*
 * Overwrite one file of cgroup k in place (no truncation, no rename: inotify watches the
 * inode, and a reader must never see an empty file). Content must not be shorter than what
 * it replaces: the harness writes fixed-width numbers. Returns 0 or -errno.
 */
int bench_write(const struct bench_tree *t, unsigned k, const char *file, const char *content);

/* memory.events with the given counters, fixed width. */
int bench_write_events(const struct bench_tree *t, unsigned k, uint64_t high, uint64_t max,
                       uint64_t oom_kill);
/* memory.current (9 digits) and memory.stat with anon/file set to match. */
int bench_write_usage(const struct bench_tree *t, unsigned k, uint64_t current_bytes);

struct bench_daemon {
        pid_t pid;
        int log_fd;    /* memgovd's stderr when asked for, else -1 */
        int notify_fd; /* the NOTIFY_SOCKET we listen on until READY=1; then -1 */
        char notify_path[300];
        char status[256];  /* the last STATUS= */
        char log[1 << 16]; /* what was read of log_fd and not yet consumed */
        size_t log_len;
        uint64_t last_read_usec; /* when the last bytes of log arrived */
};

/*
 * Start memgovd (wrap: an argv prefix such as valgrind's, or NULL) on tree t at log level
 * (NULL: info). With capture_log its stderr is kept in log_fd, else it goes to /dev/null (or
 * to log_path when given). Returns 0 or -errno.
 */
int bench_daemon_start(const char *memgovd, char *const *wrap, const struct bench_tree *t,
                       const char *log_level, bool capture_log, const char *log_path,
                       struct bench_daemon *ret);

/*
 * Wait up to timeout_ms for READY=1, then close the notify socket. Returns 0, -ETIMEDOUT or
 * -ECHILD (it exited).
 */
int bench_daemon_wait_ready(struct bench_daemon *d, unsigned timeout_ms);

/* SIGTERM, wait up to timeout_ms, then SIGKILL. Returns the exit status (waitpid form). */
int bench_daemon_stop(struct bench_daemon *d, unsigned timeout_ms);

/* CPU time used so far (utime and stime of /proc/PID/stat), in microseconds. */
int bench_proc_cpu_usec(pid_t pid, uint64_t *ret_user, uint64_t *ret_system);

struct bench_mem {
        uint64_t rss_kib;      /* VmRSS */
        uint64_t rss_anon_kib; /* RssAnon */
        uint64_t rss_file_kib; /* RssFile */
        uint64_t pss_kib;      /* smaps_rollup Pss */
        uint64_t anon_kib;     /* smaps_rollup Anonymous */
        uint64_t heap_kib;     /* Rss of [heap] in smaps */
};
int bench_proc_mem(pid_t pid, struct bench_mem *ret);

/* The number of open fds of pid. */
int bench_proc_fds(pid_t pid, unsigned *ret);

uint64_t bench_now_usec(void);
void bench_sleep_usec(uint64_t usec);

/*
 * Read memgovd's log until a line containing needle arrives or timeout_usec passes. Returns
 * 1 with *ret_usec (when the line was read), 0 on timeout, -errno. Lines read on the way
 * are dropped.
 */
int bench_log_wait(struct bench_daemon *d, const char *needle, uint64_t timeout_usec,
                   uint64_t *ret_usec);

/* bench_log_wait() that also copies the line found into line (NUL-terminated, cut to size). */
int bench_log_wait_line(struct bench_daemon *d, const char *needle, uint64_t timeout_usec,
                        uint64_t *ret_usec, char *line, size_t size);

/*
 * The "actuate" mode (actuate.c): the delay from a sample to the memory.high write its
 * decision asks for, over seconds of a leak that repeats; prints a table. Returns 0 or -errno.
 */
int bench_actuate(const char *memgovd, const char *tmpdir, const char *fixtures, unsigned seconds);

/* SPDX-License-Identifier: MIT */
/*
 * Capture effect: while the process still lives, take what an engineer would take by hand
 * before an OOM — Go pprof profiles over HTTP, the built-in /proc and cgroup snapshots, and
 * the policy's collector commands — into one dump (include/memgov/dumps.h), then name the
 * leak suspects by diffing against a base capture (include/memgov/pprof.h).
 *
 * What a capture fetches, for a policy's pprof base URL (only that URL, never another):
 *   kind          request                         file
 *   heap          heap?debug=1&gc=1, then heap    heap.txt, heap.pb.gz
 *   goroutine     goroutine?debug=1, goroutine    goroutine.txt, goroutine.pb.gz
 *   allocs        allocs                          allocs.pb.gz
 *   threadcreate, block, mutex                    <kind>.pb.gz
 *   profile       profile?seconds=N               profile.pb.gz
 * The binary forms are stored as served, so `go tool pprof` and `-diff_base` open them; the
 * text forms are what the suspects are computed from. gc=1 makes the heap profile current
 * (Go reports the heap as of the last completed GC) at the cost of one GC in the service.
 * Requests run one after another (a service near its limit should not build five profiles
 * at once), each with the policy's timeout and size cap, streamed to the dump through
 * http.h on the loop. Whatever arrived of a response cut short is kept as <file>.partial;
 * a response over max_bytes is refused by http.h at the chunk that would cross the cap,
 * so nothing past it reaches the disk (often nothing at all); either way the manifest's
 * "errors" say what happened. After a request that timed out or found nobody listening,
 * the rest of the queue is skipped: a wedged service would only time out again.
 *
 * Built-in collectors: smaps_rollup and status of every pid in cgroup.procs (at most
 * CAPTURE_BUILTIN_PIDS_MAX), cgroup.procs and memory.stat.
 *
 * Command collectors: argv only, never a shell; placeholders {pid} {pids} {cgroup} {dir}
 * {service} (see capture_expand_argv()); once, or once per pid (at most
 * CAPTURE_COLLECTOR_PIDS_MAX). Commands run one after another, each started with fork and
 * execve: its own process group, the dump directory as working directory, stdin
 * /dev/null, stdout and stderr to <label>.stdout/.stderr in the dump, umask 077, no other
 * fds, a small fixed environment, and RLIMIT_FSIZE at the room left above the dump
 * store's free-space floor. At its deadline the whole process group gets SIGKILL. Children
 * are reaped through sd_event_add_child(), which needs SIGCHLD blocked: capture_start()
 * blocks it in the calling thread when collectors are to run (memgovd has one thread).
 *
 * The trigger decisions (which event captures what) are the daemon's; the bookkeeping
 * they need is here as pure functions: per-kind cooldowns and an hourly cap
 * (capture_limiter), and base/current pairing (capture_pair).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "memgov/dumps.h"
#include "memgov/http.h"
#include "memgov/level.h"
#include "memgov/macro.h"
#include "memgov/policy.h"
#include "memgov/pprof.h"

#define CAPTURE_BUILTIN_PIDS_MAX   256
#define CAPTURE_COLLECTOR_PIDS_MAX 64
#define CAPTURE_HOUR_SLOTS         256 /* the hourly cap counts at most this many */

/* Defaults for a zero policy_pprof field (the policy module fills them for real policies). */
#define CAPTURE_DEFAULT_TIMEOUT_USEC   (10 * USEC_PER_SEC)
#define CAPTURE_DEFAULT_MAX_BYTES      ((uint64_t)64 << 20)
#define CAPTURE_DEFAULT_CPU_SECONDS    10
#define CAPTURE_DEFAULT_COLLECTOR_USEC (60 * USEC_PER_SEC)

/* ---- bookkeeping (pure) ------------------------------------------------------------- */

/* Per instance: when each kind was last captured and the captures of the last hour. */
struct capture_limiter {
        uint64_t last_usec[_PPROF_KIND_MAX]; /* 0: never */
        uint64_t recent_usec[CAPTURE_HOUR_SLOTS];
        size_t n_recent, head;
};

/*
 * Which of wanted (a mask of 1u << PPROF_*) may be captured at now_usec: the kinds whose
 * cooldown (p->cooldown_usec, 0: none) has passed; 0 when p->max_per_hour captures
 * (0: no cap) were recorded in the hour before now_usec. Pure.
 */
unsigned capture_limiter_allow(const struct capture_limiter *l, const struct policy_pprof *p,
                               unsigned wanted, uint64_t now_usec);

/* Record a capture of kinds (a mask) at now_usec: one capture for the hourly cap. */
void capture_limiter_record(struct capture_limiter *l, unsigned kinds, uint64_t now_usec);

/* Captures recorded in the hour before now_usec. */
size_t capture_limiter_last_hour(const struct capture_limiter *l, uint64_t now_usec);

enum capture_role {
        CAPTURE_ROLE_BASE,    /* the first capture when danger appears, or a healthy baseline */
        CAPTURE_ROLE_CURRENT, /* a later one: diffed against the base */
        _CAPTURE_ROLE_MAX,
        _CAPTURE_ROLE_INVALID = -1,
};

/* Per instance: the dumps that make a pair for the diff. Strings owned. */
struct capture_pair {
        char *base_dir; /* NULL: no base yet */
        uint64_t base_usec;
        enum level base_level; /* the level when the base was taken (LEVEL_OK: a baseline) */
        char *current_dir;
        uint64_t current_usec;
};

/*
 * The role of a capture taken now at level: at LEVEL_OK always BASE (a periodic baseline
 * replaces the previous one); otherwise CURRENT when there is a base, else BASE. Pure.
 */
enum capture_role capture_pair_role(const struct capture_pair *p, enum level level);

/*
 * Note a completed capture in role at level: BASE replaces the base (and forgets the
 * current), CURRENT replaces the current. Returns 0 or -ENOMEM (the pair unchanged).
 */
int capture_pair_record(struct capture_pair *p, enum capture_role role, enum level level,
                        const char *dir, uint64_t now_usec);

/*
 * The level went back to ok (EVENT_RECOVERED): the episode's pair is forgotten unless the
 * base was a healthy baseline. The next danger starts from a new base.
 */
void capture_pair_recovered(struct capture_pair *p);

/* Free the strings and zero the pair. */
void capture_pair_clear(struct capture_pair *p);

const char *capture_role_to_string(enum capture_role r); /* "base", "current" */

/* What the placeholders of a collector's argv stand for. */
struct capture_placeholders {
        pid_t pid;         /* {pid}; 0: the first of pids */
        const pid_t *pids; /* {pids} */
        size_t n_pids;
        const char *cgroup;  /* {cgroup}: the cgroup's absolute path */
        const char *dir;     /* {dir}: the directory being written (dump_tmp_path()) */
        const char *service; /* {service} */
};

/*
 * Expand argv (NULL-terminated): every {pid}, {cgroup}, {dir} and {service} inside an
 * argument is replaced; an argument that is exactly "{pids}" becomes one argument per pid,
 * and {pids} inside a longer argument the pids joined by ','. Other braces stay as they
 * are. Returns 0 with *ret (NULL-terminated, strv_free()), -EINVAL (empty argv, {pid} with
 * no pid, a value missing for a placeholder used, an argument over 4096 bytes), -ENOMEM.
 * Pure.
 */
int capture_expand_argv(char *const *argv, const struct capture_placeholders *ph, char ***ret);

/* ---- running a capture (effect) ----------------------------------------------------- */

struct capture;

struct capture_request {
        const char *service;    /* names the dump directory; [A-Za-z0-9_.-]+ */
        const char *event;      /* "warn", "critical", "oom_kill", "manual", …; names the dump */
        uint64_t realtime_usec; /* wall clock for the dump's name */
        const struct policy_pprof *pprof; /* NULL, or url NULL: no profiles */
        unsigned kinds_mask;              /* 1u << PPROF_*, normally capture_limiter_allow() */
        const struct policy_collector *collectors; /* the ones to run now (the daemon picks */
        size_t n_collectors;                       /* them by event) */
        bool builtin;  /* smaps_rollup, status, cgroup.procs, memory.stat */
        int cgroup_fd; /* the cgroup's directory (borrowed, used during capture_start()) */
        const char *cgroup_path; /* its absolute path, for {cgroup}; may be NULL */
        int proc_fd;             /* /proc or a test tree (borrowed, used during capture_start()) */
        const char *base_dir;    /* a dump to diff against (capture_pair's base), or NULL */
        size_t top_n;            /* suspects per list; 0: PPROF_TOP_DEFAULT */
};

/* What a capture produced. Valid during the callback only. */
struct capture_result {
        const char *dir;                /* the final dump directory */
        const struct dump_entry *files; /* every file in it, as in manifest.json */
        size_t n_files;
        size_t n_failed; /* requests and collectors that failed or were cut (see manifest) */
        /* The analysis; NULL when neither heap.txt nor goroutine.txt could be parsed. */
        const struct pprof_summary *summary;
        bool paired; /* a base was diffed: suspects are growth since the base */
        const struct suspect *const *suspects; /* summary->ordered when paired, else none */
        size_t n_suspects;
        uint64_t duration_usec; /* CLOCK_MONOTONIC, from start to callback */
        /* 0: the dump was completed; otherwise -errno why not (then dir is NULL). */
        int error;
};

/*
 * Called once, on the loop, when every request and command has ended. The capture is
 * freed after the callback returns: do not cancel it from here.
 */
typedef void (*capture_done_fn)(struct capture *c, const struct capture_result *result,
                                void *userdata);

/*
 * Start a capture on event (its sd-event loop), fetching through http and writing into a
 * new dump of store. The request is copied (cgroup_fd and proc_fd are used only before
 * this returns: cgroup.procs and the built-in snapshots are read now). Never blocks on the
 * network or a child; cb runs later, never from within this call. Returns 0 with *ret (a
 * handle for capture_cancel(), valid until the callback returns; ret may be NULL), or
 * -EINVAL, -ENOSPC (refused by the free-space floor; logged with the figures), -EBUSY
 * (SIGCHLD could not be blocked), -errno; no callback follows a failure.
 */
int capture_start(sd_event *event, struct http_client *http, struct dump_store *store,
                  const struct capture_request *req, capture_done_fn cb, void *userdata,
                  struct capture **ret);

/*
 * Abort: requests cancelled, commands killed (their process groups) and reaped, the
 * unfinished dump removed; no callback. Accepts NULL; returns NULL.
 */
struct capture *capture_cancel(struct capture *c);

/* The dump being written (for {dir} and logs). */
const char *capture_dump_dir(const struct capture *c);

/* "heap.pb.gz", "goroutine.txt", …: the file a kind's binary (text = false) or text form goes to;
 * NULL if none. */
const char *capture_file_name(enum pprof_kind kind, bool text);

/* SPDX-License-Identifier: MIT */
/*
 * memgovd's core: one sd-event loop that owns the config, the policy set, the cgroup root
 * (cgfs) and the instances, and drives the flow probe → forecast → decide → effects.
 *
 * Where later modules hook in:
 *   - per sample: instance_process_sample() in governor/instance.c (forecast → decide →
 *     effects), with the daemon at hand for its loop and config;
 *   - per instance state: struct instance, set up in instance_new(), freed in
 *     instance_free(), carried over a reload by instance_set_policy();
 *   - daemon-wide effects (curl multi, the metrics server, the status socket): a field in
 *     struct daemon, started in daemon_start() on d->event, stopped in daemon_free(),
 *     told about a new config in daemon_reload().
 * Nothing may block the loop: effects run as event sources on d->event.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include <systemd/sd-bus.h>

#include "memgov/actuate.h"
#include "memgov/cgfs.h"
#include "memgov/diag.h"
#include "memgov/dumps.h"
#include "memgov/http.h"
#include "memgov/instance.h"
#include "memgov/macro.h"
#include "memgov/notify.h"
#include "memgov/policy.h"
#include "memgov/server.h"

/* How often STATUS= is recomputed (only sent when it changed). */
#define DAEMON_STATUS_INTERVAL_USEC USEC_PER_SEC

/*
 * What the command line said. NULL / false: not given, the config file's value holds.
 * Strings are borrowed by daemon_config_load() and copied by daemon_new().
 */
struct daemon_args {
        const char *config_path; /* --config; NULL: no file, the defaults */
        const char *policy_dir;  /* --policy-dir */
        const char *cgroup_root; /* --cgroup-root */
        const char *proc_root;   /* --proc-root; NULL: /proc */
        const char *state_dir;   /* --state-dir */
        bool dry_run;            /* --dry-run: write nothing outside the state dir */
};

struct dir_watch;   /* a directory a policy glob could grow in (governor/daemon-scan.c) */
struct capture_job; /* a capture running for an instance (governor/daemon-capture.c) */

/*
 * The daemon. Fields are owned and written by governor/daemon*.c and instance.c; other
 * modules read them (d->event to add their sources, d->config, d->cgfs, d->dry_run).
 */
struct daemon {
        sd_event *event;
        struct daemon_args args;     /* strings owned (copies), re-applied on each reload */
        struct memgov_config config; /* current; args already applied */
        struct cgfs *cgfs;
        bool cgroup2; /* the root is a real cgroup2 fs: PSI triggers can work */
        bool dry_run; /* config.dry_run || args.dry_run: actuate must not write */
        struct policy_set *policies;

        struct instance **instances; /* sorted by relpath, unique */
        size_t n_instances;
        uint64_t next_instance_id;

        struct dir_watch *watches; /* sorted by relpath */
        size_t n_watches;

        sd_event_source *rescan_timer; /* safety net, config.rescan_interval_usec */
        sd_event_source *rescan_defer; /* a rescan soon, after inotify saw a directory move */
        sd_event_source *status_timer;
        sd_event_source *watchdog_timer;    /* half the watchdog interval: a ping is due */
        sd_event_source *watchdog_post;     /* sends the due ping after an iteration's handlers */
        sd_event_source *signal_sources[3]; /* SIGHUP, SIGTERM, SIGINT */
        uint64_t watchdog_usec;             /* 0: no watchdog */
        bool watchdog_due;
        uint64_t n_watchdog_pings;

        /*
         * Effects, started in daemon_start(): one HTTP client on the loop (webhooks,
         * profiles) and the notifier of every policy's webhooks. NULL before the start, and
         * the notifier also when it could not be set up (logged; governing goes on).
         */
        struct http_client *http;
        struct notify *notify;
        /*
         * memory.high: the actuator every instance's target writes through; it holds the
         * connection to the systemd manager (actuator_bus(): NULL when not reachable,
         * cgroupfs only) and reopens it when systemd closed it. Records in
         * <state_dir>/restore. Leftover records are restored first thing in
         * daemon_start(), all records again in daemon_free().
         */
        struct actuator *actuator;
        /* /metrics and the status API (governor/daemon-export.c); NULL: not listening. */
        struct server *server;
        /*
         * Captures (governor/daemon-capture.c): the dump store (NULL: no captures) and the
         * captures running now, each of which knows its instance by id only.
         */
        struct dump_store *dumps;
        struct capture_job **capture_jobs;
        size_t n_capture_jobs;

        /*
         * The instances keep their memory files open only on fds below this: a quarter of
         * the soft RLIMIT_NOFILE when the daemon was made (cgfs_files; why a quarter:
         * daemon_keep_fd_below()).
         */
        int keep_fd_below;
        bool said_fds_short; /* that files are no longer kept was logged */

        uint64_t start_usec;        /* CLOCK_MONOTONIC at daemon_start() */
        bool ready;                 /* READY=1 sent */
        bool sampled;               /* some instance took a good sample */
        bool in_rescan;             /* d->instances is being rebuilt */
        bool started;               /* daemon_start() began: leftover records were restored */
        char *status;               /* the last STATUS= sent */
        uint64_t n_scans;           /* completed rescans */
        uint64_t n_reloads;         /* successful reloads */
        uint64_t n_reload_failures; /* reloads refused (memgov_reloads_total{result="failed"}) */
};

/*
 * The config memgovd runs with: args->config_path parsed (or the defaults), then every
 * option given in args put over it. Problems go to diag ("FILE: PATH: message"). Returns
 * 0 with *ret filled (memgov_config_clear() it), or -errno.
 */
int daemon_config_load(const struct daemon_args *args, struct diag *diag,
                       struct memgov_config *ret);

/*
 * Make a daemon on a new sd-event loop. On success it owns config's strings (*config is
 * zeroed), cgfs and policies; on failure the caller still does. Nothing is scanned or
 * armed yet: see daemon_start(). Returns 0 or -errno.
 */
int daemon_new(const struct daemon_args *args, struct memgov_config *config, struct cgfs *cgfs,
               struct policy_set *policies, struct daemon **ret);

/*
 * Stop listening, cancel the captures running, drop every instance and source, drop what
 * is queued for webhooks, and — when daemon_start() ran — put back every memory.high memgov
 * changed (its restore records); then free all it owns. Accepts NULL; returns NULL.
 */
struct daemon *daemon_free(struct daemon *d);
DEFINE_FREE_FUNC(daemon)

/*
 * Start governing: listen on <runtime_dir>/memgovd.sock (and config.listen), restore the
 * memory.high records a previous run left, set up the effects (systemd bus, actuator, HTTP,
 * webhooks, dump store), then the first scan (instances made and sampled once), the
 * rescan, status and watchdog timers. READY=1 goes out after the first good sample, and at
 * the latest at the end of this first scan, so that systemd never waits for a cgroup that
 * may not come. An effect that cannot be set up is logged and left out. Returns 0, or
 * -EADDRINUSE when a live memgovd owns the socket (nothing was touched), or -errno.
 */
int daemon_start(struct daemon *d);

/*
 * Block SIGHUP, SIGTERM and SIGINT and handle them on the loop: SIGHUP daemon_reload(),
 * the others STOPPING=1 and sd_event_exit(). For memgovd, not for tests. Returns 0/-errno.
 */
int daemon_setup_signals(struct daemon *d);

/* Run the loop until exit; sends STOPPING=1 on the way out. Returns the exit code. */
int daemon_run(struct daemon *d);

/*
 * Reload the config (same file, args re-applied) and the policy directory. All or nothing:
 * if anything is invalid, every problem is logged (file, JSON path, fix) and the running
 * set stays, returning -EINVAL (or the -errno that stopped the load). Otherwise the new set
 * replaces the old one and instances are reconciled: a cgroup still governed by a policy of
 * the same service keeps its instance and state (re-armed if the interval changed), others
 * come and go. A changed cgroup_root needs a restart (a warning; the old root stays).
 * Returns 0 on success.
 */
int daemon_reload(struct daemon *d);

/*
 * Match every policy's glob against the tree now and reconcile: new cgroups get an
 * instance (and a first sample), vanished or re-created ones lose theirs, the inotify
 * watches on the directories the globs could grow in are brought up to date. Called by
 * daemon_start(), the rescan timer, inotify on those directories, and daemon_reload().
 * Returns 0, or -errno if a glob could not be expanded (the instances of that policy stay).
 */
int daemon_rescan(struct daemon *d);

/* Ask for a rescan on the next loop iteration (coalesces bursts of inotify events). */
void daemon_schedule_rescan(struct daemon *d);

size_t daemon_get_instance_count(const struct daemon *d);
/* The instance governing relpath ("system.slice/x.service"), or NULL. */
struct instance *daemon_get_instance(const struct daemon *d, const char *relpath);

/*
 * Forget instance i (the cgroup is gone or no longer matched): removed from d->instances
 * and freed. why is logged at info ("is gone", …). i must not be used afterwards.
 */
void daemon_drop_instance(struct daemon *d, struct instance *i, const char *why);

/* An instance took a good sample: sends READY=1 the first time, marks STATUS= stale. */
void daemon_instance_sampled(struct daemon *d, struct instance *i);

/*
 * The STATUS= line for the current instances, e.g. "governing 3 cgroups; worst: checkout
 * warn, ETA 8m" or "governing 2 cgroups; all ok". Returns a malloc'ed string or NULL.
 */
char *daemon_format_status(const struct daemon *d);

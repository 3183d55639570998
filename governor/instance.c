/* SPDX-License-Identifier: MIT */
/*
 * One governed cgroup on the loop: what makes it sample (timer, inotify on memory.events,
 * PSI trigger) and where each sample enters the flow (probe → forecast → decide → effects).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "daemon-internal.h"
#include "memgov/cgfs.h"
#include "memgov/daemon.h"
#include "memgov/instance.h"
#include "memgov/log.h"
#include "memgov/restore.h"

#define INSTANCE_FIELDS(i)                                                                         \
        LOG_FIELDS({"MEMGOV_SERVICE", (i)->policy->service}, {"MEMGOV_CGROUP", (i)->relpath})

size_t instance_ring_capacity(const struct policy *p)
{
        uint64_t span = MAX(p->forecast_window_usec, (uint64_t)INSTANCE_RING_LOOKBACK_USEC);
        uint64_t n = p->sample_interval_usec > 0
                             ? (span + p->sample_interval_usec - 1) / p->sample_interval_usec
                             : INSTANCE_RING_MAX;
        return (size_t)MIN(MAX(n, (uint64_t)INSTANCE_RING_MIN), (uint64_t)INSTANCE_RING_MAX);
}

size_t instance_ring_size(const struct instance *i)
{
        return i->ring.len;
}

/* Timers fire within this of their time; coarse enough to coalesce many instances. */
static uint64_t timer_accuracy(uint64_t interval_usec)
{
        return MIN(MAX(interval_usec / 50, USEC_PER_MSEC), 100 * USEC_PER_MSEC);
}

static int arm_at(struct instance *i, uint64_t when_usec)
{
        int r = sd_event_source_set_time(i->timer, when_usec);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(i->timer, SD_EVENT_ONESHOT);
}

int instance_process_sample(struct daemon *d, struct instance *i, const struct sample *s,
                            uint64_t now_usec)
{
        i->last = *s;
        i->has_last = true;
        i->n_samples++;
        sample_ring_push(&i->ring, s);

        log_debug("%s: %s: current=%" PRIu64 " limit=%" PRIu64 " oom_kill=%" PRIu64
                  " psi_some_total=%" PRIu64 "us",
                  i->policy->service, i->relpath, s->current_bytes, s->limit_bytes,
                  s->events.oom_kill, s->pressure.some.total_usec);
        return instance_pipeline(d, i, s, now_usec);
}

/*
 * Is the cgroup this instance was made for still at its path? A read through the open
 * directory fails with -ENOENT both for a removed cgroup and for a file the cgroup lacks
 * (the memory controller not enabled for it); the path and inode tell them apart.
 */
static bool instance_still_there(const struct instance *i)
{
        _cleanup_close_ int fd = -1;
        struct stat st;

        if (cgfs_open_cgroup(i->daemon->cgfs, i->relpath, &fd) < 0)
                return false;
        if (fstat(fd, &st) < 0)
                return true; /* cannot tell; let the next rescan decide */
        return (uint64_t)st.st_ino == i->ino;
}

static int events_watch_handler(sd_event_source *s, const struct inotify_event *ev, void *userdata);

/* A poll of the service's runtime figures ended: say a failure once, and the recovery. */
static void on_runtime_poll(struct signals_poller *p, int error, const struct runtime_figures *f,
                            void *userdata)
{
        struct instance *i = userdata;

        (void)p;
        (void)f;
        if (error < 0 && !i->warned_runtime) {
                i->warned_runtime = true;
                log_struct_errno(LOG_WARNING, error, INSTANCE_FIELDS(i),
                                 "%s: cannot read the runtime figures of %s from %s: %m; "
                                 "goroutine conditions are off until it answers",
                                 i->policy->service, i->relpath, i->policy->runtime.url);
        } else if (error >= 0 && i->warned_runtime) {
                i->warned_runtime = false;
                log_struct(LOG_INFO, INSTANCE_FIELDS(i), "%s: %s answers again", i->policy->service,
                           i->policy->runtime.url);
        }
}

/*
 * Poll the runtime figures the policy names (or stop). A poller that cannot be made costs
 * the goroutine conditions only: logged.
 */
static void runtime_configure(struct instance *i)
{
        const struct policy_runtime *rt = &i->policy->runtime;
        int r;

        if (!rt->url || !i->daemon->http) {
                i->runtime = signals_poller_free(i->runtime);
                return;
        }
        if (i->runtime)
                r = signals_poller_set_policy(i->runtime, rt);
        else
                r = signals_poller_new(i->daemon->event, i->daemon->http, rt, on_runtime_poll, i,
                                       &i->runtime);
        if (r < 0) {
                i->runtime = signals_poller_free(i->runtime);
                log_struct_errno(LOG_WARNING, r, INSTANCE_FIELDS(i),
                                 "%s: cannot poll %s for %s: %m; no goroutine conditions",
                                 i->policy->service, rt->url, i->relpath);
        }
}

/*
 * inotify on memory.events: the kernel raises IN_MODIFY on it whenever one of its counters
 * changes (high, max, oom, oom_kill), which is exactly when the next sample matters most.
 * The watch is taken through an O_PATH handle of the file in our directory fd, so it is on
 * this cgroup's file even if the path now names another one.
 */
static void events_watch_add(struct instance *i)
{
        _cleanup_close_ int fd = openat(i->dir_fd, "memory.events", O_PATH | O_CLOEXEC);
        if (fd < 0) {
                log_debug("%s: %s: no memory.events to watch (%m); timer only", i->policy->service,
                          i->relpath);
                return;
        }
        int r = sd_event_add_inotify_fd(i->daemon->event, &i->events_watch, fd, IN_MODIFY,
                                        events_watch_handler, i);
        if (r < 0) {
                log_debug_errno(r, "%s: %s: cannot watch memory.events: %m; timer only",
                                i->policy->service, i->relpath);
                return;
        }
        /* Watched: samples reuse its values until the watch fires. */
        cgfs_files_events_watched(&i->files, true);
}

/*
 * Sample now, or, if the last sample is very recent, as soon as the minimum gap allows
 * (see INSTANCE_EVENT_MIN_GAP_USEC). Returns what instance_sample() returns, or 0.
 */
static int instance_sample_soon(struct instance *i, uint64_t now_usec, const char *source)
{
        uint64_t gap = MIN(i->policy->sample_interval_usec / 4, INSTANCE_EVENT_MIN_GAP_USEC);
        uint64_t when = i->last_attempt_usec + gap;

        if (i->last_attempt_usec == 0 || now_usec >= when) {
                int r = instance_sample(i, now_usec);
                if (r == 0) {
                        i->n_event_samples++;
                        /*
                         * The reaction probe (bench/daemon): now_usec is when the loop
                         * woke (sd_event_now()), so this is wake-up → decision made,
                         * before its effects.
                         */
                        log_debug("%s: %s: %s wake-up: decided %" PRIu64 " us after the "
                                  "loop woke",
                                  i->policy->service, i->relpath, source,
                                  i->decided_usec - now_usec);
                }
                return r;
        }
        log_debug("%s: %s: %s wake-up %" PRIu64 " us after the last sample: sampled when "
                  "the event gap has passed",
                  i->policy->service, i->relpath, source, now_usec - i->last_attempt_usec);

        uint64_t due;
        int enabled = SD_EVENT_OFF;
        if (sd_event_source_get_time(i->timer, &due) >= 0 &&
            sd_event_source_get_enabled(i->timer, &enabled) >= 0 && enabled != SD_EVENT_OFF &&
            due <= when)
                return 0;
        i->event_pending = true;
        int r = arm_at(i, when);
        if (r < 0)
                log_warning_errno(r, "%s: %s: cannot re-arm the sample timer: %m",
                                  i->policy->service, i->relpath);
        return 0;
}

/* After an event source's sample: drop the instance if its cgroup is gone. */
static void handle_sample_result(struct instance *i, int r, const char *how)
{
        if (r == -ENOENT)
                daemon_drop_instance(i->daemon, i, how);
}

static int timer_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct instance *i = userdata;
        uint64_t now;

        (void)s;
        (void)usec;
        if (sd_event_now(i->daemon->event, CLOCK_MONOTONIC, &now) < 0)
                return 0;
        bool for_event = i->event_pending;
        int r = instance_sample(i, now);
        if (r == 0 && for_event)
                i->n_event_samples++;
        handle_sample_result(i, r, "is gone");
        return 0;
}

static int events_watch_handler(sd_event_source *s, const struct inotify_event *ev, void *userdata)
{
        struct instance *i = userdata;
        uint64_t now;

        (void)s;
        /* Whatever the event (a queue overflow too), read memory.events at the next sample. */
        cgfs_files_events_changed(&i->files);
        if (sd_event_now(i->daemon->event, CLOCK_MONOTONIC, &now) < 0)
                return 0;
        if (ev->mask & IN_IGNORED) {
                /* The watched file is gone, and with it most likely the cgroup. */
                i->events_watch = sd_event_source_disable_unref(i->events_watch);
                cgfs_files_events_watched(&i->files, false);
                handle_sample_result(i, instance_sample(i, now), "is gone");
                return 0;
        }
        handle_sample_result(i, instance_sample_soon(i, now, "memory.events"), "is gone");
        return 0;
}

static int psi_handler(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct instance *i = userdata;
        uint64_t now;

        (void)s;
        (void)fd;
        if (sd_event_now(i->daemon->event, CLOCK_MONOTONIC, &now) < 0)
                return 0;
        if (revents & (EPOLLERR | EPOLLHUP)) {
                /*
                 * The kernel tears a trigger down with its cgroup. Confirm through the
                 * path before dropping: a living cgroup merely loses its PSI wake-ups.
                 */
                i->psi = sd_event_source_disable_unref(i->psi);
                if (!instance_still_there(i)) {
                        daemon_drop_instance(i->daemon, i, "is gone (PSI trigger closed)");
                        return 0;
                }
                log_struct(LOG_INFO, INSTANCE_FIELDS(i),
                           "%s: %s: PSI trigger failed; sampling on the timer and inotify only",
                           i->policy->service, i->relpath);
                return 0;
        }
        if (revents & EPOLLPRI)
                handle_sample_result(i, instance_sample_soon(i, now, "PSI trigger"), "is gone");
        return 0;
}

/*
 * A PSI trigger "some 150ms in 1s" on memory.pressure, so that a stall burst is sampled
 * at once. Only a cgroup2 filesystem has triggers; a test tree's memory.pressure is a
 * plain file (the write would clobber it and epoll refuses regular files), so there the
 * instance runs on its timer and inotify alone. tests/vm covers the real kernel.
 */
static void psi_add(struct instance *i)
{
        _cleanup_close_ int fd = -1;
        int r;

        if (!i->daemon->cgroup2) {
                log_debug("%s: %s: not on a cgroup2 filesystem, no PSI trigger; timer and "
                          "inotify only",
                          i->policy->service, i->relpath);
                return;
        }
        r = cgfs_psi_trigger_open(i->dir_fd, INSTANCE_PSI_STALL_USEC, INSTANCE_PSI_WINDOW_USEC,
                                  &fd);
        if (r < 0) {
                log_debug_errno(r, "%s: %s: no PSI trigger (%m); timer and inotify only",
                                i->policy->service, i->relpath);
                return;
        }
        r = sd_event_add_io(i->daemon->event, &i->psi, fd, EPOLLPRI, psi_handler, i);
        if (r < 0) {
                log_debug_errno(r, "%s: %s: cannot poll the PSI trigger: %m", i->policy->service,
                                i->relpath);
                return;
        }
        (void)sd_event_source_set_io_fd_own(i->psi, true);
        TAKE_FD(fd);
}

int instance_new(struct daemon *d, const struct policy *p, const char *relpath, int dir_fd,
                 uint64_t ino, uint64_t now_usec, struct instance **ret)
{
        _cleanup_close_ int fd = dir_fd;
        int r;

        _cleanup_(instance_freep) struct instance *i = calloc(1, sizeof(*i));
        if (!i)
                return -ENOMEM;
        i->daemon = d;
        i->policy = p;
        i->dir_fd = -1;
        i->ino = ino;
        i->level = LEVEL_OK;
        i->eta_usec = USEC_INFINITY;
        i->level_since_usec = now_usec;
        i->last_event = _EVENT_INVALID;
        i->last_delivery_event = _EVENT_INVALID;
        forecast_init(&i->forecast, p);
        decide_init(&i->decide);
        govern_init(&i->govern);
        i->relpath = strdup(relpath);
        if (!i->relpath)
                return -ENOMEM;
        r = sample_ring_init(&i->ring, instance_ring_capacity(p));
        if (r < 0)
                return r;
        i->dir_fd = TAKE_FD(fd);
        cgfs_files_init(&i->files, i->dir_fd, d->keep_fd_below);

        r = sd_event_add_time(d->event, &i->timer, CLOCK_MONOTONIC,
                              now_usec + p->sample_interval_usec,
                              timer_accuracy(p->sample_interval_usec), timer_handler, i);
        if (r < 0)
                return r;
        (void)sd_event_source_set_description(i->timer, "instance-timer");

        events_watch_add(i);
        psi_add(i);
        runtime_configure(i);

        i->id = ++d->next_instance_id;
        *ret = TAKE_PTR(i);
        return 0;
}

void instance_give_back(struct instance *i)
{
        struct daemon *d = i->daemon;

        if (!i->govern.touched || d->dry_run || !d->config.state_dir)
                return;
        /* A systemd record waits for the manager's reply: rare (a reload, a cgroup gone). */
        struct restore_env env = {.cgfs = d->cgfs,
                                  .bus = d->actuator ? actuator_bus(d->actuator) : NULL};
        /* restore_one() says what it did; a record it could not apply stays for later. */
        (void)restore_one(d->config.state_dir, i->relpath, &env, NULL);
}

struct instance *instance_free(struct instance *i)
{
        if (!i)
                return NULL;
        sd_event_source_disable_unref(i->timer);
        sd_event_source_disable_unref(i->events_watch);
        sd_event_source_disable_unref(i->psi);
        signals_poller_free(i->runtime);
        actuate_target_free(i->target);
        capture_pair_clear(&i->capture_pair);
        incident_log_clear(&i->incident);
        free(i->last_capture_dir);
        free(i->last_delivery_endpoint);
        cgfs_files_close(&i->files);
        closep(&i->dir_fd);
        sample_ring_done(&i->ring);
        free(i->relpath);
        free(i);
        return NULL;
}

int instance_set_policy(struct instance *i, const struct policy *p, uint64_t now_usec)
{
        const struct policy *old = i->policy;
        int r;

        i->policy = p;
        /*
         * The forecast keeps its history unless the window changed; decide keeps the level
         * (it reads the policy on every step), so a reload raises no event by itself.
         */
        forecast_set_policy(&i->forecast, p);
        runtime_configure(i);
        /* Another backend: the next change makes a new target (govern's state stays). */
        if (i->target && i->target->wanted != p->memory_high.backend)
                i->target = actuate_target_free(i->target);
        if (p->sample_interval_usec != old->sample_interval_usec) {
                uint64_t next = i->last_attempt_usec ? i->last_attempt_usec : now_usec;
                next = MAX(next + p->sample_interval_usec, now_usec);
                (void)sd_event_source_set_time_accuracy(i->timer,
                                                        timer_accuracy(p->sample_interval_usec));
                r = arm_at(i, next);
                if (r < 0)
                        log_warning_errno(r, "%s: %s: cannot re-arm the sample timer: %m",
                                          p->service, i->relpath);
        }

        size_t cap = instance_ring_capacity(p);
        if (cap == i->ring.cap)
                return 0;
        return sample_ring_resize(&i->ring, cap);
}

int instance_sample(struct instance *i, uint64_t now_usec)
{
        struct sample s;
        uint64_t limit;
        int r;

        i->last_attempt_usec = now_usec;
        i->event_pending = false;
        r = arm_at(i, now_usec + i->policy->sample_interval_usec);
        if (r < 0)
                log_warning_errno(r, "%s: %s: cannot re-arm the sample timer: %m",
                                  i->policy->service, i->relpath);

        uint64_t not_kept = i->files.n_not_kept;
        r = cgfs_files_read_sample(&i->files, now_usec, &s);
        if (i->files.n_not_kept != not_kept && !i->daemon->said_fds_short) {
                i->daemon->said_fds_short = true;
                log_notice("%s: %s: memgovd keeps cgroup files open on fds below %d (a quarter of "
                           "its open-file limit); from here on, this and further cgroups' files "
                           "are opened at each sample, which costs more CPU: raise the limit "
                           "(LimitNOFILE=, ulimit -n) to keep them all open",
                           i->policy->service, i->relpath, i->daemon->keep_fd_below);
        }
        if (r >= 0 && (i->ancestor_read_usec == 0 ||
                       now_usec - i->ancestor_read_usec >= INSTANCE_ANCESTOR_REFRESH_USEC)) {
                r = cgfs_ancestor_limit(i->daemon->cgfs, i->relpath, &i->ancestor_limit);
                if (r >= 0)
                        i->ancestor_read_usec = MAX(now_usec, 1);
        }
        if (r >= 0) {
                /* As cgfs_effective_limit(), with the cgroup's own memory.max just read. */
                limit = MIN(s.max_bytes, i->ancestor_limit);
                if (limit == CGROUP_LIMIT_MAX)
                        r = -ENODATA;
        }
        if (r == -ENODEV || (r == -ENOENT && !instance_still_there(i)))
                return -ENOENT;
        if (r < 0) {
                /* Still there but unreadable: say it once, keep trying on the timer. */
                if (!i->warned_unreadable) {
                        i->warned_unreadable = true;
                        if (r == -ENOENT)
                                log_struct(LOG_WARNING, INSTANCE_FIELDS(i),
                                           "%s: %s has no memory.current: the memory "
                                           "controller is not enabled for it (add +memory to "
                                           "its parent's cgroup.subtree_control)",
                                           i->policy->service, i->relpath);
                        else
                                log_struct_errno(LOG_WARNING, r, INSTANCE_FIELDS(i),
                                                 "%s: cannot sample %s: %m; retrying every %" PRIu64
                                                 "ms",
                                                 i->policy->service, i->relpath,
                                                 i->policy->sample_interval_usec / USEC_PER_MSEC);
                }
                return 1;
        }
        if (i->warned_unreadable) {
                i->warned_unreadable = false;
                log_struct(LOG_INFO, INSTANCE_FIELDS(i), "%s: %s can be sampled again",
                           i->policy->service, i->relpath);
        }
        s.limit_bytes = limit;

        /* memory.events may have been missing when the instance was made (a test tree). */
        if (!i->events_watch && (s.has & SAMPLE_HAS_EVENTS))
                events_watch_add(i);

        r = instance_process_sample(i->daemon, i, &s, now_usec);
        if (r < 0)
                log_debug_errno(r, "%s: %s: sample not processed: %m", i->policy->service,
                                i->relpath);
        daemon_instance_sampled(i->daemon, i);
        return 0;
}

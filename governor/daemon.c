/* SPDX-License-Identifier: MIT */
/*
 * memgovd's loop: it owns the instances (probe → forecast → decide → effects per governed
 * cgroup), talks to systemd (READY, STATUS, WATCHDOG, STOPPING) and handles SIGHUP,
 * SIGTERM and SIGINT. Which cgroups are governed is worked out in daemon-scan.c.
 */
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "daemon-internal.h"
#include "memgov/daemon.h"
#include "memgov/log.h"
#include "memgov/restore.h"

static void args_clear(struct daemon_args *a)
{
        free((char *)a->config_path);
        free((char *)a->policy_dir);
        free((char *)a->cgroup_root);
        free((char *)a->proc_root);
        free((char *)a->state_dir);
        *a = (struct daemon_args){};
}

static int strdup_opt(const char *s, const char **ret)
{
        *ret = NULL;
        if (!s)
                return 0;
        char *c = strdup(s);
        if (!c)
                return -ENOMEM;
        *ret = c;
        return 0;
}

static int args_copy(const struct daemon_args *a, struct daemon_args *ret)
{
        struct daemon_args c = {.dry_run = a->dry_run};

        if (strdup_opt(a->config_path, &c.config_path) < 0 ||
            strdup_opt(a->policy_dir, &c.policy_dir) < 0 ||
            strdup_opt(a->cgroup_root, &c.cgroup_root) < 0 ||
            strdup_opt(a->proc_root, &c.proc_root) < 0 ||
            strdup_opt(a->state_dir, &c.state_dir) < 0) {
                args_clear(&c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

/* Replace *field (malloc'ed) by a copy of value, when value is given. */
static int override(char **field, const char *value)
{
        if (!value)
                return 0;
        char *c = strdup(value);
        if (!c)
                return -ENOMEM;
        free(*field);
        *field = c;
        return 0;
}

int daemon_config_load(const struct daemon_args *args, struct diag *diag, struct memgov_config *ret)
{
        struct memgov_config c = {};

        int r = memgov_config_load(args->config_path, diag, &c);
        if (r < 0)
                return r;
        if (override(&c.policy_dir, args->policy_dir) < 0 ||
            override(&c.state_dir, args->state_dir) < 0 ||
            override(&c.cgroup_root, args->cgroup_root) < 0) {
                memgov_config_clear(&c);
                return -ENOMEM;
        }
        c.dry_run = c.dry_run || args->dry_run;
        *ret = c;
        return 0;
}

/* ---- instances, sorted by relpath ---- */

/* The index of relpath in d->instances, or where it would go; *found says which. */
static size_t instance_index(const struct daemon *d, const char *relpath, bool *found)
{
        size_t lo = 0, hi = d->n_instances;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(d->instances[mid]->relpath, relpath);
                if (c == 0) {
                        *found = true;
                        return mid;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *found = false;
        return lo;
}

size_t daemon_get_instance_count(const struct daemon *d)
{
        return d->n_instances;
}

struct instance *daemon_get_instance(const struct daemon *d, const char *relpath)
{
        bool found;
        size_t k = instance_index(d, relpath, &found);
        return found ? d->instances[k] : NULL;
}

struct instance *daemon_get_instance_by_id(const struct daemon *d, uint64_t id)
{
        for (size_t k = 0; k < d->n_instances; k++)
                if (d->instances[k]->id == id)
                        return d->instances[k];
        return NULL;
}

void daemon_log_dropped(const struct instance *i, const char *why)
{
        log_struct(
                LOG_INFO,
                LOG_FIELDS({"MEMGOV_SERVICE", i->policy->service}, {"MEMGOV_CGROUP", i->relpath}),
                "%s: %s %s; no longer governed", i->policy->service, i->relpath, why);
}

void daemon_drop_instance(struct daemon *d, struct instance *i, const char *why)
{
        bool found;
        size_t k = instance_index(d, i->relpath, &found);

        if (!found || d->instances[k] != i) {
                /* Not ours to list (made during a rescan): just free it. */
                instance_free(i);
                return;
        }
        daemon_log_dropped(i, why);
        instance_give_back(i);
        memmove(d->instances + k, d->instances + k + 1,
                (d->n_instances - k - 1) * sizeof(struct instance *));
        d->n_instances--;
        instance_free(i);
}

/* ---- systemd notification ---- */

static void format_eta(uint64_t usec, char *buf, size_t size)
{
        uint64_t s = usec / USEC_PER_SEC;

        if (s < 90)
                snprintf(buf, size, "%" PRIu64 "s", s);
        else if (s < 90 * 60)
                snprintf(buf, size, "%" PRIu64 "m", s / 60);
        else
                snprintf(buf, size, "%" PRIu64 "h", s / 3600);
}

/* Is a worse than b: a higher level, or the same level with an earlier ETA. */
static bool instance_worse(const struct instance *a, const struct instance *b)
{
        if (a->level != b->level)
                return a->level > b->level;
        return a->eta_usec < b->eta_usec;
}

char *daemon_format_status(const struct daemon *d)
{
        const struct instance *worst = NULL;
        char *s = NULL;
        int r;

        for (size_t k = 0; k < d->n_instances; k++)
                if (!worst || instance_worse(d->instances[k], worst))
                        worst = d->instances[k];

        const char *noun = d->n_instances == 1 ? "cgroup" : "cgroups";
        if (!worst)
                r = asprintf(&s, "governing 0 cgroups; no cgroup matches the %zu %s yet",
                             d->policies->n_policies,
                             d->policies->n_policies == 1 ? "policy" : "policies");
        else if (worst->level == LEVEL_OK && worst->eta_usec == USEC_INFINITY)
                r = asprintf(&s, "governing %zu %s; all ok", d->n_instances, noun);
        else {
                char eta[32] = "";
                if (worst->eta_usec != USEC_INFINITY) {
                        memcpy(eta, ", ETA ", 7);
                        format_eta(worst->eta_usec, eta + 6, sizeof(eta) - 6);
                }
                r = asprintf(&s, "governing %zu %s; worst: %s %s%s", d->n_instances, noun,
                             worst->policy->service, level_to_string(worst->level), eta);
        }
        return r < 0 ? NULL : s;
}

/* Send STATUS= if it changed since the last one (and READY=1 with it when asked). */
static void notify_status(struct daemon *d, const char *extra)
{
        _cleanup_free_ char *status = daemon_format_status(d);
        if (!status)
                return;
        if (!extra && d->status && strcmp(d->status, status) == 0)
                return;
        (void)sd_notifyf(false, "%s%sSTATUS=%s", extra ? extra : "", extra ? "\n" : "", status);
        free(d->status);
        d->status = TAKE_PTR(status);
}

void daemon_notify_ready(struct daemon *d)
{
        if (d->ready)
                return;
        d->ready = true;
        notify_status(d, "READY=1");
}

void daemon_instance_sampled(struct daemon *d, struct instance *i)
{
        (void)i;
        /* During a rescan d->instances is the old list: READY=1 waits for the new one. */
        d->sampled = true;
        if (!d->in_rescan)
                daemon_notify_ready(d);
}

static int status_timer_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct daemon *d = userdata;

        notify_status(d, NULL);
        (void)sd_event_source_set_time(s, usec + DAEMON_STATUS_INTERVAL_USEC);
        (void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

/*
 * The watchdog: the timer only says a ping is due; the post source sends it, and post
 * sources run after every other handler of an iteration has returned. A loop stuck in a
 * handler, or spinning without completing iterations, therefore stops pinging and systemd
 * restarts it.
 */
static int watchdog_timer_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct daemon *d = userdata;

        d->watchdog_due = true;
        (void)sd_event_source_set_time(s, usec + d->watchdog_usec / 2);
        (void)sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static int watchdog_post_handler(sd_event_source *s, void *userdata)
{
        struct daemon *d = userdata;

        (void)s;
        if (!d->watchdog_due)
                return 0;
        d->watchdog_due = false;
        d->n_watchdog_pings++;
        (void)sd_notify(false, "WATCHDOG=1");
        return 0;
}

static int watchdog_setup(struct daemon *d, uint64_t now_usec)
{
        uint64_t usec = 0;
        int r;

        if (sd_watchdog_enabled(false, &usec) <= 0 || usec == 0)
                return 0;
        d->watchdog_usec = usec;
        r = sd_event_add_time(d->event, &d->watchdog_timer, CLOCK_MONOTONIC, now_usec + usec / 2,
                              usec / 20, watchdog_timer_handler, d);
        if (r < 0)
                return r;
        r = sd_event_add_post(d->event, &d->watchdog_post, watchdog_post_handler, d);
        if (r < 0)
                return r;
        log_debug("watchdog: pinging every %" PRIu64 "ms", usec / 2 / USEC_PER_MSEC);
        return 0;
}

/* ---- effects ---- */

/*
 * Point the notifier at the webhooks of the current policies. An endpoint whose secret
 * cannot be used is left out with its problem logged; the others work all the same.
 */
static void notify_configure(struct daemon *d)
{
        struct diag diag = {};

        if (!d->notify)
                return;
        int r = notify_set_policies(d->notify, d->policies, &diag);
        for (size_t k = 0; k < diag.n_lines; k++)
                log_warning("%s", diag.lines[k]);
        if (r == -EINVAL)
                log_warning("%zu webhook endpoint%s left out; the others will be notified",
                            diag.n_lines, diag.n_lines == 1 ? " is" : "s are");
        else if (r < 0)
                log_error_errno(r, "cannot configure the webhooks: %m");
        diag_clear(&diag);
}

/*
 * The HTTP client and the notifier. Webhooks go out in a dry run too: they change nothing
 * outside the daemon, and a dry run is how one tries them. A failure here costs the
 * webhooks, not the governing: it is logged and the daemon goes on.
 */
static void effects_start(struct daemon *d)
{
        sd_bus *bus = NULL;
        int r = actuate_bus_open(d->event, &bus);
        if (r == -EHOSTDOWN)
                log_debug("systemd does not run here: memory.high is written through cgroupfs");
        else if (r < 0)
                log_warning_errno(r, "cannot reach the systemd manager: %m; memory.high is written "
                                     "through cgroupfs, and policies with \"backend\": \"systemd\" "
                                     "will not change it");
        r = actuator_new(d->event, bus, d->config.state_dir, d->dry_run, &d->actuator);
        if (r < 0) {
                sd_bus_flush_close_unref(bus);
                log_error_errno(r, "cannot set up memory.high changes: %m; none will be made");
        } else {
                /*
                 * The actuator holds the only reference, and reopens the connection when
                 * systemd closes it (daemon-reexec on an upgrade): every user asks
                 * actuator_bus() for the bus of the moment, never a copy kept from here.
                 */
                sd_bus_unref(bus);
                d->actuator->reconnect = true;
        }

        r = http_client_new(d->event, &d->http);
        if (r < 0) {
                log_error_errno(r, "cannot set up HTTP (libcurl): %m; no webhooks or profiles");
                return;
        }
        r = notify_new(d->event, d->http, NULL, &d->notify);
        if (r < 0) {
                log_error_errno(r, "cannot set up the webhooks: %m; none will be sent");
                return;
        }
        notify_set_delivery_callback(d->notify, daemon_on_delivery, d);
        notify_configure(d);
}

/*
 * Put back every memory.high that memgov changed and recorded: at start the leftovers of a
 * run that crashed or was killed, at exit those of this run. Restoring waits for systemd's
 * replies (the loop is not running yet, or any more). A dry run only says what it would do.
 */
static void restore_records(struct daemon *d, const char *when)
{
        struct restore_env env = {.cgfs = d->cgfs, .open_bus = true, .dry_run = d->dry_run};
        struct restore_stats st = {};

        if (!d->config.state_dir)
                return;
        int r = restore_all(d->config.state_dir, NULL, &env, &st);
        env.bus = sd_bus_unref(env.bus);
        if (r < 0) {
                log_warning_errno(r, "%s: cannot list the restore records in %s/%s: %m", when,
                                  d->config.state_dir, RESTORE_SUBDIR);
                return;
        }
        if (st.restored + st.dropped + st.failed + st.corrupt + st.skipped == 0)
                return;
        log_notice("%s: memory.high restored for %u cgroup%s, %u record%s of gone cgroups "
                   "dropped, %u failed (kept), %u unreadable%s",
                   when, st.restored, st.restored == 1 ? "" : "s", st.dropped,
                   st.dropped == 1 ? "" : "s", st.failed, st.corrupt,
                   st.skipped ? " (dry run: records kept)" : "");
}

/* ---- reload ---- */

static bool streq_null(const char *a, const char *b)
{
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Log every problem, and hand a copy to out (the reload's HTTP answer) if given. */
static void log_diag(const struct diag *diag, struct diag *out)
{
        for (size_t k = 0; k < diag->n_lines; k++) {
                log_error("%s", diag->lines[k]);
                if (out)
                        (void)diag_add(out, "%s", diag->lines[k]);
        }
}

static int reload(struct daemon *d, struct diag *out);

int daemon_reload(struct daemon *d)
{
        return daemon_reload_diag(d, NULL);
}

int daemon_reload_diag(struct daemon *d, struct diag *out)
{
        int r = reload(d, out);
        if (r < 0)
                d->n_reload_failures++;
        return r;
}

static int reload(struct daemon *d, struct diag *out)
{
        _cleanup_(policy_set_freep) struct policy_set *set = NULL;
        struct memgov_config c = {};
        struct diag diag = {};
        int r;

        r = daemon_config_load(&d->args, &diag, &c);
        if (r < 0) {
                log_diag(&diag, out);
                diag_clear(&diag);
                return log_error_errno(r,
                                       "reload: the config %s is not valid (%m); still "
                                       "running the previous config and %zu policies",
                                       d->args.config_path ?: "(defaults)",
                                       d->policies->n_policies);
        }
        if (!streq_null(c.cgroup_root, d->config.cgroup_root)) {
                log_warning(
                        "reload: cgroup_root changed to %s; that takes a restart, still using %s",
                        c.cgroup_root ?: "(the cgroup2 mount)", d->cgfs->cgroup_path);
                free(c.cgroup_root);
                c.cgroup_root = d->config.cgroup_root ? strdup(d->config.cgroup_root) : NULL;
                if (d->config.cgroup_root && !c.cgroup_root) {
                        memgov_config_clear(&c);
                        return log_error_errno(-ENOMEM, "reload: %m");
                }
        }

        if (!streq_null(c.state_dir, d->config.state_dir)) {
                /* Restore records and dumps stay where this run began to keep them. */
                log_warning("reload: state_dir changed to %s; that takes a restart, still using %s",
                            c.state_dir ?: "(none)", d->config.state_dir ?: "(none)");
                free(c.state_dir);
                c.state_dir = d->config.state_dir ? strdup(d->config.state_dir) : NULL;
                if (d->config.state_dir && !c.state_dir) {
                        memgov_config_clear(&c);
                        return log_error_errno(-ENOMEM, "reload: %m");
                }
        }

        r = policy_set_load_dir(c.policy_dir, &diag, &set);
        if (r < 0) {
                log_diag(&diag, out);
                if (diag.n_lines == 0)
                        log_error_errno(r, "reload: cannot read the policy directory %s: %m",
                                        c.policy_dir);
                log_error("reload: the new policies are not valid; still running the previous "
                          "%zu policies",
                          d->policies->n_policies);
                diag_clear(&diag);
                memgov_config_clear(&c);
                return r;
        }
        diag_clear(&diag);

        r = daemon_rescan_with(d, set);
        if (r < 0) {
                memgov_config_clear(&c);
                return log_error_errno(r, "reload: cannot apply the new policies: %m; still "
                                          "running the previous ones");
        }

        /* Every instance now points into set: the old one can go. */
        bool rescan_changed = c.rescan_interval_usec != d->config.rescan_interval_usec;
        memgov_config_clear(&d->config);
        d->config = c;
        if (d->dry_run != c.dry_run)
                log_notice("reload: dry run %s", c.dry_run ? "on: memory.high is left alone"
                                                           : "off: memory.high is governed");
        d->dry_run = c.dry_run;
        if (d->actuator)
                d->actuator->dry_run = c.dry_run;
        policy_set_free(d->policies);
        d->policies = TAKE_PTR(set);
        d->n_reloads++;
        if (rescan_changed && d->rescan_timer)
                (void)daemon_rescan_timer_arm(d);
        notify_configure(d);
        daemon_server_reconfigure(d);

        log_info("reloaded: %zu polic%s from %s, %zu cgroup%s governed", d->policies->n_policies,
                 d->policies->n_policies == 1 ? "y" : "ies", d->config.policy_dir, d->n_instances,
                 d->n_instances == 1 ? "" : "s");
        return 0;
}

/* ---- signals ---- */

static int signal_handler(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        struct daemon *d = userdata;
        uint64_t now = 0;

        (void)s;
        if (si->ssi_signo == SIGHUP) {
                /* RELOADING=1 with the time as Type=notify-reload wants it, then READY=1. */
                (void)sd_event_now(d->event, CLOCK_MONOTONIC, &now);
                (void)sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, now);
                (void)daemon_reload(d);
                notify_status(d, "READY=1");
                return 0;
        }
        log_info("%s: exiting", strsignal((int)si->ssi_signo));
        return sd_event_exit(d->event, 0); /* daemon_run() says STOPPING=1 */
}

int daemon_setup_signals(struct daemon *d)
{
        static const int signals[] = {SIGHUP, SIGTERM, SIGINT};
        sigset_t mask;
        int r;

        /* sd-event takes signals through a signalfd: they must be blocked first. */
        sigemptyset(&mask);
        for (size_t k = 0; k < ELEMENTSOF(signals); k++)
                sigaddset(&mask, signals[k]);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return negative_errno();
        for (size_t k = 0; k < ELEMENTSOF(signals); k++) {
                r = sd_event_add_signal(d->event, &d->signal_sources[k], signals[k], signal_handler,
                                        d);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- life cycle ---- */

/*
 * A quarter of the soft open-file limit, as read now (memgovd raises it to the hard one
 * first). The rest is for what every cgroup needs: its directory fd, its PSI trigger fd, and
 * during a scan a third, sd-event's fd on the inode whose inotify watch was just added
 * (closed when the loop next goes round); and for sockets, dumps and collectors. With a
 * hard limit of 4,096, 1,000 cgroups at start take ~1,000 kept files and ~2,900 others.
 */
static int daemon_keep_fd_below(void)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
            rl.rlim_cur / 4 >= (rlim_t)INT_MAX)
                return INT_MAX;
        return (int)(rl.rlim_cur / 4);
}

int daemon_new(const struct daemon_args *args, struct memgov_config *config, struct cgfs *cgfs,
               struct policy_set *policies, struct daemon **ret)
{
        int r;

        _cleanup_free_ struct daemon *d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        r = args_copy(args, &d->args);
        if (r < 0)
                return r;
        r = sd_event_new(&d->event);
        if (r < 0) {
                args_clear(&d->args);
                return r;
        }
        r = sd_event_add_defer(d->event, &d->rescan_defer, daemon_rescan_defer_handler, d);
        if (r >= 0)
                r = sd_event_source_set_enabled(d->rescan_defer, SD_EVENT_OFF);
        if (r < 0) {
                sd_event_source_unref(d->rescan_defer);
                sd_event_unref(d->event);
                args_clear(&d->args);
                return r;
        }
        (void)sd_event_source_set_description(d->rescan_defer, "rescan-soon");

        d->cgfs = cgfs;
        d->cgroup2 = cgfs_root_is_cgroup2(cgfs) > 0;
        d->policies = policies;
        d->config = *config;
        *config = (struct memgov_config){};
        d->dry_run = d->config.dry_run;
        d->keep_fd_below = daemon_keep_fd_below();
        *ret = TAKE_PTR(d);
        return 0;
}

struct daemon *daemon_free(struct daemon *d)
{
        if (!d)
                return NULL;
        /* The server first: no handler may see the daemon half freed. */
        d->server = server_free(d->server);
        daemon_capture_stop(d);
        for (size_t k = 0; k < d->n_instances; k++)
                instance_free(d->instances[k]);
        free(d->instances);
        daemon_watches_clear(d);
        /* What is queued for the webhooks is dropped: the notifier first, it uses http. */
        d->notify = notify_free(d->notify);
        d->http = http_client_free(d->http);
        /* The targets are gone (their bus calls cancelled): every record goes back now. */
        if (d->started)
                restore_records(d, "exit");
        if (d->actuator && d->actuator->bus) {
                /* What was sent goes out before the connection closes. */
                (void)sd_bus_flush(d->actuator->bus);
                sd_bus_close(d->actuator->bus);
        }
        d->actuator = actuator_free(d->actuator);
        sd_event_source_disable_unref(d->rescan_defer);
        sd_event_source_disable_unref(d->rescan_timer);
        sd_event_source_disable_unref(d->status_timer);
        sd_event_source_disable_unref(d->watchdog_timer);
        sd_event_source_disable_unref(d->watchdog_post);
        for (size_t k = 0; k < ELEMENTSOF(d->signal_sources); k++)
                sd_event_source_disable_unref(d->signal_sources[k]);
        sd_event_unref(d->event);
        policy_set_free(d->policies);
        cgfs_free(d->cgfs);
        memgov_config_clear(&d->config);
        args_clear(&d->args);
        free(d->status);
        free(d);
        return NULL;
}

int daemon_start(struct daemon *d)
{
        uint64_t now;
        int r;

        r = sd_event_now(d->event, CLOCK_MONOTONIC, &now);
        if (r < 0)
                return r;
        d->start_usec = now;
        /*
         * The socket first: a live memgovd already listening on it is -EADDRINUSE, and
         * then this one must touch nothing (its records are the other's).
         */
        r = daemon_server_start(d);
        if (r == -EADDRINUSE)
                return r;
        /* Before anything else: a previous run may have left memory.high lowered. */
        restore_records(d, "start");
        effects_start(d);
        (void)daemon_capture_start(d); /* logged; governing goes on without captures */
        d->started = true;             /* from here on, daemon_free() restores the records */

        r = sd_event_add_time(d->event, &d->rescan_timer, CLOCK_MONOTONIC, USEC_INFINITY,
                              USEC_PER_SEC, daemon_rescan_timer_handler, d);
        if (r < 0)
                return r;
        (void)sd_event_source_set_description(d->rescan_timer, "rescan-timer");
        r = daemon_rescan_timer_arm(d);
        if (r < 0)
                return r;
        r = sd_event_add_time(d->event, &d->status_timer, CLOCK_MONOTONIC,
                              now + DAEMON_STATUS_INTERVAL_USEC, 100 * USEC_PER_MSEC,
                              status_timer_handler, d);
        if (r < 0)
                return r;
        r = watchdog_setup(d, now);
        if (r < 0)
                return r;

        (void)daemon_rescan(d);
        log_info("governing %zu cgroup%s under %s with %zu polic%s from %s%s", d->n_instances,
                 d->n_instances == 1 ? "" : "s", d->cgfs->cgroup_path, d->policies->n_policies,
                 d->policies->n_policies == 1 ? "y" : "ies", d->config.policy_dir,
                 d->dry_run ? " (dry run: nothing is written outside the state dir)" : "");

        /*
         * No instance gave a good sample in the first scan: no cgroup matches yet, or none
         * can be read. Tell systemd we are up anyway: otherwise it would wait, for cgroups
         * that may never come, until its start timeout kills us.
         */
        daemon_notify_ready(d);
        return 0;
}

int daemon_run(struct daemon *d)
{
        int r = sd_event_loop(d->event);
        (void)sd_notify(false, "STOPPING=1");
        return r;
}

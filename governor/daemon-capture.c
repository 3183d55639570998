/* SPDX-License-Identifier: MIT */
/*
 * memgovd's capture effect (decide → capture): which event captures what, for which
 * instance, and what becomes of the result. The capture itself — pprof over HTTP, the
 * built-in snapshots, collector commands, the dump, the suspects — is governor/capture.c;
 * here are the triggers (the policy's pprof.on and collectors' on, every OOM kill, POST
 * /v1/dump/SERVICE), the cooldowns and hourly cap per instance, the base/current pairing,
 * and the profile_captured event with the dump's files and the top suspects.
 *
 * A capture outlives nothing it points to: it knows its instance by id, and an instance
 * dropped meanwhile simply does not hear of the result (the dump is kept all the same).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "daemon-internal.h"
#include "memgov/capture.h"
#include "memgov/daemon.h"
#include "memgov/log.h"
#include "memgov/metrics.h"

/* Suspects named in the profile_captured webhook and log. */
#define CAPTURE_EVENT_SUSPECTS 5

/* Wall-clock time: it only names the dump directory. */
static uint64_t now_realtime_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

struct capture_job {
        struct daemon *d;
        uint64_t instance_id;
        char *service;
        char *relpath;
        enum event event; /* _EVENT_INVALID: on demand */
        enum level level;
        enum capture_role role;
        unsigned kinds; /* 1u << PPROF_* asked for */
        size_t n_collectors;
        struct capture *capture;
};

const char *instance_capture_result_to_string(enum instance_capture_result r)
{
        static const char *const names[_INSTANCE_CAPTURE_RESULT_MAX] = {
                [INSTANCE_CAPTURE_OK] = "ok",
                [INSTANCE_CAPTURE_PARTIAL] = "partial",
                [INSTANCE_CAPTURE_FAILED] = "failed",
        };
        if (r < 0 || r >= _INSTANCE_CAPTURE_RESULT_MAX)
                return NULL;
        return names[r];
}

static struct capture_job *job_free(struct capture_job *j)
{
        if (!j)
                return NULL;
        free(j->service);
        free(j->relpath);
        free(j);
        return NULL;
}

static void job_remove(struct daemon *d, struct capture_job *j)
{
        for (size_t k = 0; k < d->n_capture_jobs; k++)
                if (d->capture_jobs[k] == j) {
                        memmove(d->capture_jobs + k, d->capture_jobs + k + 1,
                                (d->n_capture_jobs - k - 1) * sizeof(*d->capture_jobs));
                        d->n_capture_jobs--;
                        return;
                }
}

#define JOB_FIELDS(j) LOG_FIELDS({"MEMGOV_SERVICE", (j)->service}, {"MEMGOV_CGROUP", (j)->relpath})

/* What became of kind in the dump: its binary form whole, cut short, or missing. */
static enum instance_capture_result kind_result(const struct capture_result *res,
                                                enum pprof_kind kind)
{
        const char *name = capture_file_name(kind, false);
        size_t len = strlen(name);

        for (size_t k = 0; k < res->n_files; k++) {
                const struct dump_entry *e = &res->files[k];
                if (strcmp(e->name, name) == 0)
                        return e->complete ? INSTANCE_CAPTURE_OK : INSTANCE_CAPTURE_PARTIAL;
                if (strncmp(e->name, name, len) == 0 && strcmp(e->name + len, ".partial") == 0)
                        return INSTANCE_CAPTURE_PARTIAL;
        }
        return INSTANCE_CAPTURE_FAILED;
}

/* Count the capture's outcome per kind; returns the outcome as a whole for status. */
static enum instance_capture_result count_outcome(struct instance *i, const struct capture_job *j,
                                                  const struct capture_result *res)
{
        enum instance_capture_result worst = INSTANCE_CAPTURE_OK;
        size_t pprof_failed = 0;

        for (int k = 0; k < _PPROF_KIND_MAX; k++) {
                if (!(j->kinds & (1u << k)))
                        continue;
                enum instance_capture_result r =
                        res->error < 0 ? INSTANCE_CAPTURE_FAILED : kind_result(res, k);
                i->n_captures[k][r]++;
                if (r != INSTANCE_CAPTURE_OK)
                        pprof_failed++;
                worst = MAX(worst, r);
        }
        if (j->n_collectors > 0) {
                /*
                 * The result does not say which request or command failed; what n_failed
                 * counts beyond the profiles' failures is the collectors'.
                 */
                bool failed = res->error < 0 || res->n_failed > pprof_failed;
                enum instance_capture_result r =
                        failed ? INSTANCE_CAPTURE_FAILED : INSTANCE_CAPTURE_OK;
                i->n_captures[INSTANCE_CAPTURE_COLLECTORS][r]++;
                worst = MAX(worst, r);
        }
        if (res->error < 0)
                worst = INSTANCE_CAPTURE_FAILED;
        return worst;
}

static const char *job_kind_name(const struct capture_job *j)
{
        for (int k = 0; k < _PPROF_KIND_MAX; k++)
                if (j->kinds & (1u << k))
                        return pprof_kind_to_string((enum pprof_kind)k);
        return j->n_collectors > 0 ? "collector" : "snapshot";
}

static void on_capture_done(struct capture *c, const struct capture_result *res, void *userdata)
{
        struct capture_job *j = userdata;
        struct daemon *d = j->d;
        struct instance *i = daemon_get_instance_by_id(d, j->instance_id);
        uint64_t now = 0;

        (void)c;
        (void)sd_event_now(d->event, CLOCK_MONOTONIC, &now);
        job_remove(d, j);
        if (!i) {
                if (res->error >= 0)
                        log_struct(LOG_INFO, JOB_FIELDS(j),
                                   "%s: %s is no longer governed; its capture is in %s", j->service,
                                   j->relpath, res->dir);
                job_free(j);
                return;
        }
        i->capturing = false;
        enum instance_capture_result outcome = count_outcome(i, j, res);
        i->has_last_capture = true;
        i->last_capture_kind = job_kind_name(j);
        i->last_capture_result = instance_capture_result_to_string(outcome);
        i->last_capture_usec = now;
        free(i->last_capture_dir);
        i->last_capture_dir = res->error >= 0 && res->dir ? strdup(res->dir) : NULL;

        if (res->error < 0) {
                (void)incident_log_capture(
                        &i->incident, now, i->level,
                        j->event == _EVENT_INVALID ? "manual" : event_to_string(j->event),
                        capture_role_to_string(j->role), NULL, true, NULL, 0, false);
                log_struct_errno(LOG_WARNING, res->error, JOB_FIELDS(j),
                                 "%s: capture of %s failed: %m", j->service, j->relpath);
                job_free(j);
                return;
        }
        (void)incident_log_capture(&i->incident, now, i->level,
                                   j->event == _EVENT_INVALID ? "manual"
                                                              : event_to_string(j->event),
                                   capture_role_to_string(j->role), res->dir, res->n_failed > 0,
                                   res->suspects, res->n_suspects, res->paired);
        if (capture_pair_record(&i->capture_pair, j->role, j->level, res->dir, now) < 0)
                log_warning("%s: %s: out of memory: the next capture is not diffed", j->service,
                            j->relpath);

        /* The webhook's profiles: every pprof file of the dump, by its full path. */
        size_t n_profiles = 0, n_suspects = 0;
        _cleanup_free_ char **profiles = calloc(res->n_files + 1, sizeof(char *));
        char *suspects[CAPTURE_EVENT_SUSPECTS] = {};
        for (size_t k = 0; profiles && k < res->n_files; k++)
                if (strncmp(res->files[k].kind, "pprof-", 6) == 0 &&
                    asprintf(&profiles[n_profiles], "%s/%s", res->dir, res->files[k].name) >= 0)
                        n_profiles++;
        for (size_t k = 0; k < res->n_suspects && n_suspects < CAPTURE_EVENT_SUSPECTS; k++) {
                char *s = suspect_format(res->suspects[k], res->paired);
                if (s)
                        suspects[n_suspects++] = s;
        }

        char detail[512];
        snprintf(detail, sizeof(detail), "%s capture%s into %s (%zu files%s%zu failed)%s%s",
                 j->event == _EVENT_INVALID ? "on-demand" : event_to_string(j->event),
                 j->role == CAPTURE_ROLE_CURRENT && res->paired ? ", diffed with the base" : "",
                 res->dir, res->n_files, ", ", res->n_failed,
                 n_suspects > 0 ? "; top suspect: " : "", n_suspects > 0 ? suspects[0] : "");
        instance_raise_event(d, i,
                             &(struct instance_event){
                                     .type = EVENT_PROFILE_CAPTURED,
                                     .level = i->level,
                                     .previous_level = i->level,
                                     .profiles = (const char *const *)profiles,
                                     .n_profiles = n_profiles,
                                     .suspects = (const char *const *)suspects,
                                     .n_suspects = n_suspects,
                                     .detail = detail,
                             });
        for (size_t k = 0; k < n_profiles; k++)
                free(profiles[k]);
        for (size_t k = 0; k < n_suspects; k++)
                free(suspects[k]);
        job_free(j);
}

/*
 * Start a capture of i for event (_EVENT_INVALID: on demand): pprof kinds (already
 * limited), the collectors given, the built-in snapshots. Returns 0, -EBUSY (one runs for
 * i), -EOPNOTSUPP (no dump store), or -errno of capture_start (logged).
 */
static int start_capture(struct daemon *d, struct instance *i, enum event event, unsigned kinds,
                         const struct policy_collector *collectors, size_t n_collectors,
                         char **ret_dir)
{
        const struct policy *p = i->policy;
        _cleanup_free_ char *cgroup_path = NULL;
        uint64_t now = 0;
        int r;

        if (!d->dumps || !d->http)
                return -EOPNOTSUPP;
        if (i->capturing)
                return -EBUSY;
        (void)sd_event_now(d->event, CLOCK_MONOTONIC, &now);
        if (asprintf(&cgroup_path, "%s/%s", d->cgfs->cgroup_path, i->relpath) < 0)
                return -ENOMEM;

        struct capture_job *j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        *j = (struct capture_job){
                .d = d,
                .instance_id = i->id,
                .service = strdup(p->service),
                .relpath = strdup(i->relpath),
                .event = event,
                .level = i->level,
                .role = capture_pair_role(&i->capture_pair, i->level),
                .kinds = kinds,
                .n_collectors = n_collectors,
        };
        struct capture_job **nj = reallocarray(d->capture_jobs, d->n_capture_jobs + 1, sizeof(*nj));
        if (!j->service || !j->relpath || !nj) {
                if (nj)
                        d->capture_jobs = nj;
                job_free(j);
                return -ENOMEM;
        }
        d->capture_jobs = nj;

        struct capture_request req = {
                .service = p->service,
                .event = event == _EVENT_INVALID ? "manual" : event_to_string(event),
                .realtime_usec = now_realtime_usec(),
                .pprof = kinds ? &p->pprof : NULL,
                .kinds_mask = kinds,
                .collectors = collectors,
                .n_collectors = n_collectors,
                .builtin = true,
                .cgroup_fd = i->dir_fd,
                .cgroup_path = cgroup_path,
                .proc_fd = d->cgfs->proc_fd,
                .base_dir =
                        kinds && j->role == CAPTURE_ROLE_CURRENT ? i->capture_pair.base_dir : NULL,
        };
        r = capture_start(d->event, d->http, d->dumps, &req, on_capture_done, j, &j->capture);
        if (r < 0) {
                if (r != -ENOSPC) /* the dump store said why, with the figures */
                        log_struct_errno(LOG_WARNING, r, JOB_FIELDS(j),
                                         "%s: cannot capture %s at %s: %m", j->service, j->relpath,
                                         req.event);
                job_free(j);
                return r;
        }
        d->capture_jobs[d->n_capture_jobs++] = j;
        i->capturing = true;
        if (kinds)
                capture_limiter_record(&i->capture_limiter, kinds, now);
        if (ret_dir)
                *ret_dir = strdup(capture_dump_dir(j->capture));
        log_struct(LOG_DEBUG, JOB_FIELDS(j), "%s: capture of %s at %s is the %s", j->service,
                   j->relpath, req.event, capture_role_to_string(j->role));
        if (!kinds)
                capture_limiter_record(&i->capture_limiter, 0, now);
        return 0;
}

/* The collectors of p that event starts, copied into a NULL-free array of n (malloc'ed). */
static struct policy_collector *collectors_for(const struct policy *p, enum event event,
                                               size_t *ret_n)
{
        struct policy_collector *l = calloc(MAX(p->n_collectors, (size_t)1), sizeof(*l));
        size_t n = 0;

        if (!l) {
                *ret_n = 0;
                return NULL;
        }
        for (size_t k = 0; k < p->n_collectors; k++)
                if (event == _EVENT_INVALID || (p->collectors[k].on_mask & EVENT_MASK(event)))
                        l[n++] = p->collectors[k]; /* shallow: argv stays the policy's */
        *ret_n = n;
        return l;
}

void daemon_capture_on_event(struct daemon *d, struct instance *i, enum event e)
{
        const struct policy *p = i->policy;
        uint64_t now = 0;

        if (e == EVENT_PROFILE_CAPTURED || !d->dumps)
                return;
        if (e == EVENT_RECOVERED) {
                /* The episode is over: the next danger starts from a new base. */
                capture_pair_recovered(&i->capture_pair);
                return;
        }
        (void)sd_event_now(d->event, CLOCK_MONOTONIC, &now);

        unsigned kinds = 0;
        if (p->pprof.url && (p->pprof.on_mask & EVENT_MASK(e)))
                kinds = capture_limiter_allow(&i->capture_limiter, &p->pprof, p->pprof.kinds_mask,
                                              now);
        size_t n_collectors = 0;
        _cleanup_free_ struct policy_collector *collectors = collectors_for(p, e, &n_collectors);
        if (kinds == 0 && n_collectors == 0) {
                /*
                 * An OOM kill leaves at least the built-in snapshot of the cgroup (memory.stat,
                 * the survivors' smaps): what the kernel saw is lost otherwise. Within the
                 * hourly cap, so that a crash loop does not fill the disk.
                 */
                bool snapshot = e == EVENT_OOM_KILL &&
                                (p->pprof.max_per_hour == 0 ||
                                 capture_limiter_last_hour(&i->capture_limiter, now) <
                                         p->pprof.max_per_hour);
                if (!snapshot) {
                        if (p->pprof.url && (p->pprof.on_mask & EVENT_MASK(e)))
                                log_debug("%s: %s: no capture at %s (cooldown or hourly cap)",
                                          p->service, i->relpath, event_to_string(e));
                        return;
                }
        }
        int r = start_capture(d, i, e, kinds, collectors, n_collectors, NULL);
        if (r == -EBUSY)
                log_struct(
                        LOG_INFO,
                        LOG_FIELDS({"MEMGOV_SERVICE", p->service}, {"MEMGOV_CGROUP", i->relpath}),
                        "%s: %s: a capture is still running; none at %s", p->service, i->relpath,
                        event_to_string(e));
}

int daemon_handle_dump(void *userdata, const char *service, char **ret_msg)
{
        struct daemon *d = userdata;
        size_t n_started = 0, n_busy = 0, n_limited = 0, n_found = 0;
        _cleanup_free_ char *first_dir = NULL;
        uint64_t now = 0;
        int r, last_error = 0;

        if (!d->dumps)
                return -EOPNOTSUPP;
        (void)sd_event_now(d->event, CLOCK_MONOTONIC, &now);
        for (size_t k = 0; k < d->n_instances; k++) {
                struct instance *i = d->instances[k];
                const struct policy *p = i->policy;
                if (strcmp(p->service, service) != 0)
                        continue;
                n_found++;
                unsigned kinds = p->pprof.url
                                         ? capture_limiter_allow(&i->capture_limiter, &p->pprof,
                                                                 p->pprof.kinds_mask, now)
                                         : 0;
                if (p->pprof.url && kinds == 0 && p->n_collectors == 0) {
                        n_limited++;
                        continue;
                }
                size_t n_collectors = 0;
                _cleanup_free_ struct policy_collector *collectors =
                        collectors_for(p, _EVENT_INVALID, &n_collectors);
                char *dir = NULL;
                r = start_capture(d, i, _EVENT_INVALID, kinds, collectors, n_collectors, &dir);
                if (r == -EBUSY)
                        n_busy++;
                else if (r < 0)
                        last_error = r;
                else {
                        n_started++;
                        if (!first_dir)
                                first_dir = dir;
                        else
                                free(dir);
                }
        }

        if (n_found == 0) {
                if (asprintf(ret_msg, "no cgroup of service %s is governed now", service) < 0)
                        *ret_msg = NULL;
                return -ENOENT;
        }
        if (n_started > 0) {
                if (asprintf(ret_msg,
                             "capturing %zu cgroup%s of %s; the dump%s will be under %s/%s",
                             n_started, n_started == 1 ? "" : "s", service,
                             n_started == 1 ? "" : "s", dump_store_path(d->dumps), service) < 0)
                        *ret_msg = NULL;
                return 0;
        }
        if (n_busy > 0) {
                if (asprintf(ret_msg, "a capture of %s is running; ask again when it is done",
                             service) < 0)
                        *ret_msg = NULL;
                return -EBUSY;
        }
        if (n_limited > 0) {
                if (asprintf(ret_msg,
                             "the profiles of %s are in their cooldown or at the hourly cap "
                             "(pprof.cooldown, pprof.max_per_hour); try later",
                             service) < 0)
                        *ret_msg = NULL;
                return -EAGAIN;
        }
        return last_error < 0 ? last_error : -EIO;
}

void daemon_write_capture_metrics(const struct daemon *d, struct promtext *p)
{
        metrics_family(p, METRIC_PROFILE_CAPTURES_TOTAL);
        for (size_t k = 0; k < d->n_instances; k++) {
                const struct instance *i = d->instances[k];
                for (int kind = 0; kind < INSTANCE_CAPTURE_KINDS; kind++) {
                        const char *name = kind == INSTANCE_CAPTURE_COLLECTORS
                                                   ? "collector"
                                                   : pprof_kind_to_string((enum pprof_kind)kind);
                        bool any = false;
                        for (int r = 0; r < _INSTANCE_CAPTURE_RESULT_MAX; r++)
                                any = any || i->n_captures[kind][r] > 0;
                        if (!any)
                                continue; /* kinds never captured: no series */
                        for (int r = 0; r < _INSTANCE_CAPTURE_RESULT_MAX; r++)
                                promtext_sample_u64(
                                        p,
                                        PROMTEXT_LABELS({"service", i->policy->service},
                                                        {"cgroup", i->relpath}, {"kind", name},
                                                        {"result",
                                                         instance_capture_result_to_string(
                                                                 (enum instance_capture_result)r)}),
                                        i->n_captures[kind][r]);
                }
        }
}

void daemon_fill_capture_status(const struct daemon *d, const struct instance *i, uint64_t now_usec,
                                struct status_instance *ret)
{
        (void)d;
        if (!i->has_last_capture)
                return;
        ret->last_capture = (struct status_capture){
                .kind = i->last_capture_kind,
                .result = i->last_capture_result,
                .path = i->last_capture_dir,
                .age_usec = now_usec >= i->last_capture_usec ? now_usec - i->last_capture_usec : 0,
        };
}

int daemon_capture_start(struct daemon *d)
{
        if (!d->config.state_dir)
                return 0;
        int r = dump_store_open(d->config.state_dir, NULL, &d->dumps);
        if (r < 0)
                return log_error_errno(r, "cannot open the dump store in %s: %m; no captures",
                                       d->config.state_dir);
        return 0;
}

void daemon_capture_stop(struct daemon *d)
{
        /* Cancelled: their unfinished dumps are removed, no callback comes. */
        for (size_t k = 0; k < d->n_capture_jobs; k++) {
                capture_cancel(d->capture_jobs[k]->capture);
                job_free(d->capture_jobs[k]);
        }
        free(d->capture_jobs);
        d->capture_jobs = NULL;
        d->n_capture_jobs = 0;
        d->dumps = dump_store_free(d->dumps);
}

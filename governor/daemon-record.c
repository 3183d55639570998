/* SPDX-License-Identifier: MIT */
/*
 * memgovd's record effect (decide → record): every instance keeps a bounded log of what
 * memgov decided and did for it (governor/incident.c), and when the kernel OOM-kills in
 * the cgroup or it enters critical, the log and the recent samples are written as one
 * incident bundle into the dump store — trace.csv that `memgovctl replay` reads,
 * decisions.jsonl, captures.json and a self-contained report.html.
 */
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "daemon-internal.h"
#include "memgov/daemon.h"
#include "memgov/incident.h"
#include "memgov/log.h"

static uint64_t realtime_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

void daemon_record_resume(struct daemon *d, struct instance *i, uint64_t now_usec)
{
        _cleanup_free_ char *bundle = NULL;

        i->incident_resume_until_usec = 0;
        if (!d->dumps || !d->config.state_dir)
                return;
        int r = incident_open_find(d->config.state_dir, i->policy->service, i->relpath, i->ino,
                                   &bundle);
        if (r < 0)
                log_debug("%s: %s: cannot read its open incident: %s", i->policy->service,
                          i->relpath, strerror(-r));
        if (r <= 0)
                return;
        i->incident_resume_until_usec = now_usec + i->policy->forecast_window_usec;
        log_debug("%s: %s: incident %s was open when memgovd stopped", i->policy->service,
                  i->relpath, bundle);
}

/*
 * The window in which an entry into critical would have continued the open incident passed
 * without one: the episode ended while memgovd was away (or right after it came back), so
 * the file goes, and a later restart cannot take a new episode for this one.
 */
void daemon_record_resume_expired(struct daemon *d, struct instance *i)
{
        int r;

        i->incident_resume_until_usec = 0;
        if (!d->config.state_dir)
                return;
        r = incident_open_remove(d->config.state_dir, i->relpath);
        if (r < 0)
                log_debug("%s: %s: cannot remove its open incident: %s", i->policy->service,
                          i->relpath, strerror(-r));
}

/*
 * Whether an entry into critical continues the incident a previous memgovd left open (see
 * daemon_record_resume()): said once, and the next entry is a new episode.
 */
static bool incident_continues(struct daemon *d, struct instance *i, uint64_t t_usec)
{
        _cleanup_free_ char *bundle = NULL;
        uint64_t until = i->incident_resume_until_usec;

        i->incident_resume_until_usec = 0;
        if (until == 0 || t_usec > until ||
            incident_open_find(d->config.state_dir, i->policy->service, i->relpath, i->ino,
                               &bundle) <= 0)
                return false;
        log_struct(
                LOG_INFO,
                LOG_FIELDS({"MEMGOV_SERVICE", i->policy->service}, {"MEMGOV_CGROUP", i->relpath}),
                "%s: %s: the incident of %s continues in %s (memgovd restarted during it); "
                "no new bundle",
                i->policy->service, i->relpath, i->relpath, bundle);
        return true;
}

static void write_bundle(struct daemon *d, struct instance *i, enum event e, uint64_t t_usec)
{
        _cleanup_free_ char *dir = NULL;
        _cleanup_free_ struct sample *samples = NULL;
        size_t n_samples;

        if (!d->dumps)
                return;
        if (e == EVENT_CRITICAL && incident_continues(d, i, t_usec))
                return;
        int r = sample_ring_copy(&i->ring, &samples, &n_samples);
        if (r < 0) {
                log_struct_errno(LOG_WARNING, r,
                                 LOG_FIELDS({"MEMGOV_SERVICE", i->policy->service},
                                            {"MEMGOV_CGROUP", i->relpath}),
                                 "%s: cannot write the incident bundle of %s: %m",
                                 i->policy->service, i->relpath);
                return;
        }
        struct incident_request req = {
                .service = i->policy->service,
                .cgroup = i->relpath,
                .event = e,
                .t_usec = t_usec,
                .realtime_usec = realtime_usec(),
                .samples = {.base = samples, .cap = n_samples, .head = 0, .len = n_samples},
                .log = &i->incident,
                .policy = i->policy,
                .generator = "memgovd " MEMGOV_VERSION,
        };
        r = incident_write(d->dumps, &req, &dir);
        if (r == -ENOSPC)
                return; /* the dump store said why, with the figures */
        if (r < 0)
                log_struct_errno(LOG_WARNING, r,
                                 LOG_FIELDS({"MEMGOV_SERVICE", i->policy->service},
                                            {"MEMGOV_CGROUP", i->relpath}),
                                 "%s: cannot write the incident bundle of %s: %m",
                                 i->policy->service, i->relpath);
        else {
                log_struct(LOG_INFO,
                           LOG_FIELDS({"MEMGOV_SERVICE", i->policy->service},
                                      {"MEMGOV_CGROUP", i->relpath}),
                           "%s: %s: incident bundle (%s) in %s", i->policy->service, i->relpath,
                           event_to_string(e), dir);
                if (e == EVENT_CRITICAL && d->config.state_dir) {
                        r = incident_open_save(d->config.state_dir, i->policy->service, i->relpath,
                                               i->ino, dir);
                        if (r < 0)
                                log_warning_errno(r,
                                                  "%s: %s: cannot note the open incident in "
                                                  "%s/%s: %m; a restart during it writes a "
                                                  "second bundle",
                                                  i->policy->service, i->relpath,
                                                  d->config.state_dir, INCIDENT_OPEN_SUBDIR);
                }
        }
}

void daemon_record_event(struct daemon *d, struct instance *i, const struct instance_event *ev,
                         uint64_t t_usec, bool webhook_queued)
{
        const struct forecast *f = ev->forecast ?: (i->has_forecast ? &i->last_forecast : NULL);
        int r = 0;

        switch (ev->type) {
        case EVENT_WARN:
        case EVENT_DEGRADE:
        case EVENT_CRITICAL:
        case EVENT_RECOVERED:
                r = incident_log_level(&i->incident, t_usec, ev->previous_level, ev->level,
                                       ev->reason_name ? ev->reason_name
                                       : ev->reason != DECIDE_REASON_NONE
                                               ? decide_reason_to_string(ev->reason)
                                               : NULL,
                                       f && f->known ? f->eta_lower_usec : USEC_INFINITY);
                break;
        case EVENT_OOM_KILL:
                r = incident_log_oom_kill(&i->incident, t_usec, ev->level,
                                          f && f->oom_kills > 0 ? f->oom_kills : 1);
                break;
        default:
                break; /* captures are logged when they complete, with their suspects */
        }
        if (r >= 0 && webhook_queued)
                r = incident_log_webhook(&i->incident, t_usec, ev->level, event_to_string(ev->type),
                                         NULL, "queued", false);
        if (r < 0)
                log_debug("%s: %s: incident log: %s", i->policy->service, i->relpath, strerror(-r));

        if (ev->type == EVENT_RECOVERED) {
                /* The episode is over: the next critical is a new incident. */
                i->incident_resume_until_usec = 0;
                if (d->config.state_dir) {
                        r = incident_open_remove(d->config.state_dir, i->relpath);
                        if (r < 0)
                                log_debug("%s: %s: cannot remove its open incident: %s",
                                          i->policy->service, i->relpath, strerror(-r));
                }
        }
        if (ev->type == EVENT_OOM_KILL ||
            (ev->type == EVENT_CRITICAL && ev->previous_level < LEVEL_CRITICAL))
                write_bundle(d, i, ev->type, t_usec);
}

/*
 * What became of a webhook (notify's delivery callback): the instance's status shows it as
 * last_delivery, and its incident log has it next to the "queued" entry, so that a bundle
 * says whether the service was told, not only that memgov tried.
 */
void daemon_on_delivery(const struct notify_delivery *dl, void *userdata)
{
        struct daemon *d = userdata;
        struct instance *i = daemon_get_instance(d, dl->cgroup);
        const char *result = webhook_result_to_string(dl->result);
        uint64_t now = 0;
        int r;

        /* The cgroup went, or another service governs it now: nobody to tell. */
        if (!i || strcmp(i->policy->service, dl->service) != 0 || !result)
                return;
        (void)sd_event_now(d->event, CLOCK_MONOTONIC, &now);

        char *endpoint = strdup(dl->url);
        if (endpoint) {
                free(i->last_delivery_endpoint);
                i->last_delivery_endpoint = endpoint;
        }
        i->last_delivery_event = dl->event;
        i->last_delivery_result = dl->result;
        i->last_delivery_http_status = dl->http_status;
        i->last_delivery_attempts = dl->attempts;
        i->last_delivery_usec = now;

        r = incident_log_webhook(
                &i->incident, now, i->level, event_to_string(dl->event), dl->url, result,
                dl->result != WEBHOOK_DELIVERED && dl->result != WEBHOOK_SUPERSEDED);
        if (r < 0)
                log_debug("%s: %s: incident log: %s", i->policy->service, i->relpath, strerror(-r));
}

/* SPDX-License-Identifier: MIT */
/*
 * One instance's sample through the flow: forecast → decide → effects. The verdict lands in
 * the instance (level, ETA) and every event it raises — a level entry, recovered, an OOM
 * kill — is counted, written to the journal with fixed MESSAGE_IDs and handed to notify.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "daemon-internal.h"
#include "memgov/daemon.h"
#include "memgov/instance.h"
#include "memgov/log.h"

/*
 * One MESSAGE_ID per event type, so that `journalctl MESSAGE_ID=…` finds every entry of
 * one kind across services. Fixed for good: docs/operations.md lists them.
 */
static const char *const message_ids[_EVENT_MAX] = {
        [EVENT_WARN] = "011e373b315e46f199487a8f3e24a22e",
        [EVENT_DEGRADE] = "8de2d939af904a7f89609b70a705455a",
        [EVENT_CRITICAL] = "9e44fb61ebde4bd5a93c94746e1625f5",
        [EVENT_RECOVERED] = "d57918eac7454614b5c96039656dc0ea",
        [EVENT_OOM_KILL] = "d023498746be42928813117238ae0a35",
        [EVENT_PROFILE_CAPTURED] = "7bc7a43213124f94b6def79ce95d62b4",
        [EVENT_LIVELOCK] = "6ac31ef0d4df438aa036d4c449cb090e",
};

const char *instance_event_message_id(enum event e)
{
        if (e < 0 || e >= _EVENT_MAX)
                return NULL;
        return message_ids[e];
}

/* "45s", "8m12s", "2h03m": an ETA for a log line. */
static char *format_duration(uint64_t usec, char buf[static 32])
{
        uint64_t s = usec / USEC_PER_SEC;

        if (s < 60)
                snprintf(buf, 32, "%" PRIu64 "s", s);
        else if (s < 3600)
                snprintf(buf, 32, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
        else
                snprintf(buf, 32, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s / 60 % 60);
        return buf;
}

/* What made the level change, in words, from the forecast the decision was made on. */
static void describe_reason(const struct instance *i, enum decide_reason r,
                            const struct forecast *f, uint64_t hold_usec, char *buf, size_t size)
{
        const struct signals_verdict *v = &i->runtime_verdict;
        char d[32];

        switch (r) {
        case DECIDE_REASON_GOROUTINES:
                if (v->has_rate)
                        snprintf(buf, size, "%" PRIu64 " goroutines, %+.0f per minute",
                                 v->goroutines, v->goroutines_per_min);
                else
                        snprintf(buf, size, "%" PRIu64 " goroutines", v->goroutines);
                break;
        case DECIDE_REASON_ETA:
                snprintf(buf, size, "OOM forecast in %s at the earliest, growing %.0f KiB/s",
                         f && f->eta_lower_usec != USEC_INFINITY
                                 ? format_duration(f->eta_lower_usec, d)
                                 : "?",
                         f ? f->slope_bytes_per_s / 1024 : 0);
                break;
        case DECIDE_REASON_USAGE:
                snprintf(buf, size, "usage %u.%u%% of the limit", f ? f->usage_permille / 10 : 0,
                         f ? f->usage_permille % 10 : 0);
                break;
        case DECIDE_REASON_PSI_SOME:
                snprintf(buf, size, "memory pressure some avg10 %.1f%%",
                         f ? f->psi_some_avg10_pct : 0);
                break;
        case DECIDE_REASON_PSI_FULL:
                snprintf(buf, size, "memory pressure full avg10 %.1f%%",
                         f ? f->psi_full_avg10_pct : 0);
                break;
        case DECIDE_REASON_HIGH_RATE:
                snprintf(buf, size, "memory.high events %.1f/s", f ? f->high_events_per_s : 0);
                break;
        case DECIDE_REASON_MAX_RATE:
                snprintf(buf, size, "memory.max events %.1f/s", f ? f->max_events_per_s : 0);
                break;
        case DECIDE_REASON_HOLD_EXPIRED:
                snprintf(buf, size, "every condition clear for %s", format_duration(hold_usec, d));
                break;
        default:
                snprintf(buf, size, "no condition holds");
                break;
        }
}

static int event_log_priority(enum event e)
{
        switch (e) {
        case EVENT_CRITICAL:
        case EVENT_OOM_KILL:
                return LOG_ERR;
        case EVENT_WARN:
        case EVENT_DEGRADE:
        case EVENT_LIVELOCK:
                return LOG_WARNING;
        case EVENT_RECOVERED:
                return LOG_NOTICE;
        default:
                return LOG_INFO;
        }
}

static void log_event(const struct instance *i, const struct instance_event *ev,
                      const struct forecast *f)
{
        const char *svc = i->policy->service, *ev_name = event_to_string(ev->type);
        char eta_s[32] = "", words[256], limit[64] = "";
        bool has_eta = f && f->known && f->eta_lower_usec != USEC_INFINITY;

        if (has_eta)
                snprintf(eta_s, sizeof(eta_s), "%" PRIu64, f->eta_lower_usec / USEC_PER_SEC);
        if (f && f->limit_bytes != CGROUP_LIMIT_MAX)
                snprintf(limit, sizeof(limit), "%" PRIu64, f->limit_bytes);

        const struct log_field fields[] = {
                {"MESSAGE_ID", instance_event_message_id(ev->type)},
                {"MEMGOV_EVENT", ev_name},
                {"MEMGOV_SERVICE", svc},
                {"MEMGOV_CGROUP", i->relpath},
                {"MEMGOV_LEVEL", level_to_string(ev->level)},
                {"MEMGOV_PREVIOUS_LEVEL", level_to_string(ev->previous_level)},
                {"MEMGOV_REASON", ev->reason_name ? ev->reason_name
                                  : ev->reason != DECIDE_REASON_NONE
                                          ? decide_reason_to_string(ev->reason)
                                          : NULL},
                {"MEMGOV_ETA_S", has_eta ? eta_s : NULL},
                {"MEMGOV_LIMIT_BYTES", limit[0] ? limit : NULL},
                {NULL, NULL},
        };
        int prio = event_log_priority(ev->type);

        switch (ev->type) {
        case EVENT_WARN:
        case EVENT_DEGRADE:
        case EVENT_CRITICAL:
                if (ev->reason_name && ev->reason == DECIDE_REASON_NONE)
                        snprintf(words, sizeof(words), "%s",
                                 strcmp(ev->reason_name, "livelock") == 0
                                         ? "stalled at memory.high (livelock)"
                                         : "the livelock at memory.high is over");
                else
                        describe_reason(i, ev->reason, f, i->policy->hold_usec, words,
                                        sizeof(words));
                log_struct(prio, fields, "%s: %s entered %s (was %s): %s%s%s", svc, i->relpath,
                           ev_name, level_to_string(ev->previous_level), words,
                           ev->detail ? "; " : "", ev->detail ?: "");
                break;
        case EVENT_RECOVERED:
                if (ev->reason_name && ev->reason == DECIDE_REASON_NONE)
                        snprintf(words, sizeof(words), "the livelock at memory.high is over");
                else
                        describe_reason(i, ev->reason, f, i->policy->hold_usec, words,
                                        sizeof(words));
                log_struct(prio, fields, "%s: %s recovered (was %s): %s", svc, i->relpath,
                           level_to_string(ev->previous_level), words);
                break;
        case EVENT_LIVELOCK:
                /* govern's reason names the livelock itself ("livelock: memory.current …"). */
                log_struct(prio, fields, "%s: %s: %s", svc, i->relpath,
                           ev->detail ?: "livelock: stalled at memory.high");
                break;
        case EVENT_OOM_KILL:
                log_struct(prio, fields, "%s: %s: the kernel OOM-killed %s at level %s", svc,
                           i->relpath, ev->detail ?: "a process", level_to_string(ev->level));
                break;
        default:
                log_struct(prio, fields, "%s: %s: %s%s%s", svc, i->relpath, ev_name,
                           ev->detail ? ": " : "", ev->detail ?: "");
                break;
        }
}

void instance_raise_event(struct daemon *d, struct instance *i, const struct instance_event *ev)
{
        const struct sample *s = ev->sample ?: (i->has_last ? &i->last : NULL);
        const struct forecast *f = ev->forecast ?: (i->has_forecast ? &i->last_forecast : NULL);
        uint64_t now = 0;
        int r;

        if (ev->type < 0 || ev->type >= _EVENT_MAX)
                return;
        (void)sd_event_now(d->event, CLOCK_MONOTONIC, &now);
        i->n_events[ev->type]++;
        i->last_event = ev->type;
        i->last_event_usec = now;

        log_event(i, ev, f);

        bool queued = false;
        if (d->notify) {
                r = notify_event(d->notify, &(struct notify_event){
                                                    .type = ev->type,
                                                    .service = i->policy->service,
                                                    .cgroup = i->relpath,
                                                    .level = ev->level,
                                                    .previous_level = ev->previous_level,
                                                    .sample = s,
                                                    .forecast = f,
                                                    .profiles = ev->profiles,
                                                    .n_profiles = ev->n_profiles,
                                                    .suspects = ev->suspects,
                                                    .n_suspects = ev->n_suspects,
                                            });
                if (r < 0)
                        log_struct_errno(LOG_WARNING, r,
                                         LOG_FIELDS({"MEMGOV_SERVICE", i->policy->service},
                                                    {"MEMGOV_CGROUP", i->relpath}),
                                         "%s: %s: cannot queue the %s webhook: %m",
                                         i->policy->service, i->relpath, event_to_string(ev->type));
                queued = r > 0;
        }

        daemon_record_event(d, i, ev, s ? s->t_usec : now, queued);
        daemon_capture_on_event(d, i, ev->type);
}

/* Carry out govern's intent for i: memory.high (through the target) and memory.reclaim. */
static void actuate_intent(struct daemon *d, struct instance *i, const struct govern_intent *gi,
                           uint64_t now_usec)
{
        int r;

        if (!gi->set && gi->reclaim_bytes == 0)
                return;
        if (!d->actuator)
                return; /* said once at the start */
        if (!i->target) {
                r = actuate_target_new(d->actuator, i->policy->service, i->relpath, i->dir_fd,
                                       i->ino, i->policy->memory_high.backend, &i->target);
                if (r < 0) {
                        log_struct_errno(LOG_ERR, r,
                                         LOG_FIELDS({"MEMGOV_SERVICE", i->policy->service},
                                                    {"MEMGOV_CGROUP", i->relpath}),
                                         "%s: cannot set up memory.high changes of %s: %m",
                                         i->policy->service, i->relpath);
                        return;
                }
        }
        if (gi->set) {
                /* actuate logs the change, or why it failed; govern assumes it is done. */
                (void)actuate_set_high(i->target, gi->high_bytes, i->govern.original_bytes,
                                       gi->reason);
                (void)incident_log_memory_high(&i->incident, now_usec, i->level, gi->high_bytes,
                                               govern_cause_to_string(gi->cause), gi->reason);
        }
        if (gi->reclaim_bytes > 0)
                (void)actuate_reclaim(i->target, gi->reclaim_bytes);
}

int instance_pipeline(struct daemon *d, struct instance *i, const struct sample *s,
                      uint64_t now_usec)
{
        struct forecast fc;
        struct decision dec;
        struct govern_intent gi;

        forecast_update(&i->forecast, s, &fc);
        /* The service's own figures, as polled last: conditions next to the forecast's. */
        struct decide_extra extra = {};
        if (i->runtime) {
                signals_evaluate(signals_poller_state(i->runtime), &i->policy->runtime, now_usec,
                                 &i->runtime_verdict);
                signals_decide_extra(&i->runtime_verdict, &extra);
        }
        decide_update_extra(&i->decide, i->policy, &fc, i->runtime ? &extra : NULL, &dec);
        govern_update(&i->govern, i->policy, s, &dec, &gi);
        /* Decided; what follows are its effects (events, bundles, memory.high). */
        i->decided_usec = monotonic_usec();
        i->last_forecast = fc;
        i->has_forecast = true;
        i->eta_usec = fc.known ? fc.eta_lower_usec : USEC_INFINITY;
        i->reason = dec.reason;

        /*
         * The level is decide's, except while a livelock at memory.high lasts: govern holds
         * it at critical then, and it falls back to decide's when the episode is over.
         */
        enum level previous = i->level;
        const char *reason_name = NULL;
        if (gi.livelock)
                instance_raise_event(d, i,
                                     &(struct instance_event){
                                             .type = EVENT_LIVELOCK,
                                             .level = MAX(previous, LEVEL_CRITICAL),
                                             .previous_level = previous,
                                             .sample = s,
                                             .forecast = &fc,
                                             .reason_name = "livelock",
                                             .detail = gi.reason,
                                     });
        /* The same rule as `memgovctl replay`'s: govern.c has it. */
        enum level level = govern_level(dec.level, previous, i->escalated, &gi, &reason_name);
        i->escalated = gi.escalate;

        if (level != previous) {
                i->level = level;
                i->level_since_usec = now_usec;
                instance_raise_event(
                        d, i,
                        &(struct instance_event){
                                .type = event_for_level(level),
                                .level = level,
                                .previous_level = previous,
                                .reason = reason_name ? DECIDE_REASON_NONE : dec.reason,
                                .reason_name = reason_name,
                                .sample = s,
                                .forecast = &fc,
                        });
        }

        actuate_intent(d, i, &gi, now_usec);
        if (i->incident_resume_until_usec != 0 && now_usec > i->incident_resume_until_usec)
                daemon_record_resume_expired(d, i);

        if (dec.oom_kill) {
                char what[64];
                snprintf(what, sizeof(what), "%" PRIu64 " process%s", fc.oom_kills,
                         fc.oom_kills == 1 ? "" : "es");
                instance_raise_event(d, i,
                                     &(struct instance_event){
                                             .type = EVENT_OOM_KILL,
                                             .level = i->level,
                                             .previous_level = i->level,
                                             .sample = s,
                                             .forecast = &fc,
                                             .detail = what,
                                     });
        }
        return 0;
}

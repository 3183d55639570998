/* SPDX-License-Identifier: MIT */
/*
 * One governed cgroup: an instance of a policy whose cgroup glob matched it. The instance
 * holds the event sources that make it sample (a timer at the policy's interval, inotify on
 * memory.events, a PSI trigger) and the recent samples; each sample goes through
 * instance_process_sample(), where the pipeline forecast → decide → effects runs.
 *
 * Instances are created and dropped by the daemon (governor/daemon.c), never by anyone
 * else: a cgroup that appears gets one, a cgroup that vanishes loses it, and a cgroup
 * re-created under the same path (another inode) is a new instance with fresh state.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "memgov/actuate.h"
#include "memgov/capture.h"
#include "memgov/cgfs.h"
#include "memgov/decide.h"
#include "memgov/forecast.h"
#include "memgov/govern.h"
#include "memgov/incident.h"
#include "memgov/level.h"
#include "memgov/macro.h"
#include "memgov/policy.h"
#include "memgov/sample-ring.h"
#include "memgov/sample.h"
#include "memgov/signals.h"
#include "memgov/webhook.h"

struct daemon;

/* PSI trigger of every instance: wake when tasks stalled 150ms within a 1s window. */
#define INSTANCE_PSI_STALL_USEC  (150 * USEC_PER_MSEC)
#define INSTANCE_PSI_WINDOW_USEC (1 * USEC_PER_SEC)

/* How often the memory.max of a cgroup's ancestors and MemTotal are read again. */
#define INSTANCE_ANCESTOR_REFRESH_USEC (10 * USEC_PER_SEC)

/*
 * The sample ring spans the forecast window, and at least this much: the status API, the
 * incident bundles and the ETA's confirmation look back that far, whatever the window.
 */
#define INSTANCE_RING_LOOKBACK_USEC (15 * USEC_PER_MINUTE)
/*
 * Bound of the sample ring: the look-back at the fastest sample interval the policy allows
 * (100ms), a byte budget of 211 KiB per instance then (sample-ring.h). A window longer
 * than the look-back is covered only up to this many samples.
 */
#define INSTANCE_RING_MAX 9000
#define INSTANCE_RING_MIN 2

/*
 * An event (inotify, PSI) samples at once unless the last sample is more recent than
 * MIN(sample interval / 4, this): a cgroup throttled at memory.high changes memory.events
 * up to a hundred times a second, and the ring should still span the forecast window.
 */
#define INSTANCE_EVENT_MIN_GAP_USEC (250 * USEC_PER_MSEC)

/* What became of one kind of a capture (memgov_profile_captures_total{result=}). */
enum instance_capture_result {
        INSTANCE_CAPTURE_OK,      /* "ok": the whole file */
        INSTANCE_CAPTURE_PARTIAL, /* "partial": cut at its size cap or deadline, kept */
        INSTANCE_CAPTURE_FAILED,  /* "failed": nothing usable */
        _INSTANCE_CAPTURE_RESULT_MAX,
};

/* The pprof kinds, then collector runs. */
#define INSTANCE_CAPTURE_COLLECTORS _PPROF_KIND_MAX
#define INSTANCE_CAPTURE_KINDS      (_PPROF_KIND_MAX + 1)

/* "ok", "partial", "failed"; NULL if invalid. */
const char *instance_capture_result_to_string(enum instance_capture_result r);

struct instance {
        struct daemon *daemon;       /* the owner */
        uint64_t id;                 /* serial number within this daemon run: logs, tests */
        const struct policy *policy; /* owned by daemon->policies; re-pointed on reload */
        char *relpath;           /* relative to the cgroup root, e.g. "system.slice/x.service" */
        int dir_fd;              /* the cgroup directory, O_DIRECTORY */
        uint64_t ino;            /* st_ino of the directory when the instance was made */
        struct cgfs_files files; /* its memory files, kept open between samples */
        /*
         * cgfs_ancestor_limit() as last read, and when: re-read every
         * INSTANCE_ANCESTOR_REFRESH_USEC (a parent's memory.max changes rarely; the
         * cgroup's own is read with every sample).
         */
        uint64_t ancestor_limit;
        uint64_t ancestor_read_usec; /* 0: never */

        sd_event_source *timer;        /* CLOCK_MONOTONIC, one-shot, re-armed after every sample */
        sd_event_source *events_watch; /* inotify IN_MODIFY on memory.events; NULL: none */
        sd_event_source *psi;          /* EPOLLPRI on a PSI trigger fd; NULL: none (not cgroup2) */

        uint64_t last_attempt_usec; /* last read, good or not; 0: never */
        uint64_t n_samples;         /* good samples since the instance appeared */
        uint64_t n_event_samples;   /* of which were caused by inotify or PSI, not the timer */
        bool event_pending;         /* an event came too soon after a sample: the timer takes it */
        bool has_last;
        struct sample last; /* the last good sample (limit_bytes filled in) */

        /*
         * The recent good samples, compact (memgov/sample-ring.h), capacity
         * instance_ring_capacity(); its byte budget is allocated with the instance. The
         * incident bundle writes them out (sample_ring_copy()).
         */
        struct sample_ring ring;

        bool warned_unreadable; /* a read failed for another reason than the cgroup going */
        bool warned_overlap;    /* another policy's glob matches this cgroup too */

        /*
         * Decide's verdict, read by the STATUS= line and by export: the level and the
         * forecast ETA lower bound (USEC_INFINITY: no OOM in sight, or not known yet).
         */
        enum level level;
        uint64_t eta_usec;
        enum decide_reason reason; /* why the level holds (or changed last) */
        uint64_t level_since_usec; /* when the level was entered; the instance's birth at first */
        uint64_t decided_usec;     /* CLOCK_MONOTONIC when the last decision was made (probe) */

        /* The pipeline's state: forecast_init()/decide_init() in instance_new(). */
        struct forecast_state forecast;
        struct decide_state decide;
        bool has_forecast;
        struct forecast last_forecast; /* as of the last sample */

        /*
         * The service's runtime figures (policy .runtime): the poller, made with the
         * instance and freed with it (so its callback never outlives it); NULL: none.
         * The verdict of the last sample, for the log.
         */
        struct signals_poller *runtime;
        struct signals_verdict runtime_verdict;
        bool warned_runtime; /* a poll failed and that was said; cleared by a good one */

        /*
         * memory.high: govern's state, and the actuate target made at the first change
         * (NULL until then). escalated: a livelock episode holds the level at critical.
         */
        struct govern_state govern;
        struct actuate_target *target;
        bool escalated;

        /*
         * Captures (governor/daemon-capture.c): cooldowns and the hourly cap, the
         * base/current pair the suspects are diffed from, whether one runs now, and what
         * they came to per kind (memgov_profile_captures_total; collector runs under
         * INSTANCE_CAPTURE_COLLECTORS) and the latest, for status.
         */
        struct capture_limiter capture_limiter;
        struct capture_pair capture_pair;
        bool capturing;
        uint64_t n_captures[INSTANCE_CAPTURE_KINDS][_INSTANCE_CAPTURE_RESULT_MAX];
        bool has_last_capture;
        const char *last_capture_kind;   /* static: a pprof kind name, "collector", "snapshot" */
        const char *last_capture_result; /* static: instance_capture_result_to_string() */
        char *last_capture_dir;          /* the dump; NULL when none was written */
        uint64_t last_capture_usec;

        /*
         * What memgov did for this cgroup (levels, memory.high, captures, webhooks, kills),
         * bounded; written with the ring as an incident bundle at an OOM kill or critical.
         */
        struct incident_log incident;
        /*
         * Until when an entry into critical continues an incident a previous memgovd left
         * open for this cgroup (<state-dir>/incidents): no second bundle then. 0: none.
         */
        uint64_t incident_resume_until_usec;

        /*
         * The latest webhook outcome for this cgroup (notify's delivery callback, in
         * governor/daemon-record.c), for status: last_delivery_event _EVENT_INVALID: none.
         */
        enum event last_delivery_event;
        enum webhook_result last_delivery_result;
        long last_delivery_http_status;
        unsigned last_delivery_attempts;
        char *last_delivery_endpoint;
        uint64_t last_delivery_usec;

        /* Events raised (memgov_events_total) and the latest one, for status. */
        uint64_t n_events[_EVENT_MAX];
        enum event last_event; /* _EVENT_INVALID: none yet */
        uint64_t last_event_usec;
};

/*
 * Make an instance of policy p for the cgroup relpath, whose open directory is dir_fd (taken
 * over, also on failure) with inode ino: its sources are added to d->event, the timer armed
 * one interval from now_usec. Nothing is sampled yet (see instance_sample()). Returns 0, or
 * -errno (-ENOMEM, sd-event failures). The daemon owns the result (instance_free).
 */
int instance_new(struct daemon *d, const struct policy *p, const char *relpath, int dir_fd,
                 uint64_t ino, uint64_t now_usec, struct instance **ret);

/*
 * The instance stops being governed while memgovd goes on (its cgroup is gone, or no policy
 * matches it any more): if memgov changed its memory.high, the original goes back now
 * through its restore record (a cgroup that is gone just loses its record). Call before
 * instance_free(); at exit the daemon restores every record at once instead.
 */
void instance_give_back(struct instance *i);

/* Remove its sources, close its fd, free it. Accepts NULL; returns NULL. */
struct instance *instance_free(struct instance *i);
DEFINE_FREE_FUNC(instance)

/*
 * After a reload: the same cgroup is still governed by a policy of the same service name,
 * now p (the old one is about to be freed). The state is kept; a changed sample interval
 * re-arms the timer, a changed window resizes the ring keeping the newest samples. Returns
 * 0 or -ENOMEM (then the instance keeps the old ring, with p set).
 */
int instance_set_policy(struct instance *i, const struct policy *p, uint64_t now_usec);

/*
 * Take a sample now: cgfs_read_sample + cgfs_effective_limit, then
 * instance_process_sample(), and re-arm the timer one interval later. Returns 0 when a
 * sample was taken, 1 when none could be but the cgroup is still there (logged once), or
 * -ENOENT when the cgroup is gone (the caller drops the instance; nothing logged here).
 */
int instance_sample(struct instance *i, uint64_t now_usec);

/*
 * The pipeline for one good sample s (limit_bytes filled in) at now_usec: keeps it as the
 * last sample and in the ring, runs forecast → decide, sets level and eta_usec, and on a
 * level change or an OOM kill raises the event (instance_raise_event()). Returns 0 or
 * -errno (logged by the callee; the instance stays). In governor/instance-pipeline.c.
 */
int instance_process_sample(struct daemon *d, struct instance *i, const struct sample *s,
                            uint64_t now_usec);

/* An event of one instance, as the pipeline or an effect saw it; everything is borrowed. */
struct instance_event {
        enum event type;
        enum level level;                /* after the event */
        enum level previous_level;       /* before it (== level for events that are no entry) */
        enum decide_reason reason;       /* level events: why; DECIDE_REASON_NONE otherwise */
        const struct sample *sample;     /* the sample that raised it; NULL: the last one */
        const struct forecast *forecast; /* as of that sample; NULL: the last one */
        const char *const *profiles;     /* profile_captured: the dump's files */
        size_t n_profiles;
        const char *const *suspects; /* profile_captured: top leak suspects, as text */
        size_t n_suspects;
        const char *detail;      /* a few words for the log line, or NULL */
        const char *reason_name; /* MEMGOV_REASON when no decide_reason says it ("livelock") */
};

/*
 * Raise ev for instance i: counted (memgov_events_total), logged to the journal with its
 * MESSAGE_ID and the MEMGOV_* fields (docs/operations.md, "Journal fields"), and handed to
 * the effects that subscribe to its type (webhooks, captures). Never fails: an effect that
 * cannot follow logs why.
 */
void instance_raise_event(struct daemon *d, struct instance *i, const struct instance_event *ev);

/* The journal MESSAGE_ID of an event (32 hex digits), or NULL for an invalid one. */
const char *instance_event_message_id(enum event e);

/* Samples in the ring. */
size_t instance_ring_size(const struct instance *i);

/*
 * The ring capacity for a policy: MAX(forecast window, INSTANCE_RING_LOOKBACK_USEC) / sample
 * interval, rounded up, within INSTANCE_RING_MIN..INSTANCE_RING_MAX. Pure.
 */
size_t instance_ring_capacity(const struct policy *p);

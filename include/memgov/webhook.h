/* SPDX-License-Identifier: MIT */
/*
 * The pure half of webhook delivery (notify stage): what a webhook says and when it is
 * sent. Builds the CloudEvents body and its Standard Webhooks signature, derives the
 * advice from the memory figures, and schedules attempts per endpoint — retries,
 * backoff, deadlines, Retry-After, supersession, the bounded queue — against a clock and
 * a random generator passed in (governor/webhook.c: the message; governor/webhook-queue.c:
 * the schedule). No I/O, no clock reads, no logging: governor/notify.c does those, the
 * unit tests drive this with a fake clock.
 *
 * The wire contract is docs/webhooks.md.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memgov/level.h"
#include "memgov/macro.h"

/* ---- Keys and signatures (Standard Webhooks) ---- */

/*
 * The HMAC key for a secret file's content: surrounding ASCII whitespace (a trailing
 * newline) is ignored; "whsec_<base64>" is decoded, anything else is used as raw bytes.
 * Returns 0 with *ret_key (malloc'ed, the caller frees) and *ret_size; -EINVAL when the
 * content is empty or the part after "whsec_" is not base64 (ret_* untouched); -ENOMEM.
 */
int webhook_key_from_secret(const void *content, size_t size, uint8_t **ret_key, size_t *ret_size);

/*
 * The webhook-signature header value "v1,<base64(HMAC-SHA256(key, id.timestamp.body))>"
 * for one attempt, in *ret (malloc'ed, the caller frees). Returns 0, -EINVAL, -ENOMEM.
 */
int webhook_sign(const uint8_t *key, size_t key_size, const char *id, uint64_t timestamp_s,
                 const void *body, size_t body_size, char **ret);

/* ---- The event ---- */

/* Memory figures at the time of the event; a *_bytes of CGROUP_LIMIT_MAX reads "no limit". */
struct webhook_memory {
        uint64_t current_bytes; /* memory.current */
        uint64_t limit_bytes;   /* the limit the OOM killer enforces (never "max") */
        uint64_t high_bytes;    /* memory.high; CGROUP_LIMIT_MAX: none */
        uint64_t max_bytes;     /* memory.max; CGROUP_LIMIT_MAX: none */
        bool has_anon;
        uint64_t anon_bytes; /* memory.stat anon */
        bool has_file;
        uint64_t file_bytes; /* memory.stat file */
};

struct webhook_forecast {
        bool known;        /* false: no forecast yet (too few samples); the fields are ignored */
        uint64_t eta_usec; /* time to the limit; USEC_INFINITY: not rising */
        uint64_t eta_lower_usec; /* the band; USEC_INFINITY where unbounded */
        uint64_t eta_upper_usec;
        double slope_bytes_per_s;
};

/* What the service can do now; derived by webhook_advice_compute(). */
struct webhook_advice {
        uint64_t gomemlimit_bytes; /* a soft memory limit for a GC'd runtime; 0: none/restore */
        double shed_fraction;      /* 0..1: share of requests to refuse */
        bool drop_caches;
};

/*
 * The advice for a service at level (the level the instance is in after the event):
 *
 *   base      = memory.high when set and below the limit, else the limit
 *   reserve   = current - anon (what the runtime's heap is not: page cache, kernel
 *               memory, non-Go allocations) when anon is known, else file, else base/10;
 *               clamped to [base * 5%, base * 50%]
 *   gomemlimit_bytes = base - reserve           (0 at LEVEL_OK: restore your own)
 *   shed_fraction    = 0, 0, 0.25, 0.5          (ok, warn, degrade, critical)
 *   drop_caches      = level >= degrade
 */
void webhook_advice_compute(const struct webhook_memory *m, enum level level,
                            struct webhook_advice *ret);

/* One event, as the daemon describes it; the strings are borrowed. */
struct webhook_event {
        enum event type;
        const char *service;
        const char *cgroup;          /* the instance, relative to the cgroup root */
        uint64_t time_realtime_usec; /* wall clock of the event (CLOCK_REALTIME µs) */
        enum level level;            /* the level after the event */
        enum level previous_level;
        struct webhook_memory memory;
        struct webhook_forecast forecast;
        struct webhook_advice advice;
        const char *const *profiles; /* dump file paths, or NULL */
        size_t n_profiles;
        const char *const *suspects; /* top leak suspects, e.g. "main.leak 312 MiB", or NULL */
        size_t n_suspects;
};

/*
 * The CloudEvents 1.0 structured JSON body for ev: specversion, type "io.memgov.<event>",
 * source "memgovd/<host>/<service>", subject (the cgroup), id, time (RFC 3339 UTC, ms),
 * datacontenttype and data (docs/webhooks.md). One line, no trailing newline, in *ret
 * (malloc'ed, the caller frees). Returns 0, -EINVAL (an invalid event type), -ENOMEM.
 */
int webhook_event_to_json(const struct webhook_event *ev, const char *host, const char *id,
                          char **ret);

/*
 * Format a wall-clock time as RFC 3339 UTC with milliseconds, "2024-05-01T12:00:00.123Z",
 * into buf (at least 25 bytes). Returns buf.
 */
char *webhook_format_time(uint64_t realtime_usec, char *buf, size_t size);

/*
 * The delay a Retry-After header value asks for: delta-seconds ("120") or an HTTP-date
 * ("Wed, 21 Oct 2015 07:28:00 GMT", measured from now_realtime_usec; a date in the past is
 * 0). Returns 0 with *ret_usec, or -EINVAL for anything else.
 */
int webhook_parse_retry_after(const char *value, uint64_t now_realtime_usec, uint64_t *ret_usec);

/* ---- Scheduling ---- */

/* A small deterministic generator (splitmix64) for jitter; seed it once. */
struct webhook_rng {
        uint64_t state;
};

uint64_t webhook_rng_next(struct webhook_rng *rng);

/* What finally became of a queued message; the counters are indexed by it (metrics). */
enum webhook_result {
        WEBHOOK_DELIVERED,  /* a 2xx answer */
        WEBHOOK_FAILED,     /* deadline passed, or an answer that retrying cannot change */
        WEBHOOK_DROPPED,    /* pushed out of a full queue */
        WEBHOOK_SUPERSEDED, /* a newer level event of the same instance replaced it */
        WEBHOOK_DISABLED,   /* the endpoint answered 410 Gone: nothing more until reload */
        _WEBHOOK_RESULT_MAX,
        _WEBHOOK_RESULT_INVALID = -1,
};

/* "delivered", "failed", "dropped", "superseded", "disabled" (metric labels); NULL if invalid. */
const char *webhook_result_to_string(enum webhook_result r);

/* One event on its way to one endpoint. */
struct webhook_message {
        char *id;       /* webhook-id, the same on every attempt */
        char *instance; /* supersession key: the cgroup */
        enum event type;
        char *body;
        size_t body_size;
        uint64_t queued_usec;
        uint64_t deadline_usec;     /* give up at this time */
        uint64_t next_attempt_usec; /* not before this time */
        unsigned attempts;          /* started so far */
        bool in_flight;
        bool superseded; /* replaced while in flight: delivered or not, never retried */
};

/*
 * A message taking over id, instance and body (all malloc'ed, may be NULL on entry only
 * if allocation failed: then -ENOMEM and everything is freed). Returns 0 or -ENOMEM.
 */
int webhook_message_new(char *id, char *instance, enum event type, char *body, size_t body_size,
                        struct webhook_message **ret);
struct webhook_message *webhook_message_free(struct webhook_message *m);
DEFINE_FREE_FUNC(webhook_message)

struct webhook_queue_params {
        uint64_t timeout_usec;      /* per attempt */
        uint64_t deadline_usec;     /* from queueing to giving up */
        uint64_t backoff_base_usec; /* the first retry waits up to this (full jitter) */
        uint64_t backoff_max_usec;  /* no retry waits longer than this */
        size_t capacity;            /* messages held at most (>= 2) */
};

#define WEBHOOK_BACKOFF_BASE_USEC (250 * USEC_PER_MSEC)
#define WEBHOOK_BACKOFF_MAX_USEC  (8 * USEC_PER_SEC)
#define WEBHOOK_QUEUE_CAPACITY    32

/*
 * The messages of one endpoint, oldest first, with at most one attempt in flight: a
 * receiver sees one endpoint's events in order, and a slow receiver costs one connection.
 */
struct webhook_queue {
        struct webhook_queue_params params;
        struct webhook_message **messages;
        size_t n_messages;
        bool disabled;
        uint64_t attempts; /* attempts started, retries included */
        uint64_t counters[_WEBHOOK_RESULT_MAX];
};

/* Empty queue with params (zero fields take the defaults above and 2 s / 20 s). */
void webhook_queue_init(struct webhook_queue *q, const struct webhook_queue_params *params);

/*
 * New params (after a reload), defaults as for webhook_queue_init(). Messages already
 * queued keep their deadline; the timeout applies from the next attempt.
 */
void webhook_queue_set_params(struct webhook_queue *q, const struct webhook_queue_params *params);

/* Free every message; the counters and the disabled flag stay. */
void webhook_queue_clear(struct webhook_queue *q);

/*
 * Queue m (taken over in every case) at now_usec, due at once, to give up at now +
 * deadline. A level event (warn, degrade, critical, recovered) supersedes the level events
 * of the same instance still queued (counted), and marks one in flight so that it is not
 * retried. When the queue is full the oldest message not in flight and not critical goes
 * (else the oldest not in flight), counted as dropped. Returns 0, -ESHUTDOWN when the
 * endpoint is disabled (m is freed and counted as disabled), or -ENOMEM (m is freed and
 * counted as dropped).
 */
int webhook_queue_push(struct webhook_queue *q, struct webhook_message *m, uint64_t now_usec);

/*
 * The message to attempt now, or NULL: none is due, or one is in flight already. First
 * gives up (as failed) on the waiting messages whose deadline has passed. The message
 * returned is marked in flight and its attempt counted; it stays owned by the queue until
 * webhook_queue_complete().
 */
struct webhook_message *webhook_queue_next(struct webhook_queue *q, uint64_t now_usec);

/*
 * How long the attempt starting now at m may take: the endpoint's timeout, but never past
 * m's deadline (at least 1 ms).
 */
uint64_t webhook_queue_attempt_timeout(const struct webhook_queue *q,
                                       const struct webhook_message *m, uint64_t now_usec);

/* What one attempt came to, as the HTTP layer saw it. */
struct webhook_attempt {
        int error;   /* 0, or -errno (timeout, refused, …) */
        long status; /* HTTP status when an answer arrived (it decides, whatever error); 0 */
        bool has_retry_after;
        uint64_t retry_after_usec; /* the delay the receiver asked for */
};

/*
 * Settle the attempt in flight at m, at now_usec:
 *   2xx → delivered; 410 → disabled (the queue is emptied, the endpoint refuses new
 *   messages); other 3xx/4xx except 408 and 429 → failed; otherwise (transport error,
 *   408, 429, 5xx) a retry at now + Retry-After when given, else now + a full-jitter
 *   backoff, uniform in [0, min(max, base * 2^(attempts-1))] drawn from rng — unless that
 *   is at or past the deadline (→ failed) or m was superseded meanwhile (→ superseded).
 * Returns 1 when m is finished (counted, removed and freed; *ret_result set if not NULL)
 * or 0 when a retry is scheduled (m->next_attempt_usec).
 */
int webhook_queue_complete(struct webhook_queue *q, struct webhook_message *m,
                           const struct webhook_attempt *a, uint64_t now_usec,
                           struct webhook_rng *rng, enum webhook_result *ret_result);

/*
 * When the queue next needs attention without an answer arriving: the earliest deadline
 * among the messages not in flight and, when none is in flight, the earliest next-attempt
 * time; USEC_INFINITY if nothing waits.
 */
uint64_t webhook_queue_next_wakeup(const struct webhook_queue *q);

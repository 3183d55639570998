/* SPDX-License-Identifier: MIT */
/*
 * Runtime signals from the service itself (probe → decide): its goroutine count and Go heap
 * figures, polled at the policy's low rate (struct policy_runtime) from expvar's
 * /debug/vars or a Prometheus /metrics page, and turned into level conditions: a goroutine
 * ceiling, or a growth rate, crossed → the policy's level with reason "goroutines". A
 * goroutine leak shows there long before the cgroup nears its limit.
 *
 * What is read:
 *   expvar      the top-level object "memstats" (runtime.MemStats): HeapInuse, HeapAlloc,
 *               Sys, NumGC; and a top-level number "goroutines", which Go does not publish
 *               by itself: the service does (examples/leaky does, see policies/README.md).
 *   prometheus  go_goroutines, go_memstats_heap_inuse_bytes, go_memstats_heap_alloc_bytes,
 *               go_memstats_sys_bytes, go_gc_duration_seconds_count (client_golang's names);
 *               the first sample of each name, whatever its labels.
 *
 * The parsers and the condition are pure (buffers and times in, plain structs out); the
 * poller is the effect: one GET at a time through http.h on the loop, never blocking it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "memgov/decide.h"
#include "memgov/http.h"
#include "memgov/level.h"
#include "memgov/macro.h"
#include "memgov/policy.h"

/* The largest page accepted (a busy /metrics is some hundred KiB). */
#define SIGNALS_INPUT_MAX ((size_t)4 << 20)
/* Goroutine counts kept for the growth fit. */
#define SIGNALS_HISTORY 128
/* The growth is fitted over this much of the past, and at least 4 poll intervals ... */
#define SIGNALS_GROWTH_WINDOW_USEC (2 * USEC_PER_MINUTE)
/* ... from at least this many points spanning at least half of it. */
#define SIGNALS_GROWTH_MIN_POINTS 3
/* Figures older than this many poll intervals count for nothing. */
#define SIGNALS_STALE_INTERVALS 3

/* Which fields of struct runtime_figures were found. */
enum {
        RUNTIME_HAS_GOROUTINES = 1u << 0,
        RUNTIME_HAS_HEAP_INUSE = 1u << 1,
        RUNTIME_HAS_HEAP_ALLOC = 1u << 2,
        RUNTIME_HAS_SYS = 1u << 3,
        RUNTIME_HAS_NUM_GC = 1u << 4,
};

struct runtime_figures {
        unsigned has; /* RUNTIME_HAS_* */
        uint64_t goroutines;
        uint64_t heap_inuse_bytes;
        uint64_t heap_alloc_bytes;
        uint64_t sys_bytes; /* everything the Go runtime got from the OS */
        uint64_t num_gc;
};

/*
 * Parse an expvar /debug/vars document. Returns 0 with *ret filled (fields not found are
 * left out of has), -ENODATA (valid JSON, but none of the figures), -EINVAL (not a JSON
 * object), -EFBIG (len > SIGNALS_INPUT_MAX), -ENOMEM. Values that are not whole numbers
 * >= 0 count as absent.
 */
int signals_parse_expvar(const char *buf, size_t len, struct runtime_figures *ret);

/*
 * Parse a Prometheus text exposition (version 0.0.4, or OpenMetrics text). Comments, other
 * metrics and lines that do not parse are skipped; a value must be a number from 0 to 9.2e18
 * (rounded to a whole number). Returns 0 with *ret, -ENODATA (none of the figures),
 * -EINVAL (a NUL byte: not text), -EFBIG.
 */
int signals_parse_prometheus(const char *buf, size_t len, struct runtime_figures *ret);

/* The parser of format f. */
int signals_parse(enum runtime_format f, const char *buf, size_t len, struct runtime_figures *ret);

/* ---- the condition (pure) ----------------------------------------------------------- */

/* What has been seen of one instance's service. Fixed size, no pointers. */
struct signals_state {
        bool has_last;
        uint64_t last_usec; /* when the last figures arrived */
        struct runtime_figures last;
        /* goroutine counts, oldest at head */
        uint64_t t_usec[SIGNALS_HISTORY];
        uint64_t goroutines[SIGNALS_HISTORY];
        size_t head, n;
};

/* What the figures say now against the policy. */
struct signals_verdict {
        bool fresh; /* figures not older than SIGNALS_STALE_INTERVALS intervals */
        bool has_goroutines;
        uint64_t goroutines;
        bool has_rate;             /* enough history for the growth fit */
        double goroutines_per_min; /* least-squares slope over the growth window */
        bool over_max;             /* goroutines >= goroutines_max (set) */
        bool over_growth;          /* goroutines_per_min >= goroutines_growth_per_min (set) */
        enum level level;          /* rt->level when over_max or over_growth, else LEVEL_OK */
};

void signals_init(struct signals_state *st);

/* New figures at now_usec (in time order; an older time is ignored). */
void signals_observe(struct signals_state *st, uint64_t now_usec, const struct runtime_figures *f);

/* The verdict at now_usec under rt (a policy without runtime.url: never a level). */
void signals_evaluate(const struct signals_state *st, const struct policy_runtime *rt,
                      uint64_t now_usec, struct signals_verdict *ret);

/*
 * Add the verdict's condition to what decide_update_extra() takes: the bit of
 * DECIDE_REASON_GOROUTINES at v->level, nothing at LEVEL_OK. extra is not cleared first.
 */
void signals_decide_extra(const struct signals_verdict *v, struct decide_extra *extra);

/* ---- the poller (effect) ------------------------------------------------------------ */

struct signals_poller;

/*
 * Called on the loop after each poll: error 0 with the figures (already observed into the
 * poller's state), or -errno why none came (-ETIMEDOUT, -ECONNREFUSED, -EFBIG, -EBADMSG
 * for an HTTP status other than 200, or a parser's error), with f NULL. May be NULL.
 */
typedef void (*signals_poll_fn)(struct signals_poller *p, int error,
                                const struct runtime_figures *f, void *userdata);

/*
 * Poll rt->url (copied) every rt->interval_usec on event, through http (borrowed: it must
 * outlive the poller): the first poll one interval from now, each GET bounded by
 * rt->timeout_usec and SIGNALS_INPUT_MAX, one at a time. Returns 0 with *ret, -EINVAL
 * (rt->url NULL), -ENOMEM, or an sd-event error.
 */
int signals_poller_new(sd_event *event, struct http_client *http, const struct policy_runtime *rt,
                       signals_poll_fn cb, void *userdata, struct signals_poller **ret);

/*
 * After a reload: the new settings (rt->url must be set). The history is kept when the URL
 * and format are the same, else forgotten. Returns 0, -EINVAL, -ENOMEM.
 */
int signals_poller_set_policy(struct signals_poller *p, const struct policy_runtime *rt);

/* The request in flight is cancelled, the timer removed. Accepts NULL; returns NULL. */
struct signals_poller *signals_poller_free(struct signals_poller *p);
DEFINE_FREE_FUNC(signals_poller)

/* What the poller has seen, for signals_evaluate(). */
const struct signals_state *signals_poller_state(const struct signals_poller *p);

/* Polls answered with figures, and polls that failed, since the poller was made. */
uint64_t signals_poller_n_ok(const struct signals_poller *p);
uint64_t signals_poller_n_failed(const struct signals_poller *p);

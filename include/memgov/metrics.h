/* SPDX-License-Identifier: MIT */
/*
 * Export: the catalogue of memgov's metric families — names, types, labels and help
 * texts in one table, so that the /metrics handler, docs/operations.md and the Grafana
 * dashboard cannot drift apart (tests/unit/test_metrics.c compares them). The names are a
 * contract (DESIGN.md §3 Metrics): prefix memgov_, base units, counters end in _total.
 *
 * The /metrics handler writes each family with metrics_family(), then its samples:
 *
 *   metrics_family(&p, METRIC_LEVEL);
 *   for (size_t k = 0; k < d->n_instances; k++)
 *           promtext_sample(&p, PROMTEXT_LABELS({"service", …}, {"cgroup", …}), level);
 */
#pragma once

#include "memgov/promtext.h"

enum metric_id {
        /* The daemon. */
        METRIC_BUILD_INFO, /* {version}: always 1 */
        METRIC_INSTANCES,
        METRIC_POLICIES,
        METRIC_RELOADS_TOTAL, /* {result="ok"|"failed"} */
        /* Each governed cgroup: {service, cgroup}. */
        METRIC_MEMORY_CURRENT_BYTES,
        METRIC_MEMORY_ANON_BYTES,
        METRIC_MEMORY_FILE_BYTES,
        METRIC_MEMORY_MAX_BYTES,    /* absent when memory.max is "max" */
        METRIC_MEMORY_HIGH_BYTES,   /* absent when memory.high is "max" */
        METRIC_MEMORY_LIMIT_BYTES,  /* the effective limit: smallest memory.max up the tree */
        METRIC_MEMORY_EVENTS_TOTAL, /* {service, cgroup, event}: the kernel's memory.events */
        METRIC_PRESSURE_SOME_SECONDS_TOTAL,
        METRIC_PRESSURE_FULL_SECONDS_TOTAL,
        METRIC_PRESSURE_SOME_AVG10_RATIO, /* the kernel's avg10 of memory.pressure, 0..1 */
        METRIC_PRESSURE_FULL_AVG10_RATIO,
        METRIC_FORECAST_ETA_SECONDS,       /* absent when no OOM is in sight */
        METRIC_FORECAST_ETA_LOWER_SECONDS, /* absent when no OOM is in sight */
        METRIC_FORECAST_ETA_UPPER_SECONDS, /* absent when no OOM is in sight */
        METRIC_FORECAST_SLOPE_BYTES_PER_SECOND,
        METRIC_LEVEL,
        METRIC_SAMPLES_TOTAL,
        METRIC_EVENTS_TOTAL,           /* {service, cgroup, event}: memgov's events (level.h) */
        METRIC_PROFILE_CAPTURES_TOTAL, /* {service, cgroup, kind, result} */
        /* The service's runtime figures (policy .runtime), while they are fresh. */
        METRIC_RUNTIME_GOROUTINES,
        METRIC_RUNTIME_HEAP_INUSE_BYTES,
        METRIC_RUNTIME_HEAP_ALLOC_BYTES,
        METRIC_RUNTIME_SYS_BYTES,
        METRIC_RUNTIME_GC_CYCLES_TOTAL,
        METRIC_RUNTIME_POLLS_TOTAL, /* {service, cgroup, result="ok"|"failed"} */
        /* Each service with webhooks: {service, result} (webhook_result_to_string()). */
        METRIC_WEBHOOK_DELIVERIES_TOTAL,
        _METRIC_MAX,
        _METRIC_INVALID = -1,
};

struct metric_def {
        const char *name;
        enum promtext_type type;
        const char *labels; /* label names, comma-separated ("service,cgroup"); "" for none */
        const char *help;
};

/* The definition of id; NULL for an invalid id. Static data. */
const struct metric_def *metric_get(enum metric_id id);

/* The id of a family name, or _METRIC_INVALID. */
enum metric_id metric_from_name(const char *name);

/* promtext_family() with id's name, type and help. Returns as promtext_family(). */
int metrics_family(struct promtext *p, enum metric_id id);

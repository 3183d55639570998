/* SPDX-License-Identifier: MIT */
/* Export: the catalogue of memgov's metric families, written by the /metrics handler. */
#include <string.h>

#include "memgov/metrics.h"

#define SC "service,cgroup"

static const struct metric_def metric_defs[_METRIC_MAX] = {
        [METRIC_BUILD_INFO] = {"memgov_build_info", PROMTEXT_GAUGE, "version",
                               "Always 1; the version label says which memgovd runs."},
        [METRIC_INSTANCES] = {"memgov_instances", PROMTEXT_GAUGE, "",
                              "Cgroups governed now (instances of a policy)."},
        [METRIC_POLICIES] = {"memgov_policies", PROMTEXT_GAUGE, "", "Policies loaded."},
        [METRIC_RELOADS_TOTAL] = {"memgov_reloads_total", PROMTEXT_COUNTER, "result",
                                  "Reloads of the config and policies, by result (ok, failed)."},
        [METRIC_MEMORY_CURRENT_BYTES] = {"memgov_memory_current_bytes", PROMTEXT_GAUGE, SC,
                                         "memory.current of the cgroup at the last sample."},
        [METRIC_MEMORY_ANON_BYTES] = {"memgov_memory_anon_bytes", PROMTEXT_GAUGE, SC,
                                      "Anonymous memory (memory.stat anon) at the last sample."},
        [METRIC_MEMORY_FILE_BYTES] = {"memgov_memory_file_bytes", PROMTEXT_GAUGE, SC,
                                      "Page cache (memory.stat file) at the last sample."},
        [METRIC_MEMORY_MAX_BYTES] = {"memgov_memory_max_bytes", PROMTEXT_GAUGE, SC,
                                     "memory.max of the cgroup; absent when it is max."},
        [METRIC_MEMORY_HIGH_BYTES] = {"memgov_memory_high_bytes", PROMTEXT_GAUGE, SC,
                                      "memory.high of the cgroup; absent when it is max."},
        [METRIC_MEMORY_LIMIT_BYTES] = {"memgov_memory_limit_bytes", PROMTEXT_GAUGE, SC,
                                       "The limit the OOM killer enforces: the smallest "
                                       "memory.max up the tree, else the machine's memory."},
        [METRIC_MEMORY_EVENTS_TOTAL] = {"memgov_memory_events_total", PROMTEXT_COUNTER, SC ",event",
                                        "The kernel's memory.events counters (low, high, max, "
                                        "oom, oom_kill)."},
        [METRIC_PRESSURE_SOME_SECONDS_TOTAL] = {"memgov_pressure_some_seconds_total",
                                                PROMTEXT_COUNTER, SC,
                                                "Time some tasks stalled on memory "
                                                "(memory.pressure some total)."},
        [METRIC_PRESSURE_FULL_SECONDS_TOTAL] = {"memgov_pressure_full_seconds_total",
                                                PROMTEXT_COUNTER, SC,
                                                "Time all tasks stalled on memory "
                                                "(memory.pressure full total)."},
        [METRIC_PRESSURE_SOME_AVG10_RATIO] = {"memgov_pressure_some_avg10_ratio", PROMTEXT_GAUGE,
                                              SC,
                                              "Share of the last 10 s in which some tasks "
                                              "stalled on memory (memory.pressure some avg10 "
                                              "/ 100)."},
        [METRIC_PRESSURE_FULL_AVG10_RATIO] = {"memgov_pressure_full_avg10_ratio", PROMTEXT_GAUGE,
                                              SC,
                                              "Share of the last 10 s in which all tasks "
                                              "stalled on memory (memory.pressure full avg10 "
                                              "/ 100)."},
        [METRIC_FORECAST_ETA_SECONDS] = {"memgov_forecast_eta_seconds", PROMTEXT_GAUGE, SC,
                                         "Forecast time until the cgroup reaches its limit; "
                                         "absent when no OOM is in sight."},
        [METRIC_FORECAST_ETA_LOWER_SECONDS] = {"memgov_forecast_eta_lower_seconds", PROMTEXT_GAUGE,
                                               SC,
                                               "Lower bound of the forecast ETA (the one levels "
                                               "use); absent when no OOM is in sight."},
        [METRIC_FORECAST_ETA_UPPER_SECONDS] = {"memgov_forecast_eta_upper_seconds", PROMTEXT_GAUGE,
                                               SC,
                                               "Upper bound of the forecast ETA; absent when no "
                                               "OOM is in sight."},
        [METRIC_FORECAST_SLOPE_BYTES_PER_SECOND] = {"memgov_forecast_slope_bytes_per_second",
                                                    PROMTEXT_GAUGE, SC,
                                                    "Forecast growth of the memory that cannot "
                                                    "be reclaimed."},
        [METRIC_LEVEL] = {"memgov_level", PROMTEXT_GAUGE, SC,
                          "Level: 0 ok, 1 warn, 2 degrade, 3 critical."},
        [METRIC_SAMPLES_TOTAL] = {"memgov_samples_total", PROMTEXT_COUNTER, SC,
                                  "Samples taken of the cgroup."},
        [METRIC_EVENTS_TOTAL] = {"memgov_events_total", PROMTEXT_COUNTER, SC ",event",
                                 "memgov events (warn, degrade, critical, recovered, oom_kill, "
                                 "profile_captured, livelock)."},
        [METRIC_PROFILE_CAPTURES_TOTAL] = {"memgov_profile_captures_total", PROMTEXT_COUNTER,
                                           SC ",kind,result",
                                           "Profile captures and collector runs, by kind and "
                                           "result."},
        [METRIC_RUNTIME_GOROUTINES] = {"memgov_runtime_goroutines", PROMTEXT_GAUGE, SC,
                                       "Goroutines of the service, as its runtime page said at "
                                       "the last poll; absent when stale."},
        [METRIC_RUNTIME_HEAP_INUSE_BYTES] = {"memgov_runtime_heap_inuse_bytes", PROMTEXT_GAUGE, SC,
                                             "Go heap in use (HeapInuse) at the last poll; absent "
                                             "when stale."},
        [METRIC_RUNTIME_HEAP_ALLOC_BYTES] = {"memgov_runtime_heap_alloc_bytes", PROMTEXT_GAUGE, SC,
                                             "Go heap allocated (HeapAlloc) at the last poll; "
                                             "absent when stale."},
        [METRIC_RUNTIME_SYS_BYTES] = {"memgov_runtime_sys_bytes", PROMTEXT_GAUGE, SC,
                                      "Memory the Go runtime got from the OS (Sys) at the last "
                                      "poll; absent when stale."},
        [METRIC_RUNTIME_GC_CYCLES_TOTAL] = {"memgov_runtime_gc_cycles_total", PROMTEXT_COUNTER, SC,
                                            "Completed GC cycles of the service (NumGC) at the "
                                            "last poll; absent when stale."},
        [METRIC_RUNTIME_POLLS_TOTAL] = {"memgov_runtime_polls_total", PROMTEXT_COUNTER,
                                        SC ",result",
                                        "Polls of the service's runtime page, by result (ok, "
                                        "failed)."},
        [METRIC_WEBHOOK_DELIVERIES_TOTAL] = {"memgov_webhook_deliveries_total", PROMTEXT_COUNTER,
                                             "service,result",
                                             "Webhook messages by outcome (delivered, failed, "
                                             "dropped, superseded, disabled)."},
};

const struct metric_def *metric_get(enum metric_id id)
{
        if (id < 0 || id >= _METRIC_MAX)
                return NULL;
        return &metric_defs[id];
}

enum metric_id metric_from_name(const char *name)
{
        if (!name)
                return _METRIC_INVALID;
        for (size_t i = 0; i < ELEMENTSOF(metric_defs); i++)
                if (strcmp(metric_defs[i].name, name) == 0)
                        return (enum metric_id)i;
        return _METRIC_INVALID;
}

int metrics_family(struct promtext *p, enum metric_id id)
{
        const struct metric_def *m = metric_get(id);

        if (!m) {
                if (p->error == 0)
                        p->error = -EINVAL;
                return p->error;
        }
        return promtext_family(p, m->name, m->type, m->help);
}

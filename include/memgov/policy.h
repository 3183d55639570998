/* SPDX-License-Identifier: MIT */
/*
 * Policies and the daemon config: JSON in (json-c, strict), validated plain structs out.
 * Every other module reads these structs; json-c objects never leave governor/policy.c.
 * The JSON reference is policies/README.md and the schema policies/policy.schema.json.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "memgov/diag.h"
#include "memgov/level.h"
#include "memgov/macro.h"

/* A size in a policy: absolute bytes, or a share of the instance's effective limit. */
struct policy_size {
        uint64_t bytes;    /* used when permille == 0; 0 with permille == 0 means unset */
        uint32_t permille; /* 1..1000: share of the effective limit */
};

/* Resolve a policy size against an effective limit (bytes, or limit * permille / 1000). */
uint64_t policy_size_resolve(const struct policy_size *s, uint64_t limit_bytes);

/*
 * The conditions that enter one level; any one that holds enters it. A zero field is
 * unset, except the PSI and rate fields, which have has_* flags.
 */
struct policy_level {
        uint64_t eta_usec;       /* forecast ETA lower bound <= this */
        uint32_t usage_permille; /* current / effective limit >= this */
        bool has_psi_some_avg10;
        double psi_some_avg10_pct; /* PSI some avg10 >= this (percent) */
        bool has_psi_full_avg10;
        double psi_full_avg10_pct;
        bool has_high_rate;
        double high_events_per_s; /* memory.events "high" increase rate >= this */
        bool has_max_rate;
        double max_events_per_s; /* memory.events "max" increase rate >= this */
};

enum memory_high_mode {
        MEMORY_HIGH_OFF,
        MEMORY_HIGH_FIXED,
        MEMORY_HIGH_GUARD,
        _MEMORY_HIGH_MODE_MAX,
        _MEMORY_HIGH_MODE_INVALID = -1,
};

enum actuate_backend {
        ACTUATE_BACKEND_AUTO,
        ACTUATE_BACKEND_CGROUPFS,
        ACTUATE_BACKEND_SYSTEMD,
        _ACTUATE_BACKEND_MAX,
        _ACTUATE_BACKEND_INVALID = -1,
};

struct policy_memory_high {
        enum memory_high_mode mode;   /* default GUARD */
        enum actuate_backend backend; /* default AUTO */
        struct policy_size fixed;     /* mode FIXED: the value */
        struct policy_size min;       /* floor; default 10% of the limit */
        uint64_t budget_usec;         /* guard: time to leave for capture+degrade; default 2m */
        uint64_t min_interval_usec;   /* rate limit between changes; default 5s */
        double livelock_psi_full_avg10_pct; /* default 60 */
        uint64_t livelock_duration_usec;    /* default 10s */
        bool reclaim; /* proactive memory.reclaim of page cache; default false */
};

enum pprof_kind {
        PPROF_HEAP,
        PPROF_ALLOCS,
        PPROF_GOROUTINE,
        PPROF_THREADCREATE,
        PPROF_BLOCK,
        PPROF_MUTEX,
        PPROF_PROFILE, /* CPU profile, profile?seconds=N */
        _PPROF_KIND_MAX,
        _PPROF_KIND_INVALID = -1,
};

struct policy_pprof {
        char *url;           /* base URL, e.g. http://127.0.0.1:6060/debug/pprof; NULL: no pprof */
        unsigned on_mask;    /* EVENT_MASK()s that trigger a capture; default warn|critical */
        unsigned kinds_mask; /* 1u << PPROF_*; default heap|goroutine|allocs */
        uint64_t timeout_usec;  /* per request; default 10s */
        uint64_t max_bytes;     /* per response; default 64M */
        uint64_t cooldown_usec; /* per kind; default 60s */
        uint32_t max_per_hour;  /* default 20 */
        uint64_t cpu_seconds;   /* for PPROF_PROFILE; default 10 */
};

/* How a service publishes its runtime figures (include/memgov/signals.h parses both). */
enum runtime_format {
        RUNTIME_FORMAT_EXPVAR,     /* "expvar": Go's expvar /debug/vars JSON (memstats) */
        RUNTIME_FORMAT_PROMETHEUS, /* "prometheus": the text exposition format (/metrics) */
        _RUNTIME_FORMAT_MAX,
        _RUNTIME_FORMAT_INVALID = -1,
};

/*
 * The service's own figures, polled at a low rate: goroutines and Go heap. A goroutine
 * ceiling or growth rate crossed enters level (reason "goroutines").
 */
struct policy_runtime {
        char *url;                          /* NULL: no runtime figures are polled */
        enum runtime_format format;         /* default: prometheus when the URL's path ends in
                                             * "/metrics", else expvar */
        uint64_t interval_usec;             /* between polls; default 10s */
        uint64_t timeout_usec;              /* per request; default 2s, at most the interval */
        uint64_t goroutines_max;            /* goroutines >= this; 0: no ceiling */
        uint64_t goroutines_growth_per_min; /* growth >= this per minute; 0: no such condition */
        enum level level;                   /* the level they enter; default warn */
};

struct policy_collector {
        /* NULL-terminated, owned; placeholders {pid} {pids} {cgroup} {dir} {service} */
        char **argv;
        unsigned on_mask;      /* EVENT_MASK()s */
        uint64_t timeout_usec; /* default 60s */
        bool per_process;      /* run once per pid in cgroup.procs; default: once if no {pid} */
};

struct policy_webhook {
        char *url;
        char *secret_file;      /* NULL: unsigned (allowed only for http://127.0.0.0/8 and [::1]) */
        unsigned events_mask;   /* EVENT_MASK()s; default warn|degrade|critical|recovered */
        uint64_t timeout_usec;  /* per attempt; default 2s */
        uint64_t deadline_usec; /* give up after; default 20s */
};

struct policy {
        char *path;    /* the file it was read from (for messages) */
        char *service; /* name, [A-Za-z0-9_.-]+; default: file name without .json */
        char *cgroup;  /* path or glob relative to the cgroup root, no leading '/' */
        uint64_t sample_interval_usec;  /* default 1s */
        uint64_t forecast_window_usec;  /* default 5m */
        uint64_t forecast_horizon_usec; /* default 30m; also the false-alarm horizon */
        /* [LEVEL_WARN..LEVEL_CRITICAL]; [LEVEL_OK] unused */
        struct policy_level levels[_LEVEL_MAX];
        uint64_t hold_usec; /* hysteresis: all conditions clear this long to leave; default 60s */
        struct policy_memory_high memory_high;
        struct policy_pprof pprof;
        struct policy_runtime runtime;
        struct policy_collector *collectors;
        size_t n_collectors;
        struct policy_webhook *webhooks;
        size_t n_webhooks;
};

struct policy_set {
        struct policy **policies;
        size_t n_policies;
};

/* The daemon's own config file (memgovd --config FILE), JSON. */
struct memgov_config {
        char *policy_dir;  /* default /etc/memgov/policies.d */
        char *state_dir;   /* default /var/lib/memgov */
        char *runtime_dir; /* default /run/memgov (status socket) */
        char *cgroup_root; /* NULL: the cgroup2 mount found in /proc/self/mountinfo */
        char *listen; /* optional TCP address "127.0.0.1:9464" for /metrics; NULL: socket only */
        uint64_t rescan_interval_usec; /* safety-net rescan for instances; default 30s */
        bool dry_run;
};

/*
 * Parse and validate one policy file. Every problem is added to diag as
 * "FILE: .json.path: message" (and the function goes on to find the others); returns 0
 * with *ret set, or -EINVAL (problems in diag), -ENOENT/-EACCES/-EISDIR/-EFBIG (file),
 * -ENOMEM. *ret is owned by the caller (policy_free).
 */
int policy_load_file(const char *path, struct diag *diag, struct policy **ret);

/* Same, from a buffer; name is used as FILE in messages and for the default service. */
int policy_load_buffer(const char *name, const char *buf, size_t len, struct diag *diag,
                       struct policy **ret);

struct policy *policy_free(struct policy *p);
DEFINE_FREE_FUNC(policy)

/*
 * Load every "*.json" in dir (sorted by name; other names ignored). All or nothing: any
 * invalid file, or two policies with the same service name, fails the whole set with
 * -EINVAL and the problems in diag. An empty directory is a valid empty set.
 */
int policy_set_load_dir(const char *dir, struct diag *diag, struct policy_set **ret);

struct policy_set *policy_set_free(struct policy_set *s);

/*
 * Report every pair of policies[0..n) that shares a service name or a cgroup string, as
 * "FILE: .service: …" / "FILE: .cgroup: …" naming both files (policies read from the same
 * path are not compared). The check policy_set_load_dir() makes; memgovctl check-policy
 * makes it over the files it is given. Returns the number of clashes, or -ENOMEM.
 */
int policy_check_unique(struct policy *const *policies, size_t n, struct diag *diag);
DEFINE_FREE_FUNC(policy_set)

/*
 * Parse the daemon config; path NULL gives the defaults. Problems go to diag as for
 * policies. ret is filled only on success; free its strings with memgov_config_clear().
 */
int memgov_config_load(const char *path, struct diag *diag, struct memgov_config *ret);
/* Same, from a buffer; name is used as FILE in messages. */
int memgov_config_load_buffer(const char *name, const char *buf, size_t len, struct diag *diag,
                              struct memgov_config *ret);
void memgov_config_clear(struct memgov_config *c);

/*
 * The keys the validator accepts in the object at json_path: "." (the top level),
 * ".forecast", ".levels", ".levels.warn" (and ".levels.degrade", ".levels.critical"),
 * ".memory_high", ".pprof", ".runtime", ".collectors[]" and ".webhooks[]" (each element). A static
 * NULL-terminated array, or NULL for any other path. The schema test compares these with
 * policies/policy.schema.json, so that the two cannot drift apart.
 */
const char *const *policy_known_keys(const char *json_path);
/* The same for the daemon config: "." only. */
const char *const *memgov_config_known_keys(const char *json_path);

const char *memory_high_mode_to_string(enum memory_high_mode m);
const char *actuate_backend_to_string(enum actuate_backend b);
const char *pprof_kind_to_string(enum pprof_kind k); /* "heap", "allocs", "goroutine", … */
enum pprof_kind pprof_kind_from_string(const char *s);
const char *runtime_format_to_string(enum runtime_format f); /* "expvar", "prometheus" */

/* SPDX-License-Identifier: MIT */
/*
 * Export: the status document of GET /v1/status (docs/status-api.md is its reference).
 * The daemon fills plain structs and status_write_json() writes the JSON; memgovctl reads
 * it back with status_parse_json() and prints status_format_table(). One module for both
 * sides, so that the writer and the reader cannot disagree about the schema.
 *
 * Conventions of the structs: a uint64_t that may be unknown uses STATUS_NONE (UINT64_MAX,
 * the same value as CGROUP_LIMIT_MAX and USEC_INFINITY), written as JSON null; a double
 * that may be unknown uses NAN; a string that may be absent is NULL. Durations are ages
 * ("how long ago") in microseconds relative to the moment the document was made, so
 * that no clock is shared between the daemon and its reader.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "memgov/level.h"
#include "memgov/macro.h"

/* The schema version this code writes; a reader accepts documents with this major. */
#define STATUS_SCHEMA 1

/* An unknown value, or a limit of "max" (memory.max, memory.high): JSON null. */
#define STATUS_NONE UINT64_MAX

#define STATUS_CONTENT_TYPE "application/json"

struct status_daemon {
        const char *version;  /* MEMGOV_VERSION */
        pid_t pid;            /* 0: unknown */
        uint64_t uptime_usec; /* STATUS_NONE: unknown */
        bool dry_run;
        const char *cgroup_root;
        const char *policy_dir;
        const char *state_dir;
        uint64_t n_policies;
        uint64_t n_reloads; /* successful reloads since the start */
};

/* The most recent event of an instance (level entries, recovered, oom_kill, …). */
struct status_event {
        enum event event; /* _EVENT_INVALID: none yet (the whole object is null) */
        uint64_t age_usec;
};

/* The most recent profile capture or collector run. */
struct status_capture {
        const char *kind;   /* "heap", "goroutine", …, or a collector's argv[0]; NULL: none */
        const char *result; /* "ok", "failed", … as in memgov_profile_captures_total */
        const char *path;   /* the dump directory; NULL when nothing was written */
        uint64_t age_usec;
};

/* The most recent webhook delivery outcome (what became of the message, not its queueing). */
struct status_delivery {
        enum event event;     /* what was sent; _EVENT_INVALID: none yet (null) */
        const char *endpoint; /* the receiver's URL; NULL: unknown */
        const char *result;   /* webhook_result_to_string() */
        long http_status;     /* of the last attempt; 0 when no response came */
        uint64_t attempts;    /* HTTP attempts made for it; STATUS_NONE: unknown */
        uint64_t age_usec;    /* since the outcome was known */
};

struct status_instance {
        const char *service;
        const char *cgroup; /* relative to the cgroup root */
        enum level level;
        uint64_t level_age_usec; /* in this level since; STATUS_NONE: unknown */
        uint64_t n_samples;
        uint64_t last_sample_age_usec; /* STATUS_NONE: no good sample yet */

        /* The last sample; STATUS_NONE where unknown, or where the file said "max". */
        uint64_t current_bytes;
        uint64_t anon_bytes;
        uint64_t file_bytes;
        uint64_t max_bytes;
        uint64_t high_bytes;
        uint64_t limit_bytes;  /* the effective limit the OOM killer enforces */
        double psi_some_avg10; /* percent; NAN: unknown */
        double psi_full_avg10;

        /* The forecast. ETAs STATUS_NONE: no OOM in sight (or not known yet). */
        bool forecast_known; /* false while warming up */
        uint64_t eta_usec;
        uint64_t eta_lower_usec;
        uint64_t eta_upper_usec;
        double slope_bytes_per_sec; /* NAN: unknown */

        /* memory.high as memgov handles it. */
        const char *memory_high_mode;   /* "off", "fixed", "guard"; NULL: unknown */
        uint64_t memory_high_set_bytes; /* what memgov wrote last; STATUS_NONE: untouched */

        struct status_event last_event;
        struct status_capture last_capture;
        struct status_delivery last_delivery;
};

/*
 * A parsed document. Every string is owned by the document (the const in the structs is
 * for the writer's sake); status_doc_free() frees them.
 */
struct status_doc {
        unsigned schema;
        struct status_daemon daemon;
        struct status_instance *instances;
        size_t n_instances;
};

/*
 * An instance with nothing known: every optional field STATUS_NONE / NAN / NULL /
 * _EVENT_INVALID, level ok, no samples. The daemon starts from this and fills what it has.
 */
void status_instance_init(struct status_instance *i);

/*
 * Write the document as one JSON object and a newline to out. Returns 0, or -EINVAL (an
 * instance without service or cgroup, an invalid level), -EIO (writing failed).
 */
int status_write_json(FILE *out, const struct status_daemon *d, const struct status_instance *v,
                      size_t n);

/*
 * Parse a document (what GET /v1/status returned). Unknown keys are ignored, so that a
 * newer daemon can add fields; a missing optional field reads as unknown. Returns 0 with
 * *ret (status_doc_free()), -EINVAL with a message in *ret_error (malloc'ed; may be NULL if
 * ret_error is NULL) when it is not such a document or its schema major is not
 * STATUS_SCHEMA, -ENOMEM.
 */
int status_parse_json(const char *buf, size_t len, struct status_doc **ret, char **ret_error);

struct status_doc *status_doc_free(struct status_doc *doc);
DEFINE_FREE_FUNC(status_doc)

/*
 * The answer object of the API's POST routes and of every error: {"ok":true,"message":M}
 * or {"ok":false,"error":M}, and a newline. text may be NULL (written as ""). Returns 0 or
 * -EIO.
 */
int status_write_message(FILE *out, bool ok, const char *text);

/*
 * Read such an answer: *ret_ok and the text (malloc'ed, "" when absent). Returns 0, or
 * -EINVAL when buf is not such an object (nothing is set), -ENOMEM.
 */
int status_parse_message(const char *buf, size_t len, bool *ret_ok, char **ret_text);

/*
 * The table memgovctl status prints: a header line about the daemon, then one row per
 * instance: SERVICE CGROUP USAGE/LIMIT ETA LEVEL MEMORY.HIGH LAST EVENT. Cgroup paths
 * longer than 48 characters are shortened in the middle unless full is set. Returns 0 or
 * -EIO.
 */
int status_format_table(FILE *out, const struct status_doc *doc, bool full);

/*
 * Formatting helpers, exposed for tests: bytes as "812.3M", "1.0G", "512B" (IEC multiples,
 * one decimal from K up); a duration as "45s", "8m12s", "2h03m", "3d04h", "0s" for less
 * than a second. Both write into buf and return it; STATUS_NONE gives "-".
 */
char *status_format_bytes(uint64_t bytes, char buf[static 16]);
char *status_format_duration(uint64_t usec, char buf[static 16]);

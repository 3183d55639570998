/* SPDX-License-Identifier: MIT */
/*
 * The record effect's incidents: what memgovd did for one governed cgroup, kept in a small
 * bounded log, and the bundle written into the dump store (include/memgov/dumps.h) when the
 * kernel OOM-kills in it (or it enters critical), so that an operator finds in one place
 * what happened and why:
 *
 *   <state-dir>/dumps/<service>/<UTC time>-incident-oom_kill/   (or -incident-critical)
 *       trace.csv        the recent samples (the instance's ring) as a trace CSV that
 *                        `memgovctl replay` and `memgovctl report` accept
 *       decisions.jsonl  the decision log, one JSON object per line (see below)
 *       captures.json    the captures of the log: their dumps, suspects.json, top suspects
 *       report.html      self-contained (no script, no external resource): the chart of
 *                        memory against memory.high and memory.max with the level bands,
 *                        a marker per action, and the suspects table (include/memgov/report.h)
 *       manifest.json    as every dump has
 *
 * decisions.jsonl, one line per event of the log, oldest first; t_s is seconds on the
 * clock of trace.csv (0 = its first row; negative: before it), keys absent when unknown:
 *   {"t_s":610.0,"action":"level","level":"warn","from":"ok","reason":"eta","eta_s":231.0}
 *   {"t_s":760.5,"action":"memory_high","level":"degrade","bytes":943718400,"reason":"guard",
 *    "detail":"…"}                                             ("bytes":"max" when removed)
 *   {"t_s":611.2,"action":"capture","level":"warn","event":"warn","reason":"base",
 *    "dir":"/var/lib/memgov/dumps/svc/20240501T123456Z-warn","failed":false,
 *    "suspects":[{"kind":"heap","function":"main.leakIntoGlobalMap","file":"…/leak.go",
 *                 "line":76,"current":25165824,"growth":25165824,"paired":true}]}
 *   {"t_s":610.0,"action":"webhook","level":"warn","event":"warn","reason":"queued",
 *    "detail":"http://127.0.0.1:8080/memgov","failed":false}
 *   {"t_s":845.5,"action":"oom_kill","level":"critical","count":1}
 *
 * The log and the text writers are pure (no clock, no I/O but the caller's FILE); only
 * incident_write() touches the file system, through the dump store.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "memgov/dumps.h"
#include "memgov/level.h"
#include "memgov/macro.h"
#include "memgov/policy.h"
#include "memgov/pprof.h"
#include "memgov/sample.h"

/* Events an instance keeps by default (incident_log_init() with cap 0). */
#define INCIDENT_LOG_DEFAULT_CAP 256
/* Suspects kept per capture event (the best first). */
#define INCIDENT_SUSPECTS_MAX 10

enum incident_action {
        INCIDENT_LEVEL,       /* "level": the level changed */
        INCIDENT_MEMORY_HIGH, /* "memory_high": memory.high was set */
        INCIDENT_CAPTURE,     /* "capture": a capture (profiles, collectors) completed */
        INCIDENT_WEBHOOK,     /* "webhook": a webhook was queued, delivered or given up */
        INCIDENT_OOM_KILL,    /* "oom_kill": the kernel OOM-killed in the cgroup */
        _INCIDENT_ACTION_MAX,
        _INCIDENT_ACTION_INVALID = -1,
};

/* One leak suspect as a capture named it (a copy of the fields of struct suspect). */
struct incident_suspect {
        enum suspect_kind kind;
        char *function; /* "main.leakIntoGlobalMap" */
        char *file;     /* "memgov.example/leaky/leak.go", or "" */
        uint32_t line;
        uint64_t current; /* bytes (heap) or goroutines at the capture */
        int64_t growth;   /* since the base capture; == current when not paired */
        bool paired;      /* diffed against a base */
};

/* One entry of the log. Strings are owned by the log (copies). */
struct incident_event {
        enum incident_action action;
        uint64_t t_usec;           /* CLOCK_MONOTONIC: the samples' clock */
        enum level level;          /* the level after it */
        enum level previous_level; /* LEVEL: before it; other actions: == level */
        /*
         * LEVEL: decide_reason_to_string() ("eta", …, "hold_expired") or "livelock";
         * MEMORY_HIGH: govern_cause ("guard", "raise", "release", …); CAPTURE: the role
         * ("base", "current"); WEBHOOK: the outcome ("queued", "delivered", "failed", …).
         * NULL when none.
         */
        char *reason;
        char *event;  /* CAPTURE, WEBHOOK: the event behind it ("warn", "oom_kill", "manual") */
        char *detail; /* CAPTURE: the dump directory; WEBHOOK: the endpoint; else words */
        uint64_t eta_usec; /* LEVEL: the forecast ETA lower bound then; USEC_INFINITY: none */
        uint64_t bytes;    /* MEMORY_HIGH: the new value (CGROUP_LIMIT_MAX: "max");
                            * OOM_KILL: processes killed */
        bool failed;       /* CAPTURE: some request or command failed; WEBHOOK: not delivered */
        struct incident_suspect *suspects; /* CAPTURE: at most INCIDENT_SUSPECTS_MAX */
        size_t n_suspects;
};

/*
 * A bounded ring of events, oldest first from events[head]: when full, the oldest goes.
 * Embed it (zeroed, then incident_log_init()) and free with incident_log_clear().
 */
struct incident_log {
        struct incident_event *events;
        size_t cap, len, head;
        uint64_t n_dropped; /* events that the ring let go */
};

/* Allocate room for cap events (0: INCIDENT_LOG_DEFAULT_CAP). Returns 0 or -ENOMEM. */
int incident_log_init(struct incident_log *l, size_t cap);

/* Free every event and the ring, and zero *l. Accepts a zeroed log. */
void incident_log_clear(struct incident_log *l);

/*
 * Append a deep copy of ev (suspects cut at INCIDENT_SUSPECTS_MAX); the oldest event goes
 * when the ring is full. A log that was never initialised is initialised with the default
 * capacity first. Returns 0, or -ENOMEM (the log is unchanged).
 */
int incident_log_add(struct incident_log *l, const struct incident_event *ev);

/* Events in the log, and the k-th (0: the oldest); NULL when out of range. */
size_t incident_log_size(const struct incident_log *l);
const struct incident_event *incident_log_get(const struct incident_log *l, size_t k);

/*
 * Shorthands for the daemon, one per action; strings are copied and may be NULL.
 * reason: as for struct incident_event. Each returns what incident_log_add() returns.
 */
int incident_log_level(struct incident_log *l, uint64_t t_usec, enum level previous_level,
                       enum level level, const char *reason, uint64_t eta_usec);
int incident_log_memory_high(struct incident_log *l, uint64_t t_usec, enum level level,
                             uint64_t high_bytes, const char *cause, const char *words);
/* suspects: the capture's ordered suspects (struct capture_result), best first. */
int incident_log_capture(struct incident_log *l, uint64_t t_usec, enum level level,
                         const char *event, const char *role, const char *dir, bool failed,
                         const struct suspect *const *suspects, size_t n_suspects, bool paired);
int incident_log_webhook(struct incident_log *l, uint64_t t_usec, enum level level,
                         const char *event, const char *endpoint, const char *outcome, bool failed);
int incident_log_oom_kill(struct incident_log *l, uint64_t t_usec, enum level level,
                          uint64_t n_killed);

/* "level", "memory_high", "capture", "webhook", "oom_kill"; NULL if invalid. */
const char *incident_action_to_string(enum incident_action a);

/*
 * How long before an OOM kill at oom_usec the danger was known at level lvl (LEVEL_WARN..
 * LEVEL_CRITICAL): the episode that the kill ends began at the last rise from ok before
 * oom_usec with no return to ok between; lead = oom − the first entry into lvl or above
 * within that episode, not after oom_usec. Returns false when there is no such entry (the
 * kill came without warning at lvl, or the log does not reach back that far).
 */
bool incident_lead(const struct incident_log *l, uint64_t oom_usec, enum level lvl,
                   uint64_t *ret_usec);

/*
 * The newest capture event of the log with suspects, paired ones preferred over unpaired;
 * NULL when none has any.
 */
const struct incident_event *incident_log_suspects(const struct incident_log *l);

/* Free n suspects and the array. Accepts NULL. */
void incident_suspects_free(struct incident_suspect *s, size_t n);

/*
 * Read the suspects of a suspects.json (as governor/pprof-rank.c writes it, "version": 1):
 * the growth lists when paired, else the heap top and goroutine clusters, the kind that
 * grew more relative to its base first, at most INCIDENT_SUSPECTS_MAX in all. Pure.
 * Returns 0 with *ret / *ret_n (incident_suspects_free(); NULL / 0 when it names none),
 * -EINVAL (not such a document), -ENOMEM.
 */
int incident_suspects_parse_json(const char *buf, size_t len, struct incident_suspect **ret,
                                 size_t *ret_n);

/*
 * Samples kept as a ring: sample k (0: the oldest) is base[(head + k) % cap], k < len.
 * A plain array of n is {array, n, 0, n}, as the instance's compact ring gives them
 * (sample_ring_copy()).
 */
struct incident_samples {
        const struct sample *base;
        size_t cap, head, len;
};

/* Sample k of s, NULL when k >= s->len. */
const struct sample *incident_samples_get(const struct incident_samples *s, size_t k);

/*
 * The samples as a trace CSV (trace_write_header() and trace_write_row(), t0 = the first
 * sample). Returns 0 or -EIO.
 */
int incident_write_trace(FILE *f, const struct incident_samples *s);

/*
 * The log as decisions.jsonl (the format at the top), t_s relative to t0_usec. Returns 0,
 * -ENOMEM or -EIO.
 */
int incident_write_decisions(FILE *f, const struct incident_log *l, uint64_t t0_usec);

/*
 * captures.json: {"captures":[{"t_s", "event", "role", "level", "dir", "suspects_json",
 * "failed", "suspects":[…]}]}, one per capture event of the log; "suspects_json" is
 * dir + "/suspects.json" (the capture writes it when it could parse a text profile).
 * Returns 0, -ENOMEM or -EIO.
 */
int incident_write_captures(FILE *f, const struct incident_log *l, uint64_t t0_usec);

/* What an incident bundle is made of; everything is borrowed. */
struct incident_request {
        const char *service;             /* the policy's service: the dump goes under it */
        const char *cgroup;              /* relative to the cgroup root */
        enum event event;                /* EVENT_OOM_KILL or EVENT_CRITICAL (see below) */
        uint64_t t_usec;                 /* when it happened, on the samples' clock */
        uint64_t realtime_usec;          /* the wall clock then: names the dump, dates the report */
        struct incident_samples samples; /* the recent samples, oldest first */
        const struct incident_log *log;  /* the decision log; may be NULL */
        const struct policy *policy;     /* the levels, for the report; may be NULL */
        const char *generator;           /* "memgovd 0.1.0": the report's footer; may be NULL */
};

/*
 * Write the bundle into a new dump of store named "<UTC time>-incident-<event>" (apart
 * from the capture the same event starts, "<UTC time>-<event>"), through dump_begin(),
 * dump_write_file() and dump_commit(): atomic, in the manifest, under retention and the
 * free-space floor:
 * trace.csv, decisions.jsonl, captures.json and report.html. Synchronous file work of a
 * few hundred KiB at most, fine on the loop. Returns 0 with *ret_dir (the final
 * directory, malloc'ed; ret_dir may be NULL), -EINVAL (no service, an event that is no
 * name), -ENOSPC (the floor), -ENOMEM, -errno. Logs nothing: the caller says what failed.
 */
int incident_write(struct dump_store *store, const struct incident_request *req, char **ret_dir);

/*
 * Incidents still open, across restarts: after a critical bundle memgovd leaves
 * <state-dir>/incidents/<cgroup>.json ({"service","cgroup","inode","bundle"}, the file
 * named as the restore records are) and removes it when the cgroup recovers. A memgovd
 * started again in the middle of the episode (a crash, a SIGKILL, an upgrade) finds it and
 * does not write a second bundle for the same episode.
 */
#define INCIDENT_OPEN_SUBDIR "incidents"

/* Record bundle as the open incident of relpath (made at inode ino); replaces an older
 * one. Written to a temporary name, fsync'ed and renamed. Returns 0 or -errno. */
int incident_open_save(const char *state_dir, const char *service, const char *relpath,
                       uint64_t ino, const char *bundle);

/* Whether relpath has an open incident of service made at inode ino: 1 with *ret_bundle
 * (malloc'ed; ret_bundle may be NULL), 0 when none or it does not match (another service,
 * a cgroup made anew, an unreadable file), or -errno. */
int incident_open_find(const char *state_dir, const char *service, const char *relpath,
                       uint64_t ino, char **ret_bundle);

/* Forget the open incident of relpath: 1 removed, 0 there was none, or -errno. */
int incident_open_remove(const char *state_dir, const char *relpath);

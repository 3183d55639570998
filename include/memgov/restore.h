/* SPDX-License-Identifier: MIT */
/*
 * Restore records (actuate stage): before memgov first changes a cgroup's memory.high, the
 * value it found goes to <state-dir>/restore/<escaped relpath>.json, so that it comes back
 * on SIGTERM/exit, at the next start after a crash (before anything else), and by hand
 * (`memgovctl restore`). A record is written to a temporary name, fsync'ed, renamed
 * without replacing (the oldest original wins), and the directory fsync'ed.
 *
 * A record, one JSON object:
 *   {"version": 1, "service": "checkout", "cgroup": "system.slice/checkout.service",
 *    "inode": 1234, "backend": "systemd", "unit": "checkout.service", "memory_high": "max"}
 * memory_high is bytes (a number) or "max"; unit only with backend "systemd".
 *
 * Restoring a record: a cgroup that is gone, or another one under the same path (another
 * inode), has nothing to restore: the record is dropped with an info line. Otherwise the
 * original goes back through the record's backend and the record is deleted; on failure
 * it stays for the next try. A record that cannot be read is logged, renamed to
 * NAME.json.corrupt and left aside; the others go on.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "memgov/cgfs.h"
#include "memgov/policy.h"

#define RESTORE_SUBDIR "restore"

struct restore_record {
        char *service; /* NULL: not known */
        char *relpath; /* relative to the cgroup root, normalised ("a/b", no '/' at the ends) */
        uint64_t ino;
        enum actuate_backend backend; /* ACTUATE_BACKEND_CGROUPFS or _SYSTEMD */
        char *unit;                   /* systemd only */
        uint64_t high_bytes;          /* the original memory.high; CGROUP_LIMIT_MAX: "max" */
};

/* Free the strings and zero *r. */
void restore_record_clear(struct restore_record *r);

/*
 * Parse a record's text (NUL-terminated, as read from its file): 0 with *ret filled (the
 * caller clears it), -EBADMSG when it is not a valid record (*ret untouched), -ENOMEM.
 */
int restore_record_parse(const char *text, struct restore_record *ret);

/*
 * The record's file name for relpath: every byte outside [A-Za-z0-9_.@:+-], '%', and a
 * leading '.', as %XX, '/' included, then ".json"; names that would be too long end in a
 * hash instead. Returns 0 with *ret malloc'ed, -EINVAL for an empty relpath, -ENOMEM.
 */
int restore_file_name(const char *relpath, char **ret);

/*
 * Write r's record under state_dir (state_dir and its restore/ are made if missing).
 * Returns 1 when written, 0 when a record for that cgroup already exists (kept: it holds
 * the older original), or -errno.
 */
int restore_save(const char *state_dir, const struct restore_record *r);

/* Whether a record for relpath exists: 1, 0, or -errno. */
int restore_exists(const char *state_dir, const char *relpath);

/* Read the record for relpath: 0, -ENOENT, -EBADMSG (not a valid record), -errno. */
int restore_load(const char *state_dir, const char *relpath, struct restore_record *ret);

/* Delete the record for relpath (and fsync the directory). 0, also when there was none. */
int restore_remove(const char *state_dir, const char *relpath);

/* What restoring needs: where cgroups are, the systemd manager, whether to write at all. */
struct restore_env {
        const struct cgfs *cgfs;
        sd_bus *bus;   /* NULL: none (systemd records fail), unless open_bus */
        bool open_bus; /* connect (actuate_bus_open) at the first systemd record; the
                          caller unrefs env.bus afterwards */
        bool dry_run;  /* say what would be restored; records stay */
};

struct restore_stats {
        unsigned restored; /* original put back, record deleted */
        unsigned dropped;  /* cgroup gone or re-created: record deleted */
        unsigned failed;   /* could not put back: record kept */
        unsigned corrupt;  /* unreadable: renamed to .corrupt */
        unsigned skipped;  /* dry run: record kept */
};

/*
 * Restore every record (match NULL), or those whose service or cgroup is match, each as
 * described above, and add to *stats (may be NULL). Returns 0 (look at stats for what
 * happened), -ENOENT when match is given and no record has it, or -errno when the records
 * cannot be listed (a missing directory is no records).
 */
int restore_all(const char *state_dir, const char *match, struct restore_env *env,
                struct restore_stats *stats);

/* Restore the record of relpath if there is one. 0 (none, or done), or -errno (kept). */
int restore_one(const char *state_dir, const char *relpath, struct restore_env *env,
                struct restore_stats *stats);

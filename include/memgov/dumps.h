/* SPDX-License-Identifier: MIT */
/*
 * The dump store under the capture and record effects: where profiles, collector output
 * and incident bundles land, per the DESIGN.md §3 Dumps contract:
 *
 *   <state-dir>/dumps/<service>/<UTC time>-<event>/   e.g. 20240501T123456Z-warn
 *       manifest.json   every other file: name, kind, size, sha256
 *       heap.pb.gz, goroutine.txt, suspects.json, …
 *
 * A dump is written as <service>/.<name>.tmp/ and renamed to <name> only when complete
 * (manifest included), so a reader never sees a half-written dump under its final name.
 * Each file inside is itself written as .<file>.tmp, fsync'ed and renamed. Directories are
 * 0700, files 0600. Retention per service: at most max_count dumps, max_bytes in all, none
 * older than max_age (by the time in its name); the newest dump is always kept. A floor of
 * free space (the larger of min_free_bytes and min_free_permille of the filesystem) is
 * never taken: a dump that could cross it is refused with -ENOSPC and a message saying so.
 *
 * All calls are synchronous file-system work on small files, done on the loop; the large
 * files (profiles) are streamed by their writers through dump_file_fd().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>

#include "memgov/macro.h"

#define DUMPS_DEFAULT_MAX_COUNT    20
#define DUMPS_DEFAULT_MAX_BYTES    ((uint64_t)1 << 30)
#define DUMPS_DEFAULT_MAX_AGE_USEC (7 * 24 * USEC_PER_HOUR)
/*
 * The free-space floor: the larger of 64 MiB and 1% of the filesystem. Small enough that a
 * small disk with room for a few profiles takes them, large enough that the machine keeps
 * room to work (1 GiB on a 100 GiB disk).
 */
#define DUMPS_DEFAULT_MIN_FREE_BYTES    ((uint64_t)64 << 20)
#define DUMPS_DEFAULT_MIN_FREE_PERMILLE 10

/* Longest service name and event accepted in a dump's path. */
#define DUMPS_SERVICE_MAX 128
#define DUMPS_EVENT_MAX   64

/* Limits; a zero field takes its DUMPS_DEFAULT_*. */
struct dumps_limits {
        uint32_t max_count;         /* dumps kept per service */
        uint64_t max_bytes;         /* bytes kept per service */
        uint64_t max_age_usec;      /* age, by the UTC time in the name */
        uint64_t min_free_bytes;    /* the floor of free space, absolute … */
        uint32_t min_free_permille; /* … and as a share of the filesystem: the larger holds */
};

/* One file of a dump, as manifest.json lists it. */
struct dump_entry {
        char *name;      /* relative to the dump directory, e.g. "heap.pb.gz", "sub/core.42" */
        char *kind;      /* "pprof-heap", "pprof-goroutine-text", "smaps_rollup", … */
        uint64_t size;   /* bytes */
        char sha256[65]; /* lower-case hex */
        bool complete;   /* false: cut short (error says why), name ends in ".partial" */
        char *error;     /* NULL when complete */
};

struct dump_store;
struct dump;
struct dump_file;

/*
 * How free space is measured: fstatvfs() on the dumps directory, or this (tests). Return 0
 * with *ret filled, or -errno.
 */
typedef int (*dumps_statvfs_fn)(int dirfd, struct statvfs *ret, void *userdata);

/*
 * Open (creating, 0700) <state_dir>/dumps; state_dir itself is created if missing (one
 * level). Leftovers of an interrupted run — .<name>.tmp directories in every service
 * directory — are removed, and their number logged. limits may be NULL (all defaults).
 * Returns 0 with *ret (dump_store_free()), or -errno.
 */
int dump_store_open(const char *state_dir, const struct dumps_limits *limits,
                    struct dump_store **ret);

struct dump_store *dump_store_free(struct dump_store *s);
DEFINE_FREE_FUNC(dump_store)

/* <state_dir>/dumps, owned by the store. */
const char *dump_store_path(const struct dump_store *s);

/* Replace how free space is measured (NULL: fstatvfs). For tests. */
void dump_store_set_statvfs(struct dump_store *s, dumps_statvfs_fn fn, void *userdata);

/*
 * The bytes that may still be written above the floor (0 when at or below it), and the
 * floor in bytes (either may be NULL). Returns 0 or -errno of the measurement.
 */
int dump_store_room(struct dump_store *s, uint64_t *ret_room, uint64_t *ret_floor);

/*
 * Start a dump of service for event at realtime_usec (wall clock, CLOCK_REALTIME µs; it
 * names the directory). reserve_bytes is the most this dump may write: when that does not
 * fit above the floor the dump is refused with -ENOSPC and a warning that says how much is
 * free, the floor and the need. A name already taken gets "-2", "-3", … after the event.
 * Returns 0 with *ret (dump_commit() or dump_free()), -EINVAL (service not
 * [A-Za-z0-9_.-]+ or starting with '.', event not [A-Za-z0-9_-]+, or too long), -ENOSPC,
 * or -errno.
 */
int dump_begin(struct dump_store *s, const char *service, const char *event, uint64_t realtime_usec,
               uint64_t reserve_bytes, struct dump **ret);

/* "20240501T123456Z-warn": the final directory name. */
const char *dump_name(const struct dump *d);
/* The final path, <store>/<service>/<name>; it exists only after dump_commit(). */
const char *dump_path(const struct dump *d);
/* The directory being written, <store>/<service>/.<name>.tmp: the {dir} of collectors. */
const char *dump_tmp_path(const struct dump *d);
/* An O_DIRECTORY fd of the directory being written (owned by the dump). */
int dump_dirfd(const struct dump *d);

/*
 * Create the file name (a plain name, no '/', not starting with '.', not manifest.json)
 * as .<name>.tmp, mode 0600, for the caller to write through dump_file_fd(). kind goes to
 * the manifest. Returns 0 with *ret (dump_file_commit() or dump_file_abort()), -EINVAL,
 * -EEXIST (a file of that name is already in the dump), or -errno.
 */
int dump_file_open(struct dump *d, const char *name, const char *kind, struct dump_file **ret);
int dump_file_fd(const struct dump_file *f);

/*
 * Finish a file: fsync, rename to its name (or, when error is not NULL, to <name>.partial
 * with complete = false and error kept in the manifest: a response cut at its size cap,
 * a collector killed at its deadline), and hash it into the manifest. Frees f, also on
 * failure. Returns 0 or -errno.
 */
int dump_file_commit(struct dump *d, struct dump_file *f, const char *error);

/* Remove the unfinished file and free f. Accepts NULL; returns NULL. */
struct dump_file *dump_file_abort(struct dump *d, struct dump_file *f);

/* Write a whole small file atomically (open, write, commit). Returns 0 or -errno. */
int dump_write_file(struct dump *d, const char *name, const char *kind, const void *data,
                    size_t size);

/*
 * Record a problem in the manifest's "errors" list, e.g. ("goroutine", "timed out after
 * 10s"). Returns 0 or -ENOMEM.
 */
int dump_add_error(struct dump *d, const char *what, const char *fmt, ...) _printf_(3, 4);

/* The files recorded so far (after dump_commit(): all of them). */
const struct dump_entry *dump_entries(const struct dump *d, size_t *ret_n);

/*
 * Complete the dump. Files that others wrote into the directory (collector commands) are
 * taken in with kind "collector-output"; anything but regular files and directories
 * (symlinks, fifos, …) is removed and recorded as an error, so that nothing outside the
 * dump is ever listed or read. manifest.json is written, the directory renamed to its
 * final name, and the service's retention applied (the new dump counts and is kept).
 * Afterwards the dump only serves dump_path(), dump_entries() and dump_free(). Returns 0
 * or -errno (the directory then stays .tmp and is removed by dump_free()).
 */
int dump_commit(struct dump *d, uint64_t realtime_usec);

/* Free the handle; an uncommitted dump's directory is removed. Accepts NULL; returns NULL. */
struct dump *dump_free(struct dump *d);
DEFINE_FREE_FUNC(dump)

/*
 * Apply the retention limits to service's dumps at realtime_usec: the oldest go first
 * until at most max_count remain and they hold at most max_bytes; any older than max_age
 * goes; the newest always stays. Names that are not dumps are left alone. Returns the
 * number removed, or -errno.
 */
int dump_store_prune(struct dump_store *s, const char *service, uint64_t realtime_usec);

/* The dump directory names of service, oldest first (NULL-terminated, strv_free()). */
int dump_store_list(struct dump_store *s, const char *service, char ***ret);

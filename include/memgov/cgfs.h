/* SPDX-License-Identifier: MIT */
/*
 * cgfs: the only code that touches cgroupfs and /proc (probe stage). Every access goes
 * through directory fds and openat() with relative names, so that tests point the roots at
 * temporary trees. Reading is split from parsing: cgfs reads bytes, governor/parse.c
 * interprets them. A cgroup that vanishes mid-read gives -ENOENT or -ENODEV: normal life,
 * not logged here.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "memgov/macro.h"
#include "memgov/sample.h"

struct cgfs {
        int cgroup_fd;     /* the cgroup2 root (or a test tree), O_DIRECTORY */
        int proc_fd;       /* /proc (or a test tree), O_DIRECTORY */
        char *cgroup_path; /* for messages and inotify, absolute */
        char *proc_path;
};

/*
 * Find the cgroup2 mount point in <proc_root>/self/mountinfo (proc_root NULL: "/proc").
 * Returns 0 with *ret a malloc'ed path, -ENOENT if there is no cgroup2 mount.
 */
int cgfs_find_cgroup2_mount(const char *proc_root, char **ret_path);

/*
 * Open the roots. cgroup_root NULL: the cgroup2 mount; proc_root NULL: "/proc".
 * Returns 0, -ENOENT (no cgroup2 mount / no such dir), or another -errno. Free with
 * cgfs_free().
 */
int cgfs_new(const char *cgroup_root, const char *proc_root, struct cgfs **ret);
struct cgfs *cgfs_free(struct cgfs *c);
DEFINE_FREE_FUNC(cgfs)

/*
 * Whether the root's cgroup.controllers lists "memory" (1) or not (0); -errno if it cannot
 * be read. memgovd refuses to start on 0 and says what to do.
 */
int cgfs_has_memory_controller(const struct cgfs *c);

/*
 * Whether dirfd/name, a space-separated controller list (cgroup.controllers,
 * cgroup.subtree_control), holds controller: 1 or 0; -errno if it cannot be read.
 */
int cgfs_lists_controller(int dirfd, const char *name, const char *controller);

/*
 * Whether the cgroup root is a cgroup2 filesystem (1) or something else, such as a test
 * tree (0); -errno if it cannot be told.
 */
int cgfs_root_is_cgroup2(const struct cgfs *c);

/*
 * Open a cgroup directory relative to the root ("" or "." is the root; leading, trailing
 * and doubled '/' are ignored, so "/a/b" is the root's a/b; ".." is -EINVAL). O_DIRECTORY fd.
 */
int cgfs_open_cgroup(const struct cgfs *c, const char *relpath, int *ret_fd);

/*
 * Create the cgroup relpath (mkdir, mode 0755) under the root; its parent must exist.
 * Returns 0, -EEXIST if it exists (the root always does), or another -errno.
 */
int cgfs_mkdir_cgroup(const struct cgfs *c, const char *relpath);

/*
 * Remove the cgroup relpath (rmdir). The kernel refuses (-EBUSY) while it has processes or
 * children; the root is -EBUSY too. Returns 0 or -errno.
 */
int cgfs_rmdir_cgroup(const struct cgfs *c, const char *relpath);

/*
 * Read a whole small file at dirfd/name into buf (NUL-terminated). -EFBIG if it does not
 * fit in size-1 bytes. Returns the length read.
 */
ssize_t cgfs_read_at(int dirfd, const char *name, char *buf, size_t size);

/*
 * Write value to dirfd/name in one write() (cgroup files want that), no O_CREAT.
 * Returns 0 or -errno.
 */
int cgfs_write_at(int dirfd, const char *name, const char *value);

/*
 * Like cgfs_write_at() but creates dirfd/name (mode 0644) when missing. Only for roots that
 * are not a cgroup2 filesystem (test trees, see cgfs_root_is_cgroup2()): cgroupfs cannot
 * create files, and O_CREAT there turns a missing interface file into a misleading EACCES.
 */
int cgfs_write_create_at(int dirfd, const char *name, const char *value);

/* MemTotal of <proc>/meminfo in bytes. */
int cgfs_read_memtotal(const struct cgfs *c, uint64_t *ret_bytes);

/*
 * The effective limit of relpath: the smallest memory.max on the path from relpath up to
 * (and including) the root's direct child, else MemTotal. A memory.max above MemTotal
 * never bites, so the result is at most MemTotal (when meminfo can be read). Never
 * CGROUP_LIMIT_MAX. -ENOENT if relpath does not exist (any more); -EINVAL for "..";
 * -ENODATA when no memory.max applies and <proc>/meminfo is missing.
 */
int cgfs_effective_limit(const struct cgfs *c, const char *relpath, uint64_t *ret_bytes);

/*
 * The smallest memory.max strictly above relpath, up to (and including) the root's direct
 * child, and MemTotal: what cgfs_effective_limit() adds to the cgroup's own memory.max.
 * CGROUP_LIMIT_MAX when neither is known (no limit above and no <proc>/meminfo). -ENOENT
 * if relpath does not exist (any more); -EINVAL for "..".
 */
int cgfs_ancestor_limit(const struct cgfs *c, const char *relpath, uint64_t *ret_bytes);

/* The memory files of a sample, in the order cgfs_files_read_sample() reads them. */
enum cgfs_file {
        CGFS_FILE_CURRENT,
        CGFS_FILE_MAX,
        CGFS_FILE_HIGH,
        CGFS_FILE_LOW,
        CGFS_FILE_MIN,
        CGFS_FILE_EVENTS,
        CGFS_FILE_STAT,
        CGFS_FILE_PRESSURE,
        CGFS_FILE_SWAP_CURRENT,
        CGFS_FILE_SWAP_MAX,
        _CGFS_FILE_MAX,
};

/* How long a memory file found missing is taken as absent before it is looked for again. */
#define CGFS_FILES_RETRY_USEC (10 * USEC_PER_SEC)

/*
 * How often memory.low, .min and .swap.max are read: an operator's settings that change
 * rarely and that only bound how far memory.high may go (the rest is read every sample).
 */
#define CGFS_FILES_SLOW_USEC (10 * USEC_PER_SEC)

/*
 * A cgroup's memory files kept open between samples and re-read with pread() at offset 0:
 * one system call per file and sample instead of openat, read, read and close (cgroupfs
 * regenerates a file's text on every read from offset 0). A file missing at the last look
 * is taken as absent (this kernel has no swap accounting, no PSI) for
 * CGFS_FILES_RETRY_USEC. When the cgroup is removed, reads through the kept fds fail with
 * -ENODEV. dir_fd is borrowed; cgfs_files_close() closes the files, not the directory.
 *
 * Kept fds must not starve the process of fds for what else it does (sockets, dumps, new
 * cgroups): a file whose fd comes out at keep_fd_below or above is closed again after its
 * read and opened anew at the next. The kernel hands out the lowest free fd, so once the
 * fds below keep_fd_below are taken, further files are read the slower way; n_not_kept
 * counts those reads.
 */
struct cgfs_files {
        int dir_fd;
        int keep_fd_below;                    /* 0: keep none; INT_MAX: keep all */
        uint64_t n_not_kept;                  /* reads whose file was closed again */
        int fd[_CGFS_FILE_MAX];               /* -1: not open */
        uint64_t absent_usec[_CGFS_FILE_MAX]; /* when found missing; 0: open it when needed */
        uint64_t slow_usec;                   /* when the slow files were read; 0: never */
        uint64_t low_bytes, min_bytes, swap_max_bytes; /* as then read */
        unsigned slow_has;                             /* SAMPLE_HAS_LOW_MIN or 0 */
        /* memory.events as last read, while the caller watches it (see below) */
        bool events_watched, events_fresh, events_parsed;
        struct memory_events events;
};

void cgfs_files_init(struct cgfs_files *f, int dir_fd, int keep_fd_below);
void cgfs_files_close(struct cgfs_files *f);

/*
 * memory.events changes only with a counter, and the kernel raises IN_MODIFY on it each
 * time (cgroup_file_notify(); newer kernels delay a burst by a few ms, never drop it). A
 * caller that watches the file with inotify says so with watched = true: from then on the
 * file is read once and its values reused until cgfs_files_events_changed() says the
 * watch fired. watched = false (the watch failed or is gone) reads it at every sample.
 */
void cgfs_files_events_watched(struct cgfs_files *f, bool watched);
void cgfs_files_events_changed(struct cgfs_files *f);

/*
 * Take one sample of the cgroup through f: memory.current, .max, .high, .low, .min,
 * .events, .stat, .pressure, .swap.current/.max, with has bits set for what was there
 * (.low, .min and .swap.max as read within CGFS_FILES_SLOW_USEC; .events as read when
 * last changed, if watched).
 * limit_bytes is filled by the caller (it needs the path; see cgfs_effective_limit()),
 * here set to max_bytes. t_usec = now_usec. memory.current is required (-ENOENT/-ENODEV if
 * the cgroup vanished); the rest optional.
 */
int cgfs_files_read_sample(struct cgfs_files *f, uint64_t now_usec, struct sample *ret);

/* cgfs_files_read_sample() with every file opened for this one sample and closed again. */
int cgfs_read_sample(int dirfd, uint64_t now_usec, struct sample *ret);

/* The pids in dirfd/cgroup.procs. *ret_pids malloc'ed (may be NULL when *ret_n == 0). */
int cgfs_read_procs(int dirfd, pid_t **ret_pids, size_t *ret_n);

/*
 * Expand a policy's cgroup path or glob (fnmatch per path component, no "..", no leading
 * '/') relative to the root into the matching directories. *ret_paths is a NULL-terminated
 * malloc'ed array of malloc'ed relative paths, sorted; free with strv_free(). Only
 * directories match (symlinks do not); '*' and '?' do not match a leading '.'
 * (FNM_PERIOD). Returns the number of matches (0: an empty array), -EINVAL for an empty or
 * absolute pattern or a ".." component, or another -errno.
 */
int cgfs_glob(const struct cgfs *c, const char *pattern, char ***ret_paths);

/*
 * Open dirfd/memory.pressure and register a PSI trigger "some <stall_usec> <window_usec>".
 * The fd signals POLLPRI when stall exceeds the threshold in a window, POLLERR when the
 * cgroup is gone. Returns 0 with *ret_fd, or -errno (-EINVAL for an unsupported window).
 */
int cgfs_psi_trigger_open(int dirfd, uint64_t stall_usec, uint64_t window_usec, int *ret_fd);

/* Free a NULL-terminated array of strings and the array. Accepts NULL; returns NULL. */
char **strv_free(char **l);

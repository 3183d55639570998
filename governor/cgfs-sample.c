/* SPDX-License-Identifier: MIT */
/*
 * cgfs, the probe proper: one sample of a cgroup's memory files through the pure parsers,
 * and the effective limit that the forecast measures against.
 */
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgfs-internal.h"
#include "memgov/cgfs.h"
#include "memgov/parse.h"

#define MEMINFO_MAX_BYTES (1u << 20)

/* "MemTotal:       16318480 kB" → bytes. Pure; the rest of meminfo is ignored. */
static int meminfo_memtotal(const char *buf, uint64_t *ret_bytes)
{
        for (const char *line = buf; line && *line;) {
                if (strncmp(line, "MemTotal:", 9) == 0) {
                        const char *p = line + 9;
                        while (*p == ' ' || *p == '\t')
                                p++;
                        if (!isdigit((unsigned char)*p))
                                return -EINVAL;
                        errno = 0;
                        char *end;
                        unsigned long long kb = strtoull(p, &end, 10);
                        if (errno != 0 || kb > UINT64_MAX / 1024)
                                return -ERANGE;
                        while (*end == ' ')
                                end++;
                        if (strncmp(end, "kB", 2) != 0)
                                return -EINVAL;
                        *ret_bytes = (uint64_t)kb * 1024;
                        return 0;
                }
                line = strchr(line, '\n');
                if (line)
                        line++;
        }
        return -EINVAL;
}

int cgfs_read_memtotal(const struct cgfs *c, uint64_t *ret_bytes)
{
        _cleanup_free_ char *buf = NULL;
        size_t len;

        int r = cgfs_read_alloc_at(c->proc_fd, "meminfo", MEMINFO_MAX_BYTES, &buf, &len);
        if (r < 0)
                return r;
        return meminfo_memtotal(buf, ret_bytes);
}

/*
 * The smallest memory.max from path[0..len) up to the root's direct child, by cutting the
 * path at its last '/'. path is modified. *limit is lowered, never raised.
 */
static int walk_up_limit(const struct cgfs *c, char *path, size_t len, uint64_t *limit)
{
        while (len > 0) {
                char buf[64];

                path[len] = '\0';
                _cleanup_free_ char *file = NULL;
                if (asprintf(&file, "%s/memory.max", path) < 0)
                        return -ENOMEM;
                ssize_t n = cgfs_read_at(c->cgroup_fd, file, buf, sizeof(buf));
                if (n >= 0) {
                        uint64_t v;
                        if (parse_limit(buf, &v) >= 0)
                                *limit = MIN(*limit, v);
                } else if (n != -ENOENT)
                        return (int)n;

                char *slash = strrchr(path, '/');
                len = slash ? (size_t)(slash - path) : 0;
        }
        return 0;
}

/* The cleaned path of relpath, -ENOENT if it is gone. */
static int existing_path(const struct cgfs *c, const char *relpath, char **ret)
{
        _cleanup_free_ char *path = NULL;
        int r = cgfs_relpath_clean(relpath, &path);
        if (r < 0)
                return r;
        /* A vanished cgroup is -ENOENT, not "no limit". */
        if (path[0] && faccessat(c->cgroup_fd, path, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
                return negative_errno();
        *ret = TAKE_PTR(path);
        return 0;
}

/* *limit lowered to MemTotal when meminfo can be read; -errno only when nothing is known. */
static int cap_at_memtotal(const struct cgfs *c, uint64_t *limit)
{
        uint64_t memtotal;

        /*
         * Nothing is allowed more memory than the machine has: a memory.max above MemTotal
         * is never the limit that bites.
         */
        int r = cgfs_read_memtotal(c, &memtotal);
        if (r < 0)
                return *limit == CGROUP_LIMIT_MAX ? r : 0;
        *limit = MIN(*limit, memtotal);
        return 0;
}

int cgfs_ancestor_limit(const struct cgfs *c, const char *relpath, uint64_t *ret_bytes)
{
        _cleanup_free_ char *path = NULL;
        uint64_t limit = CGROUP_LIMIT_MAX;

        int r = existing_path(c, relpath, &path);
        if (r < 0)
                return r;
        char *slash = strrchr(path, '/');
        r = walk_up_limit(c, path, slash ? (size_t)(slash - path) : 0, &limit);
        if (r < 0)
                return r;
        (void)cap_at_memtotal(c, &limit);
        *ret_bytes = limit;
        return 0;
}

int cgfs_effective_limit(const struct cgfs *c, const char *relpath, uint64_t *ret_bytes)
{
        _cleanup_free_ char *path = NULL;
        uint64_t limit = CGROUP_LIMIT_MAX;

        int r = existing_path(c, relpath, &path);
        if (r < 0)
                return r;
        r = walk_up_limit(c, path, strlen(path), &limit);
        if (r < 0)
                return r;
        r = cap_at_memtotal(c, &limit);
        if (r < 0)
                /* -ENOENT would read as "the cgroup vanished". */
                return r == -ENOENT ? -ENODATA : r;
        *ret_bytes = limit;
        return 0;
}

static const char *const cgfs_file_names[_CGFS_FILE_MAX] = {
        [CGFS_FILE_CURRENT] = "memory.current",
        [CGFS_FILE_MAX] = "memory.max",
        [CGFS_FILE_HIGH] = "memory.high",
        [CGFS_FILE_LOW] = "memory.low",
        [CGFS_FILE_MIN] = "memory.min",
        [CGFS_FILE_EVENTS] = "memory.events",
        [CGFS_FILE_STAT] = "memory.stat",
        [CGFS_FILE_PRESSURE] = "memory.pressure",
        [CGFS_FILE_SWAP_CURRENT] = "memory.swap.current",
        [CGFS_FILE_SWAP_MAX] = "memory.swap.max",
};

void cgfs_files_init(struct cgfs_files *f, int dir_fd, int keep_fd_below)
{
        *f = (struct cgfs_files){.dir_fd = dir_fd, .keep_fd_below = keep_fd_below};
        for (size_t k = 0; k < _CGFS_FILE_MAX; k++)
                f->fd[k] = -1;
}

void cgfs_files_events_watched(struct cgfs_files *f, bool watched)
{
        f->events_watched = watched;
        f->events_fresh = false;
}

void cgfs_files_events_changed(struct cgfs_files *f)
{
        f->events_fresh = false;
}

void cgfs_files_close(struct cgfs_files *f)
{
        for (size_t k = 0; k < _CGFS_FILE_MAX; k++) {
                closep(&f->fd[k]);
                f->fd[k] = -1;
        }
}

/* pread() at offset, retrying EINTR. */
static ssize_t pread_retry(int fd, char *buf, size_t size, off_t offset)
{
        for (;;) {
                ssize_t n = pread(fd, buf, size, offset);
                if (n >= 0 || errno != EINTR)
                        return n < 0 ? negative_errno() : n;
        }
}

/*
 * Read fd whole into buf (NUL-terminated) with pread() at offset 0: -EFBIG when it holds
 * more than size-1 bytes.
 */
static ssize_t pread_whole(int fd, char *buf, size_t size)
{
        ssize_t n = pread_retry(fd, buf, size - 1, 0);
        if (n < 0)
                return n;
        if ((size_t)n == size - 1) {
                /* Full: the file is larger only if one more byte comes. */
                char extra;
                ssize_t m = pread_retry(fd, &extra, 1, n);
                if (m < 0)
                        return m;
                if (m > 0)
                        return -EFBIG;
        }
        buf[n] = '\0';
        return n;
}

/*
 * Read file k whole into buf (NUL-terminated) through its kept fd, opening it first if
 * need be. -ENOENT: missing (*missing set when it was looked for now, not when taken as
 * absent from an earlier look); -EFBIG: larger than size-1; -ENODEV: the cgroup is going
 * away. One pread() at offset 0 returns a small file whole: cgroupfs fills the buffer from
 * the whole generated text, and a short read of a regular file (test trees) is its end.
 */
static ssize_t files_read(struct cgfs_files *f, enum cgfs_file k, uint64_t now_usec, char *buf,
                          size_t size, bool *missing)
{
        if (f->fd[k] < 0) {
                if (f->absent_usec[k] != 0 && now_usec - f->absent_usec[k] < CGFS_FILES_RETRY_USEC)
                        return -ENOENT;
                int fd = openat(f->dir_fd, cgfs_file_names[k], O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0) {
                        int r = negative_errno();
                        if (r == -ENOENT) {
                                f->absent_usec[k] = MAX(now_usec, 1);
                                *missing = true;
                        }
                        return r;
                }
                f->fd[k] = fd;
                f->absent_usec[k] = 0;
        }

        ssize_t n = pread_whole(f->fd[k], buf, size);
        if (f->fd[k] >= f->keep_fd_below) {
                /* past the fds this process may keep: open it again next time */
                closep(&f->fd[k]);
                f->fd[k] = -1;
                f->n_not_kept++;
        }
        return n;
}

/* The outcome of one optional read in cgfs_files_read_sample(). */
enum {
        OPT_OK,
        OPT_ABSENT, /* no such file, or a value the parser refused */
};

/*
 * Read an optional file of a sample. Returns OPT_OK with buf filled, OPT_ABSENT, or -errno
 * for failures that must not pass silently (-ENODEV: the cgroup is going away; -EACCES).
 */
static int read_optional(struct cgfs_files *f, enum cgfs_file k, uint64_t now_usec, char *buf,
                         size_t size, bool *missing)
{
        ssize_t n = files_read(f, k, now_usec, buf, size, missing);
        if (n == -ENOENT)
                return OPT_ABSENT;
        if (n < 0)
                return (int)n;
        return OPT_OK;
}

int cgfs_files_read_sample(struct cgfs_files *f, uint64_t now_usec, struct sample *ret)
{
        struct sample s = {.t_usec = now_usec};
        char small[64], events[1024], pressure[512], stat[16384];
        bool missing = false;
        ssize_t n;
        int r;

        n = files_read(f, CGFS_FILE_CURRENT, now_usec, small, sizeof(small), &missing);
        if (n < 0) {
                /* memory.current is required: look for it again on the next sample. */
                f->absent_usec[CGFS_FILE_CURRENT] = 0;
                return (int)n;
        }
        r = parse_u64(small, &s.current_bytes);
        if (r < 0)
                return r;

        s.max_bytes = s.high_bytes = s.swap_max_bytes = CGROUP_LIMIT_MAX;

        r = read_optional(f, CGFS_FILE_MAX, now_usec, small, sizeof(small), &missing);
        if (r < 0)
                return r;
        if (r == OPT_OK)
                (void)parse_limit(small, &s.max_bytes); /* junk leaves "max" */

        r = read_optional(f, CGFS_FILE_HIGH, now_usec, small, sizeof(small), &missing);
        if (r < 0)
                return r;
        if (r == OPT_OK && parse_limit(small, &s.high_bytes) >= 0)
                s.has |= SAMPLE_HAS_HIGH;

        if (f->slow_usec == 0 || now_usec - f->slow_usec >= CGFS_FILES_SLOW_USEC) {
                f->low_bytes = f->min_bytes = 0;
                f->swap_max_bytes = CGROUP_LIMIT_MAX;
                f->slow_has = 0;
                r = read_optional(f, CGFS_FILE_LOW, now_usec, small, sizeof(small), &missing);
                if (r < 0)
                        return r;
                if (r == OPT_OK && parse_limit(small, &f->low_bytes) >= 0)
                        f->slow_has |= SAMPLE_HAS_LOW_MIN;
                r = read_optional(f, CGFS_FILE_MIN, now_usec, small, sizeof(small), &missing);
                if (r < 0)
                        return r;
                if (r == OPT_OK && parse_limit(small, &f->min_bytes) >= 0)
                        f->slow_has |= SAMPLE_HAS_LOW_MIN;
                /* Only with swap accounting (memory.swap.current); junk leaves "max". */
                r = read_optional(f, CGFS_FILE_SWAP_MAX, now_usec, small, sizeof(small), &missing);
                if (r < 0)
                        return r;
                if (r == OPT_OK)
                        (void)parse_limit(small, &f->swap_max_bytes);
                f->slow_usec = MAX(now_usec, 1);
        }
        s.low_bytes = f->low_bytes;
        s.min_bytes = f->min_bytes;
        s.has |= f->slow_has;

        if (!f->events_fresh) {
                r = read_optional(f, CGFS_FILE_EVENTS, now_usec, events, sizeof(events), &missing);
                if (r < 0)
                        return r;
                f->events_parsed = r == OPT_OK && parse_memory_events(events, &f->events) >= 0;
                /* A missing file is looked for again at its retry time, as the others. */
                f->events_fresh = f->events_watched && r == OPT_OK;
        }
        if (f->events_parsed) {
                s.events = f->events;
                s.has |= SAMPLE_HAS_EVENTS;
        }

        r = read_optional(f, CGFS_FILE_STAT, now_usec, stat, sizeof(stat), &missing);
        if (r < 0)
                return r;
        if (r == OPT_OK && parse_memory_stat(stat, &s.stat) >= 0) {
                s.anon_bytes = s.stat.anon;
                s.file_bytes = s.stat.file;
                s.has |= SAMPLE_HAS_STAT | SAMPLE_HAS_ANON | SAMPLE_HAS_FILE;
        }

        r = read_optional(f, CGFS_FILE_PRESSURE, now_usec, pressure, sizeof(pressure), &missing);
        if (r < 0)
                return r;
        if (r == OPT_OK && parse_pressure(pressure, &s.pressure) >= 0) {
                s.has |= SAMPLE_HAS_PSI_SOME | SAMPLE_HAS_PSI_AVG;
                if (s.pressure.has_full)
                        s.has |= SAMPLE_HAS_PSI_FULL;
        }

        r = read_optional(f, CGFS_FILE_SWAP_CURRENT, now_usec, small, sizeof(small), &missing);
        if (r < 0)
                return r;
        if (r == OPT_OK && parse_u64(small, &s.swap_current_bytes) >= 0) {
                s.has |= SAMPLE_HAS_SWAP;
                s.swap_max_bytes = f->swap_max_bytes;
        }

        /*
         * A file missing after memory.current was there: either this kernel lacks it (swap
         * accounting off, PSI disabled) or the cgroup was removed meanwhile. Look again.
         */
        if (missing && faccessat(f->dir_fd, "memory.current", F_OK, 0) < 0)
                return negative_errno();

        s.limit_bytes = s.max_bytes;
        *ret = s;
        return 0;
}

int cgfs_read_sample(int dirfd, uint64_t now_usec, struct sample *ret)
{
        struct cgfs_files f;

        cgfs_files_init(&f, dirfd, INT_MAX);
        int r = cgfs_files_read_sample(&f, now_usec, ret);
        cgfs_files_close(&f);
        return r;
}

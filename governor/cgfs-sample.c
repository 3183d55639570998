/* SPDX-License-Identifier: MIT */
/*
 * cgfs, the probe proper: one sample of a cgroup's memory files through the pure parsers,
 * and the effective limit that the forecast measures against.
 */
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int cgfs_effective_limit(const struct cgfs *c, const char *relpath, uint64_t *ret_bytes)
{
        _cleanup_free_ char *path = NULL;
        uint64_t limit = CGROUP_LIMIT_MAX, memtotal;
        int r;

        r = cgfs_relpath_clean(relpath, &path);
        if (r < 0)
                return r;

        /* A vanished cgroup is -ENOENT, not "no limit". */
        if (path[0] && faccessat(c->cgroup_fd, path, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
                return negative_errno();

        /* Walk up by cutting the path at its last '/', down to the root's direct child. */
        for (size_t len = strlen(path); len > 0;) {
                char buf[64];

                path[len] = '\0';
                _cleanup_free_ char *file = NULL;
                if (asprintf(&file, "%s/memory.max", path) < 0)
                        return -ENOMEM;
                ssize_t n = cgfs_read_at(c->cgroup_fd, file, buf, sizeof(buf));
                if (n >= 0) {
                        uint64_t v;
                        if (parse_limit(buf, &v) >= 0)
                                limit = MIN(limit, v);
                } else if (n != -ENOENT)
                        return (int)n;

                char *slash = strrchr(path, '/');
                len = slash ? (size_t)(slash - path) : 0;
        }

        /*
         * Nothing is allowed more memory than the machine has: a memory.max above MemTotal
         * is never the limit that bites.
         */
        r = cgfs_read_memtotal(c, &memtotal);
        if (r < 0) {
                if (limit == CGROUP_LIMIT_MAX)
                        /* -ENOENT would read as "the cgroup vanished". */
                        return r == -ENOENT ? -ENODATA : r;
                memtotal = CGROUP_LIMIT_MAX;
        }
        *ret_bytes = MIN(limit, memtotal);
        return 0;
}

/* The outcome of one optional read in cgfs_read_sample(). */
enum {
        OPT_OK,
        OPT_ABSENT, /* no such file, or a value the parser refused */
};

/*
 * Read an optional file of a sample. Returns OPT_OK with buf filled, OPT_ABSENT, or -errno
 * for failures that must not pass silently (-ENODEV: the cgroup is going away; -EACCES).
 */
static int read_optional(int dirfd, const char *name, char *buf, size_t size, bool *missing)
{
        ssize_t n = cgfs_read_at(dirfd, name, buf, size);
        if (n == -ENOENT) {
                *missing = true;
                return OPT_ABSENT;
        }
        if (n < 0)
                return (int)n;
        return OPT_OK;
}

int cgfs_read_sample(int dirfd, uint64_t now_usec, struct sample *ret)
{
        struct sample s = {.t_usec = now_usec};
        char small[64], events[1024], pressure[512], stat[16384];
        bool missing = false;
        ssize_t n;
        int r;

        n = cgfs_read_at(dirfd, "memory.current", small, sizeof(small));
        if (n < 0)
                return (int)n;
        r = parse_u64(small, &s.current_bytes);
        if (r < 0)
                return r;

        s.max_bytes = s.high_bytes = s.swap_max_bytes = CGROUP_LIMIT_MAX;

        r = read_optional(dirfd, "memory.max", small, sizeof(small), &missing);
        if (r < 0)
                return r;
        if (r == OPT_OK)
                (void)parse_limit(small, &s.max_bytes); /* junk leaves "max" */

        r = read_optional(dirfd, "memory.high", small, sizeof(small), &missing);
        if (r < 0)
                return r;
        if (r == OPT_OK && parse_limit(small, &s.high_bytes) >= 0)
                s.has |= SAMPLE_HAS_HIGH;

        r = read_optional(dirfd, "memory.low", small, sizeof(small), &missing);
        if (r < 0)
                return r;
        if (r == OPT_OK && parse_limit(small, &s.low_bytes) >= 0)
                s.has |= SAMPLE_HAS_LOW_MIN;
        r = read_optional(dirfd, "memory.min", small, sizeof(small), &missing);
        if (r < 0)
                return r;
        if (r == OPT_OK && parse_limit(small, &s.min_bytes) >= 0)
                s.has |= SAMPLE_HAS_LOW_MIN;

        r = read_optional(dirfd, "memory.events", events, sizeof(events), &missing);
        if (r < 0)
                return r;
        if (r == OPT_OK && parse_memory_events(events, &s.events) >= 0)
                s.has |= SAMPLE_HAS_EVENTS;

        r = read_optional(dirfd, "memory.stat", stat, sizeof(stat), &missing);
        if (r < 0)
                return r;
        if (r == OPT_OK && parse_memory_stat(stat, &s.stat) >= 0) {
                s.anon_bytes = s.stat.anon;
                s.file_bytes = s.stat.file;
                s.has |= SAMPLE_HAS_STAT | SAMPLE_HAS_ANON | SAMPLE_HAS_FILE;
        }

        r = read_optional(dirfd, "memory.pressure", pressure, sizeof(pressure), &missing);
        if (r < 0)
                return r;
        if (r == OPT_OK && parse_pressure(pressure, &s.pressure) >= 0) {
                s.has |= SAMPLE_HAS_PSI_SOME | SAMPLE_HAS_PSI_AVG;
                if (s.pressure.has_full)
                        s.has |= SAMPLE_HAS_PSI_FULL;
        }

        r = read_optional(dirfd, "memory.swap.current", small, sizeof(small), &missing);
        if (r < 0)
                return r;
        if (r == OPT_OK && parse_u64(small, &s.swap_current_bytes) >= 0) {
                s.has |= SAMPLE_HAS_SWAP;
                r = read_optional(dirfd, "memory.swap.max", small, sizeof(small), &missing);
                if (r < 0)
                        return r;
                if (r == OPT_OK)
                        (void)parse_limit(small, &s.swap_max_bytes);
        }

        /*
         * A file missing after memory.current was there: either this kernel lacks it (swap
         * accounting off, PSI disabled) or the cgroup was removed meanwhile. Look again.
         */
        if (missing && faccessat(dirfd, "memory.current", F_OK, 0) < 0)
                return negative_errno();

        s.limit_bytes = s.max_bytes;
        *ret = s;
        return 0;
}

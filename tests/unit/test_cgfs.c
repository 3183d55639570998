/* SPDX-License-Identifier: MIT */
/*
 * Probe stage: cgfs against temporary cgroup and proc trees made here (memory.* files as a
 * 6.1 kernel prints them, a fake mountinfo and meminfo), the way the daemon meets them.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "memgov/cgfs.h"
#include "memgov/macro.h"

/* snprintf into an array that must not truncate. */
#define path_printf(buf, ...)                                                                      \
        assert_true(snprintf(buf, sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

/* A temporary tree: root/cgroup is the cgroup root, root/proc the proc root. */
struct tree {
        char root[PATH_MAX];
        char cgroup[PATH_MAX];
        char proc[PATH_MAX];
};

/* Write content to root/relpath, creating the directories on the way. */
static void put(const char *root, const char *relpath, const char *content)
{
        char path[PATH_MAX];

        assert_true(mkdir(root, 0755) == 0 || errno == EEXIST);
        path_printf(path, "%s/%s", root, relpath);
        for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
                *p = '\0';
                assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
                *p = '/';
        }
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fputs(content, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
}

static void mkdirs(const char *root, const char *relpath)
{
        char rel[PATH_MAX];

        path_printf(rel, "%s/.keep", relpath);
        put(root, rel, "");
}

static char *fixture(const char *name)
{
        char path[PATH_MAX];
        static char buf[16384];

        path_printf(path, "%s/tests/fixtures/kernel-6.1/%s", MEMGOV_SOURCE_DIR, name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        assert_true(n > 0);
        buf[n] = '\0';
        close(fd);
        return buf;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static void rm_rf(const char *path)
{
        (void)nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state)
{
        struct tree *t = calloc(1, sizeof(*t));

        assert_non_null(t);
        path_printf(t->root, "/tmp/test_cgfs.XXXXXX");
        assert_non_null(mkdtemp(t->root));
        path_printf(t->cgroup, "%s/cgroup", t->root);
        path_printf(t->proc, "%s/proc", t->root);
        assert_int_equal(mkdir(t->cgroup, 0755), 0);
        put(t->proc, "meminfo",
            "MemTotal:        8000000 kB\nMemFree:         1000000 kB\n"
            "MemAvailable:    4000000 kB\n");
        *state = t;
        return 0;
}

static int teardown(void **state)
{
        struct tree *t = *state;

        rm_rf(t->root);
        free(t);
        return 0;
}

static struct cgfs *open_tree(const struct tree *t)
{
        struct cgfs *c = NULL;

        assert_int_equal(cgfs_new(t->cgroup, t->proc, &c), 0);
        assert_non_null(c);
        return c;
}

static void test_read_sample_all_files(void **state)
{
        struct tree *t = *state;
        static const char *const names[] = {"memory.current", "memory.max", "memory.high",
                                            "memory.stat", "memory.pressure"};
        char rel[128];

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                path_printf(rel, "svc/%s", names[i]);
                put(t->cgroup, rel, fixture(names[i]));
        }
        put(t->cgroup, "svc/memory.events", fixture("memory.events.oom"));
        put(t->cgroup, "svc/memory.low", "1048576\n");
        put(t->cgroup, "svc/memory.min", "0\n");
        put(t->cgroup, "svc/memory.swap.current", "4096\n");
        put(t->cgroup, "svc/memory.swap.max", "max\n");

        _cleanup_(cgfs_freep) struct cgfs *c = open_tree(t);
        _cleanup_close_ int fd = -1;
        assert_int_equal(cgfs_open_cgroup(c, "svc", &fd), 0);

        struct sample s;
        assert_int_equal(cgfs_read_sample(fd, 42 * USEC_PER_SEC, &s), 0);
        assert_int_equal(s.t_usec, 42 * USEC_PER_SEC);
        assert_int_equal(s.current_bytes, 195035136);
        assert_int_equal(s.max_bytes, 209715200);
        assert_int_equal(s.limit_bytes, 209715200);
        assert_true(s.high_bytes == CGROUP_LIMIT_MAX);
        assert_int_equal(s.low_bytes, 1048576);
        assert_int_equal(s.anon_bytes, 157319168);
        assert_int_equal(s.file_bytes, 31055872);
        assert_int_equal(s.events.high, 1294);
        assert_int_equal(s.events.max, 347);
        assert_int_equal(s.events.oom_kill, 3);
        assert_int_equal(s.pressure.some.total_usec, 8123456);
        assert_int_equal(s.pressure.full.total_usec, 6543210);
        assert_true(s.pressure.some.avg10_pct > 12.4 && s.pressure.some.avg10_pct < 12.5);
        assert_int_equal(s.swap_current_bytes, 4096);
        assert_true(s.swap_max_bytes == CGROUP_LIMIT_MAX);
        unsigned all = SAMPLE_HAS_ANON | SAMPLE_HAS_FILE | SAMPLE_HAS_HIGH | SAMPLE_HAS_EVENTS |
                       SAMPLE_HAS_PSI_SOME | SAMPLE_HAS_PSI_FULL | SAMPLE_HAS_PSI_AVG |
                       SAMPLE_HAS_STAT | SAMPLE_HAS_SWAP | SAMPLE_HAS_LOW_MIN;
        assert_int_equal(s.has, all);
}

static void test_read_sample_optional_files_missing(void **state)
{
        struct tree *t = *state;

        put(t->cgroup, "svc/memory.current", "12345\n");
        put(t->cgroup, "svc/memory.events", "low 0\nhigh 7\nmax 1\noom 0\noom_kill 0\n");

        _cleanup_(cgfs_freep) struct cgfs *c = open_tree(t);
        _cleanup_close_ int fd = -1;
        assert_int_equal(cgfs_open_cgroup(c, "/svc/", &fd), 0);

        struct sample s;
        assert_int_equal(cgfs_read_sample(fd, 1, &s), 0);
        assert_int_equal(s.current_bytes, 12345);
        assert_true(s.max_bytes == CGROUP_LIMIT_MAX);
        assert_true(s.high_bytes == CGROUP_LIMIT_MAX);
        assert_int_equal(s.events.high, 7);
        assert_int_equal(s.has, SAMPLE_HAS_EVENTS);
}

static void test_read_sample_unparsable_optional_file_is_absent(void **state)
{
        struct tree *t = *state;

        put(t->cgroup, "svc/memory.current", "100\n");
        put(t->cgroup, "svc/memory.high", "lots\n");
        put(t->cgroup, "svc/memory.pressure", "garbage\n");

        _cleanup_(cgfs_freep) struct cgfs *c = open_tree(t);
        _cleanup_close_ int fd = -1;
        assert_int_equal(cgfs_open_cgroup(c, "svc", &fd), 0);

        struct sample s;
        assert_int_equal(cgfs_read_sample(fd, 1, &s), 0);
        assert_int_equal(s.has & (SAMPLE_HAS_HIGH | SAMPLE_HAS_PSI_SOME), 0);
}

static void test_read_sample_vanished_cgroup(void **state)
{
        struct tree *t = *state;
        char path[PATH_MAX];

        put(t->cgroup, "svc/memory.current", "100\n");
        put(t->cgroup, "svc/memory.max", "200\n");
        _cleanup_(cgfs_freep) struct cgfs *c = open_tree(t);
        _cleanup_close_ int fd = -1;
        assert_int_equal(cgfs_open_cgroup(c, "svc", &fd), 0);

        path_printf(path, "%s/svc", t->cgroup);
        rm_rf(path);

        struct sample s = {.current_bytes = 777};
        assert_int_equal(cgfs_read_sample(fd, 1, &s), -ENOENT);
        assert_int_equal(s.current_bytes, 777); /* untouched on failure */
        uint64_t limit;
        assert_int_equal(cgfs_effective_limit(c, "svc", &limit), -ENOENT);
        int fd2 = -1;
        assert_int_equal(cgfs_open_cgroup(c, "svc", &fd2), -ENOENT);
}

static void test_read_sample_without_memory_current(void **state)
{
        struct tree *t = *state;

        mkdirs(t->cgroup, "nomem");
        _cleanup_(cgfs_freep) struct cgfs *c = open_tree(t);
        _cleanup_close_ int fd = -1;
        assert_int_equal(cgfs_open_cgroup(c, "nomem", &fd), 0);

        struct sample s;
        assert_int_equal(cgfs_read_sample(fd, 1, &s), -ENOENT);
}

static void test_files_kept_open_and_reread(void **state)
{
        struct tree *t = *state;
        char path[PATH_MAX];

        put(t->cgroup, "svc/memory.current", "100\n");
        put(t->cgroup, "svc/memory.stat", fixture("memory.stat"));
        put(t->cgroup, "svc/memory.low", "1000\n");
        _cleanup_(cgfs_freep) struct cgfs *c = open_tree(t);
        _cleanup_close_ int fd = -1;
        assert_int_equal(cgfs_open_cgroup(c, "svc", &fd), 0);

        struct cgfs_files f;
        struct sample s;
        cgfs_files_init(&f, fd, INT_MAX);
        assert_int_equal(cgfs_files_read_sample(&f, 1 * USEC_PER_SEC, &s), 0);
        assert_int_equal(s.current_bytes, 100);
        assert_int_equal(s.low_bytes, 1000);
        assert_true(s.has & SAMPLE_HAS_LOW_MIN);
        int kept = f.fd[CGFS_FILE_CURRENT];
        put(t->cgroup, "svc/memory.low", "2000\n");
        assert_true(kept >= 0);
        assert_true(f.fd[CGFS_FILE_STAT] >= 0);

        /* Rewritten in place, longer and then shorter: read again through the same fd. */
        put(t->cgroup, "svc/memory.current", "123456789\n");
        assert_int_equal(cgfs_files_read_sample(&f, 2 * USEC_PER_SEC, &s), 0);
        assert_int_equal(s.current_bytes, 123456789);
        put(t->cgroup, "svc/memory.current", "7\n");
        assert_int_equal(cgfs_files_read_sample(&f, 3 * USEC_PER_SEC, &s), 0);
        assert_int_equal(s.current_bytes, 7);
        assert_int_equal(f.fd[CGFS_FILE_CURRENT], kept);
        assert_true(s.has & SAMPLE_HAS_STAT);
        /* memory.low is one of the slow files: the value of the last read stands a while. */
        assert_int_equal(s.low_bytes, 1000);
        assert_true(s.has & SAMPLE_HAS_LOW_MIN);

        /* Missing at the first look: taken as absent until the retry period has passed. */
        assert_int_equal(s.has & SAMPLE_HAS_SWAP, 0);
        assert_int_equal(f.fd[CGFS_FILE_SWAP_CURRENT], -1);
        put(t->cgroup, "svc/memory.swap.current", "4096\n");
        assert_int_equal(cgfs_files_read_sample(&f, 4 * USEC_PER_SEC, &s), 0);
        assert_int_equal(s.has & SAMPLE_HAS_SWAP, 0);
        assert_int_equal(cgfs_files_read_sample(&f, 1 * USEC_PER_SEC + CGFS_FILES_RETRY_USEC, &s),
                         0);
        assert_true(s.has & SAMPLE_HAS_SWAP);
        assert_int_equal(s.swap_current_bytes, 4096);
        assert_int_equal(s.low_bytes, 2000);

        /* A file that grew past its buffer is refused, not cut. */
        char *big = malloc(20000);
        assert_non_null(big);
        memset(big, 'x', 19999);
        big[19999] = '\0';
        put(t->cgroup, "svc/memory.stat", big);
        free(big);
        assert_int_equal(cgfs_files_read_sample(&f, 12 * USEC_PER_SEC, &s), -EFBIG);

        /* memory.current gone and the directory with it: -ENOENT, and looked for again. */
        cgfs_files_close(&f);
        assert_int_equal(f.fd[CGFS_FILE_CURRENT], -1);
        path_printf(path, "%s/svc", t->cgroup);
        rm_rf(path);
        assert_int_equal(cgfs_files_read_sample(&f, 13 * USEC_PER_SEC, &s), -ENOENT);
        assert_int_equal(cgfs_files_read_sample(&f, 14 * USEC_PER_SEC, &s), -ENOENT);
        cgfs_files_close(&f);
}

/* Files whose fd comes out at keep_fd_below or above are read, then closed again. */
static void test_files_not_kept_past_fd_bound(void **state)
{
        struct tree *t = *state;

        put(t->cgroup, "svc/memory.current", "100\n");
        put(t->cgroup, "svc/memory.high", "5000\n");
        put(t->cgroup, "svc/memory.stat", fixture("memory.stat"));
        _cleanup_(cgfs_freep) struct cgfs *c = open_tree(t);
        _cleanup_close_ int fd = -1;
        assert_int_equal(cgfs_open_cgroup(c, "svc", &fd), 0);

        /* The lowest free fd: memory.current, opened first, gets it; every other file more. */
        int lowest = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(lowest >= 0);
        close(lowest);

        struct cgfs_files f;
        struct sample s;
        cgfs_files_init(&f, fd, lowest + 1);
        assert_int_equal(cgfs_files_read_sample(&f, 1 * USEC_PER_SEC, &s), 0);
        assert_int_equal(s.current_bytes, 100);
        assert_int_equal(s.high_bytes, 5000);
        assert_true(s.has & SAMPLE_HAS_STAT);
        assert_int_equal(f.fd[CGFS_FILE_CURRENT], lowest);
        for (size_t k = 0; k < _CGFS_FILE_MAX; k++)
                if (k != CGFS_FILE_CURRENT)
                        assert_int_equal(f.fd[k], -1);
        /* memory.high and memory.stat, at least, were read and closed */
        uint64_t not_kept = f.n_not_kept;
        assert_true(not_kept >= 2);

        /* Opened anew at the next sample: a changed value is read. */
        put(t->cgroup, "svc/memory.high", "6000\n");
        put(t->cgroup, "svc/memory.current", "200\n");
        assert_int_equal(cgfs_files_read_sample(&f, 2 * USEC_PER_SEC, &s), 0);
        assert_int_equal(s.current_bytes, 200);
        assert_int_equal(s.high_bytes, 6000);
        assert_true(s.has & SAMPLE_HAS_STAT);
        assert_true(f.n_not_kept >= not_kept + 2);
        assert_int_equal(f.fd[CGFS_FILE_HIGH], -1);
        cgfs_files_close(&f);

        /* 0: none kept, all still read. */
        cgfs_files_init(&f, fd, 0);
        assert_int_equal(cgfs_files_read_sample(&f, 3 * USEC_PER_SEC, &s), 0);
        assert_int_equal(s.current_bytes, 200);
        assert_int_equal(s.high_bytes, 6000);
        for (size_t k = 0; k < _CGFS_FILE_MAX; k++)
                assert_int_equal(f.fd[k], -1);
        cgfs_files_close(&f);
}

/*
 * memory.events, while its caller watches it, is read again only after the watch fired;
 * unwatched (the default, and after the watch is gone) it is read at every sample.
 */
static void test_files_events_read_when_changed(void **state)
{
        struct tree *t = *state;

        put(t->cgroup, "svc/memory.current", "100\n");
        put(t->cgroup, "svc/memory.events", "low 0\nhigh 1\nmax 0\noom 0\noom_kill 0\n");
        _cleanup_(cgfs_freep) struct cgfs *c = open_tree(t);
        _cleanup_close_ int fd = -1;
        assert_int_equal(cgfs_open_cgroup(c, "svc", &fd), 0);

        struct cgfs_files f;
        struct sample s;
        cgfs_files_init(&f, fd, INT_MAX);

        /* Unwatched: every sample reads it. */
        assert_int_equal(cgfs_files_read_sample(&f, 1 * USEC_PER_SEC, &s), 0);
        assert_true(s.has & SAMPLE_HAS_EVENTS);
        assert_int_equal(s.events.high, 1);
        put(t->cgroup, "svc/memory.events", "low 0\nhigh 2\nmax 0\noom 0\noom_kill 0\n");
        assert_int_equal(cgfs_files_read_sample(&f, 2 * USEC_PER_SEC, &s), 0);
        assert_int_equal(s.events.high, 2);

        /* Watched: read once, then the same values until the watch fires. */
        cgfs_files_events_watched(&f, true);
        put(t->cgroup, "svc/memory.events", "low 0\nhigh 3\nmax 0\noom 0\noom_kill 0\n");
        assert_int_equal(cgfs_files_read_sample(&f, 3 * USEC_PER_SEC, &s), 0);
        assert_int_equal(s.events.high, 3);
        put(t->cgroup, "svc/memory.events", "low 0\nhigh 4\nmax 1\noom 1\noom_kill 1\n");
        put(t->cgroup, "svc/memory.current", "200\n");
        assert_int_equal(cgfs_files_read_sample(&f, 4 * USEC_PER_SEC, &s), 0);
        assert_int_equal(s.current_bytes, 200);
        assert_true(s.has & SAMPLE_HAS_EVENTS);
        assert_int_equal(s.events.high, 3);
        assert_int_equal(s.events.oom_kill, 0);
        cgfs_files_events_changed(&f);
        assert_int_equal(cgfs_files_read_sample(&f, 5 * USEC_PER_SEC, &s), 0);
        assert_int_equal(s.events.high, 4);
        assert_int_equal(s.events.oom_kill, 1);

        /* Junk is not taken for counters, and is not held once the file is whole again. */
        put(t->cgroup, "svc/memory.events", "low 0\nhigh x\n");
        cgfs_files_events_changed(&f);
        assert_int_equal(cgfs_files_read_sample(&f, 6 * USEC_PER_SEC, &s), 0);
        assert_int_equal(s.has & SAMPLE_HAS_EVENTS, 0);
        put(t->cgroup, "svc/memory.events", "low 0\nhigh 5\nmax 1\noom 1\noom_kill 1\n");
        cgfs_files_events_changed(&f);
        assert_int_equal(cgfs_files_read_sample(&f, 7 * USEC_PER_SEC, &s), 0);
        assert_true(s.has & SAMPLE_HAS_EVENTS);
        assert_int_equal(s.events.high, 5);

        /* The watch gone: read at every sample again. */
        cgfs_files_events_watched(&f, false);
        put(t->cgroup, "svc/memory.events", "low 0\nhigh 6\nmax 1\noom 1\noom_kill 1\n");
        assert_int_equal(cgfs_files_read_sample(&f, 8 * USEC_PER_SEC, &s), 0);
        assert_int_equal(s.events.high, 6);
        put(t->cgroup, "svc/memory.events", "low 0\nhigh 7\nmax 1\noom 1\noom_kill 1\n");
        assert_int_equal(cgfs_files_read_sample(&f, 9 * USEC_PER_SEC, &s), 0);
        assert_int_equal(s.events.high, 7);
        cgfs_files_close(&f);
}

static void test_ancestor_limit(void **state)
{
        struct tree *t = *state;
        uint64_t limit;

        put(t->cgroup, "a/memory.max", "1073741824\n");
        put(t->cgroup, "a/b/memory.max", "max\n");
        put(t->cgroup, "a/b/c/memory.max", "536870912\n");
        put(t->cgroup, "top/memory.max", "4096\n");
        _cleanup_(cgfs_freep) struct cgfs *c = open_tree(t);

        /* The cgroup's own memory.max is not counted; its ancestors' are. */
        assert_int_equal(cgfs_ancestor_limit(c, "a/b/c", &limit), 0);
        assert_int_equal(limit, 1073741824);
        assert_int_equal(cgfs_effective_limit(c, "a/b/c", &limit), 0);
        assert_int_equal(limit, 536870912);
        /* A direct child of the root has no ancestor below the root: MemTotal. */
        assert_int_equal(cgfs_ancestor_limit(c, "top", &limit), 0);
        assert_int_equal(limit, 8000000ull * 1024);
        assert_int_equal(cgfs_ancestor_limit(c, "a/nope", &limit), -ENOENT);
        assert_int_equal(cgfs_ancestor_limit(c, "a/../top", &limit), -EINVAL);

        /* Nothing known: CGROUP_LIMIT_MAX, which the caller must not take as a limit. */
        char path[PATH_MAX];
        path_printf(path, "%s/meminfo", t->proc);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(cgfs_ancestor_limit(c, "top", &limit), 0);
        assert_true(limit == CGROUP_LIMIT_MAX);
        assert_int_equal(cgfs_ancestor_limit(c, "a/b/c", &limit), 0);
        assert_int_equal(limit, 1073741824);
}

static void test_effective_limit_through_hierarchy(void **state)
{
        struct tree *t = *state;
        uint64_t limit;

        put(t->cgroup, "a/memory.max", "1073741824\n");
        put(t->cgroup, "a/b/memory.max", "max\n");
        put(t->cgroup, "a/b/c/memory.max", "2147483648\n");
        put(t->cgroup, "a/b/c/d/memory.max", "536870912\n");
        put(t->cgroup, "free/memory.max", "max\n");
        put(t->cgroup, "free/x/memory.max", "max\n");
        mkdirs(t->cgroup, "free/nofile");
        put(t->cgroup, "huge/memory.max", "99999999999999\n");
        /* Above the cgroup root: outside what the root's direct child inherits. */
        put(t->cgroup, "memory.max", "1024\n");

        _cleanup_(cgfs_freep) struct cgfs *c = open_tree(t);

        assert_int_equal(cgfs_effective_limit(c, "a/b/c", &limit), 0);
        assert_int_equal(limit, 1073741824); /* a's, not c's own 2G */
        assert_int_equal(cgfs_effective_limit(c, "/a/b/c/d/", &limit), 0);
        assert_int_equal(limit, 536870912);
        assert_int_equal(cgfs_effective_limit(c, "a", &limit), 0);
        assert_int_equal(limit, 1073741824);
        assert_int_equal(cgfs_effective_limit(c, "free/x", &limit), 0);
        assert_int_equal(limit, UINT64_C(8000000) * 1024); /* MemTotal */
        assert_int_equal(cgfs_effective_limit(c, "free/nofile", &limit), 0);
        assert_int_equal(limit, UINT64_C(8000000) * 1024);
        assert_int_equal(cgfs_effective_limit(c, "huge", &limit), 0);
        assert_int_equal(limit, UINT64_C(8000000) * 1024);
        assert_int_equal(cgfs_effective_limit(c, "", &limit), 0);
        assert_int_equal(limit, UINT64_C(8000000) * 1024);
        assert_int_equal(cgfs_effective_limit(c, "a/../free", &limit), -EINVAL);
        assert_int_equal(cgfs_effective_limit(c, "missing", &limit), -ENOENT);
}

static void test_effective_limit_without_meminfo(void **state)
{
        struct tree *t = *state;
        char path[PATH_MAX];
        uint64_t limit = 0;

        put(t->cgroup, "a/memory.max", "4096\n");
        mkdirs(t->cgroup, "b");
        path_printf(path, "%s/meminfo", t->proc);
        assert_int_equal(unlink(path), 0);

        _cleanup_(cgfs_freep) struct cgfs *c = open_tree(t);
        assert_int_equal(cgfs_effective_limit(c, "a", &limit), 0);
        assert_int_equal(limit, 4096);
        assert_int_equal(cgfs_effective_limit(c, "b", &limit), -ENODATA);
        assert_int_equal(limit, 4096);
}

static void test_read_memtotal(void **state)
{
        struct tree *t = *state;
        uint64_t total = 0;

        _cleanup_(cgfs_freep) struct cgfs *c = open_tree(t);
        assert_int_equal(cgfs_read_memtotal(c, &total), 0);
        assert_int_equal(total, UINT64_C(8000000) * 1024);

        put(t->proc, "meminfo", "MemFree: 12 kB\n");
        assert_int_equal(cgfs_read_memtotal(c, &total), -EINVAL);
        put(t->proc, "meminfo", "MemTotal: 99999999999999999999 kB\n");
        assert_int_equal(cgfs_read_memtotal(c, &total), -ERANGE);
        put(t->proc, "meminfo", "MemTotal: 12 MB\n");
        assert_int_equal(cgfs_read_memtotal(c, &total), -EINVAL);
        assert_int_equal(total, UINT64_C(8000000) * 1024);
}

/* Check a glob's result against the expected NULL-terminated list. */
static void check_glob(struct cgfs *c, const char *pattern, const char *const *expected)
{
        char **got = NULL;
        size_t n = 0;

        while (expected[n])
                n++;
        int r = cgfs_glob(c, pattern, &got);
        if (r != (int)n) {
                print_error("pattern \"%s\": %d matches, expected %zu\n", pattern, r, n);
                for (size_t i = 0; r > 0 && got[i]; i++)
                        print_error("  got %s\n", got[i]);
                fail();
        }
        for (size_t i = 0; i < n; i++)
                assert_string_equal(got[i], expected[i]);
        assert_null(got[n]);
        strv_free(got);
}

static void test_glob_patterns(void **state)
{
        struct tree *t = *state;
        char target[PATH_MAX], link[PATH_MAX];

        mkdirs(t->cgroup, "system.slice/b.service");
        mkdirs(t->cgroup, "system.slice/a.service/inner");
        mkdirs(t->cgroup, "system.slice/c.scope");
        mkdirs(t->cgroup, "system.slice/.hidden.service");
        put(t->cgroup, "system.slice/file.service", "not a directory\n");
        mkdirs(t->cgroup, "user.slice/user-1000.slice");
        mkdirs(t->cgroup, "kubepods.slice/pod1/ctr-a");
        mkdirs(t->cgroup, "kubepods.slice/pod2/ctr-b");
        mkdirs(t->cgroup, "kubepods.slice/pod2/ctr-c");
        path_printf(target, "%s/user.slice", t->cgroup);
        path_printf(link, "%s/system.slice/link.service", t->cgroup);
        assert_int_equal(symlink(target, link), 0);

        _cleanup_(cgfs_freep) struct cgfs *c = open_tree(t);

        check_glob(c, "system.slice/*.service",
                   (const char *const[]){"system.slice/a.service", "system.slice/b.service", NULL});
        check_glob(c, "*/*",
                   (const char *const[]){"kubepods.slice/pod1", "kubepods.slice/pod2",
                                         "system.slice/a.service", "system.slice/b.service",
                                         "system.slice/c.scope", "user.slice/user-1000.slice",
                                         NULL});
        check_glob(c, "kubepods.slice/*/*",
                   (const char *const[]){"kubepods.slice/pod1/ctr-a", "kubepods.slice/pod2/ctr-b",
                                         "kubepods.slice/pod2/ctr-c", NULL});
        check_glob(c, "system.slice/.*",
                   (const char *const[]){"system.slice/.hidden.service", NULL});
        check_glob(c, "system.slice/[ab].service/inner",
                   (const char *const[]){"system.slice/a.service/inner", NULL});
        check_glob(c, "user.slice/user-1000.slice",
                   (const char *const[]){"user.slice/user-1000.slice", NULL});
        check_glob(c, "./system.slice//c.scope/",
                   (const char *const[]){"system.slice/c.scope", NULL});
        check_glob(c, "system.slice/*.socket", (const char *const[]){NULL});
        check_glob(c, "nothing/*", (const char *const[]){NULL});
        check_glob(c, "system.slice/file.service", (const char *const[]){NULL});
        check_glob(c, "system.slice/link.service", (const char *const[]){NULL});

        char **l = NULL;
        assert_int_equal(cgfs_glob(c, "/system.slice/*", &l), -EINVAL);
        assert_int_equal(cgfs_glob(c, "system.slice/../*", &l), -EINVAL);
        assert_int_equal(cgfs_glob(c, "..", &l), -EINVAL);
        assert_int_equal(cgfs_glob(c, "", &l), -EINVAL);
        assert_null(l);
}

static void test_find_cgroup2_mount(void **state)
{
        struct tree *t = *state;
        char *path = NULL;

        put(t->proc, "self/mountinfo",
            "22 1 0:21 / /sys rw,nosuid shared:7 - sysfs sysfs rw\n"
            "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs cgroup2 rw,mode=755\n"
            "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime shared:12 - cgroup cgroup rw,memory\n"
            "truncated line\n"
            "40 30 0:37 / /sys/fs/cgroup/my\\040unified\\134x rw shared:9 master:2 - cgroup2 "
            "cgroup2 rw,nsdelegate\n"
            "41 30 0:38 / /second rw - cgroup2 cgroup2 rw\n");
        assert_int_equal(cgfs_find_cgroup2_mount(t->proc, &path), 0);
        assert_string_equal(path, "/sys/fs/cgroup/my unified\\x");
        free(path);
        path = NULL;

        put(t->proc, "self/mountinfo",
            "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
            "35 30 0:32 / /x rw - tmpfs cgroup2 rw\n");
        assert_int_equal(cgfs_find_cgroup2_mount(t->proc, &path), -ENOENT);
        put(t->proc, "self/mountinfo", "");
        assert_int_equal(cgfs_find_cgroup2_mount(t->proc, &path), -ENOENT);
        assert_null(path);
}

static void test_new_default_root_from_mountinfo(void **state)
{
        struct tree *t = *state;
        char line[PATH_MAX + 128], real[PATH_MAX];

        assert_non_null(realpath(t->cgroup, real));
        path_printf(line, "40 30 0:37 / %s rw shared:9 - cgroup2 cgroup2 rw\n", real);
        put(t->proc, "self/mountinfo", line);
        put(t->cgroup, "cgroup.controllers", "cpuset cpu io memory hugetlb pids\n");

        _cleanup_(cgfs_freep) struct cgfs *c = NULL;
        assert_int_equal(cgfs_new(NULL, t->proc, &c), 0);
        assert_string_equal(c->cgroup_path, real);
        assert_int_equal(cgfs_has_memory_controller(c), 1);
        assert_int_equal(cgfs_root_is_cgroup2(c), 0); /* a plain directory */

        put(t->cgroup, "cgroup.controllers", "cpuset cpu io memoryx hugetlb\n");
        assert_int_equal(cgfs_has_memory_controller(c), 0);
        put(t->cgroup, "cgroup.controllers", "");
        assert_int_equal(cgfs_has_memory_controller(c), 0);

        struct cgfs *none = NULL;
        char missing[PATH_MAX];
        path_printf(missing, "%s/absent", t->root);
        assert_int_equal(cgfs_new(missing, t->proc, &none), -ENOENT);
        put(t->proc, "self/mountinfo", "1 0 0:1 / / rw - ext4 /dev/sda rw\n");
        assert_int_equal(cgfs_new(NULL, t->proc, &none), -ENOENT);
        assert_null(none);
}

static void test_read_at_size_cap(void **state)
{
        struct tree *t = *state;
        char buf[8];

        put(t->cgroup, "seven", "1234567");
        put(t->cgroup, "eight", "12345678");
        _cleanup_(cgfs_freep) struct cgfs *c = open_tree(t);

        assert_int_equal(cgfs_read_at(c->cgroup_fd, "seven", buf, sizeof(buf)), 7);
        assert_string_equal(buf, "1234567");
        assert_int_equal(cgfs_read_at(c->cgroup_fd, "eight", buf, sizeof(buf)), -EFBIG);
        assert_int_equal(cgfs_read_at(c->cgroup_fd, "nine", buf, sizeof(buf)), -ENOENT);
}

static void test_write_at(void **state)
{
        struct tree *t = *state;
        char buf[64];

        put(t->cgroup, "svc/memory.high", "max\n");
        _cleanup_(cgfs_freep) struct cgfs *c = open_tree(t);
        _cleanup_close_ int fd = -1;
        assert_int_equal(cgfs_open_cgroup(c, "svc", &fd), 0);

        assert_int_equal(cgfs_write_at(fd, "memory.high", "1"), 0);
        assert_int_equal(cgfs_read_at(fd, "memory.high", buf, sizeof(buf)), 1);
        assert_string_equal(buf, "1");
        /* cgroupfs cannot create files: neither does cgfs_write_at(). */
        assert_int_equal(cgfs_write_at(fd, "memory.max", "1"), -ENOENT);
        assert_int_equal(cgfs_write_create_at(fd, "memory.max", "2048"), 0);
        assert_int_equal(cgfs_read_at(fd, "memory.max", buf, sizeof(buf)), 4);
        assert_string_equal(buf, "2048");
}

static void test_mkdir_rmdir_cgroup(void **state)
{
        struct tree *t = *state;
        int fd = -1;

        _cleanup_(cgfs_freep) struct cgfs *c = open_tree(t);
        assert_int_equal(cgfs_mkdir_cgroup(c, "a"), 0);
        assert_int_equal(cgfs_mkdir_cgroup(c, "/a/b"), 0);
        assert_int_equal(cgfs_mkdir_cgroup(c, "a/b"), -EEXIST);
        assert_int_equal(cgfs_mkdir_cgroup(c, ""), -EEXIST);
        assert_int_equal(cgfs_mkdir_cgroup(c, "x/y"), -ENOENT);
        assert_int_equal(cgfs_mkdir_cgroup(c, "a/../../escape"), -EINVAL);
        assert_int_equal(cgfs_open_cgroup(c, "a/b", &fd), 0);
        close(fd);
        assert_int_equal(cgfs_rmdir_cgroup(c, "a/b"), 0);
        assert_int_equal(cgfs_open_cgroup(c, "a/b", &fd), -ENOENT);
        assert_int_equal(cgfs_rmdir_cgroup(c, "."), -EBUSY);
}

static void test_read_procs(void **state)
{
        struct tree *t = *state;
        pid_t *pids = NULL;
        size_t n = 99;

        _cleanup_(cgfs_freep) struct cgfs *c = open_tree(t);
        _cleanup_close_ int fd = -1;
        put(t->cgroup, "svc/cgroup.procs", "12\n3456\n");
        assert_int_equal(cgfs_open_cgroup(c, "svc", &fd), 0);

        assert_int_equal(cgfs_read_procs(fd, &pids, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(pids[0], 12);
        assert_int_equal(pids[1], 3456);
        free(pids);

        put(t->cgroup, "svc/cgroup.procs", "");
        pids = NULL;
        assert_int_equal(cgfs_read_procs(fd, &pids, &n), 0);
        assert_int_equal(n, 0);
        free(pids);

        static const char *const hostile[] = {"12\nabc\n", "-1\n", "0\n", "99999999999\n",
                                              "12 13\n"};
        for (size_t i = 0; i < ELEMENTSOF(hostile); i++) {
                put(t->cgroup, "svc/cgroup.procs", hostile[i]);
                n = 99;
                assert_int_equal(cgfs_read_procs(fd, &pids, &n), -EINVAL);
                assert_int_equal(n, 99);
        }
}

static void test_psi_trigger_written_with_nul(void **state)
{
        struct tree *t = *state;
        char buf[64];
        int pfd = -1;

        put(t->cgroup, "svc/memory.pressure", "");
        _cleanup_(cgfs_freep) struct cgfs *c = open_tree(t);
        _cleanup_close_ int fd = -1;
        assert_int_equal(cgfs_open_cgroup(c, "svc", &fd), 0);

        assert_int_equal(cgfs_psi_trigger_open(fd, 150000, 1000000, &pfd), 0);
        assert_true(pfd >= 0);
        close(pfd);
        /* The trigger and its NUL, as the kernel's PSI documentation writes it. */
        ssize_t n = cgfs_read_at(fd, "memory.pressure", buf, sizeof(buf));
        assert_int_equal(n, (ssize_t)sizeof("some 150000 1000000"));
        assert_string_equal(buf, "some 150000 1000000");

        assert_int_equal(cgfs_psi_trigger_open(fd, 1, 2, &pfd), 0);
        close(pfd);
        mkdirs(t->cgroup, "gone");
        _cleanup_close_ int gfd = -1;
        assert_int_equal(cgfs_open_cgroup(c, "gone", &gfd), 0);
        pfd = -1;
        assert_int_equal(cgfs_psi_trigger_open(gfd, 1, 2, &pfd), -ENOENT);
        assert_int_equal(pfd, -1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_read_sample_all_files, setup, teardown),
                cmocka_unit_test_setup_teardown(test_read_sample_optional_files_missing, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_read_sample_unparsable_optional_file_is_absent,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_read_sample_vanished_cgroup, setup, teardown),
                cmocka_unit_test_setup_teardown(test_read_sample_without_memory_current, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_files_kept_open_and_reread, setup, teardown),
                cmocka_unit_test_setup_teardown(test_files_not_kept_past_fd_bound, setup, teardown),
                cmocka_unit_test_setup_teardown(test_files_events_read_when_changed, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_ancestor_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_effective_limit_through_hierarchy, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_effective_limit_without_meminfo, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_read_memtotal, setup, teardown),
                cmocka_unit_test_setup_teardown(test_glob_patterns, setup, teardown),
                cmocka_unit_test_setup_teardown(test_find_cgroup2_mount, setup, teardown),
                cmocka_unit_test_setup_teardown(test_new_default_root_from_mountinfo, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_read_at_size_cap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_at, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mkdir_rmdir_cgroup, setup, teardown),
                cmocka_unit_test_setup_teardown(test_read_procs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_psi_trigger_written_with_nul, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

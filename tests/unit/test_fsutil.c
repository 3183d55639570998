/* SPDX-License-Identifier: MIT */
/*
 * fs_rename_noreplace() on this machine's filesystem, and on one without RENAME_NOREPLACE:
 * renameat2 is wrapped (-Wl,--wrap=renameat2, set in CMakeLists.txt) to answer EINVAL with
 * the flag, as some tmpfs, overlayfs and 9p versions do. Either way a file or a directory
 * lands under its new name, and an existing name is never replaced. The two writers that
 * rely on it, a dump's commit and a restore record, are run through the fallback too.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "memgov/dumps.h"
#include "memgov/fsutil.h"
#include "memgov/log.h"
#include "memgov/macro.h"
#include "memgov/restore.h"

int __real_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                     unsigned int flags);
int __wrap_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                     unsigned int flags);

static bool no_noreplace;  /* the filesystem knows no RENAME_NOREPLACE */
static unsigned n_refused; /* renameat2 calls answered EINVAL */

int __wrap_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                     unsigned int flags)
{
        if (no_noreplace && (flags & RENAME_NOREPLACE)) {
                n_refused++;
                errno = EINVAL;
                return -1;
        }
        return __real_renameat2(olddirfd, oldpath, newdirfd, newpath, flags);
}

struct fixture {
        char root[PATH_MAX];
        int fd;
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)ftw;
        return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        snprintf(f->root, sizeof(f->root), "%s/memgov-test-fsutil-XXXXXX",
                 getenv("TMPDIR") ?: "/tmp");
        assert_non_null(mkdtemp(f->root));
        f->fd = open(f->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(f->fd >= 0);
        n_refused = 0;
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        no_noreplace = false;
        close(f->fd);
        assert_int_equal(nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
        free(f);
        return 0;
}

static void put(int dfd, const char *name, const char *text)
{
        int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
}

static void expect(int dfd, const char *name, const char *text)
{
        char buf[256] = "";
        int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                fail_msg("%s: %s", name, strerror(errno));
        assert_true(read(fd, buf, sizeof(buf) - 1) >= 0);
        close(fd);
        assert_string_equal(buf, text);
}

static bool exists(int dfd, const char *name)
{
        struct stat st;
        return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Files and directories move; an existing name (file, empty or full directory) stays. */
static void check_semantics(struct fixture *f)
{
        put(f->fd, ".a.tmp", "new");
        assert_int_equal(fs_rename_noreplace(f->fd, ".a.tmp", f->fd, "a"), 0);
        expect(f->fd, "a", "new");
        assert_false(exists(f->fd, ".a.tmp"));

        put(f->fd, ".a.tmp", "newer");
        assert_int_equal(fs_rename_noreplace(f->fd, ".a.tmp", f->fd, "a"), -EEXIST);
        expect(f->fd, "a", "new");
        expect(f->fd, ".a.tmp", "newer");

        assert_int_equal(mkdirat(f->fd, ".d.tmp", 0700), 0);
        put(f->fd, ".d.tmp/inside", "x");
        assert_int_equal(fs_rename_noreplace(f->fd, ".d.tmp", f->fd, "d"), 0);
        expect(f->fd, "d/inside", "x");
        assert_false(exists(f->fd, ".d.tmp"));

        /* an empty directory is an existing name too (plain rename() would replace it) */
        assert_int_equal(mkdirat(f->fd, ".e.tmp", 0700), 0);
        put(f->fd, ".e.tmp/inside", "y");
        assert_int_equal(mkdirat(f->fd, "e", 0700), 0);
        assert_int_equal(fs_rename_noreplace(f->fd, ".e.tmp", f->fd, "e"), -EEXIST);
        assert_false(exists(f->fd, "e/inside"));
        expect(f->fd, ".e.tmp/inside", "y");
        assert_int_equal(fs_rename_noreplace(f->fd, ".e.tmp", f->fd, "d"), -EEXIST);
        expect(f->fd, "d/inside", "x");

        assert_int_equal(fs_rename_noreplace(f->fd, ".missing", f->fd, "m"), -ENOENT);
        assert_false(exists(f->fd, "m"));
}

static void test_fs_rename_noreplace_native(void **state)
{
        check_semantics(*state);
        assert_int_equal(n_refused, 0);
}

static void test_fs_rename_noreplace_without_flag_support(void **state)
{
        no_noreplace = true;
        check_semantics(*state);
        assert_true(n_refused >= 6);
}

/* A dump completes, and a restore record is written once, on such a filesystem. */
static void test_writers_without_flag_support(void **state)
{
        struct fixture *f = *state;
        struct dump_store *s = NULL;
        struct dump *d = NULL;
        char **names = NULL;
        const uint64_t t0 = 1714566896 * USEC_PER_SEC; /* 2024-05-01T12:34:56Z */

        no_noreplace = true;
        log_set_max_level(LOG_ERR);
        assert_int_equal(dump_store_open(f->root, NULL, &s), 0);
        assert_int_equal(dump_begin(s, "svc", "warn", t0, 0, &d), 0);
        assert_int_equal(dump_write_file(d, "heap.txt", "heap", "h", 1), 0);
        assert_int_equal(dump_commit(d, t0), 0);
        d = dump_free(d);
        assert_int_equal(dump_store_list(s, "svc", &names), 1);
        assert_non_null(names[0]);
        assert_string_equal(names[0], "20240501T123456Z-warn");
        assert_null(names[1]);
        free(names[0]);
        free(names);
        s = dump_store_free(s);
        assert_true(n_refused >= 1);

        unsigned before = n_refused;
        struct restore_record r = {.service = (char *)"svc",
                                   .relpath = (char *)"app.slice/svc.service",
                                   .ino = 42,
                                   .backend = ACTUATE_BACKEND_CGROUPFS,
                                   .high_bytes = 1 << 30};
        assert_int_equal(restore_save(f->root, &r), 1);
        r.high_bytes = 1 << 20; /* a second save keeps the first, true original */
        assert_int_equal(restore_save(f->root, &r), 0);
        struct restore_record got = {};
        assert_int_equal(restore_load(f->root, "app.slice/svc.service", &got), 0);
        assert_int_equal(got.high_bytes, 1 << 30);
        restore_record_clear(&got);
        assert_true(n_refused >= before + 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_fs_rename_noreplace_native, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fs_rename_noreplace_without_flag_support,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_writers_without_flag_support, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Restore records on a temporary state dir and cgroup tree: written atomically and never
 * over an older one, put back after a simulated crash (records present at start), dropped
 * when the cgroup is gone or was made anew, set aside when unreadable, restored through a
 * real sd-bus peer playing systemd, and `memgovctl restore` as a user runs it.
 */
#include <dirent.h>
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

#include <cmocka.h>

#include "memgov/actuate.h"
#include "memgov/cgfs.h"
#include "memgov/ctl.h"
#include "memgov/macro.h"
#include "memgov/restore.h"
#include "systemd-peer.h"

#define path_printf(buf, ...)                                                                      \
        assert_true(snprintf(buf, sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

struct fixture {
        char root[PATH_MAX];
        char cg[PATH_MAX];    /* the cgroup root */
        char state[PATH_MAX]; /* the state dir */
        char rdir[PATH_MAX];  /* state/restore */
        struct cgfs *cgfs;
};

static void put(const char *dir, const char *name, const char *content)
{
        char path[PATH_MAX];

        path_printf(path, "%s/%s", dir, name);
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        assert_true(fputs(content, f) >= 0);
        assert_int_equal(fclose(f), 0);
}

static const char *get(const char *dir, const char *name)
{
        static char buf[4096];
        char path[PATH_MAX];

        path_printf(path, "%s/%s", dir, name);
        FILE *f = fopen(path, "re");
        if (!f)
                return NULL;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        return buf;
}

/* A cgroup directory with memory.high = high; its inode. */
static uint64_t make_cgroup(struct fixture *fx, const char *relpath, const char *high)
{
        char path[PATH_MAX];
        struct stat st;

        path_printf(path, "%s/%s", fx->cg, relpath);
        for (char *p = path + strlen(fx->cg) + 1;; p++) {
                p = strchr(p, '/');
                if (p)
                        *p = '\0';
                assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
                if (!p)
                        break;
                *p = '/';
        }
        put(path, "memory.high", high);
        put(path, "memory.current", "1048576\n");
        assert_int_equal(stat(path, &st), 0);
        return (uint64_t)st.st_ino;
}

static const char *cgroup_high(struct fixture *fx, const char *relpath)
{
        char path[PATH_MAX];
        path_printf(path, "%s/%s", fx->cg, relpath);
        return get(path, "memory.high");
}

static unsigned count_entries(const char *dir, const char *suffix)
{
        DIR *d = opendir(dir);
        unsigned n = 0;

        if (!d)
                return 0;
        for (struct dirent *de; (de = readdir(d));) {
                size_t len = strlen(de->d_name), k = strlen(suffix);
                if (de->d_name[0] != '.' || strcmp(suffix, ".tmp") == 0)
                        if (len > k && strcmp(de->d_name + len - k, suffix) == 0)
                                n++;
        }
        closedir(d);
        return n;
}

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));

        assert_non_null(fx);
        path_printf(fx->root, "%s", "/tmp/memgov-test-restore-XXXXXX");
        assert_non_null(mkdtemp(fx->root));
        path_printf(fx->cg, "%s/cgroup", fx->root);
        path_printf(fx->state, "%s/state", fx->root);
        path_printf(fx->rdir, "%s/state/restore", fx->root);
        assert_int_equal(mkdir(fx->cg, 0755), 0);
        assert_int_equal(cgfs_new(fx->cg, NULL, &fx->cgfs), 0);
        *state = fx;
        return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static int teardown(void **state)
{
        struct fixture *fx = *state;

        nftw(fx->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        cgfs_free(fx->cgfs);
        free(fx);
        return 0;
}

static void save(struct fixture *fx, const char *service, const char *relpath, uint64_t ino,
                 uint64_t high)
{
        struct restore_record r = {
                .service = (char *)service,
                .relpath = (char *)relpath,
                .ino = ino,
                .backend = ACTUATE_BACKEND_CGROUPFS,
                .high_bytes = high,
        };
        assert_int_equal(restore_save(fx->state, &r), 1);
}

static void test_restore_file_name(void **state)
{
        static const struct {
                const char *relpath, *name;
        } table[] = {
                {"system.slice/app.service", "system.slice%2Fapp.service.json"},
                {"/system.slice//app.service/", "system.slice%2Fapp.service.json"},
                {"getty@tty1.service", "getty@tty1.service.json"},
                {".hidden/x", "%2Ehidden%2Fx.json"},
                {"a%2Fb", "a%252Fb.json"}, /* not the same as "a/b" */
                {"a b", "a%20b.json"},
        };
        char *name = NULL, *other = NULL;
        char longer[400];

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                assert_int_equal(restore_file_name(table[i].relpath, &name), 0);
                assert_string_equal(name, table[i].name);
                free(name);
        }
        assert_int_equal(restore_file_name("", &name), -EINVAL);
        assert_int_equal(restore_file_name("//", &name), -EINVAL);

        /* too long for a file name: cut, and told apart by a hash of the whole path */
        memset(longer, 'a', sizeof(longer) - 1);
        longer[sizeof(longer) - 1] = '\0';
        assert_int_equal(restore_file_name(longer, &name), 0);
        longer[sizeof(longer) - 2] = 'b';
        assert_int_equal(restore_file_name(longer, &other), 0);
        assert_true(strlen(name) < 255);
        assert_string_not_equal(name, other);
        free(name);
        free(other);
}

/* Written whole under its name, nothing left behind, never over an older record. */
static void test_restore_save_atomic_and_keeps_oldest(void **state)
{
        struct fixture *fx = *state;
        struct restore_record r = {};
        struct stat st;
        char path[PATH_MAX + 64];

        save(fx, "app", "/workloads/app/", 42, CGROUP_LIMIT_MAX);
        assert_string_equal(get(fx->rdir, "workloads%2Fapp.json"),
                            "{\"version\":1,\"service\":\"app\",\"cgroup\":\"workloads/app\","
                            "\"inode\":42,\"backend\":\"cgroupfs\",\"memory_high\":\"max\"}\n");
        assert_int_equal(count_entries(fx->rdir, ".tmp"), 0);
        path_printf(path, "%s/workloads%%2Fapp.json", fx->rdir);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);

        /* a later "original" is memgov's own value: the first record stays */
        struct restore_record later = {.relpath = "workloads/app",
                                       .ino = 42,
                                       .backend = ACTUATE_BACKEND_CGROUPFS,
                                       .high_bytes = 123 << 20};
        assert_int_equal(restore_save(fx->state, &later), 0);
        assert_int_equal(restore_load(fx->state, "workloads/app", &r), 0);
        assert_int_equal(r.high_bytes, CGROUP_LIMIT_MAX);
        assert_string_equal(r.service, "app");
        restore_record_clear(&r);
        assert_int_equal(restore_exists(fx->state, "workloads/app"), 1);
        assert_int_equal(restore_remove(fx->state, "workloads/app"), 0);
        assert_int_equal(restore_exists(fx->state, "workloads/app"), 0);
        assert_int_equal(restore_remove(fx->state, "workloads/app"), 0);
}

/*
 * memgovd died with three cgroups changed and one record half-written: at the next start
 * the originals come back, the records go, the half-written one is cleared away.
 */
static void test_restore_after_crash(void **state)
{
        struct fixture *fx = *state;
        struct restore_stats stats = {};
        struct restore_env env = {.cgfs = fx->cgfs};

        save(fx, "a", "svc/a", make_cgroup(fx, "svc/a", "947912704\n"), CGROUP_LIMIT_MAX);
        save(fx, "b", "svc/b", make_cgroup(fx, "svc/b", "500000000\n"), 1073741824);
        save(fx, "c", "c", make_cgroup(fx, "c", "max\n"), 700 << 20);
        put(fx->rdir, ".svc%2Fd.json.tmp", "{\"version\":1,\"cgr");

        assert_int_equal(restore_all(fx->state, NULL, &env, &stats), 0);
        assert_string_equal(cgroup_high(fx, "svc/a"), "max");
        assert_string_equal(cgroup_high(fx, "svc/b"), "1073741824");
        assert_string_equal(cgroup_high(fx, "c"), "734003200");
        assert_int_equal(stats.restored, 3);
        assert_int_equal(stats.dropped + stats.failed + stats.corrupt + stats.skipped, 0);
        assert_int_equal(count_entries(fx->rdir, ".json"), 0);
        assert_int_equal(count_entries(fx->rdir, ".tmp"), 0);

        /* nothing left: a second run does nothing */
        memset(&stats, 0, sizeof(stats));
        assert_int_equal(restore_all(fx->state, NULL, &env, &stats), 0);
        assert_int_equal(stats.restored, 0);
}

/* Another cgroup under the same path, or none: not ours to change; the record goes. */
static void test_restore_inode_mismatch_or_gone_dropped(void **state)
{
        struct fixture *fx = *state;
        struct restore_stats stats = {};
        struct restore_env env = {.cgfs = fx->cgfs};

        uint64_t ino = make_cgroup(fx, "anew", "123456512\n");
        save(fx, "anew", "anew", ino + 1, CGROUP_LIMIT_MAX);
        save(fx, "gone", "gone", 77, CGROUP_LIMIT_MAX);

        assert_int_equal(restore_all(fx->state, NULL, &env, &stats), 0);
        assert_string_equal(cgroup_high(fx, "anew"), "123456512\n");
        assert_int_equal(stats.dropped, 2);
        assert_int_equal(stats.restored, 0);
        assert_int_equal(count_entries(fx->rdir, ".json"), 0);
}

/* An unreadable record is set aside as .corrupt; the others are restored. */
static void test_restore_corrupt_kept_aside(void **state)
{
        struct fixture *fx = *state;
        struct restore_stats stats = {};
        struct restore_env env = {.cgfs = fx->cgfs};

        save(fx, "good", "good", make_cgroup(fx, "good", "1000000512\n"), CGROUP_LIMIT_MAX);
        put(fx->rdir, "broken.json", "{\"version\":1,\"cgroup\":");
        put(fx->rdir, "wrong.json",
            "{\"version\":1,\"cgroup\":\"x\",\"inode\":-3,\"backend\":\"cgroupfs\","
            "\"memory_high\":\"max\"}");
        put(fx->rdir, "nounit.json",
            "{\"version\":1,\"cgroup\":\"x\",\"inode\":3,\"backend\":\"systemd\","
            "\"memory_high\":\"max\"}");
        put(fx->rdir, "future.json",
            "{\"version\":2,\"cgroup\":\"x\",\"inode\":3,\"backend\":\"cgroupfs\","
            "\"memory_high\":\"max\"}");

        assert_int_equal(restore_all(fx->state, NULL, &env, &stats), 0);
        assert_int_equal(stats.corrupt, 4);
        assert_int_equal(stats.restored, 1);
        assert_string_equal(cgroup_high(fx, "good"), "max");
        assert_string_equal(get(fx->rdir, "broken.json.corrupt"), "{\"version\":1,\"cgroup\":");
        assert_null(get(fx->rdir, "broken.json"));
        assert_int_equal(count_entries(fx->rdir, ".json"), 0);
        assert_int_equal(count_entries(fx->rdir, ".corrupt"), 4);
}

/* A write that fails keeps the record for the next try; a dry run changes nothing. */
static void test_restore_failure_and_dry_run_keep_record(void **state)
{
        struct fixture *fx = *state;
        struct restore_stats stats = {};
        struct restore_env env = {.cgfs = fx->cgfs, .dry_run = true};
        char path[PATH_MAX];

        save(fx, "app", "app", make_cgroup(fx, "app", "947912704\n"), CGROUP_LIMIT_MAX);
        assert_int_equal(restore_all(fx->state, NULL, &env, &stats), 0);
        assert_int_equal(stats.skipped, 1);
        assert_string_equal(cgroup_high(fx, "app"), "947912704\n");
        assert_int_equal(restore_exists(fx->state, "app"), 1);

        /* memory.high cannot be written (here: it is a directory) */
        path_printf(path, "%s/app/memory.high", fx->cg);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(mkdir(path, 0755), 0);
        env.dry_run = false;
        memset(&stats, 0, sizeof(stats));
        assert_int_equal(restore_all(fx->state, NULL, &env, &stats), 0);
        assert_int_equal(stats.failed, 1);
        assert_int_equal(restore_exists(fx->state, "app"), 1);

        /* a systemd record with no manager to ask: kept */
        struct restore_record r = {.relpath = "unit.service",
                                   .ino = make_cgroup(fx, "unit.service", "max\n"),
                                   .backend = ACTUATE_BACKEND_SYSTEMD,
                                   .unit = "unit.service",
                                   .high_bytes = CGROUP_LIMIT_MAX};
        assert_int_equal(restore_save(fx->state, &r), 1);
        memset(&stats, 0, sizeof(stats));
        assert_true(restore_one(fx->state, "unit.service", &env, &stats) < 0);
        assert_int_equal(stats.failed, 1);
        assert_int_equal(restore_exists(fx->state, "unit.service"), 1);
}

/* A record of the systemd backend goes back through SetUnitProperties, synchronously. */
static void test_restore_systemd_record(void **state)
{
        struct fixture *fx = *state;
        struct restore_stats stats = {};
        struct systemd_peer peer;
        sd_bus *bus = NULL;

        systemd_peer_start(&peer, "/system.slice/app.service", "app.service", NULL, &bus);
        struct restore_record r = {
                .service = "app",
                .relpath = "system.slice/app.service",
                .ino = make_cgroup(fx, "system.slice/app.service", "947912704\n"),
                .backend = ACTUATE_BACKEND_SYSTEMD,
                .unit = "app.service",
                .high_bytes = 2147483648};
        assert_int_equal(restore_save(fx->state, &r), 1);

        struct restore_env env = {.cgfs = fx->cgfs, .bus = bus};
        assert_int_equal(restore_one(fx->state, "system.slice/app.service", &env, &stats), 0);
        assert_int_equal(stats.restored, 1);
        assert_int_equal(systemd_peer_n_calls(&peer), 1);
        struct sp_call c = systemd_peer_call(&peer, 0);
        assert_string_equal(c.method, "SetUnitProperties");
        assert_string_equal(c.unit, "app.service");
        assert_int_equal(c.runtime, 1);
        assert_string_equal(c.prop, "MemoryHigh");
        assert_string_equal(c.prop_type, "t");
        assert_int_equal(c.value, 2147483648);
        assert_int_equal(restore_exists(fx->state, "system.slice/app.service"), 0);

        sd_bus_flush_close_unref(bus);
        systemd_peer_stop(&peer);
}

static int ctl(const char *const *args)
{
        char *argv[16];
        int argc = 0;

        for (; args[argc]; argc++)
                argv[argc] = (char *)args[argc];
        argv[argc] = NULL;
        return ctl_restore(argc, argv);
}

/* memgovctl restore SERVICE, then --all, the way an operator runs it. */
static void test_memgovctl_restore(void **state)
{
        struct fixture *fx = *state;

        save(fx, "checkout", "system.slice/checkout.service",
             make_cgroup(fx, "system.slice/checkout.service", "947912704\n"), CGROUP_LIMIT_MAX);
        save(fx, "batch", "batch", make_cgroup(fx, "batch", "100003840\n"), 209715200);

        /* usage errors */
        assert_int_equal(ctl((const char *[]){"restore", "--state-dir", fx->state, NULL}), 2);
        assert_int_equal(ctl((const char *[]){"restore", "a", "--all", NULL}), 2);
        assert_int_equal(ctl((const char *[]){"restore", "a", "b", NULL}), 2);

        /* a dry run, by service name */
        assert_int_equal(ctl((const char *[]){"restore", "checkout", "--dry-run", "--state-dir",
                                              fx->state, "--cgroup-root", fx->cg, NULL}),
                         0);
        assert_string_equal(cgroup_high(fx, "system.slice/checkout.service"), "947912704\n");

        /* by service name: only that one */
        assert_int_equal(ctl((const char *[]){"restore", "checkout", "--state-dir", fx->state,
                                              "--cgroup-root", fx->cg, NULL}),
                         0);
        assert_string_equal(cgroup_high(fx, "system.slice/checkout.service"), "max");
        assert_string_equal(cgroup_high(fx, "batch"), "100003840\n");
        assert_int_equal(restore_exists(fx->state, "batch"), 1);

        /* nothing for that name any more: said, and not an error */
        assert_int_equal(ctl((const char *[]){"restore", "checkout", "--state-dir", fx->state,
                                              "--cgroup-root", fx->cg, NULL}),
                         0);

        /* by cgroup, and an unreadable record makes the exit status 1 */
        put(fx->rdir, "junk.json", "not json");
        assert_int_equal(ctl((const char *[]){"restore", "--all", "--state-dir", fx->state,
                                              "--cgroup-root", fx->cg, NULL}),
                         1);
        assert_string_equal(cgroup_high(fx, "batch"), "209715200");
        assert_int_equal(count_entries(fx->rdir, ".json"), 0);
        assert_non_null(get(fx->rdir, "junk.json.corrupt"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_restore_file_name),
                cmocka_unit_test_setup_teardown(test_restore_save_atomic_and_keeps_oldest, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_restore_after_crash, setup, teardown),
                cmocka_unit_test_setup_teardown(test_restore_inode_mismatch_or_gone_dropped, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_restore_corrupt_kept_aside, setup, teardown),
                cmocka_unit_test_setup_teardown(test_restore_failure_and_dry_run_keep_record, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_restore_systemd_record, setup, teardown),
                cmocka_unit_test_setup_teardown(test_memgovctl_restore, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

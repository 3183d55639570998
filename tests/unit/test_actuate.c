/* SPDX-License-Identifier: MIT */
/*
 * Actuate stage: the cgroupfs backend on a temporary cgroup tree (what lands in
 * memory.high, memory.reclaim and the restore record), the dry run, and the systemd backend
 * against a real sd-bus peer playing the manager (what went over the wire).
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
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "memgov/actuate.h"
#include "memgov/cgfs.h"
#include "memgov/macro.h"
#include "memgov/restore.h"
#include "systemd-peer.h"

#define MiB ((uint64_t)1 << 20)

#define path_printf(buf, ...)                                                                      \
        assert_true(snprintf(buf, sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

struct fixture {
        char root[PATH_MAX];  /* the temporary directory */
        char cg[PATH_MAX];    /* root/cgroup: the cgroup root */
        char state[PATH_MAX]; /* root/state: the state dir */
        sd_event *event;
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

/* The file's content, or NULL when it does not exist. Static buffer. */
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

/* Make root/cgroup/relpath with the memory files a 6.1 kernel shows; its path in buf. */
static void make_cgroup(struct fixture *fx, const char *relpath, char *buf, size_t size)
{
        char path[PATH_MAX];

        path_printf(path, "%s", fx->cg);
        for (const char *p = relpath;;) {
                const char *slash = strchr(p, '/');
                size_t len = slash ? (size_t)(slash - p) : strlen(p);
                size_t at = strlen(path);
                assert_true(at + 1 + len < sizeof(path));
                path[at] = '/';
                memcpy(path + at + 1, p, len);
                path[at + 1 + len] = '\0';
                assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
                if (!slash)
                        break;
                p = slash + 1;
        }
        put(path, "memory.current", "104857600\n");
        put(path, "memory.high", "max\n");
        put(path, "memory.max", "max\n");
        put(path, "memory.reclaim", "");
        assert_true(strlen(path) < size);
        strcpy(buf, path);
}

static int open_dir(const char *path)
{
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        return fd;
}

static uint64_t inode_of(const char *path)
{
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        return (uint64_t)st.st_ino;
}

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));

        assert_non_null(fx);
        path_printf(fx->root, "%s", "/tmp/memgov-test-actuate-XXXXXX");
        assert_non_null(mkdtemp(fx->root));
        path_printf(fx->cg, "%s/cgroup", fx->root);
        path_printf(fx->state, "%s/state", fx->root);
        assert_int_equal(mkdir(fx->cg, 0755), 0);
        assert_int_equal(sd_event_new(&fx->event), 0);
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
        sd_event_unref(fx->event);
        free(fx);
        return 0;
}

/* Run the loop until cond(arg) holds; fails the test after 10 s without it. */
static void run_until(sd_event *e, bool (*cond)(void *), void *arg)
{
        for (int i = 0; i < 100 && !cond(arg); i++)
                assert_true(sd_event_run(e, 100 * USEC_PER_MSEC) >= 0);
        assert_true(cond(arg));
}

static void test_actuate_unit_from_relpath(void **state)
{
        static const struct {
                const char *relpath;
                const char *unit; /* NULL: not a unit's name */
        } table[] = {
                {"system.slice/app.service", "app.service"},
                {"/system.slice/app.service/", "app.service"},
                {"user.slice/user-1000.slice", "user-1000.slice"},
                {"user.slice/user-1000.slice/session-3.scope", "session-3.scope"},
                {"system.slice/getty@tty1.service", "getty@tty1.service"},
                {"system.slice/_cpu.service", "cpu.service"},
                {"system.slice/app.service/worker", NULL},
                {"workloads/leaky", NULL},
                {".service", NULL},
                {"", NULL},
                {"/", NULL},
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                char *unit = NULL;
                int r = actuate_unit_from_relpath(table[i].relpath, &unit);
                if (!table[i].unit) {
                        assert_int_equal(r, 0);
                        assert_null(unit);
                } else {
                        assert_int_equal(r, 1);
                        assert_string_equal(unit, table[i].unit);
                }
                free(unit);
        }
}

/* cgroupfs: the value lands in memory.high, the original in a record first; back: both go. */
static void test_actuate_cgroupfs_writes_and_records(void **state)
{
        struct fixture *fx = *state;
        struct actuator *a = NULL;
        struct actuate_target *t = NULL;
        struct restore_record rec = {};
        char cg[PATH_MAX];

        make_cgroup(fx, "workloads/app", cg, sizeof(cg));
        put(cg, "memory.high", "1073741824\n"); /* an operator's value */
        int fd = open_dir(cg);
        assert_int_equal(actuator_new(fx->event, NULL, fx->state, false, &a), 0);
        assert_int_equal(actuate_target_new(a, "app", "workloads/app", fd, inode_of(cg),
                                            ACTUATE_BACKEND_AUTO, &t),
                         0);
        close(fd); /* the target keeps its own */
        assert_int_equal(t->backend, ACTUATE_BACKEND_CGROUPFS);

        assert_int_equal(actuate_set_high(t, 904 * MiB, 1073741824, "guard: test"), 0);
        assert_string_equal(get(cg, "memory.high"), "947912704");
        assert_int_equal(restore_load(fx->state, "workloads/app", &rec), 0);
        assert_string_equal(rec.relpath, "workloads/app");
        assert_string_equal(rec.service, "app");
        assert_int_equal(rec.backend, ACTUATE_BACKEND_CGROUPFS);
        assert_int_equal(rec.high_bytes, 1073741824);
        assert_int_equal(rec.ino, inode_of(cg));
        restore_record_clear(&rec);

        /* a second change keeps the first original */
        assert_int_equal(actuate_set_high(t, 880 * MiB, 904 * MiB, "guard: lower"), 0);
        assert_string_equal(get(cg, "memory.high"), "922746880");
        assert_int_equal(restore_load(fx->state, "workloads/app", &rec), 0);
        assert_int_equal(rec.high_bytes, 1073741824);
        restore_record_clear(&rec);

        /* the original back: the record goes */
        assert_int_equal(actuate_set_high(t, 1073741824, 1073741824, "release"), 0);
        assert_string_equal(get(cg, "memory.high"), "1073741824");
        assert_int_equal(restore_exists(fx->state, "workloads/app"), 0);
        assert_int_equal(a->n_changes, 3);

        /* "max" is written as the word */
        assert_int_equal(actuate_set_high(t, CGROUP_LIMIT_MAX, 1073741824, "livelock"), 0);
        assert_string_equal(get(cg, "memory.high"), "max");

        actuate_target_free(t);
        actuator_free(a);
}

/* A dry run writes neither memory.high nor a record. */
static void test_actuate_dry_run_writes_nothing(void **state)
{
        struct fixture *fx = *state;
        struct actuator *a = NULL;
        struct actuate_target *t = NULL;
        char cg[PATH_MAX], restore_dir[PATH_MAX + 16];
        struct stat st;

        make_cgroup(fx, "app", cg, sizeof(cg));
        int fd = open_dir(cg);
        assert_int_equal(actuator_new(fx->event, NULL, fx->state, true, &a), 0);
        assert_int_equal(
                actuate_target_new(a, "app", "app", fd, inode_of(cg), ACTUATE_BACKEND_CGROUPFS, &t),
                0);
        close(fd);
        assert_int_equal(actuate_set_high(t, 904 * MiB, CGROUP_LIMIT_MAX, "guard"), 0);
        assert_int_equal(actuate_reclaim(t, 100 * MiB), 0);
        assert_string_equal(get(cg, "memory.high"), "max\n");
        assert_string_equal(get(cg, "memory.reclaim"), "");
        path_printf(restore_dir, "%s/restore", fx->state);
        assert_int_equal(stat(restore_dir, &st), -1);
        assert_int_equal(t->high_bytes, 904 * MiB); /* what it would have set */
        actuate_target_free(t);
        actuator_free(a);
}

/* No record, no change: memory.high stays when the state dir cannot take the record. */
static void test_actuate_no_record_no_change(void **state)
{
        struct fixture *fx = *state;
        struct actuator *a = NULL;
        struct actuate_target *t = NULL;
        char cg[PATH_MAX], bad_state[PATH_MAX + 16];

        make_cgroup(fx, "app", cg, sizeof(cg));
        path_printf(bad_state, "%s/not-a-dir", fx->root);
        put(fx->root, "not-a-dir", "x");
        int fd = open_dir(cg);
        assert_int_equal(actuator_new(fx->event, NULL, bad_state, false, &a), 0);
        assert_int_equal(
                actuate_target_new(a, "app", "app", fd, inode_of(cg), ACTUATE_BACKEND_CGROUPFS, &t),
                0);
        close(fd);
        assert_true(actuate_set_high(t, 904 * MiB, CGROUP_LIMIT_MAX, "guard") < 0);
        assert_string_equal(get(cg, "memory.high"), "max\n");
        assert_int_equal(a->n_errors, 1);
        actuate_target_free(t);
        actuator_free(a);
}

static void test_actuate_reclaim(void **state)
{
        struct fixture *fx = *state;
        struct actuator *a = NULL;
        struct actuate_target *t = NULL;
        char cg[PATH_MAX], path[PATH_MAX + 32];

        make_cgroup(fx, "app", cg, sizeof(cg));
        int fd = open_dir(cg);
        assert_int_equal(actuator_new(fx->event, NULL, NULL, false, &a), 0);
        assert_int_equal(
                actuate_target_new(a, "app", "app", fd, inode_of(cg), ACTUATE_BACKEND_CGROUPFS, &t),
                0);
        close(fd);
        assert_int_equal(actuate_reclaim(t, 100 * MiB), 0);
        assert_string_equal(get(cg, "memory.reclaim"), "104857600");

        /* a kernel before 5.19: no memory.reclaim; said once, then not asked again */
        path_printf(path, "%s/memory.reclaim", cg);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(actuate_reclaim(t, 100 * MiB), -ENOENT);
        assert_true(t->reclaim_unsupported);
        assert_int_equal(actuate_reclaim(t, 100 * MiB), 0);
        actuate_target_free(t);
        actuator_free(a);
}

struct wait_calls {
        struct systemd_peer *peer;
        unsigned n_calls;
        struct actuate_target *t;
        uint64_t n_replies;
};

static bool calls_and_replies(void *arg)
{
        struct wait_calls *w = arg;
        return (!w->peer || systemd_peer_n_calls(w->peer) >= w->n_calls) &&
               (!w->t || w->t->n_set_replies >= w->n_replies);
}

static bool bus_closed(void *arg)
{
        return sd_bus_is_open(arg) <= 0;
}

static bool resolved(void *arg)
{
        struct actuate_target *t = arg;
        return t->backend != ACTUATE_BACKEND_AUTO;
}

/*
 * systemd: the manager is asked which unit owns the cgroup, then MemoryHigh= is set at
 * runtime on that unit; "max" goes as UINT64_MAX; the record names the unit.
 */
static void test_actuate_systemd_backend_over_the_bus(void **state)
{
        struct fixture *fx = *state;
        struct systemd_peer peer;
        struct actuator *a = NULL;
        struct actuate_target *t = NULL;
        struct restore_record rec = {};
        sd_bus *bus = NULL;
        char cg[PATH_MAX];

        systemd_peer_start(&peer, "/system.slice/app.service", "app.service", fx->event, &bus);
        make_cgroup(fx, "system.slice/app.service", cg, sizeof(cg));
        int fd = open_dir(cg);
        assert_int_equal(actuator_new(fx->event, bus, fx->state, false, &a), 0);
        assert_int_equal(actuate_target_new(a, "app", "system.slice/app.service", fd, inode_of(cg),
                                            ACTUATE_BACKEND_AUTO, &t),
                         0);
        close(fd);
        /* asked before the answer came: queued, then sent */
        assert_int_equal(t->backend, ACTUATE_BACKEND_AUTO);
        assert_int_equal(actuate_set_high(t, 904 * MiB, CGROUP_LIMIT_MAX, "guard: test"), 0);
        run_until(fx->event, calls_and_replies,
                  &(struct wait_calls){.peer = &peer, .n_calls = 2, .t = t, .n_replies = 1});
        assert_int_equal(t->backend, ACTUATE_BACKEND_SYSTEMD);
        assert_string_equal(t->unit, "app.service");

        struct sp_call c = systemd_peer_call(&peer, 0);
        assert_string_equal(c.method, "GetUnitByControlGroup");
        assert_string_equal(c.interface, "org.freedesktop.systemd1.Manager");
        assert_string_equal(c.path, "/org/freedesktop/systemd1");
        assert_string_equal(c.cgroup, "/system.slice/app.service");

        c = systemd_peer_call(&peer, 1);
        assert_string_equal(c.method, "SetUnitProperties");
        assert_string_equal(c.interface, "org.freedesktop.systemd1.Manager");
        assert_string_equal(c.path, "/org/freedesktop/systemd1");
        assert_string_equal(c.unit, "app.service");
        assert_int_equal(c.runtime, 1);
        assert_int_equal(c.n_props, 1);
        assert_string_equal(c.prop, "MemoryHigh");
        assert_string_equal(c.prop_type, "t");
        assert_int_equal(c.value, 904 * MiB);
        assert_int_equal(a->n_errors, 0);

        /* systemd writes the file, not memgov */
        assert_string_equal(get(cg, "memory.high"), "max\n");
        assert_int_equal(restore_load(fx->state, "system.slice/app.service", &rec), 0);
        assert_int_equal(rec.backend, ACTUATE_BACKEND_SYSTEMD);
        assert_string_equal(rec.unit, "app.service");
        assert_int_equal(rec.high_bytes, CGROUP_LIMIT_MAX);
        restore_record_clear(&rec);

        /* the original ("max") back: infinity on the bus, the record gone */
        assert_int_equal(actuate_set_high(t, CGROUP_LIMIT_MAX, CGROUP_LIMIT_MAX, "release"), 0);
        run_until(fx->event, calls_and_replies,
                  &(struct wait_calls){.peer = &peer, .n_calls = 3, .t = t, .n_replies = 2});
        c = systemd_peer_call(&peer, 2);
        assert_string_equal(c.method, "SetUnitProperties");
        assert_int_equal(c.runtime, 1);
        assert_int_equal(c.value, UINT64_MAX);
        assert_int_equal(restore_exists(fx->state, "system.slice/app.service"), 0);

        actuate_target_free(t);
        actuator_free(a);
        sd_bus_flush_close_unref(bus);
        systemd_peer_stop(&peer);
}

/* A .service-named cgroup systemd does not own: auto writes the file; systemd refuses. */
static void test_actuate_systemd_not_a_unit(void **state)
{
        struct fixture *fx = *state;
        struct systemd_peer peer;
        struct actuator *a = NULL;
        struct actuate_target *t = NULL, *t2 = NULL;
        sd_bus *bus = NULL;
        char cg[PATH_MAX];

        systemd_peer_start(&peer, "/system.slice/app.service", "app.service", fx->event, &bus);
        make_cgroup(fx, "delegated/app.service", cg, sizeof(cg));
        int fd = open_dir(cg);
        assert_int_equal(actuator_new(fx->event, bus, fx->state, false, &a), 0);

        assert_int_equal(actuate_target_new(a, "app", "delegated/app.service", fd, inode_of(cg),
                                            ACTUATE_BACKEND_AUTO, &t),
                         0);
        run_until(fx->event, resolved, t);
        assert_int_equal(t->backend, ACTUATE_BACKEND_CGROUPFS);
        assert_int_equal(actuate_set_high(t, 904 * MiB, CGROUP_LIMIT_MAX, "guard"), 0);
        assert_string_equal(get(cg, "memory.high"), "947912704");

        /* the policy insists on systemd: nothing is changed */
        put(cg, "memory.high", "max\n");
        assert_int_equal(actuate_target_new(a, "app", "delegated/app.service", fd, inode_of(cg),
                                            ACTUATE_BACKEND_SYSTEMD, &t2),
                         0);
        close(fd);
        assert_int_equal(actuate_set_high(t2, 904 * MiB, CGROUP_LIMIT_MAX, "guard"), 0);
        run_until(fx->event, resolved, t2);
        assert_int_equal(t2->backend, _ACTUATE_BACKEND_INVALID);
        assert_int_equal(actuate_set_high(t2, 800 * MiB, CGROUP_LIMIT_MAX, "guard"), -EOPNOTSUPP);
        assert_string_equal(get(cg, "memory.high"), "max\n");
        for (unsigned i = 0; i < systemd_peer_n_calls(&peer); i++)
                assert_string_equal(systemd_peer_call(&peer, i).method, "GetUnitByControlGroup");

        actuate_target_free(t2);
        actuate_target_free(t);
        actuator_free(a);
        sd_bus_flush_close_unref(bus);
        systemd_peer_stop(&peer);
}

/* The manager refuses the property: counted as an error, logged, the loop goes on. */
static void test_actuate_systemd_refusal(void **state)
{
        struct fixture *fx = *state;
        struct systemd_peer peer;
        struct actuator *a = NULL;
        struct actuate_target *t = NULL;
        sd_bus *bus = NULL;
        char cg[PATH_MAX];

        systemd_peer_start(&peer, "/system.slice/app.service", "app.service", fx->event, &bus);
        peer.set_error = SD_BUS_ERROR_ACCESS_DENIED;
        make_cgroup(fx, "system.slice/app.service", cg, sizeof(cg));
        int fd = open_dir(cg);
        assert_int_equal(actuator_new(fx->event, bus, NULL, false, &a), 0);
        assert_int_equal(actuate_target_new(a, "app", "system.slice/app.service", fd, inode_of(cg),
                                            ACTUATE_BACKEND_SYSTEMD, &t),
                         0);
        close(fd);
        run_until(fx->event, resolved, t);
        assert_int_equal(t->backend, ACTUATE_BACKEND_SYSTEMD);
        assert_int_equal(actuate_set_high(t, 904 * MiB, CGROUP_LIMIT_MAX, "guard"), 0);
        run_until(fx->event, calls_and_replies,
                  &(struct wait_calls){.peer = &peer, .n_calls = 2, .t = t, .n_replies = 1});
        assert_int_equal(a->n_errors, 1);
        assert_string_equal(get(cg, "memory.high"), "max\n");

        actuate_target_free(t);
        actuator_free(a);
        sd_bus_flush_close_unref(bus);
        systemd_peer_stop(&peer);
}

/* Without a bus, auto is cgroupfs and systemd is refused at once. */
static void test_actuate_no_bus(void **state)
{
        struct fixture *fx = *state;
        struct actuator *a = NULL;
        struct actuate_target *t = NULL;
        char cg[PATH_MAX];

        make_cgroup(fx, "system.slice/app.service", cg, sizeof(cg));
        int fd = open_dir(cg);
        assert_int_equal(actuator_new(fx->event, NULL, NULL, false, &a), 0);
        assert_int_equal(actuate_target_new(a, "app", "system.slice/app.service", fd, inode_of(cg),
                                            ACTUATE_BACKEND_AUTO, &t),
                         0);
        assert_int_equal(t->backend, ACTUATE_BACKEND_CGROUPFS);
        t = actuate_target_free(t);
        assert_int_equal(actuate_target_new(a, "app", "system.slice/app.service", fd, inode_of(cg),
                                            ACTUATE_BACKEND_SYSTEMD, &t),
                         0);
        close(fd);
        assert_int_equal(t->backend, _ACTUATE_BACKEND_INVALID);
        assert_int_equal(actuate_set_high(t, 904 * MiB, CGROUP_LIMIT_MAX, "guard"), -EOPNOTSUPP);
        assert_string_equal(get(cg, "memory.high"), "max\n");
        actuate_target_free(t);
        actuator_free(a);
}

/*
 * The systemd backend against a real systemd manager, with the unit's cgroup in a real
 * cgroup2 tree: run by tests/vm/scenarios/systemd_backend.sh, which boots systemd in the
 * VM and names the unit's cgroup in MEMGOV_TEST_SYSTEMD_CGROUP. Skipped elsewhere.
 */
static void test_actuate_systemd_real_manager(void **state)
{
        struct fixture *fx = *state;
        const char *relpath = getenv("MEMGOV_TEST_SYSTEMD_CGROUP");
        const char *root = getenv("MEMGOV_CGROUP_ROOT");
        struct actuator *a = NULL;
        struct actuate_target *t = NULL;
        struct restore_stats stats = {};
        struct cgfs *cgfs = NULL;
        sd_bus *bus = NULL;
        char cg[PATH_MAX];
        int fd;

        if (!relpath) {
                skip();
                return;
        }
        if (!root)
                root = "/sys/fs/cgroup";
        path_printf(cg, "%s/%s", root, relpath);
        assert_int_equal(actuate_bus_open(fx->event, &bus), 0);
        assert_int_equal(cgfs_new(root, NULL, &cgfs), 0);
        assert_int_equal(cgfs_open_cgroup(cgfs, relpath, &fd), 0);
        assert_string_equal(get(cg, "memory.high"), "max\n");

        assert_int_equal(actuator_new(fx->event, bus, fx->state, false, &a), 0);
        assert_int_equal(
                actuate_target_new(a, "probe", relpath, fd, inode_of(cg), ACTUATE_BACKEND_AUTO, &t),
                0);
        close(fd);
        run_until(fx->event, resolved, t);
        assert_int_equal(t->backend, ACTUATE_BACKEND_SYSTEMD);

        assert_int_equal(actuate_set_high(t, 300 * MiB, CGROUP_LIMIT_MAX, "vm: real manager"), 0);
        run_until(fx->event, calls_and_replies,
                  &(struct wait_calls){.peer = NULL, .t = t, .n_replies = 1});
        assert_int_equal(a->n_errors, 0);
        /* systemd wrote it */
        assert_string_equal(get(cg, "memory.high"), "314572800\n");
        assert_int_equal(restore_exists(fx->state, relpath), 1);

        /* and puts the original back when restore asks it to */
        struct restore_env env = {.cgfs = cgfs, .bus = bus};
        assert_int_equal(restore_all(fx->state, NULL, &env, &stats), 0);
        assert_int_equal(stats.restored, 1);
        assert_string_equal(get(cg, "memory.high"), "max\n");
        assert_int_equal(restore_exists(fx->state, relpath), 0);

        /* systemd re-executes (an upgrade) and drops the connection: the next change reconnects */
        a->reconnect = true;
        char *argv[] = {(char *)"systemctl", (char *)"daemon-reexec", NULL};
        pid_t pid;
        int status;
        assert_int_equal(posix_spawnp(&pid, "systemctl", NULL, NULL, argv, environ), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        /* sd-bus may notice the reset only when it next writes: run a while, not until */
        for (int i = 0; i < 20 && !bus_closed(bus); i++)
                assert_true(sd_event_run(fx->event, 100 * USEC_PER_MSEC) >= 0);
        assert_int_equal(actuate_set_high(t, 250 * MiB, CGROUP_LIMIT_MAX, "vm: after reexec"), 0);
        assert_ptr_not_equal(a->bus, bus);
        run_until(fx->event, calls_and_replies,
                  &(struct wait_calls){.peer = NULL, .t = t, .n_replies = 2});
        assert_int_equal(a->n_errors, 0);
        assert_string_equal(get(cg, "memory.high"), "262144000\n");
        env.bus = actuator_bus(a);
        memset(&stats, 0, sizeof(stats));
        assert_int_equal(restore_all(fx->state, NULL, &env, &stats), 0);
        assert_int_equal(stats.restored, 1);
        assert_string_equal(get(cg, "memory.high"), "max\n");

        actuate_target_free(t);
        actuator_free(a);
        cgfs_free(cgfs);
        sd_bus_flush_close_unref(bus);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_actuate_unit_from_relpath),
                cmocka_unit_test_setup_teardown(test_actuate_cgroupfs_writes_and_records, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_actuate_dry_run_writes_nothing, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_actuate_no_record_no_change, setup, teardown),
                cmocka_unit_test_setup_teardown(test_actuate_reclaim, setup, teardown),
                cmocka_unit_test_setup_teardown(test_actuate_systemd_backend_over_the_bus, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_actuate_systemd_not_a_unit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_actuate_systemd_refusal, setup, teardown),
                cmocka_unit_test_setup_teardown(test_actuate_no_bus, setup, teardown),
                cmocka_unit_test_setup_teardown(test_actuate_systemd_real_manager, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

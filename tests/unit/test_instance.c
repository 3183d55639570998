/* SPDX-License-Identifier: MIT */
/*
 * One instance seen from the daemon's edge: how long its sample ring looks back, what its
 * event lines say, and that memory.high changes reach systemd through the actuator's
 * connection of the moment. A daemon runs over a temporary cgroup tree (one cgroup, a
 * policy, a config pointing every directory into the tree); stderr is caught in a file to
 * read the log lines as a user would.
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

#include "memgov/actuate.h"
#include "memgov/cgfs.h"
#include "memgov/daemon.h"
#include "memgov/diag.h"
#include "memgov/instance.h"
#include "memgov/log.h"
#include "memgov/macro.h"
#include "memgov/policy.h"

struct tree {
        char root[PATH_MAX];
        char path[PATH_MAX + 32];
        struct daemon *d;
};

static void put(struct tree *t, const char *rel, const char *content)
{
        snprintf(t->path, sizeof(t->path), "%s/%s", t->root, rel);
        FILE *f = fopen(t->path, "w");
        assert_non_null(f);
        assert_true(fputs(content, f) >= 0);
        assert_int_equal(fclose(f), 0);
}

static void dir(struct tree *t, const char *rel)
{
        snprintf(t->path, sizeof(t->path), "%s/%s", t->root, rel);
        assert_int_equal(mkdir(t->path, 0755), 0);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)ftw;
        return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static int setup(void **state)
{
        struct tree *t = calloc(1, sizeof(*t));
        assert_non_null(t);

        snprintf(t->root, sizeof(t->root), "%s/memgov-test-instance-XXXXXX",
                 getenv("TMPDIR") ?: "/tmp");
        assert_non_null(mkdtemp(t->root));
        dir(t, "cg");
        dir(t, "proc");
        dir(t, "pol");
        dir(t, "cg/svc");
        dir(t, "cg/svc/a");
        put(t, "cg/cgroup.controllers", "cpu io memory pids\n");
        put(t, "proc/meminfo", "MemTotal:        8388608 kB\nMemFree:         1000 kB\n");
        put(t, "cg/svc/a/memory.current", "104857600\n");
        put(t, "cg/svc/a/memory.max", "max\n");
        put(t, "cg/svc/a/memory.high", "max\n");
        put(t, "cg/svc/a/memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
        put(t, "cg/svc/a/memory.stat", "anon 104857600\nfile 0\n");
        put(t, "cg/svc/a/memory.pressure",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
            "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
        put(t, "pol/a.json",
            "{\"cgroup\": \"svc/*\", \"sample_interval\": \"1h\", \"forecast\": {\"window\": "
            "\"24h\"}}\n");
        char config[PATH_MAX + 128];
        snprintf(config, sizeof(config),
                 "{\"rescan_interval\": \"1h\", \"runtime_dir\": \"%s/run\"}\n", t->root);
        put(t, "memgovd.json", config);
        if (!getenv("MEMGOV_TEST_VERBOSE"))
                log_set_max_level(LOG_WARNING);
        *state = t;
        return 0;
}

static int teardown(void **state)
{
        struct tree *t = *state;

        t->d = daemon_free(t->d);
        assert_int_equal(nftw(t->root, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
        free(t);
        return 0;
}

/* Load the config and the policies as memgovd does and start governing the tree. */
static void start(struct tree *t)
{
        char config[PATH_MAX + 32], pol[PATH_MAX + 32], cg[PATH_MAX + 32], proc[PATH_MAX + 32],
                st[PATH_MAX + 32];
        snprintf(config, sizeof(config), "%s/memgovd.json", t->root);
        snprintf(pol, sizeof(pol), "%s/pol", t->root);
        snprintf(cg, sizeof(cg), "%s/cg", t->root);
        snprintf(proc, sizeof(proc), "%s/proc", t->root);
        snprintf(st, sizeof(st), "%s/state", t->root);
        struct daemon_args args = {
                .config_path = config,
                .policy_dir = pol,
                .cgroup_root = cg,
                .proc_root = proc,
                .state_dir = st,
        };
        struct memgov_config c = {};
        struct policy_set *set = NULL;
        struct cgfs *cgfs = NULL;
        struct diag diag = {};

        assert_int_equal(daemon_config_load(&args, &diag, &c), 0);
        assert_int_equal(cgfs_new(c.cgroup_root, args.proc_root, &cgfs), 0);
        assert_int_equal(policy_set_load_dir(c.policy_dir, &diag, &set), 0);
        assert_int_equal(daemon_new(&args, &c, cgfs, set, &t->d), 0);
        assert_int_equal(daemon_start(t->d), 0);
        diag_clear(&diag);
}

static struct policy *load(const char *json)
{
        struct diag d = {};
        struct policy *p = NULL;

        int r = policy_load_buffer("test.json", json, strlen(json), &d, &p);
        if (r < 0)
                diag_print(&d, stderr);
        assert_int_equal(r, 0);
        diag_clear(&d);
        return p;
}

/*
 * The ring spans the forecast window, and at least 15 minutes (what the status API and the
 * incident bundles look back over), within INSTANCE_RING_MAX.
 */
static void test_instance_ring_capacity_covers_lookback(void **state)
{
        static const struct {
                const char *interval, *window;
                size_t want;
        } cases[] = {
                /* a short window still holds 15 minutes of samples */
                {"1s", "10s", 900},
                {"1s", "5m", 900},
                {"500ms", "5m", 1800},
                /* the fastest interval: 15 minutes just fit */
                {"100ms", "5m", 9000},
                /* a window longer than 15 minutes: the whole window */
                {"1s", "30m", 1800},
                {"7s", "1h", 515}, /* 3600 / 7, rounded up */
                {"1h", "24h", 24},
                /* bounded: 24 h at 100 ms would be 864,000 samples */
                {"100ms", "24h", INSTANCE_RING_MAX},
        };
        char json[256];

        (void)state;
        for (size_t k = 0; k < ELEMENTSOF(cases); k++) {
                snprintf(json, sizeof(json),
                         "{\"cgroup\": \"x.service\", \"sample_interval\": \"%s\", "
                         "\"forecast\": {\"window\": \"%s\"}}",
                         cases[k].interval, cases[k].window);
                struct policy *p = load(json);
                size_t cap = instance_ring_capacity(p);
                if (cap != cases[k].want)
                        fail_msg("interval %s, window %s: capacity %zu, want %zu",
                                 cases[k].interval, cases[k].window, cap, cases[k].want);
                policy_free(p);
        }
        assert_int_equal(INSTANCE_RING_MAX, INSTANCE_RING_LOOKBACK_USEC / (100 * USEC_PER_MSEC));
}

/* The daemon's instance preallocates that ring. */
static void test_instance_ring_preallocated(void **state)
{
        struct tree *t = *state;

        put(t, "pol/a.json",
            "{\"cgroup\": \"svc/*\", \"sample_interval\": \"1s\", \"forecast\": {\"window\": "
            "\"10s\"}}\n");
        start(t);
        struct instance *i = daemon_get_instance(t->d, "svc/a");
        assert_non_null(i);
        assert_int_equal(i->ring.cap, 900);
        assert_non_null(i->ring.buf);
        assert_int_equal(i->ring.size, 900 * SAMPLE_RING_BYTES_PER_SAMPLE);
}

/* Read what the daemon logs on stderr while fn runs. */
static char *catch_stderr(struct tree *t, void (*fn)(struct tree *t))
{
        char path[PATH_MAX + 16];
        snprintf(path, sizeof(path), "%s/stderr", t->root);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        fflush(stderr);
        int saved = dup(STDERR_FILENO);
        assert_true(saved >= 0);
        assert_true(dup2(fd, STDERR_FILENO) >= 0);
        enum log_target target = log_get_target();
        log_set_target(LOG_TARGET_STDERR);

        fn(t);

        fflush(stderr);
        log_set_target(target);
        assert_true(dup2(saved, STDERR_FILENO) >= 0);
        close(saved);
        char *buf = calloc(1, 65536);
        assert_non_null(buf);
        ssize_t n = pread(fd, buf, 65535, 0);
        assert_true(n >= 0);
        close(fd);
        return buf;
}

static void raise_livelock(struct tree *t)
{
        struct instance *i = daemon_get_instance(t->d, "svc/a");
        assert_non_null(i);
        /* the reason govern.c gives a livelock step, as the pipeline passes it on */
        instance_raise_event(t->d, i,
                             &(struct instance_event){
                                     .type = EVENT_LIVELOCK,
                                     .level = LEVEL_CRITICAL,
                                     .previous_level = LEVEL_OK,
                                     .reason_name = "livelock",
                                     .detail = "livelock: memory.current 100.0M at memory.high "
                                               "100.0M with PSI full avg10 80.0% >= 60.0%; "
                                               "raised to 110.0M",
                             });
}

/* The livelock line says "livelock:" once, then govern's words. */
static void test_instance_livelock_line_prefixed_once(void **state)
{
        struct tree *t = *state;

        start(t);
        char *out = catch_stderr(t, raise_livelock);
        const char *line = strstr(out, "svc/a: livelock: memory.current 100.0M");
        if (!line || strstr(out, "livelock: livelock"))
                fail_msg("the livelock line reads: %s", out);
        assert_non_null(strstr(line, "raised to 110.0M"));
        free(out);
}

/*
 * The daemon's actuator reopens the systemd connection when systemd closed it
 * (daemon-reexec): memory.high changes and give-backs ask actuator_bus() for it.
 */
static void test_instance_actuator_reconnects(void **state)
{
        struct tree *t = *state;

        start(t);
        assert_non_null(t->d->actuator);
        assert_true(t->d->actuator->reconnect);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_instance_ring_capacity_covers_lookback),
                cmocka_unit_test_setup_teardown(test_instance_ring_preallocated, setup, teardown),
                cmocka_unit_test_setup_teardown(test_instance_livelock_line_prefixed_once, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_instance_actuator_reconnects, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

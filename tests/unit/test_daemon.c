/* SPDX-License-Identifier: MIT */
/*
 * The daemon's instance tracking against temporary cgroup trees: instances appear and
 * vanish with directories, a re-created directory is a new instance, memory.events changes
 * are sampled through inotify long before the timer, reloads are all or nothing.
 *
 * The pipeline on top: a cgroup growing toward its memory.max goes ok → warn → degrade →
 * critical, with the forecast's ETA, and the warn event reaches a webhook receiver signed.
 *
 * The loop is driven with sd_event_run() until a condition holds or a deadline passes; the
 * deadline only bounds a failing test, nothing asserts on time. PSI triggers need a real
 * cgroup2 filesystem (on a temp tree memory.pressure is a plain file and the instances run
 * on timer and inotify only): tests/vm covers them on a real kernel.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <json-c/json.h>

#include "loopback-server.h"
#include "memgov/cgfs.h"
#include "memgov/daemon.h"
#include "memgov/incident.h"
#include "memgov/log.h"
#include "memgov/policy.h"
#include "memgov/restore.h"
#include "memgov/status.h"
#include "memgov/webhook.h"

#define DEADLINE_USEC  (10 * USEC_PER_SEC)
#define MEMTOTAL_BYTES (8ull << 30)

struct tree {
        char root[PATH_MAX];
        char cg[PATH_MAX + 8];
        char proc[PATH_MAX + 8];
        char pol[PATH_MAX + 8];
        char config[PATH_MAX + 16];
        char state[PATH_MAX + 8];
        bool dry_run; /* start() with --dry-run */
        struct daemon *d;
};

static void write_file(const char *path, const char *content, const char *mode)
{
        FILE *f = fopen(path, mode);
        assert_non_null(f);
        assert_true(fputs(content, f) >= 0);
        assert_int_equal(fclose(f), 0);
}

static void writef(const char *content, const char *mode, const char *fmt, ...) _printf_(3, 4);
static void writef(const char *content, const char *mode, const char *fmt, ...)
{
        char path[PATH_MAX * 2];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(path, sizeof(path), fmt, ap);
        va_end(ap);
        write_file(path, content, mode);
}

static const char events_zero[] = "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n";

/* A cgroup directory as the kernel would show it (the files memgov reads), at dir. */
static void fill_cgroup(const char *dir, const char *current)
{
        assert_int_equal(mkdir(dir, 0755), 0);
        writef(current, "w", "%s/memory.current", dir);
        writef("max\n", "w", "%s/memory.max", dir);
        writef("max\n", "w", "%s/memory.high", dir);
        writef(events_zero, "w", "%s/memory.events", dir);
        writef("anon 1000\nfile 24\n", "w", "%s/memory.stat", dir);
        writef("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
               "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
               "w", "%s/memory.pressure", dir);
}

static void make_cgroup(struct tree *t, const char *rel, const char *current)
{
        char dir[PATH_MAX * 2];

        snprintf(dir, sizeof(dir), "%s/%s", t->cg, rel);
        fill_cgroup(dir, current);
}

static void make_dir(struct tree *t, const char *rel)
{
        char dir[PATH_MAX * 2];

        snprintf(dir, sizeof(dir), "%s/%s", t->cg, rel);
        assert_int_equal(mkdir(dir, 0755), 0);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)ftw;
        return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_rf(const char *path)
{
        assert_int_equal(nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static void remove_cgroup(struct tree *t, const char *rel)
{
        char dir[PATH_MAX * 2];

        snprintf(dir, sizeof(dir), "%s/%s", t->cg, rel);
        rm_rf(dir);
}

static void write_policy(struct tree *t, const char *name, const char *json)
{
        writef(json, "w", "%s/%s", t->pol, name);
}

static int setup(void **state)
{
        struct tree *t = calloc(1, sizeof(*t));
        assert_non_null(t);

        snprintf(t->root, sizeof(t->root), "%s/memgov-test-daemon-XXXXXX",
                 getenv("TMPDIR") ?: "/tmp");
        assert_non_null(mkdtemp(t->root));
        snprintf(t->cg, sizeof(t->cg), "%s/cg", t->root);
        snprintf(t->proc, sizeof(t->proc), "%s/proc", t->root);
        snprintf(t->pol, sizeof(t->pol), "%s/pol", t->root);
        snprintf(t->config, sizeof(t->config), "%s/memgovd.json", t->root);
        snprintf(t->state, sizeof(t->state), "%s/state", t->root);
        assert_int_equal(mkdir(t->cg, 0755), 0);
        assert_int_equal(mkdir(t->proc, 0755), 0);
        assert_int_equal(mkdir(t->pol, 0755), 0);
        writef("cpu io memory pids\n", "w", "%s/cgroup.controllers", t->cg);
        writef("MemTotal:        8388608 kB\nMemFree:         1000 kB\n", "w", "%s/meminfo",
               t->proc);
        /* The safety-net rescan must not be what makes a test pass. */
        char config[PATH_MAX * 2];
        snprintf(config, sizeof(config),
                 "{\"rescan_interval\": \"1h\", \"runtime_dir\": \"%s/run\"}\n", t->root);
        write_file(t->config, config, "w");

        if (!getenv("MEMGOV_TEST_VERBOSE"))
                log_set_max_level(LOG_WARNING);
        *state = t;
        return 0;
}

static int teardown(void **state)
{
        struct tree *t = *state;

        t->d = daemon_free(t->d);
        rm_rf(t->root);
        free(t);
        return 0;
}

/* Load config and policies as memgovd does and start governing the tree. */
static void start(struct tree *t)
{
        struct daemon_args args = {
                .config_path = t->config,
                .policy_dir = t->pol,
                .cgroup_root = t->cg,
                .proc_root = t->proc,
                .state_dir = t->state,
                .dry_run = t->dry_run,
        };
        struct memgov_config config = {};
        struct policy_set *set = NULL;
        struct cgfs *cgfs = NULL;
        struct diag diag = {};

        assert_int_equal(daemon_config_load(&args, &diag, &config), 0);
        assert_int_equal(cgfs_new(config.cgroup_root, args.proc_root, &cgfs), 0);
        if (policy_set_load_dir(config.policy_dir, &diag, &set) < 0) {
                diag_print(&diag, stderr);
                fail_msg("the test's policies do not load");
        }
        assert_int_equal(daemon_new(&args, &config, cgfs, set, &t->d), 0);
        assert_int_equal(daemon_start(t->d), 0);
        diag_clear(&diag);
}

static uint64_t now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

typedef bool (*condition_t)(struct daemon *d, const void *arg);

/* Run the loop until cond holds (true) or the deadline passes (false). */
static bool run_until(struct daemon *d, condition_t cond, const void *arg)
{
        uint64_t deadline = now_usec() + DEADLINE_USEC;

        while (!cond(d, arg)) {
                if (now_usec() > deadline)
                        return false;
                assert_true(sd_event_run(d->event, 100 * USEC_PER_MSEC) >= 0);
        }
        return true;
}

/* Run the loop until nothing is pending: the inotify events already queued are handled. */
static void run_until_idle(struct daemon *d)
{
        uint64_t deadline = now_usec() + DEADLINE_USEC;
        int r;

        while ((r = sd_event_run(d->event, 0)) > 0)
                assert_true(now_usec() < deadline);
        assert_true(r >= 0);
}

static bool has_instance(struct daemon *d, const void *relpath)
{
        return daemon_get_instance(d, relpath) != NULL;
}

static bool lacks_instance(struct daemon *d, const void *relpath)
{
        return daemon_get_instance(d, relpath) == NULL;
}

struct samples_at_least {
        const char *relpath;
        uint64_t n;
};

static bool has_samples(struct daemon *d, const void *arg)
{
        const struct samples_at_least *s = arg;
        struct instance *i = daemon_get_instance(d, s->relpath);
        return i && i->n_samples >= s->n;
}

struct other_inode {
        const char *relpath;
        uint64_t ino;
};

static bool has_other_inode(struct daemon *d, const void *arg)
{
        const struct other_inode *o = arg;
        struct instance *i = daemon_get_instance(d, o->relpath);
        return i && i->ino != o->ino;
}

/* A policy sampling once an hour: only inotify can explain a sample within the test. */
#define POLICY_HOURLY(glob)                                                                        \
        "{\"cgroup\": \"" glob "\", \"sample_interval\": \"1h\", \"forecast\": {\"window\": "      \
        "\"24h\"}}\n"

static void test_daemon_instance_appears_and_vanishes(void **state)
{
        struct tree *t = *state;

        make_dir(t, "svc");
        write_policy(t, "checkout.json", POLICY_HOURLY("svc/*.service"));
        start(t);
        assert_int_equal(daemon_get_instance_count(t->d), 0);

        make_cgroup(t, "svc/checkout.service", "4096\n");
        make_dir(t, "svc/not-a-match.scope");
        assert_true(run_until(t->d, has_instance, "svc/checkout.service"));

        struct instance *i = daemon_get_instance(t->d, "svc/checkout.service");
        assert_string_equal(i->policy->service, "checkout");
        assert_int_equal(i->n_samples, 1);
        assert_true(i->has_last);
        assert_int_equal(i->last.current_bytes, 4096);
        assert_int_equal(i->last.limit_bytes, MEMTOTAL_BYTES);
        assert_int_equal(instance_ring_size(i), 1);
        assert_int_equal(daemon_get_instance_count(t->d), 1);

        remove_cgroup(t, "svc/checkout.service");
        assert_true(run_until(t->d, lacks_instance, "svc/checkout.service"));
        assert_int_equal(daemon_get_instance_count(t->d), 0);
}

static void test_daemon_parent_created_late(void **state)
{
        struct tree *t = *state;

        /* Neither the slice nor the service exists when the daemon starts. */
        write_policy(t, "late.json", POLICY_HOURLY("late.slice/*.service"));
        start(t);
        assert_int_equal(daemon_get_instance_count(t->d), 0);

        make_dir(t, "late.slice");
        run_until_idle(t->d);
        make_cgroup(t, "late.slice/x.service", "1\n");
        assert_true(run_until(t->d, has_instance, "late.slice/x.service"));
}

static void test_daemon_recreated_cgroup_is_new_instance(void **state)
{
        struct tree *t = *state;
        char staged[PATH_MAX * 2], final[PATH_MAX * 2];

        make_dir(t, "svc");
        make_cgroup(t, "svc/a.service", "100\n");
        write_policy(t, "a.json", POLICY_HOURLY("svc/*"));
        start(t);

        struct instance *old = daemon_get_instance(t->d, "svc/a.service");
        assert_non_null(old);
        uint64_t old_id = old->id, old_ino = old->ino;

        /*
         * The new directory is made while the old one still exists, so that the filesystem
         * cannot hand the freed inode number straight back.
         */
        snprintf(staged, sizeof(staged), "%s/staged", t->root);
        snprintf(final, sizeof(final), "%s/svc/a.service", t->cg);
        fill_cgroup(staged, "200\n");
        remove_cgroup(t, "svc/a.service");
        assert_int_equal(rename(staged, final), 0);

        struct other_inode o = {"svc/a.service", old_ino};
        assert_true(run_until(t->d, has_other_inode, &o));

        struct instance *i = daemon_get_instance(t->d, "svc/a.service");
        assert_int_not_equal(i->id, old_id);
        assert_int_equal(i->n_samples, 1);
        assert_int_equal(i->last.current_bytes, 200);
        assert_int_equal(daemon_get_instance_count(t->d), 1);
}

static void test_daemon_memory_events_change_sampled_via_inotify(void **state)
{
        struct tree *t = *state;
        char events[PATH_MAX * 2];

        make_dir(t, "svc");
        make_cgroup(t, "svc/a.service", "100\n");
        write_policy(t, "a.json", POLICY_HOURLY("svc/*"));
        start(t);

        struct instance *i = daemon_get_instance(t->d, "svc/a.service");
        assert_non_null(i);
        assert_int_equal(i->n_samples, 1);
        assert_int_equal(i->last.events.oom_kill, 0);

        /* Rewritten in place, as the kernel's counters change. */
        snprintf(events, sizeof(events), "%s/svc/a.service/memory.events", t->cg);
        write_file(events, "low 0\nhigh 12\nmax 3\noom 1\noom_kill 1\n", "w");
        struct samples_at_least two = {"svc/a.service", 2};
        assert_true(run_until(t->d, has_samples, &two));
        i = daemon_get_instance(t->d, "svc/a.service");
        assert_int_equal(i->last.events.oom_kill, 1);
        assert_int_equal(i->last.events.high, 12);

        /* Appended: a key the kernel adds (oom_group_kill). */
        write_file(events, "oom_group_kill 1\n", "a");
        struct samples_at_least three = {"svc/a.service", 3};
        assert_true(run_until(t->d, has_samples, &three));
        i = daemon_get_instance(t->d, "svc/a.service");
        assert_int_equal(i->last.events.oom_group_kill, 1);
        assert_int_equal(i->n_event_samples, 2);
        assert_int_equal(instance_ring_size(i), 3);
}

static void test_daemon_reload_invalid_policy_keeps_old_set(void **state)
{
        struct tree *t = *state;

        make_dir(t, "svc");
        make_dir(t, "other");
        make_cgroup(t, "svc/a.service", "100\n");
        make_cgroup(t, "other/b.service", "100\n");
        write_policy(t, "a.json", POLICY_HOURLY("svc/*"));
        start(t);

        struct instance *a = daemon_get_instance(t->d, "svc/a.service");
        assert_non_null(a);
        uint64_t a_id = a->id;
        const struct policy_set *before = t->d->policies;

        /* An unknown key: the whole new set is refused, the running one stays. */
        write_policy(t, "b.json", "{\"cgroup\": \"other/*\", \"levls\": {}}\n");
        assert_int_equal(daemon_reload(t->d), -EINVAL);
        assert_ptr_equal(t->d->policies, before);
        assert_int_equal(t->d->policies->n_policies, 1);
        assert_int_equal(daemon_get_instance_count(t->d), 1);
        assert_ptr_equal(daemon_get_instance(t->d, "svc/a.service"), a);
        assert_null(daemon_get_instance(t->d, "other/b.service"));

        /* Fixed, and a's interval changed: a keeps its instance and state, b appears. */
        write_policy(t, "b.json", POLICY_HOURLY("other/*"));
        write_policy(t, "a.json",
                     "{\"cgroup\": \"svc/*\", \"sample_interval\": \"30m\", "
                     "\"forecast\": {\"window\": \"24h\"}}\n");
        assert_int_equal(daemon_reload(t->d), 0);
        assert_int_equal(t->d->policies->n_policies, 2);
        assert_int_equal(daemon_get_instance_count(t->d), 2);

        a = daemon_get_instance(t->d, "svc/a.service");
        assert_non_null(a);
        assert_int_equal(a->id, a_id);
        assert_int_equal(a->n_samples, 1);
        assert_int_equal(a->policy->sample_interval_usec, 30 * USEC_PER_MINUTE);
        uint64_t due, now;
        assert_int_equal(sd_event_source_get_time(a->timer, &due), 0);
        assert_true(sd_event_now(t->d->event, CLOCK_MONOTONIC, &now) >= 0);
        assert_true(due <= now + 30 * USEC_PER_MINUTE);
        assert_true(due > now + 29 * USEC_PER_MINUTE);

        struct instance *b = daemon_get_instance(t->d, "other/b.service");
        assert_non_null(b);
        assert_string_equal(b->policy->service, "b");
}

static void test_daemon_glob_two_levels(void **state)
{
        struct tree *t = *state;

        make_dir(t, "kube");
        make_dir(t, "kube/pod1");
        make_cgroup(t, "kube/pod1/c1", "10\n");
        write_policy(t, "pods.json", POLICY_HOURLY("kube/*/*"));
        start(t);
        assert_int_equal(daemon_get_instance_count(t->d), 1);
        assert_non_null(daemon_get_instance(t->d, "kube/pod1/c1"));

        /* A new pod, then a container in it: the pod directory got its own watch. */
        make_dir(t, "kube/pod2");
        run_until_idle(t->d);
        assert_int_equal(daemon_get_instance_count(t->d), 1);
        make_cgroup(t, "kube/pod2/c2", "20\n");
        assert_true(run_until(t->d, has_instance, "kube/pod2/c2"));

        /* Deeper or shallower directories are no match. */
        make_cgroup(t, "kube/pod2/c2/deeper", "30\n");
        run_until_idle(t->d);
        assert_int_equal(daemon_get_instance_count(t->d), 2);
        assert_null(daemon_get_instance(t->d, "kube/pod2"));

        remove_cgroup(t, "kube/pod1");
        assert_true(run_until(t->d, lacks_instance, "kube/pod1/c1"));
        assert_int_equal(daemon_get_instance_count(t->d), 1);
}

static void test_daemon_overlap_first_policy_wins(void **state)
{
        struct tree *t = *state;

        make_dir(t, "svc");
        make_cgroup(t, "svc/a.service", "1\n");
        write_policy(t, "b-specific.json", POLICY_HOURLY("svc/a.service"));
        write_policy(t, "a-all.json", POLICY_HOURLY("svc/*"));
        start(t);

        struct instance *i = daemon_get_instance(t->d, "svc/a.service");
        assert_non_null(i);
        assert_string_equal(i->policy->service, "a-all");
        assert_true(i->warned_overlap);
        assert_int_equal(daemon_get_instance_count(t->d), 1);
}

static void test_daemon_format_status(void **state)
{
        struct tree *t = *state;
        char *s;

        make_dir(t, "svc");
        write_policy(t, "checkout.json", POLICY_HOURLY("svc/*"));
        start(t);
        s = daemon_format_status(t->d);
        assert_string_equal(s, "governing 0 cgroups; no cgroup matches the 1 policy yet");
        free(s);

        make_cgroup(t, "svc/a", "1\n");
        make_cgroup(t, "svc/b", "1\n");
        assert_true(run_until(t->d, has_instance, "svc/b"));
        assert_true(run_until(t->d, has_instance, "svc/a"));
        s = daemon_format_status(t->d);
        assert_string_equal(s, "governing 2 cgroups; all ok");
        free(s);

        /* What decide will set; the worst is the highest level, then the nearest ETA. */
        struct instance *a = daemon_get_instance(t->d, "svc/a");
        struct instance *b = daemon_get_instance(t->d, "svc/b");
        a->level = LEVEL_WARN;
        a->eta_usec = 8 * USEC_PER_MINUTE + 30 * USEC_PER_SEC;
        b->level = LEVEL_WARN;
        b->eta_usec = 20 * USEC_PER_MINUTE;
        s = daemon_format_status(t->d);
        assert_string_equal(s, "governing 2 cgroups; worst: checkout warn, ETA 8m");
        free(s);
}

static void test_instance_ring_keeps_newest(void **state)
{
        struct tree *t = *state;

        make_dir(t, "svc");
        make_cgroup(t, "svc/a", "1\n");
        /* ten hours of hourly samples: a ring of ten (tests/unit/test_instance.c sizes it) */
        write_policy(t, "a.json",
                     "{\"cgroup\": \"svc/*\", \"sample_interval\": \"1h\", "
                     "\"forecast\": {\"window\": \"10h\"}}\n");
        start(t);

        struct instance *i = daemon_get_instance(t->d, "svc/a");
        assert_non_null(i);
        assert_int_equal(i->ring.cap, 10);
        for (uint64_t k = 1; k <= 25; k++) {
                struct sample s = {.t_usec = k * USEC_PER_SEC, .current_bytes = k};
                assert_int_equal(instance_process_sample(t->d, i, &s, s.t_usec), 0);
        }
        assert_int_equal(instance_ring_size(i), 10);
        _cleanup_free_ struct sample *held = NULL;
        size_t n_held;
        assert_int_equal(sample_ring_copy(&i->ring, &held, &n_held), 0);
        assert_int_equal(n_held, 10);
        assert_int_equal(held[0].current_bytes, 16);
        assert_int_equal(held[9].current_bytes, 25);
        assert_int_equal(held[9].t_usec, 25 * USEC_PER_SEC);
        assert_int_equal(i->last.current_bytes, 25);
}

#define SECRET  "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define MAX_MIB 100

/*
 * A fast policy for the growth tests: samples every 100ms over a 2s window, and levels by
 * usage only, so that the growth crosses them in turn however fast the test machine
 * samples (the forecast's ETA is still computed, and checked). webhooks (a JSON array, or
 * NULL) is spliced in.
 */
static void write_growth_policy(struct tree *t, const char *webhooks)
{
        char json[PATH_MAX * 3];

        snprintf(json, sizeof(json),
                 "{\"cgroup\": \"svc/*\", \"sample_interval\": \"100ms\",\n"
                 " \"forecast\": {\"window\": \"2s\", \"horizon\": \"5m\"},\n"
                 " \"levels\": {\"warn\": {\"usage\": \"50%%\"},\n"
                 "            \"degrade\": {\"usage\": \"70%%\"},\n"
                 "            \"critical\": {\"usage\": \"90%%\"},\n"
                 "            \"hold\": \"10m\"},\n"
                 " \"memory_high\": {\"mode\": \"off\"}%s%s}\n",
                 webhooks ? ",\n \"webhooks\": " : "", webhooks ?: "");
        write_policy(t, "checkout.json", json);
}

static void set_current(struct tree *t, const char *rel, uint64_t bytes)
{
        char v[32];

        snprintf(v, sizeof(v), "%" PRIu64 "\n", bytes);
        writef(v, "w", "%s/%s/memory.current", t->cg, rel);
}

/*
 * Grow svc/a by step bytes per sample from start until it reaches the level want (true) or
 * memory.max (false). The levels seen on the way are recorded in seen, in order, and the
 * instance's ETA when it entered each in eta_at (may be NULL).
 */
static bool grow_until(struct tree *t, uint64_t start, uint64_t step, enum level want,
                       enum level *seen, size_t *n_seen, uint64_t *eta_at)
{
        for (uint64_t cur = start; cur < (uint64_t)MAX_MIB << 20; cur += step) {
                struct instance *i = daemon_get_instance(t->d, "svc/a");
                assert_non_null(i);
                set_current(t, "svc/a", cur);
                struct samples_at_least next = {"svc/a", i->n_samples + 1};
                assert_true(run_until(t->d, has_samples, &next));
                i = daemon_get_instance(t->d, "svc/a");
                if (*n_seen == 0 || seen[*n_seen - 1] != i->level) {
                        if (eta_at)
                                eta_at[i->level] = i->eta_usec;
                        seen[(*n_seen)++] = i->level;
                }
                if (i->level == want)
                        return true;
        }
        return false;
}

static void make_growth_cgroup(struct tree *t)
{
        char max[32];

        make_dir(t, "svc");
        make_cgroup(t, "svc/a", "10485760\n");
        snprintf(max, sizeof(max), "%u\n", MAX_MIB << 20);
        writef(max, "w", "%s/svc/a/memory.max", t->cg);
}

/* Whether a dump of service whose name ends in -suffix holds file. */
static bool dump_has(struct tree *t, const char *service, const char *suffix, const char *file)
{
        char dir[PATH_MAX * 2], path[PATH_MAX * 3];
        bool found = false;
        struct dirent *de;

        snprintf(dir, sizeof(dir), "%s/dumps/%s", t->state, service);
        DIR *dp = opendir(dir);
        if (!dp)
                return false;
        while (!found && (de = readdir(dp))) {
                size_t n = strlen(de->d_name), m = strlen(suffix);
                if (de->d_name[0] == '.' || n <= m + 1 || strcmp(de->d_name + n - m, suffix) != 0 ||
                    de->d_name[n - m - 1] != '-')
                        continue;
                snprintf(path, sizeof(path), "%s/%s/%s", dir, de->d_name, file);
                found = access(path, F_OK) == 0;
        }
        closedir(dp);
        return found;
}

static void test_pipeline_levels_follow_growth(void **state)
{
        struct tree *t = *state;
        enum level seen[16];
        size_t n_seen = 0;

        make_growth_cgroup(t);
        write_growth_policy(t, NULL);
        start(t);

        struct instance *i = daemon_get_instance(t->d, "svc/a");
        assert_non_null(i);
        assert_int_equal(i->level, LEVEL_OK);
        assert_int_equal(i->last.limit_bytes, (uint64_t)MAX_MIB << 20);

        /* 10 MiB, growing 1.5 MiB per sample: ok, then each level in turn, none skipped. */
        uint64_t eta_at[_LEVEL_MAX] = {};
        assert_true(grow_until(t, 10 << 20, 3 << 19, LEVEL_CRITICAL, seen, &n_seen, eta_at));
        assert_int_equal(n_seen, 4);
        assert_int_equal(seen[0], LEVEL_OK);
        assert_int_equal(seen[1], LEVEL_WARN);
        assert_int_equal(seen[2], LEVEL_DEGRADE);
        assert_int_equal(seen[3], LEVEL_CRITICAL);

        i = daemon_get_instance(t->d, "svc/a");
        assert_int_equal(i->n_events[EVENT_WARN], 1);
        assert_int_equal(i->n_events[EVENT_DEGRADE], 1);
        assert_int_equal(i->n_events[EVENT_CRITICAL], 1);
        assert_int_equal(i->n_events[EVENT_RECOVERED], 0);
        assert_int_equal(i->last_event, EVENT_CRITICAL);
        /* Steady growth a little way below the limit: the forecast sees the OOM coming. */
        assert_true(i->has_forecast);
        assert_true(i->last_forecast.known);
        assert_true(i->last_forecast.slope_bytes_per_s > 0);
        assert_true(i->eta_usec != USEC_INFINITY);
        assert_true(i->eta_usec <= i->last_forecast.eta_usec);
        assert_true(i->eta_usec < i->policy->forecast_horizon_usec);
        /* Three times less headroom at 90% than at 70%, at the same pace: a nearer ETA. */
        assert_true(eta_at[LEVEL_DEGRADE] != USEC_INFINITY);
        assert_true(eta_at[LEVEL_CRITICAL] < eta_at[LEVEL_DEGRADE]);

        char *status = daemon_format_status(t->d);
        assert_non_null(status);
        assert_non_null(strstr(status, "worst: checkout critical, ETA "));
        free(status);

        /* The kernel kills: its own event, the level stays. */
        writef("low 0\nhigh 0\nmax 40\noom 1\noom_kill 1\n", "w", "%s/svc/a/memory.events", t->cg);
        struct samples_at_least next = {"svc/a", i->n_samples + 1};
        assert_true(run_until(t->d, has_samples, &next));
        i = daemon_get_instance(t->d, "svc/a");
        assert_int_equal(i->n_events[EVENT_OOM_KILL], 1);
        assert_int_equal(i->last_event, EVENT_OOM_KILL);
        assert_int_equal(i->level, LEVEL_CRITICAL);

        /* The incident bundles: at the entry into critical, and at the kill. */
        assert_true(dump_has(t, "checkout", "critical", "report.html"));
        assert_true(dump_has(t, "checkout", "critical", "trace.csv"));
        assert_true(dump_has(t, "checkout", "oom_kill", "decisions.jsonl"));
        assert_int_equal(incident_log_size(&i->incident), 4); /* warn, degrade, critical, kill */
        assert_int_equal(incident_log_get(&i->incident, 3)->action, INCIDENT_OOM_KILL);
}

static bool resume_window_over(struct daemon *d, const void *arg)
{
        struct instance *i = daemon_get_instance(d, arg);
        return i && i->incident_resume_until_usec == 0;
}

/*
 * An incident a previous memgovd left open, of a cgroup that does not go critical again
 * within the forecast window (it recovered while memgovd was away): the open-incident file
 * goes when the window is over, so that a later restart cannot take a new episode for it.
 */
static void test_open_incident_expires_without_critical(void **state)
{
        struct tree *t = *state;
        char path[PATH_MAX * 2];
        struct stat st;

        make_growth_cgroup(t);
        write_growth_policy(t, NULL); /* window 2 s, samples every 100 ms */
        snprintf(path, sizeof(path), "%s/svc/a", t->cg);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(incident_open_save(t->state, "checkout", "svc/a", st.st_ino,
                                            "/var/lib/memgov/dumps/checkout/x-critical"),
                         0);
        start(t);

        struct instance *i = daemon_get_instance(t->d, "svc/a");
        assert_non_null(i);
        assert_true(i->incident_resume_until_usec != 0);
        struct samples_at_least next = {"svc/a", i->n_samples + 2};
        assert_true(run_until(t->d, has_samples, &next));
        i = daemon_get_instance(t->d, "svc/a");
        assert_int_equal(i->level, LEVEL_OK);
        /* Still inside the window: the episode may yet go on. */
        if (i->incident_resume_until_usec != 0)
                assert_int_equal(incident_open_find(t->state, "checkout", "svc/a", st.st_ino, NULL),
                                 1);
        assert_true(run_until(t->d, resume_window_over, "svc/a"));
        assert_int_equal(incident_open_find(t->state, "checkout", "svc/a", st.st_ino, NULL), 0);
}

static bool got_requests(struct daemon *d, const void *arg)
{
        (void)d;
        return ls_n_requests((struct ls_server *)arg) >= 1;
}

static bool webhook_delivered(struct daemon *d, const void *arg)
{
        struct notify_endpoint_stats st;

        (void)arg;
        return notify_get_endpoint_stats(d->notify, 0, &st) == 0 &&
               st.results[WEBHOOK_DELIVERED] == 1;
}

static void test_pipeline_warn_webhook_signed(void **state)
{
        struct tree *t = *state;
        static const struct ls_response ok[] = {{.status = 204}, {.status = 204}};
        char secret[PATH_MAX + 16], hooks[PATH_MAX * 2], id[128], ts[64], sig[256];
        enum level seen[16];
        size_t n_seen = 0;
        struct ls_server srv;

        assert_int_equal(ls_start(&srv, ok, ELEMENTSOF(ok)), 0);
        snprintf(secret, sizeof(secret), "%s/checkout.secret", t->root);
        write_file(secret, SECRET "\n", "w");
        assert_int_equal(chmod(secret, 0600), 0);
        /* Only warn is subscribed: the one request is the warn event. */
        snprintf(hooks, sizeof(hooks),
                 "[{\"url\": \"%s/memgov\", \"secret_file\": \"%s\", \"events\": [\"warn\"]}]",
                 srv.url, secret);
        make_growth_cgroup(t);
        write_growth_policy(t, hooks);
        start(t);

        assert_true(grow_until(t, 10 << 20, 3 << 19, LEVEL_WARN, seen, &n_seen, NULL));
        assert_true(run_until(t->d, got_requests, &srv));
        ls_stop(&srv);
        assert_int_equal(srv.n_requests, 1);

        const struct ls_request *r = &srv.requests[0];
        assert_string_equal(r->method, "POST");
        assert_string_equal(r->path, "/memgov");
        assert_non_null(ls_header(r, "webhook-id", id, sizeof(id)));
        assert_non_null(ls_header(r, "webhook-timestamp", ts, sizeof(ts)));
        assert_non_null(ls_header(r, "webhook-signature", sig, sizeof(sig)));

        uint8_t *key = NULL;
        size_t key_size = 0;
        char *want = NULL;
        assert_int_equal(webhook_key_from_secret(SECRET, strlen(SECRET), &key, &key_size), 0);
        assert_int_equal(webhook_sign(key, key_size, id, strtoull(ts, NULL, 10), r->body,
                                      r->body_size, &want),
                         0);
        assert_string_equal(sig, want);
        free(want);
        free(key);

        struct json_object *o = json_tokener_parse(r->body), *data, *v;
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "type", &v));
        assert_string_equal(json_object_get_string(v), "io.memgov.warn");
        assert_true(json_object_object_get_ex(o, "subject", &v));
        assert_string_equal(json_object_get_string(v), "svc/a");
        assert_true(json_object_object_get_ex(o, "data", &data));
        assert_true(json_object_object_get_ex(data, "service", &v));
        assert_string_equal(json_object_get_string(v), "checkout");
        assert_true(json_object_object_get_ex(data, "level", &v));
        assert_string_equal(json_object_get_string(v), "warn");
        assert_true(json_object_object_get_ex(data, "previous_level", &v));
        assert_string_equal(json_object_get_string(v), "ok");
        json_object_put(o);
        ls_free(&srv);

        /* The 204 is counted as delivered (memgov_webhook_deliveries_total). */
        assert_int_equal(notify_get_n_endpoints(t->d->notify), 1);
        assert_true(run_until(t->d, webhook_delivered, NULL));
}

static void read_file(struct tree *t, const char *rel, char *buf, size_t size)
{
        char path[PATH_MAX * 2];

        snprintf(path, sizeof(path), "%s/%s", t->cg, rel);
        FILE *f = fopen(path, "re");
        assert_non_null(f);
        size_t n = fread(buf, 1, size - 1, f);
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0'; /* the kernel ends its values with one */
        fclose(f);
}

static bool record_exists(struct tree *t, const char *relpath)
{
        return restore_exists(t->state, relpath) == 1;
}

/* Fixed mode: memory.high is set at the first sample, recorded, and given back at exit. */
static void test_pipeline_memory_high_set_and_restored(void **state)
{
        struct tree *t = *state;
        char high[64];

        make_growth_cgroup(t);
        write_policy(t, "checkout.json",
                     "{\"cgroup\": \"svc/*\", \"sample_interval\": \"1h\", \"forecast\": "
                     "{\"window\": \"24h\"},\n"
                     " \"memory_high\": {\"mode\": \"fixed\", \"fixed\": \"60M\", \"min\": "
                     "\"10M\", \"backend\": \"cgroupfs\"}}\n");
        start(t);

        read_file(t, "svc/a/memory.high", high, sizeof(high));
        assert_string_equal(high, "62914560");
        assert_true(record_exists(t, "svc/a"));
        struct instance *i = daemon_get_instance(t->d, "svc/a");
        assert_non_null(i);
        assert_true(i->govern.touched);
        assert_int_equal(i->govern.original_bytes, CGROUP_LIMIT_MAX);

        t->d = daemon_free(t->d);
        read_file(t, "svc/a/memory.high", high, sizeof(high));
        assert_string_equal(high, "max");
        assert_false(record_exists(t, "svc/a"));
}

/* A record left by a run that died is restored before anything else at the next start. */
static void test_pipeline_leftover_record_restored_at_start(void **state)
{
        struct tree *t = *state;
        char high[64], dir[PATH_MAX * 2];
        struct stat st;

        make_growth_cgroup(t);
        writef("52428800\n", "w", "%s/svc/a/memory.high", t->cg);
        snprintf(dir, sizeof(dir), "%s/svc/a", t->cg);
        assert_int_equal(stat(dir, &st), 0);
        struct restore_record rec = {
                .service = (char *)"checkout",
                .relpath = (char *)"svc/a",
                .ino = (uint64_t)st.st_ino,
                .backend = ACTUATE_BACKEND_CGROUPFS,
                .high_bytes = CGROUP_LIMIT_MAX,
        };
        assert_int_equal(restore_save(t->state, &rec), 1);
        write_policy(t, "checkout.json", POLICY_HOURLY("svc/*"));

        start(t);
        read_file(t, "svc/a/memory.high", high, sizeof(high));
        assert_string_equal(high, "max");
        assert_false(record_exists(t, "svc/a"));
        /* The instance found memory.high as it was before memgov touched it. */
        struct instance *i = daemon_get_instance(t->d, "svc/a");
        assert_non_null(i);
        assert_int_equal(i->last.high_bytes, CGROUP_LIMIT_MAX);
}

/* A dry run decides the same, and writes neither memory.high nor records. */
static void test_pipeline_dry_run_leaves_memory_high(void **state)
{
        struct tree *t = *state;
        char high[64];

        t->dry_run = true;
        make_growth_cgroup(t);
        write_policy(t, "checkout.json",
                     "{\"cgroup\": \"svc/*\", \"sample_interval\": \"1h\", \"forecast\": "
                     "{\"window\": \"24h\"},\n"
                     " \"memory_high\": {\"mode\": \"fixed\", \"fixed\": \"60M\", \"min\": "
                     "\"10M\"}}\n");
        start(t);

        struct instance *i = daemon_get_instance(t->d, "svc/a");
        assert_non_null(i);
        assert_non_null(i->target);
        assert_true(i->target->has_high);
        assert_int_equal(i->target->high_bytes, 62914560);
        assert_int_equal(t->d->actuator->n_changes, 1);
        read_file(t, "svc/a/memory.high", high, sizeof(high));
        assert_string_equal(high, "max");
        assert_false(record_exists(t, "svc/a"));
}

/* ---- the status socket ---- */

struct call {
        const char *socket;
        const char *method; /* "GET" or "POST" */
        const char *path;
        long status;
        char *body;
        size_t body_size;
        atomic_bool done;
};

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
        struct call *c = userdata;
        char *nb = realloc(c->body, c->body_size + size * n + 1);

        if (!nb)
                return 0;
        memcpy(nb + c->body_size, p, size * n);
        c->body = nb;
        c->body_size += size * n;
        c->body[c->body_size] = '\0';
        return size * n;
}

static void *call_thread(void *userdata)
{
        struct call *c = userdata;
        CURL *e = curl_easy_init();
        char url[256];

        if (e) {
                snprintf(url, sizeof(url), "http://localhost%s", c->path);
                curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, c->socket);
                curl_easy_setopt(e, CURLOPT_URL, url);
                curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
                curl_easy_setopt(e, CURLOPT_TIMEOUT, 10L);
                curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
                curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
                if (strcmp(c->method, "POST") == 0)
                        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
                if (curl_easy_perform(e) == CURLE_OK)
                        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &c->status);
                curl_easy_cleanup(e);
        }
        atomic_store(&c->done, true);
        return NULL;
}

static bool call_done(struct daemon *d, const void *arg)
{
        (void)d;
        return atomic_load(&((struct call *)arg)->done);
}

/* Ask the daemon's socket, as memgovctl or curl would, while its loop runs here. */
static void call(struct tree *t, const char *method, const char *path, struct call *c)
{
        char socket[PATH_MAX * 2];
        pthread_t th;

        snprintf(socket, sizeof(socket), "%s/run/memgovd.sock", t->root);
        *c = (struct call){.socket = socket, .method = method, .path = path};
        atomic_init(&c->done, false);
        assert_int_equal(pthread_create(&th, NULL, call_thread, c), 0);
        assert_true(run_until(t->d, call_done, c));
        assert_int_equal(pthread_join(th, NULL), 0);
        c->socket = NULL;
}

/* The value of the sample "name{labels}" in a /metrics body; fails if it is absent. */
static double metric_value(const char *body, const char *series)
{
        size_t len = strlen(series);

        for (const char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, series, len) == 0 && p[len] == ' ')
                        return strtod(p + len + 1, NULL);
        fail_msg("no sample %s in:\n%s", series, body);
        return 0;
}

static bool has_series(const char *body, const char *series)
{
        size_t len = strlen(series);

        for (const char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, series, len) == 0 && p[len] == ' ')
                        return true;
        return false;
}

#define SVC_A "{service=\"checkout\",cgroup=\"svc/a\"}"

static void test_export_metrics_show_the_cgroup_files(void **state)
{
        struct tree *t = *state;
        struct call c;

        make_growth_cgroup(t);
        writef("low 0\nhigh 7\nmax 2\noom 0\noom_kill 0\n", "w", "%s/svc/a/memory.events", t->cg);
        writef("anon 8388608\nfile 2097152\n", "w", "%s/svc/a/memory.stat", t->cg);
        writef("some avg10=1.50 avg60=0.00 avg300=0.00 total=2500000\n"
               "full avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\n",
               "w", "%s/svc/a/memory.pressure", t->cg);
        writef("73400320\n", "w", "%s/svc/a/memory.high", t->cg);
        write_policy(t, "checkout.json", POLICY_HOURLY("svc/*"));
        start(t);

        call(t, "GET", "/metrics", &c);
        assert_int_equal(c.status, 200);
        assert_non_null(c.body);
        assert_true(metric_value(c.body, "memgov_memory_current_bytes" SVC_A) == 10485760);
        assert_true(metric_value(c.body, "memgov_memory_max_bytes" SVC_A) == 104857600);
        assert_true(metric_value(c.body, "memgov_memory_high_bytes" SVC_A) == 73400320);
        assert_true(metric_value(c.body, "memgov_memory_limit_bytes" SVC_A) == 104857600);
        assert_true(metric_value(c.body, "memgov_memory_anon_bytes" SVC_A) == 8388608);
        assert_true(metric_value(c.body, "memgov_memory_file_bytes" SVC_A) == 2097152);
        assert_true(metric_value(c.body, "memgov_memory_events_total{service=\"checkout\","
                                         "cgroup=\"svc/a\",event=\"high\"}") == 7);
        assert_true(metric_value(c.body, "memgov_pressure_some_seconds_total" SVC_A) == 2.5);
        assert_true(metric_value(c.body, "memgov_pressure_full_seconds_total" SVC_A) == 1);
        /* The kernel's avg10 as sampled, in percent there and as a ratio here. */
        assert_true(fabs(metric_value(c.body, "memgov_pressure_some_avg10_ratio" SVC_A) - 0.015) <
                    1e-9);
        assert_true(metric_value(c.body, "memgov_pressure_full_avg10_ratio" SVC_A) == 0);
        /* No runtime section in this policy: no runtime series at all. */
        assert_false(has_series(c.body, "memgov_runtime_goroutines" SVC_A));
        assert_false(has_series(c.body, "memgov_runtime_polls_total{service=\"checkout\","
                                        "cgroup=\"svc/a\",result=\"ok\"}"));
        assert_true(metric_value(c.body, "memgov_level" SVC_A) == 0);
        assert_true(metric_value(c.body, "memgov_samples_total" SVC_A) == 1);
        assert_true(metric_value(c.body, "memgov_events_total{service=\"checkout\","
                                         "cgroup=\"svc/a\",event=\"warn\"}") == 0);
        assert_true(metric_value(c.body, "memgov_instances") == 1);
        assert_true(metric_value(c.body, "memgov_policies") == 1);
        /* One sample: no forecast yet, so no ETA series rather than a made-up one. */
        assert_false(has_series(c.body, "memgov_forecast_eta_seconds" SVC_A));
        free(c.body);

        /* A new sample is what the next scrape shows. */
        writef("20971520\n", "w", "%s/svc/a/memory.current", t->cg);
        struct instance *i = daemon_get_instance(t->d, "svc/a");
        uint64_t now;
        assert_true(sd_event_now(t->d->event, CLOCK_MONOTONIC, &now) >= 0);
        assert_int_equal(instance_sample(i, now + USEC_PER_SEC), 0);
        call(t, "GET", "/metrics", &c);
        assert_int_equal(c.status, 200);
        assert_true(metric_value(c.body, "memgov_memory_current_bytes" SVC_A) == 20971520);
        assert_true(metric_value(c.body, "memgov_samples_total" SVC_A) == 2);
        free(c.body);
}

static void test_export_status_and_reload(void **state)
{
        struct tree *t = *state;
        struct status_doc *doc = NULL;
        struct call c;

        make_growth_cgroup(t);
        write_policy(t, "checkout.json", POLICY_HOURLY("svc/*"));
        start(t);

        call(t, "GET", "/v1/status", &c);
        assert_int_equal(c.status, 200);
        assert_int_equal(status_parse_json(c.body, c.body_size, &doc, NULL), 0);
        assert_int_equal(doc->n_instances, 1);
        assert_string_equal(doc->instances[0].service, "checkout");
        assert_string_equal(doc->instances[0].cgroup, "svc/a");
        assert_int_equal(doc->instances[0].level, LEVEL_OK);
        assert_int_equal(doc->instances[0].current_bytes, 10485760);
        assert_int_equal(doc->instances[0].limit_bytes, 104857600);
        assert_int_equal(doc->daemon.n_policies, 1);
        doc = status_doc_free(doc);
        free(c.body);

        /* A broken policy: 422 with the problem, and the running set stays. */
        write_policy(t, "b.json", "{\"cgroup\": \"other/*\", \"levls\": {}}\n");
        call(t, "POST", "/v1/reload", &c);
        assert_int_equal(c.status, 422);
        assert_non_null(strstr(c.body, "levls"));
        assert_int_equal(t->d->n_reload_failures, 1);
        free(c.body);

        write_policy(t, "b.json", POLICY_HOURLY("other/*"));
        call(t, "POST", "/v1/reload", &c);
        assert_int_equal(c.status, 200);
        assert_non_null(strstr(c.body, "reloaded: 2 policies"));
        assert_int_equal(t->d->n_reloads, 1);
        free(c.body);
}

/*
 * A delivered webhook shows in the status API as the instance's last_delivery (event,
 * endpoint, outcome, HTTP status, attempts) and in its incident log as "delivered" after
 * "queued"; a failed one (400, not retried) replaces it as "failed".
 */
static void test_export_status_shows_the_delivery_outcome(void **state)
{
        struct tree *t = *state;
        static const struct ls_response script[] = {{.status = 204}, {.status = 400}};
        char hooks[PATH_MAX * 2], url[128];
        struct status_doc *doc = NULL;
        enum level seen[16];
        size_t n_seen = 0;
        struct ls_server srv;
        struct call c;

        assert_int_equal(ls_start(&srv, script, ELEMENTSOF(script)), 0);
        snprintf(url, sizeof(url), "%s/memgov", srv.url);
        snprintf(hooks, sizeof(hooks), "[{\"url\": \"%s\", \"events\": [\"warn\", \"degrade\"]}]",
                 url);
        make_growth_cgroup(t);
        write_growth_policy(t, hooks);
        start(t);

        call(t, "GET", "/v1/status", &c);
        assert_int_equal(status_parse_json(c.body, c.body_size, &doc, NULL), 0);
        assert_int_equal(doc->instances[0].last_delivery.event, _EVENT_INVALID);
        doc = status_doc_free(doc);
        free(c.body);

        assert_true(grow_until(t, 10 << 20, 3 << 19, LEVEL_WARN, seen, &n_seen, NULL));
        assert_true(run_until(t->d, webhook_delivered, NULL));
        call(t, "GET", "/v1/status", &c);
        assert_int_equal(c.status, 200);
        assert_int_equal(status_parse_json(c.body, c.body_size, &doc, NULL), 0);
        const struct status_delivery *dl = &doc->instances[0].last_delivery;
        assert_int_equal(dl->event, EVENT_WARN);
        assert_string_equal(dl->endpoint, url);
        assert_string_equal(dl->result, "delivered");
        assert_int_equal(dl->http_status, 204);
        assert_int_equal(dl->attempts, 1);
        assert_true(dl->age_usec < 10 * USEC_PER_SEC);
        doc = status_doc_free(doc);
        free(c.body);

        /* The incident log: queued when raised, delivered when the 204 came. */
        struct instance *i = daemon_get_instance(t->d, "svc/a");
        const struct incident_event *queued = NULL, *outcome = NULL;
        for (size_t k = 0; k < incident_log_size(&i->incident); k++) {
                const struct incident_event *e = incident_log_get(&i->incident, k);
                if (e->action != INCIDENT_WEBHOOK || strcmp(e->event, "warn") != 0)
                        continue;
                if (strcmp(e->reason, "queued") == 0)
                        queued = e;
                else
                        outcome = e;
        }
        assert_non_null(queued);
        assert_non_null(outcome);
        assert_true(outcome->t_usec >= queued->t_usec);
        assert_string_equal(outcome->reason, "delivered");
        assert_string_equal(outcome->detail, url);
        assert_false(outcome->failed);

        /* Degrade: the receiver answers 400, which no retry can change. */
        assert_true(grow_until(t, 60 << 20, 3 << 19, LEVEL_DEGRADE, seen, &n_seen, NULL));
        for (int k = 0; k < 500 && ls_n_requests(&srv) < 2; k++)
                assert_true(sd_event_run(t->d->event, 20 * USEC_PER_MSEC) >= 0);
        assert_int_equal(ls_n_requests(&srv), 2);
        i = daemon_get_instance(t->d, "svc/a");
        for (int k = 0; k < 100 && i->last_delivery_event != EVENT_DEGRADE; k++)
                assert_true(sd_event_run(t->d->event, 20 * USEC_PER_MSEC) >= 0);
        call(t, "GET", "/v1/status", &c);
        assert_int_equal(status_parse_json(c.body, c.body_size, &doc, NULL), 0);
        dl = &doc->instances[0].last_delivery;
        assert_int_equal(dl->event, EVENT_DEGRADE);
        assert_string_equal(dl->result, "failed");
        assert_int_equal(dl->http_status, 400);
        assert_int_equal(dl->attempts, 1);
        doc = status_doc_free(doc);
        free(c.body);
        const struct incident_event *last =
                incident_log_get(&i->incident, incident_log_size(&i->incident) - 1);
        assert_int_equal(last->action, INCIDENT_WEBHOOK);
        assert_string_equal(last->event, "degrade");
        assert_string_equal(last->reason, "failed");
        assert_true(last->failed);
        ls_stop(&srv);
        ls_free(&srv);
}

/* ---- captures ---- */

static char *read_fixture(const char *name)
{
        char path[PATH_MAX];

        snprintf(path, sizeof(path), "%s/tests/fixtures/pprof/%s", MEMGOV_SOURCE_DIR, name);
        FILE *f = fopen(path, "re");
        assert_non_null(f);
        char *buf = calloc(1, 1 << 20);
        assert_non_null(buf);
        size_t n = fread(buf, 1, (1 << 20) - 1, f);
        buf[n] = '\0';
        fclose(f);
        return buf;
}

static bool n_events_at_least(struct daemon *d, const void *arg)
{
        const uint64_t *want = arg;
        struct instance *i = daemon_get_instance(d, "svc/a");
        return i && i->n_events[EVENT_PROFILE_CAPTURED] >= *want;
}

static bool got_two_requests(struct daemon *d, const void *arg)
{
        (void)d;
        return ls_n_requests((struct ls_server *)arg) >= 2;
}

static bool file_exists(const char *dir, const char *name)
{
        char path[PATH_MAX * 2];

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        return access(path, F_OK) == 0;
}

/*
 * Entering warn takes the base capture from the service's pprof endpoint; an on-demand
 * dump later is the current one, diffed against the base: suspects come out.
 */
static void test_capture_at_warn_then_on_demand_diff(void **state)
{
        struct tree *t = *state;
        _cleanup_free_ char *heap_base = read_fixture("leaky-heap-base.txt");
        _cleanup_free_ char *heap_current = read_fixture("leaky-heap-current.txt");
        const struct ls_response script[] = {
                {.status = 200, .body = heap_base},
                {.status = 200, .body = "\x1f\x8b-base"}, /* gzip's magic is all it checks */
                {.status = 200, .body = heap_current},
                {.status = 200, .body = "\x1f\x8b-current"},
        };
        static const struct ls_response hook_script[] = {{.status = 204}, {.status = 204}};
        char pprof[PATH_MAX * 3];
        enum level seen[16];
        size_t n_seen = 0;
        struct ls_server srv, hooks;
        struct call c;

        assert_int_equal(ls_start(&srv, script, ELEMENTSOF(script)), 0);
        /* A receiver of profile_captured only (unsigned: it is on loopback). */
        assert_int_equal(ls_start(&hooks, hook_script, ELEMENTSOF(hook_script)), 0);
        snprintf(pprof, sizeof(pprof),
                 "{\"cgroup\": \"svc/*\", \"sample_interval\": \"100ms\",\n"
                 " \"forecast\": {\"window\": \"2s\", \"horizon\": \"5m\"},\n"
                 " \"levels\": {\"warn\": {\"usage\": \"50%%\"}, \"degrade\": {\"usage\": "
                 "\"95%%\"}, \"critical\": {\"usage\": \"99%%\"}, \"hold\": \"10m\"},\n"
                 " \"memory_high\": {\"mode\": \"off\"},\n"
                 " \"pprof\": {\"url\": \"%s/debug/pprof\", \"on\": [\"warn\"], \"kinds\": "
                 "[\"heap\"], \"cooldown\": \"0s\"},\n"
                 " \"webhooks\": [{\"url\": \"%s/hook\", \"events\": [\"profile_captured\"]}]}\n",
                 srv.url, hooks.url);
        make_growth_cgroup(t);
        write_policy(t, "checkout.json", pprof);
        start(t);

        assert_true(grow_until(t, 10 << 20, 3 << 19, LEVEL_WARN, seen, &n_seen, NULL));
        uint64_t one = 1;
        assert_true(run_until(t->d, n_events_at_least, &one));
        struct instance *i = daemon_get_instance(t->d, "svc/a");
        assert_int_equal(i->n_captures[PPROF_HEAP][INSTANCE_CAPTURE_OK], 1);
        assert_non_null(i->capture_pair.base_dir);
        assert_null(i->capture_pair.current_dir);
        assert_true(file_exists(i->capture_pair.base_dir, "heap.txt"));
        assert_true(file_exists(i->capture_pair.base_dir, "heap.pb.gz"));
        assert_true(file_exists(i->capture_pair.base_dir, "manifest.json"));
        _cleanup_free_ char *base = strdup(i->capture_pair.base_dir);

        call(t, "POST", "/v1/dump/checkout", &c);
        assert_int_equal(c.status, 202);
        assert_non_null(strstr(c.body, "capturing 1 cgroup of checkout"));
        free(c.body);
        uint64_t two = 2;
        assert_true(run_until(t->d, n_events_at_least, &two));
        ls_stop(&srv);
        assert_int_equal(srv.n_requests, 4);
        assert_string_equal(srv.requests[0].path, "/debug/pprof/heap?debug=1&gc=1");
        assert_string_equal(srv.requests[1].path, "/debug/pprof/heap");
        ls_free(&srv);

        i = daemon_get_instance(t->d, "svc/a");
        assert_int_equal(i->n_captures[PPROF_HEAP][INSTANCE_CAPTURE_OK], 2);
        assert_string_equal(i->capture_pair.base_dir, base);
        assert_non_null(i->capture_pair.current_dir);
        assert_true(file_exists(i->capture_pair.current_dir, "suspects.json"));
        assert_string_equal(i->last_capture_result, "ok");
        assert_string_equal(i->last_capture_dir, i->capture_pair.current_dir);

        /* What a scraper sees. */
        call(t, "GET", "/metrics", &c);
        assert_true(metric_value(c.body, "memgov_profile_captures_total{service=\"checkout\","
                                         "cgroup=\"svc/a\",kind=\"heap\",result=\"ok\"}") == 2);
        assert_true(metric_value(c.body, "memgov_events_total{service=\"checkout\","
                                         "cgroup=\"svc/a\",event=\"profile_captured\"}") == 2);
        free(c.body);

        /* The second event names the current dump's profiles and the top suspect. */
        assert_true(run_until(t->d, got_two_requests, &hooks));
        ls_stop(&hooks);
        struct json_object *o = json_tokener_parse(hooks.requests[1].body), *data, *v;
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "type", &v));
        assert_string_equal(json_object_get_string(v), "io.memgov.profile_captured");
        assert_true(json_object_object_get_ex(o, "data", &data));
        assert_true(json_object_object_get_ex(data, "profiles", &v));
        bool has_heap = false;
        for (size_t k = 0; k < json_object_array_length(v); k++) {
                const char *path = json_object_get_string(json_object_array_get_idx(v, k));
                has_heap = has_heap || (strncmp(path, i->capture_pair.current_dir,
                                                strlen(i->capture_pair.current_dir)) == 0 &&
                                        strstr(path, "/heap.pb.gz"));
        }
        assert_true(has_heap);
        assert_true(json_object_object_get_ex(data, "suspects", &v));
        assert_true(json_object_array_length(v) >= 1);
        assert_non_null(
                strstr(json_object_get_string(json_object_array_get_idx(v, 0)), "main.leak"));
        json_object_put(o);
        ls_free(&hooks);

        /* A service nobody governs: 404. */
        call(t, "POST", "/v1/dump/nobody", &c);
        assert_int_equal(c.status, 404);
        free(c.body);
}

/* ---- the service's runtime figures ---- */

static bool level_is(struct daemon *d, const void *arg)
{
        struct instance *i = daemon_get_instance(d, "svc/a");
        return i && i->level == *(const enum level *)arg;
}

/* Goroutines over the policy's ceiling, as the service's expvar says: its level. */
static void test_runtime_goroutines_enter_level(void **state)
{
        struct tree *t = *state;
        static const char vars[] = "{\"goroutines\": 5000, \"memstats\": {\"HeapInuse\": "
                                   "1048576, \"HeapAlloc\": 1000000, \"Sys\": 8388608, "
                                   "\"NumGC\": 3}}";
        struct ls_response script[8];
        char policy[PATH_MAX * 2];
        struct ls_server srv;

        for (size_t k = 0; k < ELEMENTSOF(script); k++)
                script[k] = (struct ls_response){.status = 200,
                                                 .headers = "Content-Type: application/json\r\n",
                                                 .body = vars};
        assert_int_equal(ls_start(&srv, script, ELEMENTSOF(script)), 0);
        snprintf(policy, sizeof(policy),
                 "{\"cgroup\": \"svc/*\", \"sample_interval\": \"100ms\",\n"
                 " \"forecast\": {\"window\": \"2s\"},\n"
                 " \"runtime\": {\"url\": \"%s/debug/vars\", \"interval\": \"1s\", "
                 "\"timeout\": \"500ms\", \"goroutines_max\": 1000, \"level\": \"degrade\"}}\n",
                 srv.url);
        make_growth_cgroup(t);
        write_policy(t, "checkout.json", policy);
        start(t);

        struct instance *i = daemon_get_instance(t->d, "svc/a");
        assert_non_null(i);
        assert_non_null(i->runtime);
        assert_int_equal(i->level, LEVEL_OK);
        enum level want = LEVEL_DEGRADE;
        assert_true(run_until(t->d, level_is, &want));
        i = daemon_get_instance(t->d, "svc/a");
        assert_int_equal(i->n_events[EVENT_DEGRADE], 1);
        assert_int_equal(i->reason, DECIDE_REASON_GOROUTINES);
        assert_true(i->runtime_verdict.over_max);
        assert_int_equal(i->runtime_verdict.goroutines, 5000);

        /* What the service's page said is what /metrics says, while it is fresh. */
        struct call c;
        call(t, "GET", "/metrics", &c);
        assert_int_equal(c.status, 200);
        assert_true(metric_value(c.body, "memgov_runtime_goroutines" SVC_A) == 5000);
        assert_true(metric_value(c.body, "memgov_runtime_heap_inuse_bytes" SVC_A) == 1048576);
        assert_true(metric_value(c.body, "memgov_runtime_heap_alloc_bytes" SVC_A) == 1000000);
        assert_true(metric_value(c.body, "memgov_runtime_sys_bytes" SVC_A) == 8388608);
        assert_true(metric_value(c.body, "memgov_runtime_gc_cycles_total" SVC_A) == 3);
        assert_true(metric_value(c.body, "memgov_runtime_polls_total{service=\"checkout\","
                                         "cgroup=\"svc/a\",result=\"ok\"}") >= 1);
        assert_true(metric_value(c.body, "memgov_runtime_polls_total{service=\"checkout\","
                                         "cgroup=\"svc/a\",result=\"failed\"}") == 0);
        assert_non_null(strstr(c.body, "# TYPE memgov_runtime_gc_cycles_total counter\n"));
        free(c.body);
        t->d = daemon_free(t->d); /* the poller goes with its instance, request and all */
        ls_stop(&srv);
        assert_true(srv.n_requests >= 1);
        assert_string_equal(srv.requests[0].path, "/debug/vars");
        ls_free(&srv);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_daemon_instance_appears_and_vanishes, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_daemon_parent_created_late, setup, teardown),
                cmocka_unit_test_setup_teardown(test_daemon_recreated_cgroup_is_new_instance, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(
                        test_daemon_memory_events_change_sampled_via_inotify, setup, teardown),
                cmocka_unit_test_setup_teardown(test_daemon_reload_invalid_policy_keeps_old_set,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_daemon_glob_two_levels, setup, teardown),
                cmocka_unit_test_setup_teardown(test_daemon_overlap_first_policy_wins, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_daemon_format_status, setup, teardown),
                cmocka_unit_test_setup_teardown(test_instance_ring_keeps_newest, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pipeline_levels_follow_growth, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_pipeline_warn_webhook_signed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pipeline_memory_high_set_and_restored, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_pipeline_leftover_record_restored_at_start,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_pipeline_dry_run_leaves_memory_high, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_export_metrics_show_the_cgroup_files, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_export_status_and_reload, setup, teardown),
                cmocka_unit_test_setup_teardown(test_open_incident_expires_without_critical, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_export_status_shows_the_delivery_outcome,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_capture_at_warn_then_on_demand_diff, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_runtime_goroutines_enter_level, setup,
                                                teardown),
        };
        curl_global_init(CURL_GLOBAL_DEFAULT);
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        curl_global_cleanup();
        return r;
}

/* SPDX-License-Identifier: MIT */
/* Tests for the policy module: what an operator sees for good and bad policy files. */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "memgov/policy.h"

/* ---- helpers -------------------------------------------------------------------------- */

/* Compare the diag with the expected lines (NULL-terminated); print both on a mismatch. */
static void assert_lines(const char *what, const struct diag *d, const char *const *expected)
{
        size_t n = 0;
        bool same;

        while (expected[n])
                n++;
        same = d->n_lines == n;
        for (size_t i = 0; same && i < n; i++)
                same = strcmp(d->lines[i], expected[i]) == 0;
        if (!same) {
                print_error("%s:\n  expected:\n", what);
                for (size_t i = 0; i < n; i++)
                        print_error("    %s\n", expected[i]);
                print_error("  got:\n");
                for (size_t i = 0; i < d->n_lines; i++)
                        print_error("    %s\n", d->lines[i]);
                fail();
        }
}

static struct policy *load_ok(const char *name, const char *json)
{
        struct policy *p = NULL;
        struct diag d = {};
        int r = policy_load_buffer(name, json, strlen(json), &d, &p);

        if (r < 0) {
                print_error("policy did not load (%d):\n%s\n", r, json);
                for (size_t i = 0; i < d.n_lines; i++)
                        print_error("  %s\n", d.lines[i]);
        }
        assert_int_equal(r, 0);
        assert_int_equal(d.n_lines, 0);
        assert_non_null(p);
        diag_clear(&d);
        return p;
}

static char *tmpdir_new(void)
{
        char *dir = strdup("/tmp/memgov-test-policy-XXXXXX");

        assert_non_null(dir);
        assert_non_null(mkdtemp(dir));
        return dir;
}

static void write_file(const char *dir, const char *name, const char *content)
{
        char path[512];
        FILE *f;

        (void)snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fwrite(content, 1, strlen(content), f), strlen(content));
        assert_int_equal(fclose(f), 0);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static void tmpdir_free(char *dir)
{
        assert_int_equal(nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS), 0);
        free(dir);
}

/* ---- good files and defaults ---------------------------------------------------------- */

static void test_policy_load_buffer_minimal_gets_defaults(void **state)
{
        (void)state;
        struct policy *p = load_ok("/etc/memgov/policies.d/billing.json",
                                   "{\"cgroup\": \"system.slice/billing.service\"}");

        assert_string_equal(p->path, "/etc/memgov/policies.d/billing.json");
        assert_string_equal(p->service, "billing");
        assert_string_equal(p->cgroup, "system.slice/billing.service");
        assert_int_equal(p->sample_interval_usec, USEC_PER_SEC);
        assert_int_equal(p->forecast_window_usec, 5 * USEC_PER_MINUTE);
        assert_int_equal(p->forecast_horizon_usec, 30 * USEC_PER_MINUTE);
        assert_int_equal(p->levels[LEVEL_WARN].eta_usec, 10 * USEC_PER_MINUTE);
        assert_int_equal(p->levels[LEVEL_WARN].usage_permille, 800);
        assert_int_equal(p->levels[LEVEL_DEGRADE].eta_usec, 3 * USEC_PER_MINUTE);
        assert_int_equal(p->levels[LEVEL_DEGRADE].usage_permille, 900);
        assert_int_equal(p->levels[LEVEL_CRITICAL].eta_usec, 45 * USEC_PER_SEC);
        assert_int_equal(p->levels[LEVEL_CRITICAL].usage_permille, 970);
        assert_false(p->levels[LEVEL_CRITICAL].has_psi_full_avg10);
        assert_int_equal(p->hold_usec, 60 * USEC_PER_SEC);
        assert_int_equal(p->memory_high.mode, MEMORY_HIGH_GUARD);
        assert_int_equal(p->memory_high.backend, ACTUATE_BACKEND_AUTO);
        assert_int_equal(p->memory_high.min.permille, 100);
        assert_int_equal(p->memory_high.fixed.bytes, 0);
        assert_int_equal(p->memory_high.fixed.permille, 0);
        assert_int_equal(p->memory_high.budget_usec, 2 * USEC_PER_MINUTE);
        assert_int_equal(p->memory_high.min_interval_usec, 5 * USEC_PER_SEC);
        assert_true(p->memory_high.livelock_psi_full_avg10_pct == 60);
        assert_int_equal(p->memory_high.livelock_duration_usec, 10 * USEC_PER_SEC);
        assert_false(p->memory_high.reclaim);
        assert_null(p->pprof.url);
        assert_int_equal(p->pprof.on_mask, EVENT_MASK(EVENT_WARN) | EVENT_MASK(EVENT_CRITICAL));
        assert_int_equal(p->pprof.kinds_mask,
                         1u << PPROF_HEAP | 1u << PPROF_GOROUTINE | 1u << PPROF_ALLOCS);
        assert_int_equal(p->pprof.timeout_usec, 10 * USEC_PER_SEC);
        assert_int_equal(p->pprof.max_bytes, 64 * 1024 * 1024);
        assert_int_equal(p->pprof.cooldown_usec, 60 * USEC_PER_SEC);
        assert_int_equal(p->pprof.max_per_hour, 20);
        assert_int_equal(p->pprof.cpu_seconds, 10);
        assert_null(p->runtime.url);
        assert_int_equal(p->n_collectors, 0);
        assert_int_equal(p->n_webhooks, 0);
        policy_free(p);
}

static const char full_policy[] =
        "{\n"
        "  \"service\": \"checkout-api\",\n"
        "  \"cgroup\": \"system.slice/checkout.service\",\n"
        "  \"sample_interval\": \"500ms\",\n"
        "  \"forecast\": { \"window\": \"5m\", \"horizon\": \"30m\" },\n"
        "  \"levels\": {\n"
        "    \"warn\":     { \"eta\": \"10m\", \"usage\": \"80%\" },\n"
        "    \"degrade\":  { \"eta\": \"3m\",  \"usage\": \"90%\", \"psi_some_avg10\": 20 },\n"
        "    \"critical\": { \"eta\": \"45s\", \"usage\": \"97.5%\", \"psi_full_avg10\": 30,"
        " \"high_events_rate\": 50, \"max_events_rate\": 0.5 },\n"
        "    \"hold\": \"90s\"\n"
        "  },\n"
        "  \"memory_high\": { \"mode\": \"fixed\", \"backend\": \"systemd\", \"min\": \"256M\","
        " \"budget\": \"2m\", \"min_interval\": 0, \"livelock_psi_full_avg10\": 55.5,"
        " \"livelock_duration\": 12, \"reclaim\": true, \"fixed\": \"1.5G\" },\n"
        "  \"pprof\": { \"url\": \"http://127.0.0.1:6060/debug/pprof/\", \"on\": [\"critical\","
        " \"warn\"], \"kinds\": [\"heap\", \"profile\"], \"timeout\": \"40s\", \"max_bytes\":"
        " 1048576, \"cooldown\": \"60s\", \"max_per_hour\": 6, \"cpu_seconds\": 30 },\n"
        "  \"collectors\": [ { \"argv\": [\"gcore\", \"-o\", \"{dir}/core\", \"{pid}\"], \"on\":"
        " [\"critical\"], \"timeout\": \"60s\" },\n"
        "                  { \"argv\": [\"/usr/bin/awk\", \"{print}\", \"{pids}\"] } ],\n"
        "  \"webhooks\": [ { \"url\": \"https://hooks.example.com/memgov\", \"secret_file\":"
        " \"/etc/memgov/checkout.secret\", \"events\": [\"warn\", \"oom_kill\"], \"timeout\":"
        " \"2s\", \"deadline\": \"20s\" },\n"
        "                { \"url\": \"http://[::1]:8080/memgov\" } ]\n"
        "}\n";

static void test_policy_load_buffer_runtime(void **state)
{
        (void)state;
        struct policy *p = load_ok(
                "svc.json", "{\"cgroup\": \"a\", \"runtime\": {\"url\": "
                            "\"http://127.0.0.1:6060/debug/vars\", \"goroutines_max\": 10000}}");

        /* defaults */
        assert_string_equal(p->runtime.url, "http://127.0.0.1:6060/debug/vars");
        assert_int_equal(p->runtime.format, RUNTIME_FORMAT_EXPVAR);
        assert_int_equal(p->runtime.interval_usec, 10 * USEC_PER_SEC);
        assert_int_equal(p->runtime.timeout_usec, 2 * USEC_PER_SEC);
        assert_int_equal(p->runtime.goroutines_max, 10000);
        assert_int_equal(p->runtime.goroutines_growth_per_min, 0);
        assert_int_equal(p->runtime.level, LEVEL_WARN);
        policy_free(p);

        /* a /metrics path means Prometheus text, unless the format says otherwise */
        p = load_ok("svc.json", "{\"cgroup\": \"a\", \"runtime\": {\"url\": "
                                "\"http://127.0.0.1:9100/metrics?x=1\", \"interval\": \"30s\", "
                                "\"timeout\": \"30s\", \"goroutines_growth_per_min\": 500, "
                                "\"level\": \"degrade\"}}");
        assert_int_equal(p->runtime.format, RUNTIME_FORMAT_PROMETHEUS);
        assert_int_equal(p->runtime.interval_usec, 30 * USEC_PER_SEC);
        assert_int_equal(p->runtime.timeout_usec, 30 * USEC_PER_SEC);
        assert_int_equal(p->runtime.goroutines_growth_per_min, 500);
        assert_int_equal(p->runtime.level, LEVEL_DEGRADE);
        policy_free(p);
        p = load_ok("svc.json", "{\"cgroup\": \"a\", \"runtime\": {\"url\": "
                                "\"http://127.0.0.1:9100/metrics\", \"format\": \"expvar\"}}");
        assert_int_equal(p->runtime.format, RUNTIME_FORMAT_EXPVAR);
        policy_free(p);

        assert_string_equal(runtime_format_to_string(RUNTIME_FORMAT_PROMETHEUS), "prometheus");
        assert_null(runtime_format_to_string(_RUNTIME_FORMAT_MAX));
}

static void test_policy_load_buffer_full_policy(void **state)
{
        (void)state;
        struct policy *p = load_ok("svc.json", full_policy);
        const struct policy_level *c = &p->levels[LEVEL_CRITICAL];

        assert_string_equal(p->service, "checkout-api");
        assert_int_equal(p->sample_interval_usec, 500 * USEC_PER_MSEC);
        assert_int_equal(p->levels[LEVEL_DEGRADE].eta_usec, 3 * USEC_PER_MINUTE);
        assert_true(p->levels[LEVEL_DEGRADE].has_psi_some_avg10);
        assert_true(p->levels[LEVEL_DEGRADE].psi_some_avg10_pct == 20);
        assert_false(p->levels[LEVEL_DEGRADE].has_psi_full_avg10);
        assert_int_equal(c->usage_permille, 975);
        assert_true(c->has_psi_full_avg10 && c->psi_full_avg10_pct == 30);
        assert_true(c->has_high_rate && c->high_events_per_s == 50);
        assert_true(c->has_max_rate && c->max_events_per_s == 0.5);
        assert_int_equal(p->hold_usec, 90 * USEC_PER_SEC);

        assert_int_equal(p->memory_high.mode, MEMORY_HIGH_FIXED);
        assert_int_equal(p->memory_high.backend, ACTUATE_BACKEND_SYSTEMD);
        assert_int_equal(p->memory_high.min.bytes, 256 * 1024 * 1024);
        assert_int_equal(p->memory_high.min.permille, 0);
        assert_int_equal(p->memory_high.fixed.bytes, 1536 * 1024 * 1024);
        assert_int_equal(p->memory_high.min_interval_usec, 0);
        assert_true(p->memory_high.livelock_psi_full_avg10_pct == 55.5);
        assert_int_equal(p->memory_high.livelock_duration_usec, 12 * USEC_PER_SEC);
        assert_true(p->memory_high.reclaim);

        /* the trailing '/' goes: "/heap" is appended to the base */
        assert_string_equal(p->pprof.url, "http://127.0.0.1:6060/debug/pprof");
        assert_int_equal(p->pprof.on_mask, EVENT_MASK(EVENT_WARN) | EVENT_MASK(EVENT_CRITICAL));
        assert_int_equal(p->pprof.kinds_mask, 1u << PPROF_HEAP | 1u << PPROF_PROFILE);
        assert_int_equal(p->pprof.max_bytes, 1048576);
        assert_int_equal(p->pprof.max_per_hour, 6);
        assert_int_equal(p->pprof.cpu_seconds, 30);

        assert_int_equal(p->n_collectors, 2);
        assert_string_equal(p->collectors[0].argv[0], "gcore");
        assert_string_equal(p->collectors[0].argv[3], "{pid}");
        assert_null(p->collectors[0].argv[4]);
        assert_true(p->collectors[0].per_process); /* default: argv uses {pid} */
        assert_int_equal(p->collectors[0].on_mask, EVENT_MASK(EVENT_CRITICAL));
        assert_false(p->collectors[1].per_process);
        assert_int_equal(p->collectors[1].on_mask, EVENT_MASK(EVENT_CRITICAL));
        assert_int_equal(p->collectors[1].timeout_usec, 60 * USEC_PER_SEC);
        assert_string_equal(p->collectors[1].argv[1], "{print}");

        assert_int_equal(p->n_webhooks, 2);
        assert_string_equal(p->webhooks[0].secret_file, "/etc/memgov/checkout.secret");
        assert_int_equal(p->webhooks[0].events_mask,
                         EVENT_MASK(EVENT_WARN) | EVENT_MASK(EVENT_OOM_KILL));
        assert_null(p->webhooks[1].secret_file); /* loopback: unsigned is allowed */
        assert_int_equal(p->webhooks[1].events_mask,
                         EVENT_MASK(EVENT_WARN) | EVENT_MASK(EVENT_DEGRADE) |
                                 EVENT_MASK(EVENT_CRITICAL) | EVENT_MASK(EVENT_RECOVERED));
        assert_int_equal(p->webhooks[1].timeout_usec, 2 * USEC_PER_SEC);
        assert_int_equal(p->webhooks[1].deadline_usec, 20 * USEC_PER_SEC);
        policy_free(p);
}

static void test_policy_load_buffer_level_object_replaces_defaults(void **state)
{
        (void)state;
        struct policy *p = load_ok("svc.json", "{\"cgroup\": \"a.service\", \"levels\": {"
                                               "\"warn\": {\"psi_some_avg10\": 5}}}");

        assert_int_equal(p->levels[LEVEL_WARN].eta_usec, 0);
        assert_int_equal(p->levels[LEVEL_WARN].usage_permille, 0);
        assert_true(p->levels[LEVEL_WARN].has_psi_some_avg10);
        /* the levels not named keep theirs */
        assert_int_equal(p->levels[LEVEL_DEGRADE].eta_usec, 3 * USEC_PER_MINUTE);
        assert_int_equal(p->levels[LEVEL_CRITICAL].usage_permille, 970);
        policy_free(p);

        /* an empty level object makes that level unreachable */
        p = load_ok("svc.json", "{\"cgroup\": \"a.service\", \"levels\": {\"degrade\": {}}}");
        assert_int_equal(p->levels[LEVEL_DEGRADE].eta_usec, 0);
        assert_int_equal(p->levels[LEVEL_DEGRADE].usage_permille, 0);
        policy_free(p);
}

static void test_policy_load_buffer_value_forms(void **state)
{
        (void)state;
        static const struct {
                const char *json;
                uint64_t sample_usec, hold_usec, min_bytes;
                uint32_t min_permille;
        } cases[] = {
                {"\"sample_interval\": 2, \"levels\": {\"hold\": 0}", 2 * USEC_PER_SEC, 0, 0, 100},
                {"\"sample_interval\": 0.25, \"levels\": {\"hold\": \"1.5m\"}", 250 * USEC_PER_MSEC,
                 90 * USEC_PER_SEC, 0, 100},
                {"\"sample_interval\": \"100ms\", \"memory_high\": {\"min\": 1073741824}",
                 100 * USEC_PER_MSEC, 60 * USEC_PER_SEC, 1073741824, 0},
                {"\"memory_high\": {\"min\": \"512MiB\"}", USEC_PER_SEC, 60 * USEC_PER_SEC,
                 512 * 1024 * 1024, 0},
                {"\"memory_high\": {\"min\": \"2.5%\"}", USEC_PER_SEC, 60 * USEC_PER_SEC, 0, 25},
                {"\"sample_interval\": \"1h\", \"forecast\": {\"window\": \"10h\", "
                 "\"horizon\": \"24h\"}",
                 USEC_PER_HOUR, 60 * USEC_PER_SEC, 0, 100},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char json[512];
                struct policy *p;

                (void)snprintf(json, sizeof(json), "{\"cgroup\": \"a.service\", %s}",
                               cases[i].json);
                p = load_ok("svc.json", json);
                assert_int_equal(p->sample_interval_usec, cases[i].sample_usec);
                assert_int_equal(p->hold_usec, cases[i].hold_usec);
                assert_int_equal(p->memory_high.min.bytes, cases[i].min_bytes);
                assert_int_equal(p->memory_high.min.permille, cases[i].min_permille);
                policy_free(p);
        }
}

static void test_policy_size_resolve_shares_and_bytes(void **state)
{
        (void)state;
        struct policy_size share = {.permille = 975}, abs = {.bytes = 4096};

        assert_int_equal(policy_size_resolve(&share, 1000000), 975000);
        assert_int_equal(policy_size_resolve(&share, CGROUP_LIMIT_MAX), CGROUP_LIMIT_MAX);
        assert_int_equal(policy_size_resolve(&abs, 1000000), 4096);
}

static void test_policy_load_file_examples_are_valid(void **state)
{
        (void)state;
        const char *dir = MEMGOV_SOURCE_DIR "/policies/examples";
        struct policy_set *s = NULL;
        struct diag d = {};
        int r = policy_set_load_dir(dir, &d, &s);

        for (size_t i = 0; i < d.n_lines; i++)
                print_error("%s\n", d.lines[i]);
        assert_int_equal(r, 0);
        assert_int_equal(d.n_lines, 0);
        /* a Go service, a batch job, a systemd glob and a Kubernetes glob */
        assert_true(s->n_policies >= 4);
        policy_set_free(s);
}

/* ---- bad files: each class of mistake and its exact message ---------------------------- */

struct bad_case {
        const char *name;
        const char *json;
        const char *lines[8];
};

static const struct bad_case bad_cases[] = {
        {"required cgroup",
         "{}",
         {"svc.json: .cgroup: required (a path or glob relative to the cgroup root, e.g. "
          "\"system.slice/app.service\")"}},
        {"wrong type", "{\"cgroup\": 5}", {"svc.json: .cgroup: expected a string, got 5"}},
        {"duration junk",
         "{\"cgroup\": \"a\", \"levels\": {\"warn\": {\"eta\": \"soon\"}}}",
         {"svc.json: .levels.warn.eta: expected a duration like \"30s\" or \"5m\", got "
          "\"soon\""}},
        {"unknown key with a near one",
         "{\"cgroup\": \"a\", \"levels\": {\"warn\": {\"etaa\": \"5m\"}}}",
         {"svc.json: .levels.warn.etaa: unknown key; did you mean \"eta\"?"}},
        {"the DESIGN sketch's old key name",
         "{\"cgroup\": \"a\", \"levels\": {\"warn\": {\"eta_s\": 300}}}",
         {"svc.json: .levels.warn.eta_s: unknown key; did you mean \"eta\"?"}},
        {"unknown key that belongs elsewhere",
         "{\"cgroup\": \"a\", \"window\": \"5m\"}",
         {"svc.json: .window: unknown key here; \"window\" belongs in .forecast"}},
        {"unknown key far from any",
         "{\"cgroup\": \"a\", \"forecast\": {\"lookahead\": \"5m\"}}",
         {"svc.json: .forecast.lookahead: unknown key; the keys here are \"window\", "
          "\"horizon\""}},
        {"odd key is quoted in the path",
         "{\"cgroup\": \"a\", \"my key\\n\": 1}",
         {"svc.json: .[\"my key\\u000a\"]: unknown key; the keys here are \"$schema\", "
          "\"service\", \"cgroup\", \"sample_interval\", \"forecast\", \"levels\", "
          "\"memory_high\", \"pprof\", \"runtime\", \"collectors\", \"webhooks\""}},
        {"enum",
         "{\"cgroup\": \"a\", \"memory_high\": {\"mode\": \"auto\"}}",
         {"svc.json: .memory_high.mode: expected one of \"off\", \"fixed\", \"guard\", got "
          "\"auto\""}},
        {"enum typo",
         "{\"cgroup\": \"a\", \"memory_high\": {\"backend\": \"sytemd\"}}",
         {"svc.json: .memory_high.backend: expected one of \"auto\", \"cgroupfs\", "
          "\"systemd\", got \"sytemd\"; did you mean \"systemd\"?"}},
        {"event list",
         "{\"cgroup\": \"a\", \"pprof\": {\"url\": \"http://127.0.0.1:6060/debug/pprof\", "
         "\"on\": [\"warn\", \"crit\", \"warn\", \"profile_captured\"]}}",
         {"svc.json: .pprof.on[1]: expected one of \"warn\", \"degrade\", \"critical\", "
          "\"recovered\", \"oom_kill\", \"livelock\", got \"crit\"; did you mean \"critical\"?",
          "svc.json: .pprof.on[2]: \"warn\" is listed twice",
          "svc.json: .pprof.on[3]: expected one of \"warn\", \"degrade\", \"critical\", "
          "\"recovered\", \"oom_kill\", \"livelock\", got \"profile_captured\""}},
        {"empty list",
         "{\"cgroup\": \"a\", \"pprof\": {\"url\": \"http://127.0.0.1:6060\", \"kinds\": []}}",
         {"svc.json: .pprof.kinds: must list at least one of \"heap\", \"allocs\", "
          "\"goroutine\", \"threadcreate\", \"block\", \"mutex\", \"profile\""}},
        {"usage without %",
         "{\"cgroup\": \"a\", \"levels\": {\"warn\": {\"usage\": \"80\"}, \"degrade\": "
         "{\"usage\": 0.9}, \"critical\": {\"usage\": \"101%\"}}}",
         {"svc.json: .levels.warn.usage: expected a share of the limit like \"80%\", got "
          "\"80\"; did you mean \"80%\"?",
          "svc.json: .levels.degrade.usage: expected a share of the limit like \"80%\", got "
          "0.9; did you mean \"90%\"?",
          "svc.json: .levels.critical.usage: a share must be more than 0% and at most 100%, "
          "got \"101%\""}},
        {"percent numbers",
         "{\"cgroup\": \"a\", \"levels\": {\"degrade\": {\"psi_some_avg10\": \"20%\"}, "
         "\"critical\": {\"psi_full_avg10\": 0}}}",
         {"svc.json: .levels.degrade.psi_some_avg10: expected a plain number of percent like "
          "20, got \"20%\"",
          "svc.json: .levels.critical.psi_full_avg10: must be more than 0 and at most 100 "
          "(percent), got 0"}},
        {"sample_interval range",
         "{\"cgroup\": \"a\", \"sample_interval\": \"50ms\"}",
         {"svc.json: .sample_interval: must be at least 100ms, got \"50ms\""}},
        {"negative and huge",
         "{\"cgroup\": \"a\", \"sample_interval\": -1, \"levels\": {\"hold\": \"9999999999h\"}}",
         {"svc.json: .sample_interval: must not be negative, got -1",
          "svc.json: .levels.hold: must be at most 1h, got \"9999999999h\""}},
        {"levels tighten, both written",
         "{\"cgroup\": \"a\", \"levels\": {\"warn\": {\"eta\": \"2m\", \"usage\": \"95%\"}, "
         "\"degrade\": {\"eta\": \"5m\", \"usage\": \"90%\"}, \"critical\": {\"eta\": \"30s\"}}}",
         {"svc.json: .levels.degrade.eta: must be shorter than .levels.warn.eta (2m): levels "
          "tighten from warn to critical; got 5m",
          "svc.json: .levels.degrade.usage: must be higher than .levels.warn.usage (95%): "
          "levels tighten from warn to critical; got 90%"}},
        {"levels tighten against a default",
         "{\"cgroup\": \"a\", \"levels\": {\"warn\": {\"eta\": \"2m\"}}}",
         {"svc.json: .levels.warn.eta: must be longer than .levels.degrade.eta (3m, the "
          "default): levels tighten from warn to critical; got 2m"}},
        {"levels tighten, skipping an unset level",
         "{\"cgroup\": \"a\", \"levels\": {\"warn\": {\"psi_some_avg10\": 30}, \"degrade\": {}, "
         "\"critical\": {\"psi_some_avg10\": 10}}}",
         {"svc.json: .levels.critical.psi_some_avg10: must be higher than "
          ".levels.warn.psi_some_avg10 (30): levels tighten from warn to critical; got 10"}},
        {"window too short for the interval",
         "{\"cgroup\": \"a\", \"sample_interval\": \"2s\", \"forecast\": {\"window\": \"10s\"}}",
         {"svc.json: .forecast.window: must hold at least 10 samples: at least 20s with "
          "sample_interval 2s; got 10s"}},
        {"interval too long for the default window",
         "{\"cgroup\": \"a\", \"sample_interval\": \"1m\"}",
         {"svc.json: .sample_interval: must be at most a tenth of .forecast.window (5m, the "
          "default), so that a forecast holds 10 samples; got 1m"}},
        {"horizon shorter than an eta",
         "{\"cgroup\": \"a\", \"forecast\": {\"horizon\": \"5m\"}}",
         {"svc.json: .forecast.horizon: must be at least the longest level eta, "
          ".levels.warn.eta (10m, the default); got 5m"}},
        {"eta beyond the default horizon",
         "{\"cgroup\": \"a\", \"levels\": {\"warn\": {\"eta\": \"1h\"}}}",
         {"svc.json: .levels.warn.eta: must be at most .forecast.horizon (30m, the default), "
          "since the forecast looks no further; got 1h"}},
        {"cgroup absolute",
         "{\"cgroup\": \"/sys/fs/cgroup/system.slice/a.service\"}",
         {"svc.json: .cgroup: must be relative to the cgroup root: write "
          "\"system.slice/a.service\", without the leading '/'"}},
        {"cgroup dot-dot",
         "{\"cgroup\": \"system.slice/../user.slice\"}",
         {"svc.json: .cgroup: must not contain \"..\"; a policy governs cgroups below the "
          "cgroup root only, got \"system.slice/../user.slice\""}},
        {"cgroup empty component",
         "{\"cgroup\": \"system.slice//a.service\"}",
         {"svc.json: .cgroup: must not contain empty or \".\" components (as in \"a//b\", "
          "\"a/./b\" or a trailing '/'), got \"system.slice//a.service\""}},
        {"cgroup glob",
         "{\"cgroup\": \"system.slice/[ab.service\"}",
         {"svc.json: .cgroup: has a '[' without its closing ']' in the same component, got "
          "\"system.slice/[ab.service\""}},
        {"service name",
         "{\"cgroup\": \"a\", \"service\": \"check out\"}",
         {"svc.json: .service: must be 1 to 64 letters, digits, '_', '.' or '-' (and not "
          "\".\" or \"..\"), got \"check out\""}},
        {"pprof url",
         "{\"cgroup\": \"a\", \"pprof\": {\"url\": \"localhost:6060\"}}",
         {"svc.json: .pprof.url: expected an http:// or https:// URL like "
          "\"http://127.0.0.1:6060/debug/pprof\", got \"localhost:6060\""}},
        {"pprof without url",
         "{\"cgroup\": \"a\", \"pprof\": {\"kinds\": [\"heap\"]}}",
         {"svc.json: .pprof.url: required: the base URL of net/http/pprof, e.g. "
          "\"http://127.0.0.1:6060/debug/pprof\""}},
        {"pprof bad port",
         "{\"cgroup\": \"a\", \"pprof\": {\"url\": \"http://127.0.0.1:99999/x\"}}",
         {"svc.json: .pprof.url: has an invalid port (1 to 65535) like "
          "\"http://127.0.0.1:6060/debug/pprof\", got \"http://127.0.0.1:99999/x\""}},
        {"runtime without url",
         "{\"cgroup\": \"a\", \"runtime\": {\"goroutines_max\": 100}}",
         {"svc.json: .runtime.url: required: where the service publishes its figures, e.g. "
          "\"http://127.0.0.1:6060/debug/vars\" (expvar) or \"http://127.0.0.1:6060/metrics\" "
          "(prometheus)"}},
        {"runtime values",
         "{\"cgroup\": \"a\", \"runtime\": {\"url\": \"http://127.0.0.1:6060/debug/vars\", "
         "\"format\": \"json\", \"goroutines_max\": 0, \"level\": \"ok\"}}",
         {"svc.json: .runtime.format: expected one of \"expvar\", \"prometheus\", got \"json\"",
          "svc.json: .runtime.goroutines_max: must be between 1 and 100000000, got 0",
          "svc.json: .runtime.level: expected one of \"warn\", \"degrade\", \"critical\", got "
          "\"ok\""}},
        {"runtime timeout longer than the interval",
         "{\"cgroup\": \"a\", \"runtime\": {\"url\": \"http://127.0.0.1:6060/debug/vars\", "
         "\"interval\": \"5s\", \"timeout\": \"6s\"}}",
         {"svc.json: .runtime.timeout: must not be longer than the interval (5s), got \"6s\""}},
        {"runtime interval shorter than the default timeout",
         "{\"cgroup\": \"a\", \"runtime\": {\"url\": \"http://127.0.0.1:6060/debug/vars\", "
         "\"interval\": \"1s\"}}",
         {"svc.json: .runtime.interval: must not be shorter than the timeout (2s, the default), "
          "got \"1s\""}},
        {"cpu profile longer than the timeout",
         "{\"cgroup\": \"a\", \"pprof\": {\"url\": \"http://127.0.0.1:6060\", \"kinds\": "
         "[\"profile\"], \"timeout\": \"10s\", \"cpu_seconds\": 10}}",
         {"svc.json: .pprof.timeout: must be longer than cpu_seconds (10s), which a "
          "\"profile\" request takes, got \"10s\""}},
        {"pprof numbers",
         "{\"cgroup\": \"a\", \"pprof\": {\"url\": \"http://127.0.0.1:6060\", \"max_per_hour\": "
         "1.5, \"cpu_seconds\": 0, \"max_bytes\": \"10%\"}}",
         {"svc.json: .pprof.max_bytes: expected a size like \"64M\", or a number of bytes (a "
          "share of the limit does not fit here), got \"10%\"",
          "svc.json: .pprof.max_per_hour: expected a whole number, got 1.5",
          "svc.json: .pprof.cpu_seconds: must be between 1 and 300, got 0"}},
        {"memory_high fixed needs a value",
         "{\"cgroup\": \"a\", \"memory_high\": {\"mode\": \"fixed\"}}",
         {"svc.json: .memory_high.fixed: required when mode is \"fixed\": the memory.high to "
          "set, e.g. \"90%\" of the limit or \"3G\""}},
        {"memory_high min above fixed",
         "{\"cgroup\": \"a\", \"memory_high\": {\"mode\": \"fixed\", \"fixed\": \"1G\", \"min\": "
         "\"2G\"}}",
         {"svc.json: .memory_high.min: must not be above .memory_high.fixed (\"1G\"), got "
          "\"2G\""}},
        {"memory_high fixed below the default min",
         "{\"cgroup\": \"a\", \"memory_high\": {\"mode\": \"fixed\", \"fixed\": \"5%\"}}",
         {"svc.json: .memory_high.fixed: must not be below .memory_high.min (10%, the "
          "default), got \"5%\""}},
        {"sizes",
         "{\"cgroup\": \"a\", \"memory_high\": {\"min\": \"lots\", \"fixed\": \"max\"}}",
         {"svc.json: .memory_high.fixed: expected a size like \"256M\" or \"80%\"; \"max\" "
          "does not fit here",
          "svc.json: .memory_high.min: expected a size like \"256M\" or \"80%\", or a number of "
          "bytes, got \"lots\""}},
        {"collector argv",
         "{\"cgroup\": \"a\", \"collectors\": [{\"argv\": [\"./gcore\", \"{pdi}\", 3]}, {}, 5]}",
         {"svc.json: .collectors[0].argv[0]: must be an absolute path or a program name looked "
          "up in PATH, got \"./gcore\"",
          "svc.json: .collectors[0].argv[1]: unknown placeholder \"{pdi}\"; did you mean "
          "\"{pid}\"?",
          "svc.json: .collectors[0].argv[2]: expected a string, got 3",
          "svc.json: .collectors[1].argv: required: the command as an array, e.g. [\"gcore\", "
          "\"-o\", \"{dir}/core\", \"{pid}\"]",
          "svc.json: .collectors[2]: expected an object like {\"argv\": [\"gcore\", \"{pid}\"]}, "
          "got 5"}},
        {"collector per_process",
         "{\"cgroup\": \"a\", \"collectors\": [{\"argv\": [\"gcore\", \"{pid}\"], "
         "\"per_process\": false}, {\"argv\": [\"date\"], \"per_process\": true}]}",
         {"svc.json: .collectors[0].per_process: must be true when argv uses \"{pid}\" (or use "
          "\"{pids}\" for all processes in one run)",
          "svc.json: .collectors[1].per_process: true runs the command once per process, but "
          "argv has no \"{pid}\" to tell them apart"}},
        {"webhooks",
         "{\"cgroup\": \"a\", \"webhooks\": [{\"url\": \"https://hooks.example.com/x\"}, "
         "{\"url\": \"http://127.0.0.1:8080/\", \"secret_file\": \"memgov.secret\", "
         "\"timeout\": \"30s\"}, {\"url\": \"ftp://x\"}]}",
         {"svc.json: .webhooks[0].secret_file: required for a webhook to \"hooks.example.com\": "
          "unsigned events may go only to 127.0.0.0/8 or [::1]",
          "svc.json: .webhooks[1].secret_file: expected an absolute file name like "
          "\"/etc/memgov/app.secret\", got \"memgov.secret\"",
          "svc.json: .webhooks[1].timeout: must be at most the deadline (20s, the default), got "
          "\"30s\"",
          "svc.json: .webhooks[2].url: expected an http:// or https:// URL like "
          "\"https://alerts.example.com/memgov\", got \"ftp://x\""}},
        {"webhook deadline",
         "{\"cgroup\": \"a\", \"webhooks\": [{\"url\": \"http://127.0.0.1:1/\", \"timeout\": "
         "\"5s\", \"deadline\": \"1s\"}]}",
         {"svc.json: .webhooks[0].deadline: must be at least the timeout of one attempt (5s), "
          "got \"1s\""}},
        {"not an object",
         "[\"cgroup\"]",
         {"svc.json: .: expected an object like {\"cgroup\": \"system.slice/app.service\"}, got "
          "an array"}},
        {"section of the wrong type",
         "{\"cgroup\": \"a\", \"levels\": [], \"memory_high\": \"guard\", \"webhooks\": {}}",
         {"svc.json: .levels: expected an object like {\"warn\": {\"eta\": \"10m\"}}, got an "
          "array",
          "svc.json: .memory_high: expected an object like {\"mode\": \"guard\"}, got "
          "\"guard\"",
          "svc.json: .webhooks: expected an array [...], got an object"}},
        {"null is not a default",
         "{\"cgroup\": \"a\", \"service\": null, \"memory_high\": {\"reclaim\": \"yes\"}}",
         {"svc.json: .service: expected a string, got null",
          "svc.json: .memory_high.reclaim: expected true or false, got \"yes\""}},
        {"duplicate key",
         "{\n  \"cgroup\": \"a\",\n  \"levels\": {\"hold\": \"5s\"},\n  \"cgroup\": \"b\"\n}",
         {"svc.json: .cgroup: given twice (lines 2 and 4); only the last would count, remove "
          "one"}},
        {"all problems, not just the first",
         "{\"cgroup\": \"\", \"sample_interval\": \"1 s\", \"forecast\": {\"window\": true}}",
         {"svc.json: .cgroup: must not be empty; give a path or glob relative to the cgroup "
          "root, e.g. \"system.slice/app.service\"",
          "svc.json: .sample_interval: expected a duration like \"30s\" or \"5m\", got \"1 s\"",
          "svc.json: .forecast.window: expected a duration like \"30s\" or \"5m\", got true"}},
};

static void test_policy_load_buffer_bad_files(void **state)
{
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(bad_cases); i++) {
                struct policy *p = NULL;
                struct diag d = {};
                int r = policy_load_buffer("svc.json", bad_cases[i].json, strlen(bad_cases[i].json),
                                           &d, &p);

                if (r != -EINVAL)
                        print_error("%s: returned %d\n", bad_cases[i].name, r);
                assert_int_equal(r, -EINVAL);
                assert_null(p);
                assert_lines(bad_cases[i].name, &d, bad_cases[i].lines);
                diag_clear(&d);
        }
}

/* JSON syntax errors: placed by line and column, worded for the fix. */
static const struct bad_case syntax_cases[] = {
        {"trailing comma",
         "{\n  \"cgroup\": \"a\",\n  \"levels\": {\"hold\": \"5s\",},\n}\n",
         {"svc.json:3:26: invalid JSON: trailing comma before '}'; JSON allows none"}},
        {"missing comma at the end of a line",
         "{\n  \"cgroup\": \"a\"\n  \"sample_interval\": \"1s\"\n}\n",
         {"svc.json:3:3: invalid JSON: expected ',' or '}' after a value; is a ',' missing at "
          "the end of line 2?"}},
        {"comment",
         "{\n  // the unit\n  \"cgroup\": \"a\"\n}\n",
         {"svc.json:2:3: invalid JSON: comments are not allowed in JSON"}},
        {"single quotes",
         "{\n  \"cgroup\": 'a'\n}\n",
         {"svc.json:2:13: invalid JSON: strings need double quotes (\"), not single"}},
        {"single-quoted key",
         "{'cgroup': \"a\"}",
         {"svc.json:1:2: invalid JSON: strings need double quotes (\"), not single"}},
        {"unquoted key",
         "{cgroup: \"a\"}",
         {"svc.json:1:2: invalid JSON: expected a key in double quotes, got 'c'"}},
        {"truncated",
         "{\n  \"cgroup\": \"a\",\n  \"levels\": {\n",
         {"svc.json:3:14: invalid JSON: unexpected end of file; is a closing '}' or ']' "
          "missing?"}},
        {"two objects",
         "{\"cgroup\": \"a\"}\n{\"cgroup\": \"b\"}\n",
         {"svc.json:2:1: invalid JSON: unexpected '{' after the end of the top-level value; "
          "one file holds one object"}},
        {"NaN",
         "{\"cgroup\": \"a\", \"sample_interval\": NaN}",
         {"svc.json:1:36: invalid JSON: invalid literal; JSON has true, false and null, and no "
          "NaN or Infinity"}},
        {"upper-case literal",
         "{\"cgroup\": \"a\", \"memory_high\": {\"reclaim\": True}}",
         {"svc.json:1:44: invalid JSON: invalid literal; JSON has true, false and null, in "
          "lower case"}},
        {"number with a trailing dot",
         "{\"cgroup\": \"a\", \"sample_interval\": 1.}",
         {"svc.json:1:36: invalid JSON: invalid number; a digit must follow '.'"}},
        {"raw tab in a string",
         "{\"cgroup\": \"a\tb\"}",
         {"svc.json:1:14: invalid JSON: a control character (tab, newline) inside a string must "
          "be written as an escape like \\t or \\n"}},
        {"invalid UTF-8",
         "{\"cgroup\": \"a\xc3\x28\"}",
         {"svc.json:1:14: invalid JSON: invalid UTF-8; save the file as UTF-8"}},
        {"columns count characters, not bytes",
         "{\"service\": \"\xc3\xa9\xc3\xa9\", x}",
         {"svc.json:1:19: invalid JSON: expected a key in double quotes, got 'x'"}},
        {"too deep",
         "{\"cgroup\": \"a\", \"x\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]"
         "]]]]]]]]]]]]]]]]]]]]}",
         {"svc.json:1:53: invalid JSON: nested more than 32 levels deep"}},
        {"empty", " \n\t\n", {"svc.json: empty file; expected a JSON object {...}"}},
        {"top-level literal",
         "null",
         {"svc.json: .: expected an object like {\"cgroup\": \"system.slice/app.service\"}, got "
          "null"}},
};

static void test_policy_load_buffer_syntax_errors(void **state)
{
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(syntax_cases); i++) {
                struct policy *p = NULL;
                struct diag d = {};
                int r = policy_load_buffer("svc.json", syntax_cases[i].json,
                                           strlen(syntax_cases[i].json), &d, &p);

                assert_int_equal(r, -EINVAL);
                assert_null(p);
                assert_lines(syntax_cases[i].name, &d, syntax_cases[i].lines);
                diag_clear(&d);
        }
}

static void test_policy_load_buffer_hostile_input(void **state)
{
        (void)state;
        static const char nul[] = "{\"cgroup\": \"a\0b\"}";
        struct policy *p = NULL;
        struct diag d = {};
        size_t len = 0;
        char *big;
        int r;

        /* a NUL byte in the middle of the file */
        r = policy_load_buffer("svc.json", nul, sizeof(nul) - 1, &d, &p);
        assert_int_equal(r, -EINVAL);
        assert_lines("NUL", &d,
                     (const char *const[]){"svc.json:1:14: invalid JSON: a NUL byte; this is not a "
                                           "text file",
                                           NULL});
        diag_clear(&d);

        /* hundreds of unknown keys: the report stops after 50 problems */
        big = malloc(300 * 16 + 32);
        assert_non_null(big);
        len += (size_t)sprintf(big, "{\"cgroup\": \"a\"");
        for (int i = 0; i < 300; i++)
                len += (size_t)sprintf(big + len, ", \"k%03d\": 1", i);
        strcpy(big + len, "}");
        r = policy_load_buffer("svc.json", big, strlen(big), &d, &p);
        free(big);
        assert_int_equal(r, -EINVAL);
        assert_null(p);
        assert_int_equal(d.n_lines, 51);
        assert_string_equal(d.lines[50], "svc.json: more problems not shown (stopped after 50)");
        diag_clear(&d);

        /* a service name is needed when the file name does not make one */
        r = policy_load_buffer("/x/my app.json", "{\"cgroup\": \"a\"}", 15, &d, &p);
        assert_int_equal(r, -EINVAL);
        assert_lines("file name", &d,
                     (const char *const[]){"/x/my app.json: .service: required, since the "
                                           "file name does not make a service name (1 to 64 "
                                           "letters, digits, '_', '.' or '-')",
                                           NULL});
        diag_clear(&d);
}

static void test_policy_load_file_unreadable(void **state)
{
        (void)state;
        char *dir = tmpdir_new(), path[512], *big;
        struct policy *p = NULL;
        struct diag d = {};
        FILE *f;

        (void)snprintf(path, sizeof(path), "%s/none.json", dir);
        assert_int_equal(policy_load_file(path, &d, &p), -ENOENT);
        assert_int_equal(d.n_lines, 1);
        assert_non_null(strstr(d.lines[0], "none.json: cannot read: No such file or directory"));
        diag_clear(&d);

        assert_int_equal(policy_load_file(dir, &d, &p), -EISDIR);
        assert_int_equal(d.n_lines, 1);
        assert_non_null(strstr(d.lines[0], ": is a directory, not a JSON file"));
        diag_clear(&d);

        (void)snprintf(path, sizeof(path), "%s/big.json", dir);
        f = fopen(path, "we");
        assert_non_null(f);
        big = calloc(1, 1024 * 1024 + 1);
        assert_non_null(big);
        memset(big, ' ', 1024 * 1024 + 1);
        assert_int_equal(fwrite(big, 1, 1024 * 1024 + 1, f), 1024 * 1024 + 1);
        free(big);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(policy_load_file(path, &d, &p), -EFBIG);
        assert_non_null(strstr(d.lines[0], "big.json: larger than 1 MiB, the limit for a policy "
                                           "or config file"));
        diag_clear(&d);
        assert_null(p);
        tmpdir_free(dir);
}

/* ---- policy directories --------------------------------------------------------------- */

static void test_policy_set_load_dir_loads_sorted_json_only(void **state)
{
        (void)state;
        char *dir = tmpdir_new();
        struct policy_set *s = NULL;
        struct diag d = {};

        write_file(dir, "b.json", "{\"cgroup\": \"system.slice/b.service\"}");
        write_file(dir, "a.json", "{\"cgroup\": \"system.slice/a.service\"}");
        write_file(dir, "README", "not a policy");
        write_file(dir, "c.json.orig", "{");
        write_file(dir, ".#a.json", "{");
        assert_int_equal(policy_set_load_dir(dir, &d, &s), 0);
        assert_int_equal(d.n_lines, 0);
        assert_int_equal(s->n_policies, 2);
        assert_string_equal(s->policies[0]->service, "a");
        assert_string_equal(s->policies[1]->service, "b");
        policy_set_free(s);
        tmpdir_free(dir);
}

static void test_policy_set_load_dir_empty_is_valid(void **state)
{
        (void)state;
        char *dir = tmpdir_new();
        struct policy_set *s = NULL;
        struct diag d = {};

        assert_int_equal(policy_set_load_dir(dir, &d, &s), 0);
        assert_non_null(s);
        assert_int_equal(s->n_policies, 0);
        policy_set_free(s);
        tmpdir_free(dir);
}

static void test_policy_set_load_dir_all_or_nothing(void **state)
{
        (void)state;
        char *dir = tmpdir_new(), line[600];
        struct policy_set *s = NULL;
        struct diag d = {};

        write_file(dir, "a.json", "{\"cgroup\": \"system.slice/a.service\"}");
        write_file(dir, "b.json", "{\"cgroup\": \"system.slice/b.service\", \"servic\": \"b\"}");
        write_file(dir, "c.json", "{\"cgroup\": \"system.slice/c.service\",}");
        assert_int_equal(policy_set_load_dir(dir, &d, &s), -EINVAL);
        assert_null(s);
        assert_int_equal(d.n_lines, 2);
        (void)snprintf(line, sizeof(line),
                       "%s/b.json: .servic: unknown key; did you mean \"service\"?", dir);
        assert_string_equal(d.lines[0], line);
        (void)snprintf(line, sizeof(line),
                       "%s/c.json:1:36: invalid JSON: trailing comma before '}'; JSON allows none",
                       dir);
        assert_string_equal(d.lines[1], line);
        diag_clear(&d);
        tmpdir_free(dir);
}

static void test_policy_set_load_dir_rejects_duplicates(void **state)
{
        (void)state;
        char *dir = tmpdir_new(), line[2][600];
        struct policy_set *s = NULL;
        struct diag d = {};

        write_file(dir, "a.json",
                   "{\"service\": \"shop\", \"cgroup\": \"system.slice/a.service\"}");
        write_file(dir, "b.json",
                   "{\"service\": \"shop\", \"cgroup\": \"system.slice/b.service\"}");
        write_file(dir, "c.json", "{\"cgroup\": \"system.slice/a.service\"}");
        assert_int_equal(policy_set_load_dir(dir, &d, &s), -EINVAL);
        assert_null(s);
        (void)snprintf(line[0], sizeof(line[0]),
                       "%s/b.json: .service: \"shop\" is already the service of %s/a.json; "
                       "service names must be unique",
                       dir, dir);
        (void)snprintf(line[1], sizeof(line[1]),
                       "%s/c.json: .cgroup: \"system.slice/a.service\" is already governed by "
                       "%s/a.json; one cgroup, one policy",
                       dir, dir);
        assert_lines("duplicates", &d, (const char *const[]){line[0], line[1], NULL});
        diag_clear(&d);
        tmpdir_free(dir);
}

static void test_policy_check_unique_names_both_files(void **state)
{
        (void)state;
        struct policy *p[3] = {
                load_ok("a.json", "{\"service\": \"x\", \"cgroup\": \"a\"}"),
                load_ok("b.json", "{\"service\": \"x\", \"cgroup\": \"b\"}"),
                load_ok("a.json", "{\"service\": \"x\", \"cgroup\": \"a\"}"),
        };
        struct diag d = {};

        /* a.json read twice is the same file, not a clash; b.json clashes with both */
        assert_int_equal(policy_check_unique(p, 3, &d), 2);
        assert_lines("unique", &d,
                     (const char *const[]){"b.json: .service: \"x\" is already the service of "
                                           "a.json; service names must be unique",
                                           "a.json: .service: \"x\" is already the service of "
                                           "b.json; service names must be unique",
                                           NULL});
        diag_clear(&d);
        assert_int_equal(policy_check_unique(p, 1, &d), 0);
        assert_int_equal(d.n_lines, 0);
        for (size_t i = 0; i < 3; i++)
                policy_free(p[i]);
}

static void test_policy_set_load_dir_missing(void **state)
{
        (void)state;
        struct policy_set *s = NULL;
        struct diag d = {};

        assert_int_equal(policy_set_load_dir("/nonexistent/memgov", &d, &s), -ENOENT);
        assert_null(s);
        assert_lines("missing", &d,
                     (const char *const[]){"/nonexistent/memgov: cannot read the policy "
                                           "directory: No such file or directory",
                                           NULL});
        diag_clear(&d);
}

/* ---- the daemon config ---------------------------------------------------------------- */

static void test_memgov_config_load_defaults(void **state)
{
        (void)state;
        struct memgov_config c = {};
        struct diag d = {};

        assert_int_equal(memgov_config_load(NULL, &d, &c), 0);
        assert_string_equal(c.policy_dir, "/etc/memgov/policies.d");
        assert_string_equal(c.state_dir, "/var/lib/memgov");
        assert_string_equal(c.runtime_dir, "/run/memgov");
        assert_null(c.cgroup_root);
        assert_null(c.listen);
        assert_int_equal(c.rescan_interval_usec, 30 * USEC_PER_SEC);
        assert_false(c.dry_run);
        memgov_config_clear(&c);
}

static void test_memgov_config_load_example_and_values(void **state)
{
        (void)state;
        char *dir = tmpdir_new(), path[512];
        struct memgov_config c = {};
        struct diag d = {};

        assert_int_equal(memgov_config_load(MEMGOV_SOURCE_DIR "/policies/memgovd.json", &d, &c), 0);
        assert_int_equal(d.n_lines, 0);
        assert_string_equal(c.listen, "127.0.0.1:9464");
        memgov_config_clear(&c);

        write_file(dir, "memgovd.json",
                   "{\"policy_dir\": \"/srv/policies/\", \"cgroup_root\": \"/tmp/fake\", "
                   "\"listen\": \"[::1]:9100\", \"rescan_interval\": \"1m\", \"dry_run\": true}");
        (void)snprintf(path, sizeof(path), "%s/memgovd.json", dir);
        assert_int_equal(memgov_config_load(path, &d, &c), 0);
        assert_string_equal(c.policy_dir, "/srv/policies");
        assert_string_equal(c.state_dir, "/var/lib/memgov");
        assert_string_equal(c.cgroup_root, "/tmp/fake");
        assert_string_equal(c.listen, "[::1]:9100");
        assert_int_equal(c.rescan_interval_usec, USEC_PER_MINUTE);
        assert_true(c.dry_run);
        memgov_config_clear(&c);
        tmpdir_free(dir);
}

static void test_memgov_config_load_bad(void **state)
{
        (void)state;
        char *dir = tmpdir_new(), path[256], expected[6][1024];
        struct memgov_config c = {.dry_run = true};
        struct diag d = {};

        write_file(dir, "memgovd.json",
                   "{\"polciy_dir\": \"/etc/x\", \"state_dir\": \"var/lib/memgov\", "
                   "\"listen\": \"9464\", \"rescan_interval\": \"0s\", \"dry_run\": \"yes\", "
                   "\"hold\": 1}");
        (void)snprintf(path, sizeof(path), "%s/memgovd.json", dir);
        assert_int_equal(memgov_config_load(path, &d, &c), -EINVAL);
        /* untouched on failure */
        assert_true(c.dry_run);
        assert_null(c.policy_dir);
        (void)snprintf(expected[0], sizeof(expected[0]),
                       "%s: .polciy_dir: unknown key; did you mean \"policy_dir\"?", path);
        (void)snprintf(expected[1], sizeof(expected[1]),
                       "%s: .hold: unknown key; the keys here are \"policy_dir\", \"state_dir\", "
                       "\"runtime_dir\", \"cgroup_root\", \"listen\", \"rescan_interval\", "
                       "\"dry_run\"",
                       path);
        (void)snprintf(expected[2], sizeof(expected[2]),
                       "%s: .state_dir: expected an absolute directory name like "
                       "\"/var/lib/memgov\", got \"var/lib/memgov\"",
                       path);
        (void)snprintf(expected[3], sizeof(expected[3]),
                       "%s: .listen: expected an IP address and a port like \"127.0.0.1:9464\" or "
                       "\"[::1]:9464\", got \"9464\"",
                       path);
        (void)snprintf(expected[4], sizeof(expected[4]),
                       "%s: .rescan_interval: must be at least 1s, got \"0s\"", path);
        (void)snprintf(expected[5], sizeof(expected[5]),
                       "%s: .dry_run: expected true or false, got \"yes\"", path);
        assert_lines("config", &d,
                     (const char *const[]){expected[0], expected[1], expected[2], expected[3],
                                           expected[4], expected[5], NULL});
        diag_clear(&d);
        tmpdir_free(dir);
}

/* ---- the schema and the validator agree ----------------------------------------------- */

static struct json_object *schema_resolve(struct json_object *schema, struct json_object *node)
{
        struct json_object *ref, *defs, *def;
        const char *r;

        if (!json_object_object_get_ex(node, "$ref", &ref))
                return node;
        r = json_object_get_string(ref);
        assert_int_equal(strncmp(r, "#/$defs/", 8), 0);
        assert_true(json_object_object_get_ex(schema, "$defs", &defs));
        assert_true(json_object_object_get_ex(defs, r + 8, &def));
        return def;
}

static bool key_in(const char *key, const char *const *keys)
{
        for (; *keys; keys++)
                if (strcmp(*keys, key) == 0)
                        return true;
        return false;
}

/* Compare the schema's properties with the validator's keys at path, then descend. */
static void schema_walk(struct json_object *schema, struct json_object *node, const char *path,
                        unsigned *n_objects)
{
        struct json_object *props, *items, *extra;
        const char *const *keys;
        size_t n_keys = 0, n_props;

        node = schema_resolve(schema, node);
        if (!json_object_object_get_ex(node, "properties", &props)) {
                if (json_object_object_get_ex(node, "items", &items)) {
                        char child[256];
                        (void)snprintf(child, sizeof(child), "%s[]", path);
                        items = schema_resolve(schema, items);
                        if (json_object_object_get_ex(items, "properties", NULL))
                                schema_walk(schema, items, child, n_objects);
                }
                return;
        }
        (*n_objects)++;
        keys = policy_known_keys(path);
        if (!keys)
                fail_msg("the schema has an object at %s; the validator does not", path);
        assert_true(json_object_object_get_ex(node, "additionalProperties", &extra));
        assert_false(json_object_get_boolean(extra));
        for (; keys[n_keys]; n_keys++)
                if (!json_object_object_get_ex(props, keys[n_keys], NULL))
                        fail_msg("%s: the validator knows \"%s\", the schema does not", path,
                                 keys[n_keys]);
        n_props = (size_t)json_object_object_length(props);
        json_object_object_foreach (props, key, val) {
                char child[256];

                if (!key_in(key, keys))
                        fail_msg("%s: the schema has \"%s\", the validator does not", path, key);
                (void)snprintf(child, sizeof(child), "%s.%s", strcmp(path, ".") ? path : "", key);
                schema_walk(schema, val, child, n_objects);
        }
        assert_int_equal(n_props, n_keys);
}

static void test_policy_known_keys_match_schema(void **state)
{
        (void)state;
        struct json_object *schema =
                json_object_from_file(MEMGOV_SOURCE_DIR "/policies/policy.schema.json");
        unsigned n_objects = 0;

        assert_non_null(schema);
        schema_walk(schema, schema, ".", &n_objects);
        /* ., forecast, levels, warn, degrade, critical, memory_high, pprof, runtime,
         * collectors[], webhooks[] */
        assert_int_equal(n_objects, 11);
        assert_null(policy_known_keys(".nope"));
        assert_non_null(policy_known_keys(""));
        json_object_put(schema);
}

static void test_policy_schema_examples_validate(void **state)
{
        (void)state;
        struct json_object *schema =
                json_object_from_file(MEMGOV_SOURCE_DIR "/policies/policy.schema.json");
        struct json_object *examples;

        assert_non_null(schema);
        assert_true(json_object_object_get_ex(schema, "examples", &examples));
        assert_true(json_object_array_length(examples) >= 2);
        for (size_t i = 0; i < json_object_array_length(examples); i++) {
                const char *text = json_object_to_json_string_ext(
                        json_object_array_get_idx(examples, i), JSON_C_TO_STRING_PRETTY);
                policy_free(load_ok("example.json", text));
        }
        json_object_put(schema);
}

static void test_names_round_trip(void **state)
{
        (void)state;
        for (int k = 0; k < _PPROF_KIND_MAX; k++)
                assert_int_equal(pprof_kind_from_string(pprof_kind_to_string((enum pprof_kind)k)),
                                 k);
        assert_int_equal(pprof_kind_from_string("cpu"), _PPROF_KIND_INVALID);
        assert_string_equal(memory_high_mode_to_string(MEMORY_HIGH_GUARD), "guard");
        assert_null(memory_high_mode_to_string(_MEMORY_HIGH_MODE_MAX));
        assert_string_equal(actuate_backend_to_string(ACTUATE_BACKEND_SYSTEMD), "systemd");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_policy_load_buffer_minimal_gets_defaults),
                cmocka_unit_test(test_policy_load_buffer_full_policy),
                cmocka_unit_test(test_policy_load_buffer_runtime),
                cmocka_unit_test(test_policy_load_buffer_level_object_replaces_defaults),
                cmocka_unit_test(test_policy_load_buffer_value_forms),
                cmocka_unit_test(test_policy_size_resolve_shares_and_bytes),
                cmocka_unit_test(test_policy_load_file_examples_are_valid),
                cmocka_unit_test(test_policy_load_buffer_bad_files),
                cmocka_unit_test(test_policy_load_buffer_syntax_errors),
                cmocka_unit_test(test_policy_load_buffer_hostile_input),
                cmocka_unit_test(test_policy_load_file_unreadable),
                cmocka_unit_test(test_policy_set_load_dir_loads_sorted_json_only),
                cmocka_unit_test(test_policy_set_load_dir_empty_is_valid),
                cmocka_unit_test(test_policy_set_load_dir_all_or_nothing),
                cmocka_unit_test(test_policy_set_load_dir_rejects_duplicates),
                cmocka_unit_test(test_policy_check_unique_names_both_files),
                cmocka_unit_test(test_policy_set_load_dir_missing),
                cmocka_unit_test(test_memgov_config_load_defaults),
                cmocka_unit_test(test_memgov_config_load_example_and_values),
                cmocka_unit_test(test_memgov_config_load_bad),
                cmocka_unit_test(test_policy_known_keys_match_schema),
                cmocka_unit_test(test_policy_schema_examples_validate),
                cmocka_unit_test(test_names_round_trip),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}

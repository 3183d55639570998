/* SPDX-License-Identifier: MIT */
/*
 * Export: the status document — what the daemon writes reads back the same in memgovctl,
 * hostile strings stay valid JSON, broken documents are refused with a reason, and the
 * table a person reads shows the right figures in the right columns, and
 * docs/status-api.md names every key the daemon writes.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "memgov/macro.h"
#include "memgov/status.h"

#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)

static const struct status_daemon daemon_info = {
        .version = "0.1.0",
        .pid = 4242,
        .uptime_usec = 3 * USEC_PER_HOUR + 12 * USEC_PER_MINUTE,
        .cgroup_root = "/sys/fs/cgroup",
        .policy_dir = "/etc/memgov/policies.d",
        .state_dir = "/var/lib/memgov",
        .n_policies = 2,
        .n_reloads = 1,
};

/* An instance in warn with everything known. */
static struct status_instance busy_instance(void)
{
        struct status_instance i;

        status_instance_init(&i);
        i.service = "checkout";
        i.cgroup = "system.slice/checkout.service";
        i.level = LEVEL_WARN;
        i.level_age_usec = 130 * USEC_PER_SEC + 500 * USEC_PER_MSEC;
        i.n_samples = 7200;
        i.last_sample_age_usec = 400 * USEC_PER_MSEC;
        i.current_bytes = 812 * MIB;
        i.anon_bytes = 700 * MIB;
        i.file_bytes = 100 * MIB;
        i.max_bytes = GIB;
        i.high_bytes = 900 * MIB;
        i.limit_bytes = GIB;
        i.psi_some_avg10 = 1.5;
        i.psi_full_avg10 = 0;
        i.forecast_known = true;
        i.eta_usec = 492 * USEC_PER_SEC;
        i.eta_lower_usec = 310 * USEC_PER_SEC;
        i.eta_upper_usec = 800 * USEC_PER_SEC;
        i.slope_bytes_per_sec = 409600.5;
        i.memory_high_mode = "guard";
        i.memory_high_set_bytes = 900 * MIB;
        i.last_event = (struct status_event){.event = EVENT_WARN, .age_usec = 130 * USEC_PER_SEC};
        i.last_capture = (struct status_capture){
                .kind = "heap",
                .result = "ok",
                .path = "/var/lib/memgov/dumps/checkout/20250101T000000Z-warn",
                .age_usec = 128 * USEC_PER_SEC,
        };
        i.last_delivery = (struct status_delivery){
                .event = EVENT_WARN,
                .endpoint = "http://127.0.0.1:8080/memgov",
                .result = "delivered",
                .http_status = 204,
                .attempts = 2,
                .age_usec = 129 * USEC_PER_SEC,
        };
        return i;
}

/* An instance that has not been sampled yet. */
static struct status_instance fresh_instance(void)
{
        struct status_instance i;

        status_instance_init(&i);
        i.service = "batch";
        i.cgroup = "batch.slice/job-1.scope";
        return i;
}

static char *write_doc(const struct status_daemon *d, const struct status_instance *v, size_t n)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert_non_null(f);
        assert_int_equal(status_write_json(f, d, v, n), 0);
        assert_int_equal(fclose(f), 0);
        return buf;
}

static struct status_doc *parse_ok(const char *json)
{
        struct status_doc *doc = NULL;
        char *error = NULL;
        int r = status_parse_json(json, strlen(json), &doc, &error);

        if (r != 0) {
                print_error("parse failed (%d): %s\n", r, error ? error : "(no message)");
                free(error);
                fail();
        }
        return doc;
}

static void assert_same_u64_or_none(uint64_t a, uint64_t b)
{
        assert_true(a == b);
}

static void test_status_round_trip_keeps_every_field(void **state _unused_)
{
        struct status_instance v[2] = {busy_instance(), fresh_instance()};
        _cleanup_free_ char *json = write_doc(&daemon_info, v, 2);
        _cleanup_(status_doc_freep) struct status_doc *doc = parse_ok(json);
        const struct status_instance *a = &doc->instances[0], *b = &doc->instances[1];

        assert_int_equal(doc->schema, STATUS_SCHEMA);
        assert_string_equal(doc->daemon.version, "0.1.0");
        assert_int_equal(doc->daemon.pid, 4242);
        assert_true(doc->daemon.uptime_usec == daemon_info.uptime_usec);
        assert_false(doc->daemon.dry_run);
        assert_string_equal(doc->daemon.cgroup_root, "/sys/fs/cgroup");
        assert_string_equal(doc->daemon.policy_dir, "/etc/memgov/policies.d");
        assert_string_equal(doc->daemon.state_dir, "/var/lib/memgov");
        assert_int_equal(doc->daemon.n_policies, 2);
        assert_int_equal(doc->daemon.n_reloads, 1);
        assert_int_equal(doc->n_instances, 2);

        assert_string_equal(a->service, "checkout");
        assert_string_equal(a->cgroup, "system.slice/checkout.service");
        assert_int_equal(a->level, LEVEL_WARN);
        assert_true(a->level_age_usec == v[0].level_age_usec);
        assert_int_equal(a->n_samples, 7200);
        assert_true(a->last_sample_age_usec == v[0].last_sample_age_usec);
        assert_true(a->current_bytes == 812 * MIB);
        assert_true(a->anon_bytes == 700 * MIB);
        assert_true(a->file_bytes == 100 * MIB);
        assert_true(a->max_bytes == GIB);
        assert_true(a->high_bytes == 900 * MIB);
        assert_true(a->limit_bytes == GIB);
        assert_true(a->psi_some_avg10 == 1.5);
        assert_true(a->psi_full_avg10 == 0);
        assert_true(a->forecast_known);
        assert_true(a->eta_usec == 492 * USEC_PER_SEC);
        assert_true(a->eta_lower_usec == 310 * USEC_PER_SEC);
        assert_true(a->eta_upper_usec == 800 * USEC_PER_SEC);
        assert_true(a->slope_bytes_per_sec == 409600.5);
        assert_string_equal(a->memory_high_mode, "guard");
        assert_true(a->memory_high_set_bytes == 900 * MIB);
        assert_int_equal(a->last_event.event, EVENT_WARN);
        assert_true(a->last_event.age_usec == 130 * USEC_PER_SEC);
        assert_string_equal(a->last_capture.kind, "heap");
        assert_string_equal(a->last_capture.result, "ok");
        assert_string_equal(a->last_capture.path, v[0].last_capture.path);
        assert_true(a->last_capture.age_usec == 128 * USEC_PER_SEC);
        assert_int_equal(a->last_delivery.event, EVENT_WARN);
        assert_string_equal(a->last_delivery.result, "delivered");
        assert_int_equal(a->last_delivery.http_status, 204);
        assert_string_equal(a->last_delivery.endpoint, "http://127.0.0.1:8080/memgov");
        assert_int_equal(a->last_delivery.attempts, 2);
        assert_true(a->last_delivery.age_usec == 129 * USEC_PER_SEC);

        /* Unknowns stay unknown: null in JSON, STATUS_NONE / NAN / NULL after parsing. */
        assert_string_equal(b->service, "batch");
        assert_int_equal(b->level, LEVEL_OK);
        assert_int_equal(b->n_samples, 0);
        assert_same_u64_or_none(b->level_age_usec, STATUS_NONE);
        assert_same_u64_or_none(b->last_sample_age_usec, STATUS_NONE);
        assert_same_u64_or_none(b->current_bytes, STATUS_NONE);
        assert_same_u64_or_none(b->max_bytes, STATUS_NONE);
        assert_same_u64_or_none(b->high_bytes, STATUS_NONE);
        assert_same_u64_or_none(b->limit_bytes, STATUS_NONE);
        assert_same_u64_or_none(b->eta_usec, STATUS_NONE);
        assert_same_u64_or_none(b->memory_high_set_bytes, STATUS_NONE);
        assert_true(isnan(b->psi_some_avg10));
        assert_true(isnan(b->slope_bytes_per_sec));
        assert_false(b->forecast_known);
        assert_null(b->memory_high_mode);
        assert_int_equal(b->last_event.event, _EVENT_INVALID);
        assert_null(b->last_capture.kind);
        assert_int_equal(b->last_delivery.event, _EVENT_INVALID);
}

static void test_status_write_json_shape(void **state _unused_)
{
        struct status_instance v = fresh_instance();
        _cleanup_free_ char *json = write_doc(&daemon_info, &v, 1);

        /* What a script with jq relies on: the names and the nulls. */
        assert_non_null(strstr(json, "{\"schema\":1,\"daemon\":{\"version\":\"0.1.0\",\"pid\":4242,"
                                     "\"uptime_s\":11520.000,\"dry_run\":false,"));
        assert_non_null(strstr(json, "\"instances\":[{\"service\":\"batch\",\"cgroup\":\"batch."
                                     "slice/job-1.scope\",\"level\":\"ok\",\"level_age_s\":null,"
                                     "\"samples\":0,\"last_sample_age_s\":null,"));
        assert_non_null(strstr(json, "\"memory\":{\"current_bytes\":null,"));
        assert_non_null(strstr(json, "\"last_event\":null,\"last_capture\":null,"
                                     "\"last_delivery\":null}]}\n"));
        /* One line: easy to log, easy to pipe. */
        assert_ptr_equal(strchr(json, '\n'), json + strlen(json) - 1);
}

static void test_status_write_json_escapes_hostile_strings(void **state _unused_)
{
        struct status_instance v = fresh_instance();
        _cleanup_free_ char *json = NULL;
        _cleanup_(status_doc_freep) struct status_doc *doc = NULL;

        v.service = "quote\"back\\slash";
        v.cgroup = "ctl\x01\ttab\nnl/bad\xff/caf\xc3\xa9";
        json = write_doc(&daemon_info, &v, 1);
        assert_non_null(strstr(json, "\"quote\\\"back\\\\slash\""));
        assert_non_null(strstr(json, "\"ctl\\u0001\\ttab\\nnl/bad\xef\xbf\xbd/caf\xc3\xa9\""));
        doc = parse_ok(json);
        assert_string_equal(doc->instances[0].service, "quote\"back\\slash");
        assert_string_equal(doc->instances[0].cgroup,
                            "ctl\x01\ttab\nnl/bad\xef\xbf\xbd/caf\xc3\xa9");
}

static void test_status_write_json_refuses_incomplete_instance(void **state _unused_)
{
        struct status_instance v = fresh_instance();
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert_non_null(f);
        v.cgroup = NULL;
        assert_int_equal(status_write_json(f, &daemon_info, &v, 1), -EINVAL);
        v = fresh_instance();
        v.level = _LEVEL_MAX;
        assert_int_equal(status_write_json(f, &daemon_info, &v, 1), -EINVAL);
        fclose(f);
        assert_string_equal(buf, "");
        free(buf);
}

static void test_status_parse_refuses_broken_documents(void **state _unused_)
{
        static const struct {
                const char *json, *error;
        } rows[] = {
                {"", "not JSON"},
                {"<html>502 Bad Gateway</html>", "not JSON"},
                {"{\"schema\":1,\"instances\":[", "cut short"},
                {"[]", "not a memgov status document"},
                {"{}", "not a memgov status document"},
                {"{\"schema\":\"1\",\"instances\":[]}", "not a memgov status document"},
                {"{\"schema\":2,\"instances\":[]}", ".schema: version 2 is not the 1"},
                {"{\"schema\":1}", "instances: expected an array"},
                {"{\"schema\":1,\"instances\":{}}", "instances: expected an array"},
                {"{\"schema\":1,\"instances\":[7]}", ".instances[0]: expected an object"},
                {"{\"schema\":1,\"instances\":[{\"cgroup\":\"a\",\"level\":\"ok\"}]}",
                 ".instances[0]: service: missing"},
                {"{\"schema\":1,\"instances\":[{\"service\":\"a\",\"cgroup\":\"a\",\"level\":"
                 "\"ok\"},"
                 "{\"service\":\"b\",\"cgroup\":\"b\",\"level\":\"panic\"}]}",
                 ".instances[1]: level: unknown level \"panic\""},
                {"{\"schema\":1,\"instances\":[{\"service\":\"a\",\"cgroup\":\"a\",\"level\":"
                 "\"ok\","
                 "\"memory\":{\"current_bytes\":-5}}]}",
                 ".instances[0]: current_bytes: expected a non-negative integer or null"},
                {"{\"schema\":1,\"instances\":[{\"service\":\"a\",\"cgroup\":\"a\",\"level\":"
                 "\"ok\","
                 "\"memory\":{\"current_bytes\":\"812M\"}}]}",
                 ".instances[0]: current_bytes: expected a non-negative integer or null"},
                {"{\"schema\":1,\"instances\":[{\"service\":\"a\",\"cgroup\":\"a\",\"level\":"
                 "\"ok\","
                 "\"forecast\":{\"eta_s\":-1}}]}",
                 ".instances[0]: eta_s: expected seconds between 0 and 1e12"},
                {"{\"schema\":1,\"instances\":[{\"service\":\"a\",\"cgroup\":\"a\",\"level\":"
                 "\"ok\","
                 "\"memory\":[]}]}",
                 ".instances[0]: memory: expected an object or null"},
                {"{\"schema\":1,\"instances\":[{\"service\":1,\"cgroup\":\"a\",\"level\":\"ok\"}]}",
                 ".instances[0]: service: expected a string"},
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                struct status_doc *doc = NULL;
                char *error = NULL;
                int r = status_parse_json(rows[i].json, strlen(rows[i].json), &doc, &error);

                if (r != -EINVAL || !error || !strstr(error, rows[i].error) || doc) {
                        print_error("row %zu: r=%d error \"%s\", want \"%s\"\n", i, r,
                                    error ? error : "(null)", rows[i].error);
                        fail();
                }
                free(error);
        }
}

static void test_status_parse_tolerates_newer_daemon(void **state _unused_)
{
        static const char json[] =
                "{\"schema\":1,\"future\":{\"x\":1},\"instances\":[{\"service\":\"a\","
                "\"cgroup\":\"a.service\",\"level\":\"degrade\",\"new_field\":[1,2],"
                "\"memory\":{\"current_bytes\":18446744073709551614,\"huge_pages\":3},"
                "\"last_event\":{\"event\":\"teleported\",\"age_s\":1}}]}";
        _cleanup_(status_doc_freep) struct status_doc *doc = parse_ok(json);

        assert_int_equal(doc->n_instances, 1);
        assert_int_equal(doc->instances[0].level, LEVEL_DEGRADE);
        assert_true(doc->instances[0].current_bytes == UINT64_MAX - 1);
        /* An event this memgovctl does not know reads as none. */
        assert_int_equal(doc->instances[0].last_event.event, _EVENT_INVALID);
        /* No daemon object at all: unknowns. */
        assert_null(doc->daemon.version);
        assert_true(doc->daemon.uptime_usec == STATUS_NONE);
}

static char *table(const struct status_doc *doc, bool full)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert_non_null(f);
        assert_int_equal(status_format_table(f, doc, full), 0);
        assert_int_equal(fclose(f), 0);
        return buf;
}

static void test_status_table_reads_at_a_glance(void **state _unused_)
{
        struct status_instance v[3] = {busy_instance(), fresh_instance(), busy_instance()};
        _cleanup_free_ char *json = NULL, *out = NULL;
        _cleanup_(status_doc_freep) struct status_doc *doc = NULL;

        /* The third: ok, forecast known but no OOM in sight, memory.high max, no limit. */
        v[2].service = "web";
        v[2].cgroup = "system.slice/web.service";
        v[2].level = LEVEL_OK;
        v[2].eta_usec = STATUS_NONE;
        v[2].high_bytes = STATUS_NONE;
        v[2].max_bytes = STATUS_NONE;
        v[2].limit_bytes = 16 * GIB;
        v[2].current_bytes = 1536 * MIB;
        v[2].last_event = (struct status_event){
                .event = EVENT_RECOVERED, .age_usec = 2 * USEC_PER_HOUR + 5 * USEC_PER_MINUTE};
        v[2].last_delivery = (struct status_delivery){
                .event = EVENT_RECOVERED,
                .endpoint = "http://127.0.0.1:8080/memgov",
                .result = "failed",
                .http_status = 500,
                .attempts = 4,
                .age_usec = 2 * USEC_PER_HOUR + 4 * USEC_PER_MINUTE,
        };

        json = write_doc(&daemon_info, v, 3);
        doc = parse_ok(json);
        out = table(doc, false);
        assert_string_equal(
                out,
                "memgovd 0.1.0 (pid 4242), up 3h12m, 2 policies, 3 cgroups\n"
                "\n"
                "SERVICE   CGROUP                         USAGE/LIMIT      ETA    LEVEL  "
                "MEMORY.HIGH      LAST EVENT           LAST WEBHOOK\n"
                "checkout  system.slice/checkout.service  812.0M/1.0G 79%  8m12s  warn   "
                "900.0M (memgov)  warn 2m10s ago       warn delivered 2m09s ago\n"
                "batch     batch.slice/job-1.scope        -                -      ok     "
                "-                -                    -\n"
                "web       system.slice/web.service       1.5G/16.0G 9%    none   ok     "
                "max              recovered 2h05m ago  recovered failed (HTTP 500) 2h04m ago\n");
}

static void test_status_table_shortens_long_cgroups_unless_full(void **state _unused_)
{
        static const char *const long_cgroup =
                "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f1e2d3c_4b5a_6978"
                ".slice/cri-containerd-0123456789abcdef.scope";
        struct status_instance v = busy_instance();
        _cleanup_free_ char *json = NULL, *short_out = NULL, *full_out = NULL;
        _cleanup_(status_doc_freep) struct status_doc *doc = NULL;

        v.cgroup = long_cgroup;
        json = write_doc(&daemon_info, &v, 1);
        doc = parse_ok(json);
        short_out = table(doc, false);
        full_out = table(doc, true);
        /* The head and the tail stay: the pod's QoS class and the container. */
        assert_non_null(strstr(short_out, "  kubepods.slice/kubep...rd-0123456789abcdef.scope  "));
        assert_null(strstr(short_out, long_cgroup));
        assert_non_null(strstr(full_out, long_cgroup));
}

static void test_status_table_says_why_it_is_empty(void **state _unused_)
{
        struct status_daemon d = daemon_info;
        _cleanup_free_ char *json1 = NULL, *json2 = NULL, *out1 = NULL, *out2 = NULL;
        _cleanup_(status_doc_freep) struct status_doc *doc1 = NULL, *doc2 = NULL;

        d.n_policies = 0;
        d.dry_run = true;
        json1 = write_doc(&d, NULL, 0);
        doc1 = parse_ok(json1);
        out1 = table(doc1, false);
        assert_string_equal(out1, "memgovd 0.1.0 (pid 4242), up 3h12m, 0 policies, 0 cgroups, "
                                  "dry run (memory.high is not written)\n"
                                  "No policy is loaded; put policies into /etc/memgov/policies.d "
                                  "and run 'memgovctl reload'.\n");

        d.n_policies = 1;
        d.dry_run = false;
        json2 = write_doc(&d, NULL, 0);
        doc2 = parse_ok(json2);
        out2 = table(doc2, false);
        assert_string_equal(out2, "memgovd 0.1.0 (pid 4242), up 3h12m, 1 policy, 0 cgroups\n"
                                  "No cgroup matches a policy under /sys/fs/cgroup yet.\n");
}

static void test_status_format_bytes_and_duration_table(void **state _unused_)
{
        static const struct {
                uint64_t bytes;
                const char *out;
        } bytes[] = {
                {0, "0B"},
                {1023, "1023B"},
                {1024, "1.0K"},
                {1536, "1.5K"},
                {MIB - 1, "1.0M"}, /* not "1024.0K" */
                {812 * MIB, "812.0M"},
                {GIB, "1.0G"},
                {UINT64_MAX - 1, "16.0E"},
                {STATUS_NONE, "-"},
        };
        static const struct {
                uint64_t usec;
                const char *out;
        } durations[] = {
                {0, "0s"},
                {999 * USEC_PER_MSEC, "0s"},
                {45 * USEC_PER_SEC, "45s"},
                {60 * USEC_PER_SEC, "1m00s"},
                {492 * USEC_PER_SEC, "8m12s"},
                {2 * USEC_PER_HOUR + 3 * USEC_PER_MINUTE, "2h03m"},
                {76 * USEC_PER_HOUR, "3d04h"},
                {STATUS_NONE, "-"},
        };
        char buf[16];

        for (size_t i = 0; i < ELEMENTSOF(bytes); i++) {
                status_format_bytes(bytes[i].bytes, buf);
                if (strcmp(buf, bytes[i].out) != 0) {
                        print_error("bytes row %zu: got \"%s\", want \"%s\"\n", i, buf,
                                    bytes[i].out);
                        fail();
                }
        }
        for (size_t i = 0; i < ELEMENTSOF(durations); i++) {
                status_format_duration(durations[i].usec, buf);
                if (strcmp(buf, durations[i].out) != 0) {
                        print_error("duration row %zu: got \"%s\", want \"%s\"\n", i, buf,
                                    durations[i].out);
                        fail();
                }
        }
}

/* Whether doc names key as a key: `key`, `x.key`, `key.y`, `key[]`, `a`, `key`, … */
static bool doc_names_key(const char *doc, const char *key)
{
        size_t n = strlen(key);

        for (const char *p = strstr(doc, key); p; p = strstr(p + 1, key))
                if (p > doc && (p[-1] == '`' || p[-1] == '.') &&
                    (p[n] == '`' || p[n] == '.' || p[n] == '['))
                        return true;
        return false;
}

static void check_keys_documented(const char *doc, struct json_object *o)
{
        if (json_object_is_type(o, json_type_array)) {
                for (size_t k = 0; k < json_object_array_length(o); k++)
                        check_keys_documented(doc, json_object_array_get_idx(o, k));
                return;
        }
        if (!json_object_is_type(o, json_type_object))
                return;
        json_object_object_foreach (o, key, value) {
                if (!doc_names_key(doc, key)) {
                        print_error("docs/status-api.md does not document \"%s\"\n", key);
                        fail();
                }
                check_keys_documented(doc, value);
        }
}

static void test_status_every_key_is_documented(void **state _unused_)
{
        struct status_instance v = busy_instance();
        _cleanup_free_ char *json = write_doc(&daemon_info, &v, 1), *doc = NULL;
        struct json_object *root;
        char path[4096];
        FILE *f;
        long n;

        snprintf(path, sizeof(path), "%s/docs/status-api.md", MEMGOV_SOURCE_DIR);
        f = fopen(path, "re");
        assert_non_null(f);
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        n = ftell(f);
        rewind(f);
        doc = calloc(1, (size_t)n + 1);
        assert_non_null(doc);
        assert_int_equal(fread(doc, 1, (size_t)n, f), (size_t)n);
        fclose(f);

        root = json_tokener_parse(json);
        assert_non_null(root);
        check_keys_documented(doc, root);
        json_object_put(root);
        /* The check itself can fail. */
        assert_false(doc_names_key(doc, "no_such_key_anywhere"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_status_round_trip_keeps_every_field),
                cmocka_unit_test(test_status_write_json_shape),
                cmocka_unit_test(test_status_write_json_escapes_hostile_strings),
                cmocka_unit_test(test_status_write_json_refuses_incomplete_instance),
                cmocka_unit_test(test_status_parse_refuses_broken_documents),
                cmocka_unit_test(test_status_parse_tolerates_newer_daemon),
                cmocka_unit_test(test_status_table_reads_at_a_glance),
                cmocka_unit_test(test_status_table_shortens_long_cgroups_unless_full),
                cmocka_unit_test(test_status_table_says_why_it_is_empty),
                cmocka_unit_test(test_status_format_bytes_and_duration_table),
                cmocka_unit_test(test_status_every_key_is_documented),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}

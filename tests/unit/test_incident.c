/* SPDX-License-Identifier: MIT */
/*
 * Incidents: the bounded decision log, lead times per episode, suspects copied from a
 * capture and read back from suspects.json, the bundle's text files (a trace that parses
 * back, decisions.jsonl), the bundle in a temporary dump store, and the HTML report
 * (markers, bands, escaping, a page that stays small for long records).
 */
#include <errno.h>
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
#include <json-c/json.h>

#include "memgov/dumps.h"
#include "memgov/incident.h"
#include "memgov/macro.h"
#include "memgov/report.h"
#include "memgov/trace.h"

#define MIB ((uint64_t)1 << 20)
#define S   USEC_PER_SEC

/* 2024-05-01T12:34:56Z */
#define WALL (UINT64_C(1714566896) * USEC_PER_SEC)

static char *read_file(const char *path, size_t *ret_size)
{
        FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t size = 0;

        if (!f)
                return NULL;
        FILE *m = open_memstream(&buf, &size);
        assert_non_null(m);
        int c;
        while ((c = fgetc(f)) != EOF)
                fputc(c, m);
        fclose(f);
        fclose(m);
        if (ret_size)
                *ret_size = size;
        return buf;
}

static size_t count(const char *hay, const char *needle)
{
        size_t n = 0;

        for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

/* A leak from 200 MiB at 1 MiB/s toward memory.max 512 MiB, one sample a second. */
static struct sample leak_sample(uint64_t t_s, uint64_t oom_kills)
{
        return (struct sample){
                .t_usec = 1000 * S + t_s * S,
                .current_bytes = 200 * MIB + t_s * MIB,
                .max_bytes = 512 * MIB,
                .high_bytes = CGROUP_LIMIT_MAX,
                .limit_bytes = 512 * MIB,
                .anon_bytes = 180 * MIB + t_s * MIB,
                .file_bytes = 20 * MIB,
                .events = {.oom_kill = oom_kills},
                .has = SAMPLE_HAS_ANON | SAMPLE_HAS_FILE | SAMPLE_HAS_HIGH | SAMPLE_HAS_EVENTS,
        };
}

/* ---- the log ------------------------------------------------------------------------ */

static void test_incident_log_ring_drops_oldest(void **state _unused_)
{
        struct incident_log l = {};
        char reason[16];

        assert_int_equal(incident_log_init(&l, 3), 0);
        for (int i = 0; i < 5; i++) {
                snprintf(reason, sizeof(reason), "r%d", i);
                assert_int_equal(incident_log_level(&l, (uint64_t)i * S, LEVEL_OK, LEVEL_WARN,
                                                    reason, USEC_INFINITY),
                                 0);
                strcpy(reason, "changed"); /* the log keeps its own copy */
        }
        assert_int_equal(incident_log_size(&l), 3);
        assert_int_equal(l.n_dropped, 2);
        assert_string_equal(incident_log_get(&l, 0)->reason, "r2");
        assert_int_equal(incident_log_get(&l, 0)->t_usec, 2 * S);
        assert_string_equal(incident_log_get(&l, 2)->reason, "r4");
        assert_null(incident_log_get(&l, 3));
        incident_log_clear(&l);
        assert_int_equal(incident_log_size(&l), 0);

        /* A zeroed log initialises itself on the first event. */
        assert_int_equal(incident_log_oom_kill(&l, 5 * S, LEVEL_CRITICAL, 1), 0);
        assert_int_equal(l.cap, INCIDENT_LOG_DEFAULT_CAP);
        assert_int_equal(incident_log_get(&l, 0)->action, INCIDENT_OOM_KILL);
        incident_log_clear(&l);
}

static void test_incident_lead_per_episode(void **state _unused_)
{
        struct incident_log l = {};
        uint64_t lead = 0;

        /* An earlier episode that recovered does not count: the one the kill ends does. */
        incident_log_level(&l, 10 * S, LEVEL_OK, LEVEL_WARN, "eta", 300 * S);
        incident_log_level(&l, 20 * S, LEVEL_WARN, LEVEL_OK, "hold_expired", USEC_INFINITY);
        incident_log_level(&l, 100 * S, LEVEL_OK, LEVEL_WARN, "eta", 200 * S);
        incident_log_memory_high(&l, 120 * S, LEVEL_WARN, 400 * MIB, "guard", NULL);
        incident_log_level(&l, 150 * S, LEVEL_WARN, LEVEL_CRITICAL, "eta", 40 * S);
        incident_log_oom_kill(&l, 200 * S, LEVEL_CRITICAL, 1);

        assert_true(incident_lead(&l, 200 * S, LEVEL_WARN, &lead));
        assert_int_equal(lead, 100 * S);
        assert_true(incident_lead(&l, 200 * S, LEVEL_CRITICAL, &lead));
        assert_int_equal(lead, 50 * S);
        /* warn → critical passes degrade. */
        assert_true(incident_lead(&l, 200 * S, LEVEL_DEGRADE, &lead));
        assert_int_equal(lead, 50 * S);
        assert_false(incident_lead(&l, 200 * S, LEVEL_OK, &lead));

        /* A kill during the first episode: its own start. */
        assert_true(incident_lead(&l, 15 * S, LEVEL_WARN, &lead));
        assert_int_equal(lead, 5 * S);
        assert_false(incident_lead(&l, 15 * S, LEVEL_CRITICAL, &lead));
        /* A kill after the recovery, before the next rise: no warning. */
        assert_false(incident_lead(&l, 50 * S, LEVEL_WARN, &lead));
        incident_log_clear(&l);

        /* No level at all. */
        incident_log_oom_kill(&l, 5 * S, LEVEL_OK, 1);
        assert_false(incident_lead(&l, 5 * S, LEVEL_WARN, &lead));
        incident_log_clear(&l);
}

static void test_incident_log_capture_copies_suspects(void **state _unused_)
{
        struct suspect s[INCIDENT_SUSPECTS_MAX + 3];
        const struct suspect *ordered[ELEMENTSOF(s)];
        char fn[ELEMENTSOF(s)][32];
        struct incident_log l = {};

        for (size_t i = 0; i < ELEMENTSOF(s); i++) {
                snprintf(fn[i], sizeof(fn[i]), "main.f%zu", i);
                s[i] = (struct suspect){.kind = SUSPECT_HEAP,
                                        .function = fn[i],
                                        .file = (char *)"x/leak.go",
                                        .line = (uint32_t)(70 + i),
                                        .current = 10 * MIB,
                                        .growth = (int64_t)(8 * MIB)};
                ordered[i] = &s[i];
        }
        assert_int_equal(incident_log_capture(&l, 5 * S, LEVEL_WARN, "warn", "base", "/d/a", false,
                                              ordered, 2, false),
                         0);
        assert_int_equal(incident_log_capture(&l, 9 * S, LEVEL_CRITICAL, "critical", "current",
                                              "/d/b", false, ordered, ELEMENTSOF(s), true),
                         0);
        assert_int_equal(incident_log_capture(&l, 12 * S, LEVEL_CRITICAL, "oom_kill", "base",
                                              "/d/c", true, NULL, 0, false),
                         0);
        fn[0][0] = 'X'; /* copied, not borrowed */

        const struct incident_event *e = incident_log_get(&l, 1);
        assert_int_equal(e->n_suspects, INCIDENT_SUSPECTS_MAX);
        assert_string_equal(e->suspects[0].function, "main.f0");
        assert_string_equal(e->suspects[9].file, "x/leak.go");
        assert_int_equal(e->suspects[9].line, 79);
        assert_true(e->suspects[0].paired);
        assert_string_equal(e->detail, "/d/b");

        /* The report's suspects: the newest paired capture, not the newer one without any. */
        assert_ptr_equal(incident_log_suspects(&l), e);
        incident_log_clear(&l);
        assert_null(incident_log_suspects(&l));
}

/* ---- suspects.json ------------------------------------------------------------------ */

static void test_incident_suspects_parse_json_fixture(void **state _unused_)
{
        _cleanup_free_ char *buf =
                read_file(MEMGOV_SOURCE_DIR "/tests/fixtures/pprof/leaky-heap-suspects.json", NULL);
        struct incident_suspect *s = NULL;
        size_t n = 0;

        assert_non_null(buf);
        assert_int_equal(incident_suspects_parse_json(buf, strlen(buf), &s, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(s[0].kind, SUSPECT_HEAP);
        assert_string_equal(s[0].function, "main.leakIntoGlobalMap");
        assert_string_equal(s[0].file, "memgov.example/leaky/leak.go");
        assert_int_equal(s[0].line, 76);
        assert_true(s[0].paired);
        assert_int_equal(s[0].growth, 20735286);
        assert_int_equal(s[0].current, 29858811);
        incident_suspects_free(s, n);
}

static void test_incident_suspects_parse_json_order_and_hostile(void **state _unused_)
{
        /* Goroutines grew 10×, the heap 2×: the goroutine list comes first. */
        static const char both[] =
                "{\"version\":1,\"heap\":{\"current_total\":200,\"base_total\":100,"
                "\"growth\":[{\"function\":\"main.h\",\"file\":\"a.go\",\"line\":3,"
                "\"current\":150,\"growth\":100}]},"
                "\"goroutine\":{\"current_total\":110,\"base_total\":10,"
                "\"growth\":[{\"function\":\"main.g\",\"file\":\"b.go\",\"line\":9,"
                "\"current\":100,\"growth\":95}],\"clusters\":[]}}";
        static const char unpaired[] =
                "{\"version\":1,\"heap\":null,\"goroutine\":{\"current_total\":7,"
                "\"base_total\":null,\"growth\":null,\"clusters\":[{\"function\":\"main.w\","
                "\"file\":\"\",\"line\":0,\"current\":7}]}}";
        static const char *const bad[] = {
                "",
                "not json",
                "[]",
                "{}",
                "{\"version\":2}",
                "{\"version\":1,\"heap\":{\"growth\":[{\"function\":5}]}}",
                "{\"version\":1,\"heap\":{\"growth\":[7]}}",
                "{\"version\":1} trailing",
        };
        struct incident_suspect *s = NULL;
        size_t n = 0;

        assert_int_equal(incident_suspects_parse_json(both, strlen(both), &s, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(s[0].function, "main.g");
        assert_int_equal(s[0].kind, SUSPECT_GOROUTINE);
        assert_int_equal(s[0].growth, 95);
        assert_string_equal(s[1].function, "main.h");
        incident_suspects_free(s, n);

        assert_int_equal(incident_suspects_parse_json(unpaired, strlen(unpaired), &s, &n), 0);
        assert_int_equal(n, 1);
        assert_false(s[0].paired);
        assert_int_equal(s[0].growth, 7);
        incident_suspects_free(s, n);

        assert_int_equal(incident_suspects_parse_json("{\"version\":1}", 13, &s, &n), 0);
        assert_int_equal(n, 0);
        assert_null(s);

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(incident_suspects_parse_json(bad[i], strlen(bad[i]), &s, &n),
                                 -EINVAL);
}

/* ---- the bundle's text files -------------------------------------------------------- */

static void test_incident_write_trace_from_ring(void **state _unused_)
{
        /* A full ring of 6 whose oldest is at index 4: samples 10..15, the kill at 14. */
        struct sample ring[6];
        for (uint64_t k = 0; k < 6; k++)
                ring[(4 + k) % 6] = leak_sample(10 + k, k >= 4 ? 1 : 0);
        struct incident_samples ss = {ring, 6, 4, 6};
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert_non_null(f);
        assert_int_equal(incident_write_trace(f, &ss), 0);
        fclose(f);
        assert_non_null(strstr(buf, "t_ms,current,"));

        _cleanup_(trace_freep) struct trace *t = NULL;
        assert_int_equal(trace_parse("ring.csv", buf, size, NULL, &t), 0);
        assert_int_equal(t->n_samples, 6);
        for (size_t k = 0; k < 6; k++) {
                assert_int_equal(t->samples[k].t_usec, k * S);
                assert_int_equal(t->samples[k].current_bytes, (210 + k) * MIB);
        }
        assert_true(t->has_oom_kill_column);
        assert_int_equal(trace_oom_index(t), 4);

        /* No samples: a header alone. */
        free(buf);
        buf = NULL;
        f = open_memstream(&buf, &size);
        assert_int_equal(incident_write_trace(f, &(struct incident_samples){}), 0);
        fclose(f);
        assert_int_equal(count(buf, "\n"), 1);
}

static void test_incident_write_decisions_lines(void **state _unused_)
{
        struct incident_log l = {};
        struct suspect s = {.kind = SUSPECT_GOROUTINE,
                            .function = (char *)"main.stuckWorker",
                            .file = (char *)"leak.go",
                            .line = 101,
                            .current = 60,
                            .growth = 44};
        const struct suspect *ps = &s;

        incident_log_level(&l, 1610 * S, LEVEL_OK, LEVEL_WARN, "eta", 231 * S);
        incident_log_memory_high(&l, 1700 * S + 500000, LEVEL_WARN, 900 * MIB, "guard", "lowered");
        incident_log_memory_high(&l, 1800 * S, LEVEL_OK, CGROUP_LIMIT_MAX, "release", NULL);
        incident_log_capture(&l, 1611 * S, LEVEL_WARN, "warn", "current", "/d/x", false, &ps, 1,
                             true);
        incident_log_webhook(&l, 1610 * S, LEVEL_WARN, "warn", "http://127.0.0.1:8080/m",
                             "delivered", false);
        incident_log_oom_kill(&l, 1845 * S, LEVEL_CRITICAL, 2);
        incident_log_level(&l, 990 * S, LEVEL_WARN, LEVEL_OK, "hold_expired", USEC_INFINITY);

        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        assert_int_equal(incident_write_decisions(f, &l, 1000 * S), 0);
        fclose(f);
        assert_int_equal(count(buf, "\n"), 7);

        struct json_object *o[7];
        char *line = buf;
        for (size_t i = 0; i < 7; i++) {
                char *nl = strchr(line, '\n');
                *nl = '\0';
                o[i] = json_tokener_parse(line);
                assert_non_null(o[i]);
                line = nl + 1;
        }
        struct json_object *v;
#define STR(i, k) (json_object_object_get_ex(o[i], k, &v) ? json_object_get_string(v) : NULL)
#define DBL(i, k) (json_object_object_get_ex(o[i], k, &v) ? json_object_get_double(v) : -1e9)
        assert_string_equal(STR(0, "action"), "level");
        assert_string_equal(STR(0, "from"), "ok");
        assert_string_equal(STR(0, "level"), "warn");
        assert_string_equal(STR(0, "reason"), "eta");
        assert_true(DBL(0, "t_s") == 610.0);
        assert_true(DBL(0, "eta_s") == 231.0);
        assert_string_equal(STR(1, "action"), "memory_high");
        assert_true(DBL(1, "t_s") == 700.5);
        assert_int_equal(json_object_object_get_ex(o[1], "bytes", &v) ? json_object_get_int64(v)
                                                                      : 0,
                         (int64_t)(900 * MIB));
        assert_string_equal(STR(2, "bytes"), "max");
        assert_string_equal(STR(3, "dir"), "/d/x");
        assert_true(json_object_object_get_ex(o[3], "suspects", &v));
        assert_int_equal(json_object_array_length(v), 1);
        assert_string_equal(json_object_get_string(json_object_object_get(
                                    json_object_array_get_idx(v, 0), "function")),
                            "main.stuckWorker");
        assert_string_equal(STR(4, "reason"), "delivered");
        assert_string_equal(STR(5, "action"), "oom_kill");
        assert_true(DBL(5, "count") == 2);
        /* Before the trace's first row: a negative time. */
        assert_true(DBL(6, "t_s") == -10.0);
        assert_false(json_object_object_get_ex(o[6], "eta_s", &v));
#undef STR
#undef DBL
        for (size_t i = 0; i < 7; i++)
                json_object_put(o[i]);
        incident_log_clear(&l);
}

/* ---- the bundle in a dump store ----------------------------------------------------- */

static void test_incident_write_bundle(void **state _unused_)
{
        char dir[] = "/tmp/test-incident-XXXXXX", cmd[96];
        struct dump_store *store = NULL;
        struct sample samples[120];
        struct incident_log l = {};
        _cleanup_free_ char *out = NULL;

        assert_non_null(mkdtemp(dir));
        assert_int_equal(dump_store_open(dir, NULL, &store), 0);
        for (uint64_t k = 0; k < ELEMENTSOF(samples); k++)
                samples[k] = leak_sample(k, k >= 110 ? 1 : 0);
        incident_log_level(&l, samples[60].t_usec, LEVEL_OK, LEVEL_WARN, "eta", 90 * S);
        incident_log_level(&l, samples[100].t_usec, LEVEL_WARN, LEVEL_CRITICAL, "usage", 20 * S);
        incident_log_oom_kill(&l, samples[110].t_usec, LEVEL_CRITICAL, 1);

        struct incident_request req = {
                .service = "leaky",
                .cgroup = "system.slice/leaky.service",
                .event = EVENT_OOM_KILL,
                .t_usec = samples[110].t_usec,
                .realtime_usec = WALL,
                .samples = {samples, ELEMENTSOF(samples), 0, ELEMENTSOF(samples)},
                .log = &l,
                .generator = "test",
        };
        assert_int_equal(incident_write(store, &req, &out), 0);
        assert_non_null(out);
        assert_non_null(strstr(out, "/leaky/20240501T123456Z-incident-oom_kill"));

        static const char *const files[] = {"trace.csv", "decisions.jsonl", "captures.json",
                                            "report.html", "manifest.json"};
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                char path[512];
                struct stat st;
                snprintf(path, sizeof(path), "%s/%s", out, files[i]);
                assert_int_equal(stat(path, &st), 0);
                assert_true(st.st_size > 0);
                assert_int_equal(st.st_mode & 0777, 0600);
        }
        char path[512];
        snprintf(path, sizeof(path), "%s/manifest.json", out);
        _cleanup_free_ char *manifest = read_file(path, NULL);
        assert_non_null(strstr(manifest, "\"report-html\""));
        assert_non_null(strstr(manifest, "\"trace-csv\""));
        snprintf(path, sizeof(path), "%s/report.html", out);
        _cleanup_free_ char *html = read_file(path, NULL);
        assert_non_null(strstr(html, "memgov incident: leaky — OOM kill"));
        assert_non_null(strstr(html, "2024-05-01 12:34:56 UTC"));
        assert_int_equal(count(html, "class=\"marker marker-level\""), 2);
        assert_int_equal(count(html, "class=\"marker marker-oom_kill\""), 1);

        /* The trace replays: its OOM is the row of the kill. */
        _cleanup_(trace_freep) struct trace *t = NULL;
        snprintf(path, sizeof(path), "%s/trace.csv", out);
        assert_int_equal(trace_load_file(path, NULL, &t), 0);
        assert_int_equal(t->n_samples, ELEMENTSOF(samples));
        assert_int_equal(trace_oom_index(t), 110);

        /* Not a name for a dump: refused before anything is written. */
        req.event = _EVENT_INVALID;
        assert_int_equal(incident_write(store, &req, NULL), -EINVAL);

        incident_log_clear(&l);
        dump_store_free(store);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        assert_int_equal(system(cmd), 0);
}

/* ---- the report --------------------------------------------------------------------- */

static char *render(const struct report_input *in, size_t *ret_size)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert_non_null(f);
        assert_int_equal(report_write_html(f, in), 0);
        fclose(f);
        if (ret_size)
                *ret_size = size;
        return buf;
}

static void test_report_markers_bands_and_escaping(void **state _unused_)
{
        struct sample samples[300];
        struct incident_log l = {};
        struct suspect s = {.kind = SUSPECT_HEAP,
                            .function = (char *)"main.<script>alert(1)</script>",
                            .file = (char *)"a&b.go",
                            .line = 7,
                            .current = 30 * MIB,
                            .growth = 20 * MIB};
        const struct suspect *ps = &s;

        for (uint64_t k = 0; k < ELEMENTSOF(samples); k++)
                samples[k] = leak_sample(k, k >= 290 ? 1 : 0);
        /* Before the chart: listed, not drawn. */
        incident_log_level(&l, samples[0].t_usec - 50 * S, LEVEL_OK, LEVEL_WARN, "eta", 900 * S);
        incident_log_level(&l, samples[0].t_usec - 40 * S, LEVEL_WARN, LEVEL_OK, "hold_expired",
                           USEC_INFINITY);
        incident_log_level(&l, samples[100].t_usec, LEVEL_OK, LEVEL_WARN, "eta", 250 * S);
        incident_log_webhook(&l, samples[100].t_usec, LEVEL_WARN, "warn", "http://x/\"q\"",
                             "queued", false);
        incident_log_capture(&l, samples[101].t_usec, LEVEL_WARN, "warn", "base", "/d/1", false,
                             NULL, 0, false);
        incident_log_level(&l, samples[200].t_usec, LEVEL_WARN, LEVEL_DEGRADE, "eta", 100 * S);
        incident_log_memory_high(&l, samples[201].t_usec, LEVEL_DEGRADE, 480 * MIB, "guard", NULL);
        incident_log_capture(&l, samples[250].t_usec, LEVEL_DEGRADE, "degrade", "current", "/d/2",
                             false, &ps, 1, true);
        incident_log_oom_kill(&l, samples[290].t_usec, LEVEL_DEGRADE, 1);

        struct report_input in = {
                .service = "svc<1>",
                .cgroup = "a/b",
                .event = "oom_kill",
                .t_usec = samples[290].t_usec,
                .samples = {samples, ELEMENTSOF(samples), 0, ELEMENTSOF(samples)},
                .log = &l,
        };
        _cleanup_free_ char *html = render(&in, NULL);

        assert_int_equal(count(html, "<svg id=\"chart\""), 1);
        assert_int_equal(count(html, "class=\"marker marker-level\""), 2);
        assert_int_equal(count(html, "class=\"marker marker-webhook\""), 1);
        assert_int_equal(count(html, "class=\"marker marker-capture\""), 2);
        assert_int_equal(count(html, "class=\"marker marker-memory_high\""), 1);
        assert_int_equal(count(html, "class=\"marker marker-oom_kill\""), 1);
        assert_int_equal(count(html, "class=\"band band-warn\""), 1);
        assert_int_equal(count(html, "class=\"band band-degrade\""), 1);
        assert_int_equal(count(html, "class=\"band band-critical\""), 0);
        assert_int_equal(count(html, "class=\"series series-current\""), 1);
        assert_int_equal(count(html, "class=\"series series-anon\""), 1);
        assert_int_equal(count(html, "class=\"series series-high\""), 0); /* "max" all along */
        assert_int_equal(count(html, "<g class=\"forecast\">"), 2);
        /* Every event is in the table, the two before the chart too. */
        assert_int_equal(count(html, "<tr class=\"decision "), 9);
        /* The lead of this episode, not of the earlier one. */
        assert_non_null(strstr(html, "3m 10s before the OOM kill"));

        /* What came from outside is text, never markup. */
        assert_null(strstr(html, "<script"));
        assert_non_null(strstr(html, "main.&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert_non_null(strstr(html, "a&amp;b.go:7"));
        assert_non_null(strstr(html, "svc&lt;1&gt;"));
        assert_non_null(strstr(html, "http://x/&quot;q&quot;"));
        assert_null(strstr(html, "src="));
        incident_log_clear(&l);
}

static void test_report_long_record_stays_small(void **state _unused_)
{
        size_t n = 200000, size = 0;
        struct sample *samples = calloc(n, sizeof(*samples));

        assert_non_null(samples);
        for (size_t k = 0; k < n; k++) {
                samples[k] = leak_sample(k / 100, 0);
                samples[k].t_usec = k * 10000; /* 100 Hz for 2000 s */
                samples[k].current_bytes += (k % 7) * MIB;
        }
        struct report_input in = {.samples = {samples, n, 0, n}};
        _cleanup_free_ char *html = render(&in, &size);

        /* Each pixel column keeps its lowest and highest point. */
        assert_true(size < 200 * 1024);
        assert_non_null(strstr(html, "No suspects"));
        assert_non_null(strstr(html, "no OOM kill in this record"));
        free(samples);

        /* Nothing at all still makes a page. */
        free(html);
        html = render(&(struct report_input){}, NULL);
        assert_non_null(strstr(html, "</html>"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_incident_log_ring_drops_oldest),
                cmocka_unit_test(test_incident_lead_per_episode),
                cmocka_unit_test(test_incident_log_capture_copies_suspects),
                cmocka_unit_test(test_incident_suspects_parse_json_fixture),
                cmocka_unit_test(test_incident_suspects_parse_json_order_and_hostile),
                cmocka_unit_test(test_incident_write_trace_from_ring),
                cmocka_unit_test(test_incident_write_decisions_lines),
                cmocka_unit_test(test_incident_write_bundle),
                cmocka_unit_test(test_report_markers_bands_and_escaping),
                cmocka_unit_test(test_report_long_record_stays_small),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Export: the catalogue of metric families follows DESIGN.md's naming contract, and the
 * places operators read the names from — the reference table in docs/operations.md and the
 * Grafana dashboard — name exactly what memgovd serves.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "memgov/macro.h"
#include "memgov/metrics.h"

static bool ends_with(const char *s, const char *suffix)
{
        size_t n = strlen(s), k = strlen(suffix);
        return n >= k && strcmp(s + n - k, suffix) == 0;
}

static char *read_source_file(const char *relpath)
{
        char path[4096];
        FILE *f;
        char *buf;
        long n;

        snprintf(path, sizeof(path), "%s/%s", MEMGOV_SOURCE_DIR, relpath);
        f = fopen(path, "re");
        if (!f) {
                print_error("cannot open %s\n", path);
                fail();
        }
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        n = ftell(f);
        assert_true(n >= 0);
        rewind(f);
        buf = malloc((size_t)n + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
        buf[n] = '\0';
        fclose(f);
        return buf;
}

static void test_metrics_catalogue_follows_naming_contract(void **state _unused_)
{
        /* Units that are not base units, or that hide in a name. */
        static const char *const forbidden[] = {"_ms", "_msec", "_usec",    "_milliseconds",
                                                "_kb", "_kib",  "_mb",      "_mib",
                                                "_gb", "_pct",  "_percent", "_count"};

        for (int id = 0; id < _METRIC_MAX; id++) {
                const struct metric_def *m = metric_get((enum metric_id)id);
                char labels[128];

                assert_non_null(m);
                if (!promtext_metric_name_valid(m->name) || strncmp(m->name, "memgov_", 7) != 0 ||
                    (m->type == PROMTEXT_COUNTER) != ends_with(m->name, "_total") || !m->help ||
                    !m->help[0]) {
                        print_error("%s breaks the naming contract\n", m->name);
                        fail();
                }
                for (size_t k = 0; k < ELEMENTSOF(forbidden); k++)
                        if (strstr(m->name, forbidden[k])) {
                                print_error("%s: \"%s\" is not a base unit\n", m->name,
                                            forbidden[k]);
                                fail();
                        }
                assert_int_equal(metric_from_name(m->name), id);
                for (int other = 0; other < id; other++)
                        assert_string_not_equal(metric_get((enum metric_id)other)->name, m->name);

                /* Labels: valid names, none twice. */
                const char *seen[8];
                size_t n_seen = 0;
                snprintf(labels, sizeof(labels), "%s", m->labels);
                for (char *save = NULL, *l = strtok_r(labels, ",", &save); l;
                     l = strtok_r(NULL, ",", &save)) {
                        assert_true(promtext_label_name_valid(l));
                        for (size_t k = 0; k < n_seen; k++)
                                assert_string_not_equal(seen[k], l);
                        assert_true(n_seen < ELEMENTSOF(seen));
                        seen[n_seen++] = l;
                }
        }
        assert_null(metric_get(_METRIC_MAX));
        assert_null(metric_get(_METRIC_INVALID));
        assert_int_equal(metric_from_name("memgov_nonexistent"), _METRIC_INVALID);
        assert_int_equal(metric_from_name(NULL), _METRIC_INVALID);
}

static void test_metrics_every_family_writes(void **state _unused_)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        struct promtext p;

        assert_non_null(f);
        promtext_init(&p, f);
        for (int id = 0; id < _METRIC_MAX; id++) {
                assert_int_equal(metrics_family(&p, (enum metric_id)id), 0);
                assert_int_equal(promtext_sample(&p, NULL, 1), 0);
        }
        assert_int_equal(metrics_family(&p, _METRIC_MAX), -EINVAL);
        assert_int_equal(promtext_finish(&p), -EINVAL);
        fclose(f);
        assert_non_null(strstr(buf, "# TYPE memgov_events_total counter\nmemgov_events_total 1\n"));
        free(buf);
}

/* A table cell: trimmed, backticks and spaces removed ("`service`, `cgroup`" → "service,cgroup").
 */
static void cell(const char *start, size_t len, char *out, size_t size)
{
        size_t o = 0;

        for (size_t i = 0; i < len && o + 1 < size; i++)
                if (start[i] != '`' && start[i] != ' ')
                        out[o++] = start[i];
        out[o] = '\0';
        if (strcmp(out, "\xe2\x80\x94") == 0) /* an em dash: no labels */
                out[0] = '\0';
}

static void test_metrics_operations_doc_lists_the_catalogue(void **state _unused_)
{
        _cleanup_free_ char *doc = read_source_file("docs/operations.md");
        bool listed[_METRIC_MAX] = {false};
        size_t rows = 0;

        for (const char *line = doc; line && *line; line = strchr(line, '\n')) {
                line += line[0] == '\n';
                char cells[3][256];
                const char *c = line;
                enum metric_id id;

                if (strncmp(line, "| `memgov_", 10) != 0)
                        continue;
                for (int k = 0; k < 3; k++) {
                        const char *next = strchr(c + 1, '|');
                        assert_non_null(next);
                        cell(c + 1, (size_t)(next - c - 1), cells[k], sizeof(cells[k]));
                        c = next;
                }
                rows++;
                id = metric_from_name(cells[0]);
                if (id < 0) {
                        print_error("docs/operations.md lists %s, which memgovd does not serve\n",
                                    cells[0]);
                        fail();
                }
                if (listed[id]) {
                        print_error("docs/operations.md lists %s twice\n", cells[0]);
                        fail();
                }
                listed[id] = true;
                if (strcmp(cells[1], promtext_type_to_string(metric_get(id)->type)) != 0 ||
                    strcmp(cells[2], metric_get(id)->labels) != 0) {
                        print_error("docs/operations.md: %s is \"%s\" with \"%s\", the catalogue "
                                    "says \"%s\" with \"%s\"\n",
                                    cells[0], cells[1], cells[2],
                                    promtext_type_to_string(metric_get(id)->type),
                                    metric_get(id)->labels);
                        fail();
                }
        }
        for (int id = 0; id < _METRIC_MAX; id++)
                if (!listed[id]) {
                        print_error("docs/operations.md does not list %s\n",
                                    metric_get((enum metric_id)id)->name);
                        fail();
                }
        assert_int_equal(rows, _METRIC_MAX);
}

static void test_metrics_dashboard_uses_only_served_names(void **state _unused_)
{
        _cleanup_free_ char *json = read_source_file("examples/grafana/memgov.json");
        size_t n = 0;

        for (const char *p = strstr(json, "memgov_"); p; p = strstr(p + 1, "memgov_")) {
                char name[128];
                size_t k = 0;

                /* Part of a longer word (e.g. a uid "x-memgov_…"): not a metric. */
                if (p > json && (p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z')))
                        continue;
                while (k + 1 < sizeof(name) && ((p[k] >= 'a' && p[k] <= 'z') ||
                                                (p[k] >= '0' && p[k] <= '9') || p[k] == '_')) {
                        name[k] = p[k];
                        k++;
                }
                name[k] = '\0';
                n++;
                if (metric_from_name(name) < 0) {
                        print_error("examples/grafana/memgov.json uses %s, which memgovd does not "
                                    "serve\n",
                                    name);
                        fail();
                }
        }
        assert_true(n > 10);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_metrics_catalogue_follows_naming_contract),
                cmocka_unit_test(test_metrics_every_family_writes),
                cmocka_unit_test(test_metrics_operations_doc_lists_the_catalogue),
                cmocka_unit_test(test_metrics_dashboard_uses_only_served_names),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}

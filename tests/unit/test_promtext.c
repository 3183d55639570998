/* SPDX-License-Identifier: MIT */
/*
 * Export: the Prometheus text writer — whole outputs as a scraper reads them, escaping of
 * hostile label values, number formatting, and the misuse that must fail rather than
 * produce a body Prometheus rejects.
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

#include "memgov/macro.h"
#include "memgov/promtext.h"

/* An in-memory output and its writer. */
struct out {
        char *buf;
        size_t size;
        FILE *f;
        struct promtext p;
};

static void out_open(struct out *o)
{
        *o = (struct out){0};
        o->f = open_memstream(&o->buf, &o->size);
        assert_non_null(o->f);
        promtext_init(&o->p, o->f);
}

/* Finish the writer, close the stream; returns promtext_finish()'s result. */
static int out_close(struct out *o)
{
        int r = promtext_finish(&o->p);

        assert_int_equal(fclose(o->f), 0);
        return r;
}

static void test_promtext_families_and_samples_as_scraped(void **state _unused_)
{
        struct out o;

        out_open(&o);
        assert_int_equal(
                promtext_family(&o.p, "memgov_level", PROMTEXT_GAUGE, "Level: 0 ok, 1 warn."), 0);
        assert_int_equal(promtext_sample(&o.p,
                                         PROMTEXT_LABELS({"service", "api"},
                                                         {"cgroup", "system.slice/api.service"}),
                                         1),
                         0);
        /* Calling family() again for the current family writes nothing. */
        assert_int_equal(promtext_family(&o.p, "memgov_level", PROMTEXT_GAUGE, "ignored"), 0);
        assert_int_equal(promtext_sample(&o.p, PROMTEXT_LABELS({"service", "db"}), 0), 0);
        assert_int_equal(promtext_family(&o.p, "memgov_events_total", PROMTEXT_COUNTER, "Events."),
                         0);
        assert_int_equal(promtext_sample_u64(&o.p, PROMTEXT_LABELS({"event", "warn"}), 3), 0);
        assert_int_equal(promtext_family(&o.p, "memgov_instances", PROMTEXT_GAUGE, "Cgroups."), 0);
        assert_int_equal(promtext_sample(&o.p, NULL, 2), 0);
        assert_int_equal(out_close(&o), 0);

        assert_string_equal(o.buf, "# HELP memgov_level Level: 0 ok, 1 warn.\n"
                                   "# TYPE memgov_level gauge\n"
                                   "memgov_level{service=\"api\",cgroup=\"system.slice/"
                                   "api.service\"} 1\n"
                                   "memgov_level{service=\"db\"} 0\n"
                                   "# HELP memgov_events_total Events.\n"
                                   "# TYPE memgov_events_total counter\n"
                                   "memgov_events_total{event=\"warn\"} 3\n"
                                   "# HELP memgov_instances Cgroups.\n"
                                   "# TYPE memgov_instances gauge\n"
                                   "memgov_instances 2\n");
        free(o.buf);
}

static void test_promtext_label_with_null_value_left_out(void **state _unused_)
{
        struct out o;

        out_open(&o);
        assert_int_equal(promtext_family(&o.p, "memgov_x_bytes", PROMTEXT_GAUGE, "X."), 0);
        assert_int_equal(promtext_sample(&o.p, PROMTEXT_LABELS({"service", NULL}), 5), 0);
        assert_int_equal(
                promtext_sample(&o.p, PROMTEXT_LABELS({"a", NULL}, {"b", "2"}, {"c", NULL}), 6), 0);
        assert_int_equal(out_close(&o), 0);
        assert_string_equal(o.buf, "# HELP memgov_x_bytes X.\n# TYPE memgov_x_bytes gauge\n"
                                   "memgov_x_bytes 5\nmemgov_x_bytes{b=\"2\"} 6\n");
        free(o.buf);
}

static void test_promtext_u64_written_exactly(void **state _unused_)
{
        struct out o;

        out_open(&o);
        assert_int_equal(promtext_family(&o.p, "memgov_x_total", PROMTEXT_COUNTER, "X."), 0);
        assert_int_equal(promtext_sample_u64(&o.p, NULL, UINT64_MAX), 0);
        assert_int_equal(promtext_sample_u64(&o.p, NULL, (UINT64_C(1) << 53) + 1), 0);
        assert_int_equal(out_close(&o), 0);
        assert_non_null(strstr(o.buf, "memgov_x_total 18446744073709551615\n"));
        assert_non_null(strstr(o.buf, "memgov_x_total 9007199254740993\n"));
        free(o.buf);
}

static void test_promtext_help_escaped(void **state _unused_)
{
        struct out o;

        out_open(&o);
        assert_int_equal(promtext_family(&o.p, "memgov_x", PROMTEXT_GAUGE,
                                         "a \"quoted\" back\\slash\nsecond line"),
                         0);
        assert_int_equal(out_close(&o), 0);
        /* In HELP only backslash and newline are escaped; quotes stay as they are. */
        assert_string_equal(o.buf, "# HELP memgov_x a \"quoted\" back\\\\slash\\nsecond line\n"
                                   "# TYPE memgov_x gauge\n");
        free(o.buf);
}

static void test_promtext_escape_label_value_table(void **state _unused_)
{
        static const struct {
                const char *in, *out;
        } rows[] = {
                {"", ""},
                {"plain", "plain"},
                {"say \"hi\"", "say \\\"hi\\\""},
                {"C:\\path", "C:\\\\path"},
                {"two\nlines", "two\\nlines"},
                {"tab\tstays", "tab\tstays"},
                {"\\\"\n", "\\\\\\\"\\n"},
                {"caf\xc3\xa9", "caf\xc3\xa9"},                           /* é */
                {"\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac"}, /* 日本 */
                {"\xf0\x9f\x90\x98", "\xf0\x9f\x90\x98"},                 /* an emoji */
                {"bad\xff", "bad\xef\xbf\xbd"},                           /* not UTF-8 at all */
                {"cut\xc3", "cut\xef\xbf\xbd"},                           /* truncated sequence */
                {"\x80x", "\xef\xbf\xbdx"},                               /* stray continuation */
                {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},                 /* overlong "/" */
                {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* a surrogate */
                {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
                {"\xe6\x97\"", "\xef\xbf\xbd\xef\xbf\xbd\\\""}, /* quote inside a cut sequence */
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                _cleanup_free_ char *got = promtext_escape_label_value(rows[i].in);

                assert_non_null(got);
                if (strcmp(got, rows[i].out) != 0) {
                        print_error("row %zu: got \"%s\", want \"%s\"\n", i, got, rows[i].out);
                        fail();
                }
        }
}

static void test_promtext_format_double_table(void **state _unused_)
{
        static const struct {
                double in;
                const char *out;
        } rows[] = {
                {0, "0"},
                {1, "1"},
                {-1.5, "-1.5"},
                {0.1, "0.1"},
                {1048576, "1048576"},
                {1073741824.0 * 1024, "1099511627776"},
                {1e21, "1e+21"},
                {1.0 / 3, "0.3333333333333333"},
                {123.456, "123.456"},
                {5e-324, "5e-324"},
                {0.30000000000000004, "0.30000000000000004"},
                {INFINITY, "+Inf"},
                {-INFINITY, "-Inf"},
                {NAN, "NaN"},
        };
        char buf[32];

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                promtext_format_double(rows[i].in, buf);
                if (strcmp(buf, rows[i].out) != 0) {
                        print_error("row %zu: got \"%s\", want \"%s\"\n", i, buf, rows[i].out);
                        fail();
                }
                if (!isnan(rows[i].in) && !isinf(rows[i].in))
                        assert_true(strtod(buf, NULL) == rows[i].in);
        }
}

static void test_promtext_names_table(void **state _unused_)
{
        static const struct {
                const char *name;
                bool metric, label;
        } rows[] = {
                {"memgov_level", true, true},
                {"a", true, true},
                {"_x", true, true},
                {"__name__", true, false}, /* reserved for labels */
                {"ns:sub:metric", true, false},
                {":x", true, false},
                {"A9_z", true, true},
                {"", false, false},
                {"9lives", false, false},
                {"has-dash", false, false},
                {"has space", false, false},
                {"dotted.name", false, false},
                {"caf\xc3\xa9", false, false},
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                if (promtext_metric_name_valid(rows[i].name) != rows[i].metric ||
                    promtext_label_name_valid(rows[i].name) != rows[i].label) {
                        print_error("row %zu (\"%s\"): metric %d label %d\n", i, rows[i].name,
                                    promtext_metric_name_valid(rows[i].name),
                                    promtext_label_name_valid(rows[i].name));
                        fail();
                }
        }
        assert_false(promtext_metric_name_valid(NULL));
        assert_false(promtext_label_name_valid(NULL));
}

static void test_promtext_family_closed_then_reopened_fails(void **state _unused_)
{
        struct out o;

        out_open(&o);
        assert_int_equal(promtext_family(&o.p, "memgov_a", PROMTEXT_GAUGE, "A."), 0);
        assert_int_equal(promtext_sample(&o.p, NULL, 1), 0);
        assert_int_equal(promtext_family(&o.p, "memgov_b", PROMTEXT_GAUGE, "B."), 0);
        /* Back to a: Prometheus would reject the body (a family split in two). */
        assert_int_equal(promtext_family(&o.p, "memgov_a", PROMTEXT_GAUGE, "A."), -EINVAL);
        /* The error is sticky: nothing more is written. */
        assert_int_equal(promtext_sample(&o.p, NULL, 2), -EINVAL);
        assert_int_equal(out_close(&o), -EINVAL);
        assert_null(strstr(o.buf, " 2\n"));
        free(o.buf);
}

static void test_promtext_misuse_fails(void **state _unused_)
{
        static const struct {
                const char *name;
                enum promtext_type type;
        } bad_families[] = {
                {"memgov_deliveries", PROMTEXT_COUNTER}, /* a counter without _total */
                {"memgov-level", PROMTEXT_GAUGE},
                {"", PROMTEXT_GAUGE},
                {NULL, PROMTEXT_GAUGE},
                {"memgov_x", _PROMTEXT_TYPE_INVALID},
                {"memgov_x", _PROMTEXT_TYPE_MAX},
        };
        struct out o;

        for (size_t i = 0; i < ELEMENTSOF(bad_families); i++) {
                out_open(&o);
                assert_int_equal(
                        promtext_family(&o.p, bad_families[i].name, bad_families[i].type, "h"),
                        -EINVAL);
                assert_int_equal(out_close(&o), -EINVAL);
                assert_string_equal(o.buf, "");
                free(o.buf);
        }

        /* A sample before any family. */
        out_open(&o);
        assert_int_equal(promtext_sample(&o.p, NULL, 1), -EINVAL);
        assert_int_equal(out_close(&o), -EINVAL);
        free(o.buf);

        /* The current family again with another type. */
        out_open(&o);
        assert_int_equal(promtext_family(&o.p, "memgov_x_total", PROMTEXT_COUNTER, "h"), 0);
        assert_int_equal(promtext_family(&o.p, "memgov_x_total", PROMTEXT_GAUGE, "h"), -EINVAL);
        assert_int_equal(out_close(&o), -EINVAL);
        free(o.buf);

        /* A negative or NaN counter, a bad label name. */
        static const double bad_counts[] = {-1, NAN};
        for (size_t i = 0; i < ELEMENTSOF(bad_counts); i++) {
                out_open(&o);
                assert_int_equal(promtext_family(&o.p, "memgov_x_total", PROMTEXT_COUNTER, "h"), 0);
                assert_int_equal(promtext_sample(&o.p, NULL, bad_counts[i]), -EINVAL);
                assert_int_equal(out_close(&o), -EINVAL);
                free(o.buf);
        }
        out_open(&o);
        assert_int_equal(promtext_family(&o.p, "memgov_x", PROMTEXT_GAUGE, "h"), 0);
        assert_int_equal(promtext_sample(&o.p, PROMTEXT_LABELS({"bad-name", "v"}), 1), -EINVAL);
        assert_int_equal(out_close(&o), -EINVAL);
        free(o.buf);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_promtext_families_and_samples_as_scraped),
                cmocka_unit_test(test_promtext_label_with_null_value_left_out),
                cmocka_unit_test(test_promtext_u64_written_exactly),
                cmocka_unit_test(test_promtext_help_escaped),
                cmocka_unit_test(test_promtext_escape_label_value_table),
                cmocka_unit_test(test_promtext_format_double_table),
                cmocka_unit_test(test_promtext_names_table),
                cmocka_unit_test(test_promtext_family_closed_then_reopened_fails),
                cmocka_unit_test(test_promtext_misuse_fails),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/* Record and replay: the trace CSV contract, read and written, with the messages users see. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "memgov/diag.h"
#include "memgov/macro.h"
#include "memgov/trace.h"

#define HEADER                                                                                     \
        "t_ms,current,anon,file,max,high,ev_high,ev_max,ev_oom,ev_oom_kill,psi_some_us,"           \
        "psi_full_us\n"

static struct trace *parse_ok(const char *csv)
{
        struct diag d = {};
        struct trace *t = NULL;
        int r = trace_parse("t.csv", csv, strlen(csv), &d, &t);

        if (r != 0) {
                print_error("trace_parse returned %d for:\n%s\n", r, csv);
                diag_print(&d, stderr);
                diag_clear(&d);
                fail();
        }
        assert_int_equal(d.n_lines, 0);
        assert_non_null(t);
        return t;
}

static void test_trace_parse_minimal(void **state)
{
        _cleanup_(trace_freep) struct trace *t =
                parse_ok("t_ms,current,max\n0,100,200\n1500,150,max\n1500,160,200\n");

        (void)state;
        assert_int_equal(t->n_samples, 3);
        assert_false(t->has_oom_kill_column);
        assert_int_equal(t->samples[0].t_usec, 0);
        assert_int_equal(t->samples[0].current_bytes, 100);
        assert_int_equal(t->samples[0].max_bytes, 200);
        assert_int_equal(t->samples[0].limit_bytes, 200);
        assert_int_equal(t->samples[0].has, 0);
        assert_int_equal(t->samples[1].t_usec, 1500 * USEC_PER_MSEC);
        assert_int_equal(t->samples[1].max_bytes, CGROUP_LIMIT_MAX);
        assert_int_equal(t->samples[1].limit_bytes, CGROUP_LIMIT_MAX);
        /* equal t_ms is allowed: non-decreasing */
        assert_int_equal(t->samples[2].t_usec, 1500 * USEC_PER_MSEC);
}

static void test_trace_parse_all_columns_any_order(void **state)
{
        _cleanup_(trace_freep) struct trace *t =
                parse_ok("psi_full_us,note,ev_oom_kill,high,max,ev_oom,t_ms,anon,ev_max,"
                         "current,file,psi_some_us,ev_high,extra\n"
                         "77,hello world,3,max,209715200,4,250,1000,5,195035136,2000,66,6,\n");
        const struct sample *s;

        (void)state;
        assert_int_equal(t->n_samples, 1);
        assert_true(t->has_oom_kill_column);
        s = &t->samples[0];
        assert_int_equal(s->t_usec, 250000);
        assert_int_equal(s->current_bytes, 195035136);
        assert_int_equal(s->max_bytes, 209715200);
        assert_int_equal(s->limit_bytes, 209715200);
        assert_int_equal(s->high_bytes, CGROUP_LIMIT_MAX);
        assert_int_equal(s->anon_bytes, 1000);
        assert_int_equal(s->file_bytes, 2000);
        assert_int_equal(s->events.high, 6);
        assert_int_equal(s->events.max, 5);
        assert_int_equal(s->events.oom, 4);
        assert_int_equal(s->events.oom_kill, 3);
        assert_int_equal(s->pressure.some.total_usec, 66);
        assert_int_equal(s->pressure.full.total_usec, 77);
        assert_true(s->pressure.has_full);
        assert_int_equal(s->has, SAMPLE_HAS_ANON | SAMPLE_HAS_FILE | SAMPLE_HAS_HIGH |
                                         SAMPLE_HAS_EVENTS | SAMPLE_HAS_PSI_SOME |
                                         SAMPLE_HAS_PSI_FULL);
}

static void test_trace_parse_empty_cells_are_absent(void **state)
{
        _cleanup_(trace_freep) struct trace *t = parse_ok(HEADER "0,100,,,200,,,,,,,\n"
                                                                 "1,100,5,,200,,,,,,9,\n"
                                                                 "2,100,,6,200,300,1,1,0,0,,\n");

        (void)state;
        assert_int_equal(t->n_samples, 3);
        assert_int_equal(t->samples[0].has, 0);
        assert_false(t->samples[0].pressure.has_full);
        assert_int_equal(t->samples[1].has, SAMPLE_HAS_ANON | SAMPLE_HAS_PSI_SOME);
        assert_int_equal(t->samples[1].anon_bytes, 5);
        assert_int_equal(t->samples[1].pressure.some.total_usec, 9);
        assert_int_equal(t->samples[2].has, SAMPLE_HAS_FILE | SAMPLE_HAS_HIGH | SAMPLE_HAS_EVENTS);
        assert_int_equal(t->samples[2].high_bytes, 300);
        assert_int_equal(t->samples[2].events.high, 1);
}

/* The same two rows however the file ends its lines. */
static void test_trace_parse_line_endings(void **state)
{
        static const char *const inputs[] = {
                "t_ms,current,max\n0,1,2\n10,3,4\n",
                "t_ms,current,max\n0,1,2\n10,3,4",
                "t_ms,current,max\r\n0,1,2\r\n10,3,4\r\n",
                "t_ms,current,max\r\n0,1,2\r\n10,3,4",
                "t_ms,current,max\n0,1,2\n10,3,4\n\n\n",
                "t_ms,current,max\r\n0,1,2\r\n10,3,4\r\n\r\n \r\n",
                "\xef\xbb\xbft_ms,current,max\n0,1,2\n10,3,4\n",
                "t_ms, current, max\n0, 1, 2\n 10 ,3 ,4 \n",
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(inputs); i++) {
                _cleanup_(trace_freep) struct trace *t = parse_ok(inputs[i]);

                assert_int_equal(t->n_samples, 2);
                assert_int_equal(t->samples[1].t_usec, 10000);
                assert_int_equal(t->samples[1].current_bytes, 3);
                assert_int_equal(t->samples[1].max_bytes, 4);
        }
}

static void test_trace_parse_header_only(void **state)
{
        _cleanup_(trace_freep) struct trace *t = parse_ok(HEADER);

        (void)state;
        assert_int_equal(t->n_samples, 0);
        assert_true(t->has_oom_kill_column);
        assert_int_equal(trace_oom_index(t), -1);
}

static void test_trace_parse_many_rows(void **state)
{
        size_t n = 100000;
        _cleanup_free_ char *buf = malloc(32 * n + 64);
        _cleanup_(trace_freep) struct trace *t = NULL;
        size_t o;

        (void)state;
        assert_non_null(buf);
        o = (size_t)sprintf(buf, "t_ms,current,max\n");
        for (size_t i = 0; i < n; i++)
                o += (size_t)sprintf(buf + o, "%zu,%zu,max\n", i * 500, i * 4096);
        t = parse_ok(buf);
        assert_int_equal(t->n_samples, n);
        for (size_t i = 0; i < n; i += 9973) {
                assert_int_equal(t->samples[i].t_usec, i * 500 * USEC_PER_MSEC);
                assert_int_equal(t->samples[i].current_bytes, i * 4096);
        }
        assert_int_equal(t->samples[n - 1].current_bytes, (n - 1) * 4096);
}

struct error_case {
        const char *csv;
        const char *lines[4]; /* the diag lines expected, in order */
};

static void test_trace_parse_errors(void **state)
{
        static const struct error_case cases[] = {
                {"",
                 {"t.csv: line 1: expected a header line with the columns t_ms, current "
                  "and max"}},
                {"\n0,1,2\n",
                 {"t.csv: line 1: expected a header line with the columns t_ms, current and "
                  "max"}},
                {"t_ms,current\n0,1\n",
                 {"t.csv: line 1: missing required column 'max' (the header needs t_ms, "
                  "current and max)"}},
                {"time,usage,max\n0,1,2\n",
                 {"t.csv: line 1: missing required column 't_ms' (the header needs t_ms, "
                  "current and max)",
                  "t.csv: line 1: missing required column 'current' (the header needs t_ms, "
                  "current and max)"}},
                {"t_ms,current,max,current\n0,1,2,3\n",
                 {"t.csv: line 1: column 'current' appears twice"}},
                {"T_MS,current,max\n",
                 {"t.csv: line 1: missing required column 't_ms' (the "
                  "header needs t_ms, current and max)"}},
                {"t_ms,current,max\n0,abc,2\n",
                 {"t.csv: line 2: column 'current': expected bytes, got \"abc\""}},
                {"t_ms,current,max\n0,1,2\n1,-1,2\n2,12abc,2\n",
                 {"t.csv: line 3: column 'current': expected bytes, got \"-1\"",
                  "t.csv: line 4: column 'current': expected bytes, got \"12abc\""}},
                {"t_ms,current,max\n0,1.5,2\n1,1e3,2\n2,0x10,2\n",
                 {"t.csv: line 2: column 'current': expected bytes, got \"1.5\"",
                  "t.csv: line 3: column 'current': expected bytes, got \"1e3\"",
                  "t.csv: line 4: column 'current': expected bytes, got \"0x10\""}},
                {"t_ms,current,max\n0,max,2\n1,1,MAX\n",
                 {"t.csv: line 2: column 'current': expected bytes, got \"max\"",
                  "t.csv: line 3: column 'max': expected bytes or \"max\", got \"MAX\""}},
                {"t_ms,current,max\n0,99999999999999999999,2\n",
                 {"t.csv: line 2: column 'current': expected bytes, got "
                  "\"99999999999999999999\" (too large)"}},
                {"t_ms,current,max\n18446744073709552,1,2\n",
                 {"t.csv: line 2: column 't_ms': expected milliseconds, got "
                  "\"18446744073709552\" (too large)"}},
                {"t_ms,current,max\n0,,2\n,1,2\n",
                 {"t.csv: line 2: column 'current': missing value, expected bytes",
                  "t.csv: line 3: column 't_ms': missing value, expected milliseconds"}},
                {"t_ms,current,max\n0,nan,inf\n",
                 {"t.csv: line 2: column 'current': expected bytes, got \"nan\"",
                  "t.csv: line 2: column 'max': expected bytes or \"max\", got \"inf\""}},
                {"t_ms,current,max\n100,1,2\n50,1,2\n60,1,2\n",
                 {"t.csv: line 3: t_ms 50 is before the previous row's 100 (rows must be in "
                  "time order)",
                  "t.csv: line 4: t_ms 60 is before the previous row's 100 (rows must be in "
                  "time order)"}},
                {"t_ms,current,max\n0,1,2\n1,2\n2,3,4,5\n",
                 {"t.csv: line 3: expected 3 columns as in the header, got 2",
                  "t.csv: line 4: expected 3 columns as in the header, got 4"}},
                {"t_ms,current,max\n0,1,2\n\n1,2,3\n", {"t.csv: line 3: empty row"}},
                {"t_ms,current,max,ev_oom,ev_oom_kill,ev_high\n0,1,2,0,,0\n",
                 {"t.csv: line 2: ev_ columns: 2 of 3 have a value; memory.events is read "
                  "whole, so fill all of them or none"}},
                {"t_ms,current,max,anon\n0,1,2,\"5\"\n",
                 {"t.csv: line 2: column 'anon': expected bytes, got \"\\\"5\\\"\""}},
                {"t_ms,current,max,high\n0,1,2,\x01\x7f\xff\n",
                 {"t.csv: line 2: column 'high': expected bytes or \"max\", got "
                  "\"\\x01\\x7f\\xff\""}},
                {"t_ms,current,max,psi_some_us\n0,1,2,"
                 "123456789012345678901234567890123456789012345678901234567890\n",
                 {"t.csv: line 2: column 'psi_some_us': expected microseconds, got "
                  "\"1234567890123456789012345678901234567890…\" (too large)"}},
                {"t_ms,current,max,ev_oom_kill\n0,1,2,x\n",
                 {"t.csv: line 2: column 'ev_oom_kill': expected a count, got \"x\""}},
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct diag d = {};
                struct trace *t = (struct trace *)(uintptr_t)0x1;
                int r = trace_parse("t.csv", cases[i].csv, strlen(cases[i].csv), &d, &t);
                size_t want = 0;

                while (want < ELEMENTSOF(cases[i].lines) && cases[i].lines[want])
                        want++;
                if (r != -EINVAL || d.n_lines != want) {
                        print_error("case %zu: returned %d with %zu lines, expected -EINVAL "
                                    "with %zu:\n",
                                    i, r, d.n_lines, want);
                        diag_print(&d, stderr);
                        fail();
                }
                for (size_t k = 0; k < want; k++)
                        assert_string_equal(d.lines[k], cases[i].lines[k]);
                assert_ptr_equal(t, (struct trace *)(uintptr_t)0x1);
                diag_clear(&d);
        }
}

static void test_trace_parse_lists_ten_problems_then_counts(void **state)
{
        char buf[4096];
        struct diag d = {};
        struct trace *t = NULL;
        size_t o;

        (void)state;
        o = (size_t)sprintf(buf, "t_ms,current,max\n");
        for (int i = 0; i < 15; i++)
                o += (size_t)sprintf(buf + o, "%d,x%d,1\n", i, i);
        assert_int_equal(trace_parse("big.csv", buf, o, &d, &t), -EINVAL);
        assert_null(t);
        assert_int_equal(d.n_lines, 11);
        assert_string_equal(d.lines[0], "big.csv: line 2: column 'current': expected bytes, got "
                                        "\"x0\"");
        assert_string_equal(d.lines[9], "big.csv: line 11: column 'current': expected bytes, got "
                                        "\"x9\"");
        assert_string_equal(d.lines[10], "big.csv: …and 5 more");
        diag_clear(&d);
}

static void test_trace_parse_embedded_nul_and_null_diag(void **state)
{
        static const char csv[] = "t_ms,current,max\n0,1\0002,3\n";
        struct trace *t = NULL;

        (void)state;
        /* the NUL is inside the buffer: a bad cell, not the end of the input */
        assert_int_equal(trace_parse("t.csv", csv, sizeof(csv) - 1, NULL, &t), -EINVAL);
        assert_null(t);
}

static struct trace *trace_of(const char *csv)
{
        return parse_ok(csv);
}

struct oom_case {
        const char *csv;
        ssize_t index;
};

static void test_trace_oom_index_with_oom_kill_column(void **state)
{
        static const struct oom_case cases[] = {
                {"t_ms,current,max,ev_oom_kill\n0,1,10,0\n1,2,10,0\n2,3,10,1\n3,1,10,1\n", 2},
                /* the column is the ground truth: current >= max without a kill is no OOM */
                {"t_ms,current,max,ev_oom_kill\n0,10,10,0\n1,12,10,0\n", -1},
                /* kills before the trace began are the baseline, not an OOM */
                {"t_ms,current,max,ev_oom_kill\n0,1,10,4\n1,2,10,4\n", -1},
                {"t_ms,current,max,ev_oom_kill\n0,1,10,4\n1,2,10,4\n2,2,10,5\n", 2},
                /* rows without events say nothing; the increase is over the last known */
                {"t_ms,current,max,ev_oom,ev_oom_kill\n0,1,10,0,0\n1,2,10,,\n2,3,10,1,1\n", 2},
                {"t_ms,current,max,ev_oom_kill\n0,1,10,\n1,2,10,3\n2,3,10,3\n", -1},
                /* a counter reset (cgroup re-created) is not an increase by itself */
                {"t_ms,current,max,ev_oom_kill\n0,1,10,3\n1,1,10,0\n2,1,10,1\n", 2},
                {"t_ms,current,max,ev_oom_kill\n", -1},
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(trace_freep) struct trace *t = trace_of(cases[i].csv);

                assert_true(t->has_oom_kill_column);
                if (trace_oom_index(t) != cases[i].index) {
                        print_error("case %zu: index %zd, expected %zd\n", i, trace_oom_index(t),
                                    cases[i].index);
                        fail();
                }
        }
}

static void test_trace_oom_index_without_oom_kill_column(void **state)
{
        static const struct oom_case cases[] = {
                {"t_ms,current,max\n0,1,10\n1,9,10\n2,10,10\n3,11,10\n", 2},
                {"t_ms,current,max\n0,1,10\n1,11,10\n", 1},
                {"t_ms,current,max\n0,1,10\n1,9,10\n", -1},
                {"t_ms,current,max\n0,1,max\n1,18446744073709551615,max\n", -1},
                /* ev_oom alone is not the ground truth */
                {"t_ms,current,max,ev_oom\n0,1,10,0\n1,5,10,3\n2,10,10,3\n", 2},
                {"t_ms,current,max\n", -1},
        };

        (void)state;
        assert_int_equal(trace_oom_index(NULL), -1);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(trace_freep) struct trace *t = trace_of(cases[i].csv);

                assert_false(t->has_oom_kill_column);
                if (trace_oom_index(t) != cases[i].index) {
                        print_error("case %zu: index %zd, expected %zd\n", i, trace_oom_index(t),
                                    cases[i].index);
                        fail();
                }
        }
}

static void test_trace_write_header_all_columns(void **state)
{
        _cleanup_free_ char *out = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&out, &n);

        (void)state;
        assert_non_null(f);
        assert_int_equal(trace_write_header(f), 0);
        assert_int_equal(fclose(f), 0);
        assert_string_equal(out, HEADER);
}

static void test_trace_write_row_formats(void **state)
{
        const uint64_t t0 = 7 * USEC_PER_SEC;
        struct sample full = {
                .t_usec = t0 + 1500999, /* 1500.999 ms: truncated */
                .current_bytes = 195035136,
                .max_bytes = 209715200,
                .high_bytes = CGROUP_LIMIT_MAX,
                .anon_bytes = 157319168,
                .file_bytes = 31055872,
                .events = {.high = 1294, .max = 347, .oom = 3, .oom_kill = 3},
                .pressure = {.some = {.total_usec = 8123456},
                             .full = {.total_usec = UINT64_MAX},
                             .has_full = true},
                .has = SAMPLE_HAS_ANON | SAMPLE_HAS_FILE | SAMPLE_HAS_HIGH | SAMPLE_HAS_EVENTS |
                       SAMPLE_HAS_PSI_SOME | SAMPLE_HAS_PSI_FULL,
        };
        struct sample bare = {
                .t_usec = t0,
                .current_bytes = 1,
                .max_bytes = CGROUP_LIMIT_MAX,
                .high_bytes = 5, /* has bit clear: not written */
                .anon_bytes = 6,
                .events = {.oom_kill = 9},
        };
        _cleanup_free_ char *out = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&out, &n);

        (void)state;
        assert_non_null(f);
        assert_int_equal(trace_write_row(f, t0, &full), 0);
        assert_int_equal(trace_write_row(f, t0, &bare), 0);
        assert_int_equal(trace_write_row(f, t0 + 1, &bare), -EINVAL);
        assert_int_equal(fclose(f), 0);
        assert_string_equal(out, "1500,195035136,157319168,31055872,209715200,max,1294,347,3,3,"
                                 "8123456,18446744073709551615\n"
                                 "0,1,,,max,,,,,,,\n");
}

static void test_trace_write_row_io_error(void **state)
{
        struct sample s = {.t_usec = 0, .current_bytes = 1, .max_bytes = 2};
        FILE *f = fopen("/dev/null", "re");

        (void)state;
        assert_non_null(f);
        /* a read-only stream: the write fails, whether at once or when flushed */
        setvbuf(f, NULL, _IONBF, 0);
        assert_int_equal(trace_write_row(f, 0, &s), -EIO);
        assert_int_equal(trace_write_header(f), -EIO);
        fclose(f);
}

static void test_trace_write_then_parse_round_trip(void **state)
{
        const uint64_t t0 = 123456789;
        struct sample in[4] = {
                {.t_usec = t0, .current_bytes = 100, .max_bytes = 1000},
                {.t_usec = t0 + 500000,
                 .current_bytes = 200,
                 .max_bytes = CGROUP_LIMIT_MAX,
                 .high_bytes = CGROUP_LIMIT_MAX,
                 .anon_bytes = 150,
                 .file_bytes = 50,
                 .events = {.high = 1, .max = 2, .oom = 3, .oom_kill = 4},
                 .pressure = {.some = {.total_usec = 10}, .full = {.total_usec = 5}},
                 .has = SAMPLE_HAS_ANON | SAMPLE_HAS_FILE | SAMPLE_HAS_HIGH | SAMPLE_HAS_EVENTS |
                        SAMPLE_HAS_PSI_SOME | SAMPLE_HAS_PSI_FULL},
                {.t_usec = t0 + 1000000,
                 .current_bytes = UINT64_MAX - 1,
                 .max_bytes = 0,
                 .high_bytes = 900,
                 .pressure = {.some = {.total_usec = 11}},
                 .has = SAMPLE_HAS_HIGH | SAMPLE_HAS_PSI_SOME},
                {.t_usec = t0 + 1000000,
                 .current_bytes = 0,
                 .max_bytes = 1000,
                 .events = {.oom_kill = 5},
                 .has = SAMPLE_HAS_EVENTS},
        };
        _cleanup_free_ char *out = NULL;
        _cleanup_(trace_freep) struct trace *t = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&out, &n);

        (void)state;
        assert_non_null(f);
        assert_int_equal(trace_write_header(f), 0);
        for (size_t i = 0; i < ELEMENTSOF(in); i++)
                assert_int_equal(trace_write_row(f, t0, &in[i]), 0);
        assert_int_equal(fclose(f), 0);

        t = parse_ok(out);
        assert_int_equal(t->n_samples, ELEMENTSOF(in));
        assert_true(t->has_oom_kill_column);
        for (size_t i = 0; i < ELEMENTSOF(in); i++) {
                const struct sample *a = &in[i], *b = &t->samples[i];

                assert_int_equal(b->t_usec, a->t_usec - t0);
                assert_int_equal(b->current_bytes, a->current_bytes);
                assert_int_equal(b->max_bytes, a->max_bytes);
                assert_int_equal(b->limit_bytes, a->max_bytes);
                assert_int_equal(b->has, a->has);
                assert_int_equal(b->high_bytes, a->has & SAMPLE_HAS_HIGH ? a->high_bytes : 0);
                assert_int_equal(b->anon_bytes, a->anon_bytes);
                assert_int_equal(b->file_bytes, a->file_bytes);
                assert_memory_equal(&b->events, &a->events, sizeof(a->events));
                assert_int_equal(b->pressure.some.total_usec, a->pressure.some.total_usec);
                assert_int_equal(b->pressure.full.total_usec, a->pressure.full.total_usec);
                assert_int_equal(b->pressure.has_full, !!(a->has & SAMPLE_HAS_PSI_FULL));
        }
        assert_int_equal(trace_oom_index(t), 3);
}

static char *write_temp(const char *content, size_t len)
{
        char tmpl[] = "/tmp/memgov-test-trace-XXXXXX";
        int fd = mkstemp(tmpl);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, content, len), (ssize_t)len);
        close(fd);
        return strdup(tmpl);
}

static void test_trace_load_file_reads_and_names_the_file(void **state)
{
        static const char good[] = "t_ms,current,max\n0,1,2\n5,3,4\n";
        static const char bad[] = "t_ms,current,max\n0,one,2\n";
        _cleanup_free_ char *good_path = write_temp(good, sizeof(good) - 1);
        _cleanup_free_ char *bad_path = write_temp(bad, sizeof(bad) - 1);
        _cleanup_(trace_freep) struct trace *t = NULL;
        struct trace *t2 = NULL;
        struct diag d = {};
        char want[256];

        (void)state;
        assert_int_equal(trace_load_file(good_path, &d, &t), 0);
        assert_int_equal(d.n_lines, 0);
        assert_int_equal(t->n_samples, 2);
        assert_int_equal(t->samples[1].t_usec, 5000);

        assert_int_equal(trace_load_file(bad_path, &d, &t2), -EINVAL);
        assert_null(t2);
        assert_int_equal(d.n_lines, 1);
        snprintf(want, sizeof(want), "%s: line 2: column 'current': expected bytes, got \"one\"",
                 bad_path);
        assert_string_equal(d.lines[0], want);
        diag_clear(&d);

        unlink(good_path);
        unlink(bad_path);
        assert_int_equal(trace_load_file(good_path, &d, &t2), -ENOENT);
        assert_null(t2);
        assert_int_equal(d.n_lines, 1);
        snprintf(want, sizeof(want), "%s: cannot open: %s", good_path, strerror(ENOENT));
        assert_string_equal(d.lines[0], want);
        diag_clear(&d);
}

static void test_trace_load_file_too_large(void **state)
{
        _cleanup_free_ char *path = write_temp("t_ms,current,max\n", 17);
        struct trace *t = NULL;
        struct diag d = {};
        char want[256];

        (void)state;
        /* sparse: no disk is used */
        assert_int_equal(truncate(path, (off_t)(257) << 20), 0);
        assert_int_equal(trace_load_file(path, &d, &t), -EFBIG);
        assert_null(t);
        assert_int_equal(d.n_lines, 1);
        snprintf(want, sizeof(want), "%s: larger than 256 MiB; split the trace", path);
        assert_string_equal(d.lines[0], want);
        diag_clear(&d);
        unlink(path);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_trace_parse_minimal),
                cmocka_unit_test(test_trace_parse_all_columns_any_order),
                cmocka_unit_test(test_trace_parse_empty_cells_are_absent),
                cmocka_unit_test(test_trace_parse_line_endings),
                cmocka_unit_test(test_trace_parse_header_only),
                cmocka_unit_test(test_trace_parse_many_rows),
                cmocka_unit_test(test_trace_parse_errors),
                cmocka_unit_test(test_trace_parse_lists_ten_problems_then_counts),
                cmocka_unit_test(test_trace_parse_embedded_nul_and_null_diag),
                cmocka_unit_test(test_trace_oom_index_with_oom_kill_column),
                cmocka_unit_test(test_trace_oom_index_without_oom_kill_column),
                cmocka_unit_test(test_trace_write_header_all_columns),
                cmocka_unit_test(test_trace_write_row_formats),
                cmocka_unit_test(test_trace_write_row_io_error),
                cmocka_unit_test(test_trace_write_then_parse_round_trip),
                cmocka_unit_test(test_trace_load_file_reads_and_names_the_file),
                cmocka_unit_test(test_trace_load_file_too_large),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Probe stage: the pure parsers against real kernel files (tests/fixtures/kernel-6.1) and
 * tables of good and hostile input. Longer than most files because the tables are the
 * point: one row per input a user or a kernel could hand us.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "memgov/macro.h"
#include "memgov/parse.h"

#define SENTINEL UINT64_C(0xdeadbeefcafe)

/* Report the failing row of a table, then fail the test. */
#define check_row(cond, i, input, fmt, ...)                                                        \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        print_error("row %zu (input \"%s\"): " fmt "\n", (size_t)(i),              \
                                    (input) ? (input) : "(null)", __VA_ARGS__);                    \
                        fail();                                                                    \
                }                                                                                  \
        } while (0)

static char *read_fixture(const char *name)
{
        char path[4096];
        FILE *f;
        char *buf;
        long n;

        snprintf(path, sizeof(path), "%s/tests/fixtures/kernel-6.1/%s", MEMGOV_SOURCE_DIR, name);
        f = fopen(path, "re");
        assert_non_null(f);
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

/* A string of n copies of c, NUL-terminated: for very long lines and numbers. */
static char *repeat(char c, size_t n)
{
        char *s = malloc(n + 1);

        assert_non_null(s);
        memset(s, c, n);
        s[n] = '\0';
        return s;
}

struct u64_case {
        const char *in;
        int r;
        uint64_t value;
};

static void run_u64_cases(int (*fn)(const char *, uint64_t *), const struct u64_case *cases,
                          size_t n)
{
        for (size_t i = 0; i < n; i++) {
                uint64_t v = SENTINEL;
                int r = fn(cases[i].in, &v);

                check_row(r == cases[i].r, i, cases[i].in, "returned %d, expected %d", r,
                          cases[i].r);
                if (cases[i].r == 0)
                        check_row(v == cases[i].value, i, cases[i].in, "value %llu, expected %llu",
                                  (unsigned long long)v, (unsigned long long)cases[i].value);
                else
                        check_row(v == SENTINEL, i, cases[i].in, "ret touched on error: %llu",
                                  (unsigned long long)v);
        }
}

static void test_parse_u64_table(void **state)
{
        static const struct u64_case cases[] = {
                {"0", 0, 0},
                {"0\n", 0, 0},
                {"123\n", 0, 123},
                {"195035136\n", 0, 195035136},
                {"007", 0, 7},
                {"18446744073709551615", 0, UINT64_MAX},
                {"18446744073709551616", -ERANGE, 0},
                {"99999999999999999999999\n", -ERANGE, 0},
                {"", -EINVAL, 0},
                {"\n", -EINVAL, 0},
                {"-1", -EINVAL, 0},
                {"-0", -EINVAL, 0},
                {"+1", -EINVAL, 0},
                {" 1", -EINVAL, 0},
                {"1 ", -EINVAL, 0},
                {"1\n\n", -EINVAL, 0},
                {"1\r\n", -EINVAL, 0},
                {"\t1", -EINVAL, 0},
                {"12abc", -EINVAL, 0},
                {"99999999999999999999999abc", -EINVAL, 0},
                {"0x10", -EINVAL, 0},
                {"1e3", -EINVAL, 0},
                {"1.5", -EINVAL, 0},
                {"nan", -EINVAL, 0},
                {"inf", -EINVAL, 0},
                {"max", -EINVAL, 0},
                {NULL, -EINVAL, 0},
        };

        (void)state;
        run_u64_cases(parse_u64, cases, ELEMENTSOF(cases));
}

static void test_parse_u64_very_long_numbers(void **state)
{
        _cleanup_free_ char *nines = repeat('9', 100000);
        _cleanup_free_ char *zeros = repeat('0', 100000);
        uint64_t v = SENTINEL;

        (void)state;
        assert_int_equal(parse_u64(nines, &v), -ERANGE);
        assert_int_equal(v, SENTINEL);

        /* leading zeros do not count towards overflow */
        zeros[99999] = '7';
        assert_int_equal(parse_u64(zeros, &v), 0);
        assert_int_equal(v, 7);
}

static void test_parse_limit_table(void **state)
{
        static const struct u64_case cases[] = {
                {"max\n", 0, CGROUP_LIMIT_MAX},
                {"max", 0, CGROUP_LIMIT_MAX},
                {"209715200\n", 0, 209715200},
                {"0\n", 0, 0},
                {"18446744073709551615\n", 0, UINT64_MAX},
                {"18446744073709551616\n", -ERANGE, 0},
                {"Max\n", -EINVAL, 0},
                {"MAX", -EINVAL, 0},
                {"max \n", -EINVAL, 0},
                {"maxx", -EINVAL, 0},
                {"ma", -EINVAL, 0},
                {"max\n\n", -EINVAL, 0},
                {"", -EINVAL, 0},
                {"-1\n", -EINVAL, 0},
                {"200M\n", -EINVAL, 0},
                {NULL, -EINVAL, 0},
        };

        (void)state;
        run_u64_cases(parse_limit, cases, ELEMENTSOF(cases));
}

static void test_parse_limit_kernel_files(void **state)
{
        _cleanup_free_ char *max = read_fixture("memory.max");
        _cleanup_free_ char *high = read_fixture("memory.high");
        _cleanup_free_ char *current = read_fixture("memory.current");
        uint64_t v;

        (void)state;
        assert_int_equal(parse_limit(max, &v), 0);
        assert_int_equal(v, 209715200);
        assert_int_equal(parse_limit(high, &v), 0);
        assert_int_equal(v, CGROUP_LIMIT_MAX);
        assert_int_equal(parse_u64(current, &v), 0);
        assert_int_equal(v, 195035136);
}

static void test_parse_memory_events_kernel_files(void **state)
{
        _cleanup_free_ char *idle = read_fixture("memory.events");
        _cleanup_free_ char *oom = read_fixture("memory.events.oom");
        struct memory_events e;

        (void)state;
        memset(&e, 0xff, sizeof(e));
        assert_int_equal(parse_memory_events(idle, &e), 0);
        assert_int_equal(e.low, 0);
        assert_int_equal(e.high, 0);
        assert_int_equal(e.max, 0);
        assert_int_equal(e.oom, 0);
        assert_int_equal(e.oom_kill, 0);
        assert_int_equal(e.oom_group_kill, 0);

        assert_int_equal(parse_memory_events(oom, &e), 0);
        assert_int_equal(e.low, 0);
        assert_int_equal(e.high, 1294);
        assert_int_equal(e.max, 347);
        assert_int_equal(e.oom, 3);
        assert_int_equal(e.oom_kill, 3);
        assert_int_equal(e.oom_group_kill, 0);
}

struct events_case {
        const char *in;
        int r;
        struct memory_events e;
};

static void test_parse_memory_events_table(void **state)
{
        static const struct events_case cases[] = {
                /* a 5.x kernel: no oom_group_kill */
                {"low 1\nhigh 2\nmax 3\noom 4\noom_kill 5\n", 0, {1, 2, 3, 4, 5, 0}},
                /* the same keys in another order, no final newline */
                {"oom_kill 5\noom 4\nmax 3\nhigh 2\nlow 1", 0, {1, 2, 3, 4, 5, 0}},
                /* keys that are prefixes of others match whole */
                {"oom 7\noom_kill 8\noom_group_kill 9\n", 0, {0, 0, 0, 7, 8, 9}},
                {"oom_kill 8\n", 0, {0, 0, 0, 0, 8, 0}},
                /* unknown keys (a newer kernel) anywhere, values not read */
                {"low 1\nsock_throttled 42\nhigh 2\nfuture_key not-a-number\noom_kill 3\n",
                 0,
                 {1, 2, 0, 0, 3, 0}},
                {"oom_killed 9\noomkill 9\nOOM_KILL 9\n", 0, {0, 0, 0, 0, 0, 0}},
                /* missing keys stay 0; an empty file has none */
                {"", 0, {0, 0, 0, 0, 0, 0}},
                {"\n\n", 0, {0, 0, 0, 0, 0, 0}},
                {"max 18446744073709551615\n", 0, {0, 0, UINT64_MAX, 0, 0, 0}},
                /* hostile */
                {"max 18446744073709551616\n", -ERANGE, {}},
                {"oom_kill -1\n", -EINVAL, {}},
                {"oom_kill 1.0\n", -EINVAL, {}},
                {"oom_kill 12abc\n", -EINVAL, {}},
                {"oom_kill\n", -EINVAL, {}},
                {"oom_kill", -EINVAL, {}},
                {"oom_kill \n", -EINVAL, {}},
                {"oom_kill  1\n", -EINVAL, {}},
                {"oom_kill\t1\n", -EINVAL, {}},
                {"oom_kill 1 \n", -EINVAL, {}},
                {"oom_kill 1\r\nlow 0\r\n", -EINVAL, {}},
                {" oom_kill 1\n", -EINVAL, {}},
                {"oom_kill=1\n", -EINVAL, {}},
                {"garbage\n", -EINVAL, {}},
                {"low 0\nhigh 0\n\x01\x02\x03\n", -EINVAL, {}},
                {"oom_kill 1\noom_kill 2\n", -EINVAL, {}},
                /* two reads glued together */
                {"low 0\nhigh 0\nmax 0\nlow 0\nhigh 0\nmax 0\n", -EINVAL, {}},
                {NULL, -EINVAL, {}},
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct memory_events e, untouched;
                int r;

                memset(&e, 0xa5, sizeof(e));
                untouched = e;
                r = parse_memory_events(cases[i].in, &e);
                check_row(r == cases[i].r, i, cases[i].in, "returned %d, expected %d", r,
                          cases[i].r);
                if (r == 0)
                        check_row(memcmp(&e, &cases[i].e, sizeof(e)) == 0, i, cases[i].in,
                                  "oom_kill %llu high %llu", (unsigned long long)e.oom_kill,
                                  (unsigned long long)e.high);
                else
                        check_row(memcmp(&e, &untouched, sizeof(e)) == 0, i, cases[i].in, "%s",
                                  "ret touched on error");
        }
}

static void test_parse_memory_stat_kernel_file(void **state)
{
        _cleanup_free_ char *buf = read_fixture("memory.stat");
        struct memory_stat s;

        (void)state;
        memset(&s, 0xff, sizeof(s));
        assert_int_equal(parse_memory_stat(buf, &s), 0);
        assert_int_equal(s.anon, 157319168);
        assert_int_equal(s.file, 31055872);
        assert_int_equal(s.kernel, 6807552);
        assert_int_equal(s.kernel_stack, 458752);
        assert_int_equal(s.sock, 8192);
        assert_int_equal(s.shmem, 135168);
        assert_int_equal(s.slab, 5006280);
        assert_int_equal(s.slab_reclaimable, 3462184);
        assert_int_equal(s.slab_unreclaimable, 1544096);
        assert_int_equal(s.file_mapped, 15294464);
        assert_int_equal(s.file_dirty, 12288);
        assert_int_equal(s.file_writeback, 0);
        assert_int_equal(s.anon_thp, 0);
        assert_int_equal(s.inactive_anon, 157106176);
        assert_int_equal(s.active_anon, 348160);
        assert_int_equal(s.inactive_file, 18722816);
        assert_int_equal(s.active_file, 12197888);
        assert_int_equal(s.unevictable, 0);
        assert_int_equal(s.pgmajfault, 217);
        assert_int_equal(s.workingset_refault_anon, 0);
        assert_int_equal(s.workingset_refault_file, 3127);
}

struct stat_case {
        const char *in;
        int r;
        uint64_t anon, file, anon_thp, file_mapped, slab, pgmajfault;
};

static void test_parse_memory_stat_table(void **state)
{
        static const struct stat_case cases[] = {
                {"anon 4096\nfile 8192\n", 0, 4096, 8192, 0, 0, 0, 0},
                /* a key that is a prefix of another, in both orders */
                {"anon_thp 2097152\nanon 4096\n", 0, 4096, 0, 2097152, 0, 0, 0},
                {"anon 4096\nanon_thp 2097152\n", 0, 4096, 0, 2097152, 0, 0, 0},
                {"file_mapped 1\nfile 2\nfile_thp 3\n", 0, 0, 2, 0, 1, 0, 0},
                {"slab_reclaimable 1\nslab_unreclaimable 2\nslab 3\n", 0, 0, 0, 0, 0, 3, 0},
                /* unknown keys mid-file, as new kernels add them */
                {"anon 1\nzswap 5\nsec_pagetables 0\nfile 2\nnew_counter_2030 99999999999999999999"
                 "999\npgmajfault 3\n",
                 0, 1, 2, 0, 0, 0, 3},
                /* missing keys stay 0 */
                {"pgmajfault 217\n", 0, 0, 0, 0, 0, 0, 217},
                {"", 0, 0, 0, 0, 0, 0, 0},
                /* hostile */
                {"anon 4096\nfile 8192", 0, 4096, 8192, 0, 0, 0, 0},
                {"anon 4096\nfile 81", 0, 4096, 81, 0, 0, 0, 0}, /* cut, but still a number */
                {"anon 4096\nfile", -EINVAL, 0, 0, 0, 0, 0, 0},  /* cut inside the line */
                {"anon 4096\nfile ", -EINVAL, 0, 0, 0, 0, 0, 0},
                {"anon 4096\nfi", -EINVAL, 0, 0, 0, 0, 0, 0},
                {"anon 4096\nanon 8192\n", -EINVAL, 0, 0, 0, 0, 0, 0},
                {"anon 99999999999999999999\n", -ERANGE, 0, 0, 0, 0, 0, 0},
                {"anon -4096\n", -EINVAL, 0, 0, 0, 0, 0, 0},
                {"anon 4K\n", -EINVAL, 0, 0, 0, 0, 0, 0},
                {"anon nan\n", -EINVAL, 0, 0, 0, 0, 0, 0},
                {"anon: 4096\n", -EINVAL, 0, 0, 0, 0, 0, 0},
                {"anon 4096 8192\n", -EINVAL, 0, 0, 0, 0, 0, 0},
                {"total_anon 1\n hierarchical 2\n", -EINVAL, 0, 0, 0, 0, 0, 0},
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct memory_stat s, untouched;
                int r;

                memset(&s, 0xa5, sizeof(s));
                untouched = s;
                r = parse_memory_stat(cases[i].in, &s);
                check_row(r == cases[i].r, i, cases[i].in, "returned %d, expected %d", r,
                          cases[i].r);
                if (r < 0) {
                        check_row(memcmp(&s, &untouched, sizeof(s)) == 0, i, cases[i].in, "%s",
                                  "ret touched on error");
                        continue;
                }
                check_row(s.anon == cases[i].anon && s.file == cases[i].file &&
                                  s.anon_thp == cases[i].anon_thp &&
                                  s.file_mapped == cases[i].file_mapped &&
                                  s.slab == cases[i].slab && s.pgmajfault == cases[i].pgmajfault,
                          i, cases[i].in, "anon %llu file %llu anon_thp %llu file_mapped %llu",
                          (unsigned long long)s.anon, (unsigned long long)s.file,
                          (unsigned long long)s.anon_thp, (unsigned long long)s.file_mapped);
                /* every field not named in the input is zero, not left over */
                check_row(s.kernel == 0 && s.unevictable == 0, i, cases[i].in, "%s", "stale field");
        }
}

static void test_parse_memory_stat_very_long_lines(void **state)
{
        size_t n = 1 << 20;
        _cleanup_free_ char *buf = malloc(n + 64);
        struct memory_stat s;

        (void)state;
        assert_non_null(buf);

        /* an unknown key with a megabyte of value: skipped */
        strcpy(buf, "anon 1\nsome_future_key ");
        memset(buf + strlen(buf), '7', n);
        strcpy(buf + strlen("anon 1\nsome_future_key ") + n, "\nfile 2\n");
        assert_int_equal(parse_memory_stat(buf, &s), 0);
        assert_int_equal(s.anon, 1);
        assert_int_equal(s.file, 2);

        /* a known key with a megabyte of digits: out of range */
        strcpy(buf, "file ");
        memset(buf + 5, '7', n);
        buf[5 + n] = '\0';
        assert_int_equal(parse_memory_stat(buf, &s), -ERANGE);

        /* a megabyte of key with no value */
        memset(buf, 'k', n);
        buf[n] = '\0';
        assert_int_equal(parse_memory_stat(buf, &s), -EINVAL);
}

static void test_parse_pressure_kernel_files(void **state)
{
        _cleanup_free_ char *busy = read_fixture("memory.pressure");
        _cleanup_free_ char *idle = read_fixture("memory.pressure.idle");
        struct pressure p;

        (void)state;
        assert_int_equal(parse_pressure(busy, &p), 0);
        assert_float_equal(p.some.avg10_pct, 12.47, 1e-9);
        assert_float_equal(p.some.avg60_pct, 4.83, 1e-9);
        assert_float_equal(p.some.avg300_pct, 1.09, 1e-9);
        assert_int_equal(p.some.total_usec, 8123456);
        assert_true(p.has_full);
        assert_float_equal(p.full.avg10_pct, 9.71, 1e-9);
        assert_float_equal(p.full.avg60_pct, 3.92, 1e-9);
        assert_float_equal(p.full.avg300_pct, 0.88, 1e-9);
        assert_int_equal(p.full.total_usec, 6543210);

        assert_int_equal(parse_pressure(idle, &p), 0);
        assert_float_equal(p.some.avg10_pct, 0.0, 0.0);
        assert_int_equal(p.some.total_usec, 0);
        assert_true(p.has_full);
        assert_int_equal(p.full.total_usec, 0);
}

struct pressure_case {
        const char *in;
        int r;
        double some_avg10;
        uint64_t some_total;
        bool has_full;
        uint64_t full_total;
};

static void test_parse_pressure_table(void **state)
{
        static const struct pressure_case cases[] = {
                {"some avg10=0.12 avg60=0.05 avg300=0.01 total=12345\n", 0, 0.12, 12345, false, 0},
                {"some avg10=0.12 avg60=0.05 avg300=0.01 total=12345", 0, 0.12, 12345, false, 0},
                {"full avg10=1.00 avg60=0.00 avg300=0.00 total=7\n"
                 "some avg10=2.50 avg60=0.00 avg300=0.00 total=9\n",
                 0, 2.5, 9, true, 7},
                {"some total=5 avg300=0.00 avg60=0.00 avg10=100.00\n", 0, 100.0, 5, false, 0},
                {"some avg10=3 avg60=0 avg300=0 total=1\n", 0, 3.0, 1, false, 0},
                {"some avg10=0.00 avg60=0.00 avg300=0.00 total=18446744073709551615\n", 0, 0.0,
                 UINT64_MAX, false, 0},
                /* truncated */
                {"some avg10=0.1", -EINVAL, 0, 0, false, 0},
                {"some avg10=0.12 avg60=0.05 avg300=0.01\n", -EINVAL, 0, 0, false, 0},
                {"some avg10=0.12 avg60=0.05 avg300=0.01 total=\n", -EINVAL, 0, 0, false, 0},
                {"some avg10=0.12 avg60=0.05 avg300=0.01 total", -EINVAL, 0, 0, false, 0},
                {"some avg10=0.12 avg60=0.05 avg300=0.01 total=1\nfull avg10=0.", -EINVAL, 0, 0,
                 false, 0},
                {"some", -EINVAL, 0, 0, false, 0},
                {"some ", -EINVAL, 0, 0, false, 0},
                {"", -EINVAL, 0, 0, false, 0},
                {"\n", -EINVAL, 0, 0, false, 0},
                /* "some" is required */
                {"full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", -EINVAL, 0, 0, false, 0},
                /* hostile values */
                {"some avg10=100.01 avg60=0.00 avg300=0.00 total=0\n", -ERANGE, 0, 0, false, 0},
                {"some avg10=1e2 avg60=0.00 avg300=0.00 total=0\n", -EINVAL, 0, 0, false, 0},
                {"some avg10=-0.50 avg60=0.00 avg300=0.00 total=0\n", -EINVAL, 0, 0, false, 0},
                {"some avg10=nan avg60=0.00 avg300=0.00 total=0\n", -EINVAL, 0, 0, false, 0},
                {"some avg10=inf avg60=0.00 avg300=0.00 total=0\n", -EINVAL, 0, 0, false, 0},
                {"some avg10=.5 avg60=0.00 avg300=0.00 total=0\n", -EINVAL, 0, 0, false, 0},
                {"some avg10=5. avg60=0.00 avg300=0.00 total=0\n", -EINVAL, 0, 0, false, 0},
                {"some avg10=0,50 avg60=0.00 avg300=0.00 total=0\n", -EINVAL, 0, 0, false, 0},
                {"some avg10=0.00 avg60=0.00 avg300=0.00 total=-1\n", -EINVAL, 0, 0, false, 0},
                {"some avg10=0.00 avg60=0.00 avg300=0.00 total=18446744073709551616\n", -ERANGE, 0,
                 0, false, 0},
                /* shape */
                {"some  avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", -EINVAL, 0, 0, false, 0},
                {"some avg10=0.00  avg60=0.00 avg300=0.00 total=0\n", -EINVAL, 0, 0, false, 0},
                {"some avg10=0.00 avg60=0.00 avg300=0.00 total=0 \n", -EINVAL, 0, 0, false, 0},
                {"some avg10=0.00 avg60=0.00 avg300=0.00 total=0\r\n", -EINVAL, 0, 0, false, 0},
                {"some avg10=0.00 avg10=0.00 avg300=0.00 total=0\n", -EINVAL, 0, 0, false, 0},
                {"some avg10=0.00 avg60=0.00 avg300=0.00 total=0 avg5=0.00\n", -EINVAL, 0, 0, false,
                 0},
                {"some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
                 "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
                 -EINVAL, 0, 0, false, 0},
                {"some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
                 "half avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
                 -EINVAL, 0, 0, false, 0},
                {"SOME avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", -EINVAL, 0, 0, false, 0},
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct pressure p, untouched;
                int r;

                memset(&p, 0xa5, sizeof(p));
                memcpy(&untouched, &p, sizeof(p));
                r = parse_pressure(cases[i].in, &p);
                check_row(r == cases[i].r, i, cases[i].in, "returned %d, expected %d", r,
                          cases[i].r);
                if (r < 0) {
                        check_row(memcmp(&p, &untouched, sizeof(p)) == 0, i, cases[i].in, "%s",
                                  "ret touched on error");
                        continue;
                }
                check_row(p.some.avg10_pct > cases[i].some_avg10 - 1e-9 &&
                                  p.some.avg10_pct < cases[i].some_avg10 + 1e-9,
                          i, cases[i].in, "some avg10 %f", p.some.avg10_pct);
                check_row(p.some.total_usec == cases[i].some_total, i, cases[i].in,
                          "some total %llu", (unsigned long long)p.some.total_usec);
                check_row(p.has_full == cases[i].has_full, i, cases[i].in, "has_full %d",
                          p.has_full);
                if (p.has_full)
                        check_row(p.full.total_usec == cases[i].full_total, i, cases[i].in,
                                  "full total %llu", (unsigned long long)p.full.total_usec);
                else
                        check_row(p.full.total_usec == 0, i, cases[i].in, "%s",
                                  "full line left over");
        }
}

struct size_case {
        const char *in;
        uint64_t base;
        int r;
        uint64_t bytes;
};

#define KiB UINT64_C(1024)
#define MiB (KiB * 1024)
#define GiB (MiB * 1024)
#define TiB (GiB * 1024)

static void test_parse_size_table(void **state)
{
        static const struct size_case cases[] = {
                {"1048576", 0, 0, MiB},
                {"0", 0, 0, 0},
                {"512K", 0, 0, 512 * KiB},
                {"512k", 0, 0, 512 * KiB},
                {"512KiB", 0, 0, 512 * KiB},
                {"512kib", 0, 0, 512 * KiB},
                {"512KB", 0, 0, 512 * KiB},
                {"512M", 0, 0, 512 * MiB},
                {"256MiB", 0, 0, 256 * MiB},
                {"1.5G", 0, 0, 3 * GiB / 2},
                {"2GiB", 0, 0, 2 * GiB},
                {"1T", 0, 0, TiB},
                {"2P", 0, 0, 2048 * TiB},
                {"15E", 0, 0, UINT64_C(15) << 60},
                {"100B", 0, 0, 100},
                {"100b", 0, 0, 100},
                {"0.5K", 0, 0, 512},
                {"0.1K", 0, 0, 102},              /* 102.4, rounded down */
                {"1.0000000001G", 0, 0, GiB + 0}, /* past nine decimals: rounded down */
                {"1.999999999999999999999G", 0, 0, 2 * GiB - 2},
                {"max", 0, 0, CGROUP_LIMIT_MAX},
                {"max", 100, 0, CGROUP_LIMIT_MAX},
                {"18446744073709551615", 0, 0, UINT64_MAX},
                {"80%", 1000, 0, 800},
                {"97.5%", 1000, 0, 975},
                {"80%", 209715200, 0, 167772160},
                {"33.3333%", 100, 0, 33},
                {"100%", UINT64_MAX, 0, UINT64_MAX},
                {"0%", 1000, 0, 0},
                {"150%", 1000, 0, 1500},
                /* overflow */
                {"16E", 0, -ERANGE, 0},
                {"18446744073709551616", 0, -ERANGE, 0},
                {"17179869184G", 0, -ERANGE, 0},
                {"99999999999999999999999K", 0, -ERANGE, 0},
                {"101%", UINT64_MAX, -ERANGE, 0},
                {"1000000000%", 1, -ERANGE, 0},
                /* junk */
                {"", 0, -EINVAL, 0},
                {"M", 0, -EINVAL, 0},
                {"-1", 0, -EINVAL, 0},
                {"-1M", 0, -EINVAL, 0},
                {"+1M", 0, -EINVAL, 0},
                {" 512M", 0, -EINVAL, 0},
                {"512M ", 0, -EINVAL, 0},
                {"512 M", 0, -EINVAL, 0},
                {"512M\n", 0, -EINVAL, 0},
                {"12abc", 0, -EINVAL, 0},
                {"512MB2", 0, -EINVAL, 0},
                {"512Mi", 0, -EINVAL, 0},
                {"512iB", 0, -EINVAL, 0},
                {"512X", 0, -EINVAL, 0},
                {"1.5", 0, -EINVAL, 0},
                {"1.5B", 0, -EINVAL, 0},
                {"1.G", 0, -EINVAL, 0},
                {".5G", 0, -EINVAL, 0},
                {"1..5G", 0, -EINVAL, 0},
                {"1.5.1G", 0, -EINVAL, 0},
                {"1,5G", 0, -EINVAL, 0},
                {"1e9", 0, -EINVAL, 0},
                {"0x100", 0, -EINVAL, 0},
                {"nan", 0, -EINVAL, 0},
                {"inf", 0, -EINVAL, 0},
                {"infinity", 0, -EINVAL, 0},
                {"MAX", 0, -EINVAL, 0},
                {"max ", 0, -EINVAL, 0},
                {"80%", 0, -EINVAL, 0}, /* percent without a base */
                {"80 %", 1000, -EINVAL, 0},
                {"%", 1000, -EINVAL, 0},
                {"80%%", 1000, -EINVAL, 0},
                {"80M%", 1000, -EINVAL, 0},
                {"-5%", 1000, -EINVAL, 0},
                {NULL, 0, -EINVAL, 0},
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t v = SENTINEL;
                int r = parse_size(cases[i].in, cases[i].base, &v);

                check_row(r == cases[i].r, i, cases[i].in, "returned %d, expected %d", r,
                          cases[i].r);
                check_row(v == (r == 0 ? cases[i].bytes : SENTINEL), i, cases[i].in,
                          "value %llu, expected %llu", (unsigned long long)v,
                          (unsigned long long)(r == 0 ? cases[i].bytes : SENTINEL));
        }
}

struct share_case {
        const char *in;
        int r;
        uint64_t bytes;
        uint32_t permille;
};

static void test_parse_size_or_share_table(void **state)
{
        static const struct share_case cases[] = {
                {"80%", 0, 0, 800},
                {"97.5%", 0, 0, 975},
                {"97.59%", 0, 0, 975},
                {"100%", 0, 0, 1000},
                {"100.0%", 0, 0, 1000},
                {"0.1%", 0, 0, 1},
                {"1%", 0, 0, 10},
                {"512M", 0, 512 * MiB, 0},
                {"1.5G", 0, 3 * GiB / 2, 0},
                {"0", 0, 0, 0},
                {"max", 0, CGROUP_LIMIT_MAX, 0},
                {"100.01%", -ERANGE, 0, 0},
                {"101%", -ERANGE, 0, 0},
                {"99999999999999999999999%", -ERANGE, 0, 0},
                {"0%", -ERANGE, 0, 0},
                {"0.05%", -ERANGE, 0, 0},
                {"16E", -ERANGE, 0, 0},
                {"-80%", -EINVAL, 0, 0},
                {"80", 0, 80, 0},
                {"80 %", -EINVAL, 0, 0},
                {"%", -EINVAL, 0, 0},
                {"eighty%", -EINVAL, 0, 0},
                {"", -EINVAL, 0, 0},
                {NULL, -EINVAL, 0, 0},
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t bytes = SENTINEL;
                uint32_t permille = 0xdead;
                int r = parse_size_or_share(cases[i].in, &bytes, &permille);

                check_row(r == cases[i].r, i, cases[i].in, "returned %d, expected %d", r,
                          cases[i].r);
                if (r < 0) {
                        check_row(bytes == SENTINEL && permille == 0xdead, i, cases[i].in, "%s",
                                  "ret touched on error");
                        continue;
                }
                check_row(bytes == cases[i].bytes && permille == cases[i].permille, i, cases[i].in,
                          "bytes %llu permille %u", (unsigned long long)bytes, permille);
        }
}

static void test_parse_duration_table(void **state)
{
        static const struct u64_case cases[] = {
                {"500ms", 0, 500 * USEC_PER_MSEC},
                {"30s", 0, 30 * USEC_PER_SEC},
                {"5m", 0, 5 * USEC_PER_MINUTE},
                {"5min", 0, 5 * USEC_PER_MINUTE},
                {"2h", 0, 2 * USEC_PER_HOUR},
                {"1d", 0, 24 * USEC_PER_HOUR},
                {"1.5s", 0, 1500 * USEC_PER_MSEC},
                {"250us", 0, 250},
                {"30", 0, 30 * USEC_PER_SEC},
                {"0.5", 0, 500 * USEC_PER_MSEC},
                {"0", 0, 0},
                {"0ms", 0, 0},
                {"1.5us", 0, 1}, /* below a microsecond: rounded down */
                {"0.0000001s", 0, 0},
                {"2.25m", 0, 135 * USEC_PER_SEC},
                {"18446744073709551615us", 0, UINT64_MAX},
                /* overflow */
                {"18446744073709551616us", -ERANGE, 0},
                {"18446744073709551615s", -ERANGE, 0},
                {"213503983d", -ERANGE, 0},
                {"213503982d", 0, UINT64_C(213503982) * 24 * USEC_PER_HOUR},
                {"99999999999999999999999", -ERANGE, 0},
                /* junk */
                {"", -EINVAL, 0},
                {"s", -EINVAL, 0},
                {"ms", -EINVAL, 0},
                {"-1s", -EINVAL, 0},
                {"+1s", -EINVAL, 0},
                {" 1s", -EINVAL, 0},
                {"1s ", -EINVAL, 0},
                {"1 s", -EINVAL, 0},
                {"1S", -EINVAL, 0},
                {"5M", -EINVAL, 0},
                {"1sec", -EINVAL, 0},
                {"1x", -EINVAL, 0},
                {"1m30s", -EINVAL, 0},
                {"1.s", -EINVAL, 0},
                {".5s", -EINVAL, 0},
                {"1..5s", -EINVAL, 0},
                {"1e3ms", -EINVAL, 0},
                {"nan", -EINVAL, 0},
                {"inf", -EINVAL, 0},
                {"infinity", -EINVAL, 0},
                {"soon", -EINVAL, 0},
                {"10%", -EINVAL, 0},
                {NULL, -EINVAL, 0},
        };

        (void)state;
        run_u64_cases(parse_duration, cases, ELEMENTSOF(cases));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_u64_table),
                cmocka_unit_test(test_parse_u64_very_long_numbers),
                cmocka_unit_test(test_parse_limit_table),
                cmocka_unit_test(test_parse_limit_kernel_files),
                cmocka_unit_test(test_parse_memory_events_kernel_files),
                cmocka_unit_test(test_parse_memory_events_table),
                cmocka_unit_test(test_parse_memory_stat_kernel_file),
                cmocka_unit_test(test_parse_memory_stat_table),
                cmocka_unit_test(test_parse_memory_stat_very_long_lines),
                cmocka_unit_test(test_parse_pressure_kernel_files),
                cmocka_unit_test(test_parse_pressure_table),
                cmocka_unit_test(test_parse_size_table),
                cmocka_unit_test(test_parse_size_or_share_table),
                cmocka_unit_test(test_parse_duration_table),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * The compact sample ring: every kept field round-trips exactly (extremes included), the
 * capacity and the byte budget drop the oldest first, a resize keeps the newest, and the
 * recorded traces of real services fit the budget at full capacity.
 */
#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "memgov/macro.h"
#include "memgov/sample-ring.h"
#include "memgov/trace.h"

static void assert_same(const struct sample *got, const struct sample *want)
{
        assert_true(got->t_usec == want->t_usec);
        assert_true(got->current_bytes == want->current_bytes);
        assert_true(got->anon_bytes == want->anon_bytes);
        assert_true(got->file_bytes == want->file_bytes);
        assert_true(got->max_bytes == want->max_bytes);
        assert_true(got->high_bytes == want->high_bytes);
        assert_true(got->limit_bytes == want->limit_bytes);
        assert_memory_equal(&got->events, &want->events, sizeof(got->events));
        assert_true(got->pressure.some.total_usec == want->pressure.some.total_usec);
        assert_true(got->pressure.full.total_usec == want->pressure.full.total_usec);
        assert_int_equal(got->has, want->has & SAMPLE_RING_HAS);
}

static uint64_t lcg(uint64_t *x)
{
        *x = *x * 6364136223846793005u + 1442695040888963407u;
        return *x ^ (*x >> 29);
}

/* Sample k of a made-up series: a leak with noise, limits that change, extremes. */
static struct sample made_up(uint64_t k, uint64_t *rnd)
{
        struct sample s = {
                .t_usec = 1000000 * k + lcg(rnd) % 20000,
                .current_bytes = (100u << 20) + k * 65536 + lcg(rnd) % (8u << 20),
                .anon_bytes = (60u << 20) + k * 65536,
                .file_bytes = lcg(rnd) % (40u << 20),
                .max_bytes = k < 20 ? CGROUP_LIMIT_MAX : 512u << 20,
                .high_bytes = k % 7 == 0 ? 0 : UINT64_MAX - k,
                .limit_bytes = k < 20 ? 16ull << 30 : 512u << 20,
                .events = {.high = k * k, .max = k / 3, .oom_kill = k > 40, .low = UINT64_MAX},
                .pressure = {.some = {.total_usec = k * 1000, .avg10_pct = 5},
                             .full = {.total_usec = k % 2 ? UINT64_MAX : 0}},
                .has = (unsigned)(k % 3 ? SAMPLE_RING_HAS | SAMPLE_HAS_STAT | SAMPLE_HAS_SWAP
                                        : SAMPLE_HAS_HIGH),
        };
        s.stat.anon = 77; /* not kept */
        return s;
}

static void test_round_trip(void **state)
{
        (void)state;
        struct sample_ring r;
        struct sample in[60];
        uint64_t rnd = 1;

        assert_int_equal(sample_ring_init(&r, 100), 0);
        _cleanup_free_ struct sample *out = NULL;
        size_t n;
        assert_int_equal(sample_ring_copy(&r, &out, &n), 0);
        assert_int_equal(n, 0);
        assert_null(out);

        for (uint64_t k = 0; k < ELEMENTSOF(in); k++) {
                in[k] = made_up(k, &rnd);
                sample_ring_push(&r, &in[k]);
        }
        assert_int_equal(sample_ring_copy(&r, &out, &n), 0);
        assert_int_equal(n, ELEMENTSOF(in));
        for (size_t k = 0; k < n; k++) {
                assert_same(&out[k], &in[k]);
                assert_int_equal(out[k].stat.anon, 0);
                assert_true(out[k].pressure.some.avg10_pct == 0);
        }
        sample_ring_done(&r);
}

static void test_capacity_drops_oldest(void **state)
{
        (void)state;
        struct sample_ring r;

        assert_int_equal(sample_ring_init(&r, 10), 0);
        for (uint64_t k = 1; k <= 25; k++) {
                struct sample s = {.t_usec = k, .current_bytes = k * 4096};
                sample_ring_push(&r, &s);
                assert_int_equal(r.len, MIN(k, 10));
        }
        _cleanup_free_ struct sample *out = NULL;
        size_t n;
        assert_int_equal(sample_ring_copy(&r, &out, &n), 0);
        assert_int_equal(n, 10);
        for (size_t k = 0; k < n; k++) {
                assert_int_equal(out[k].t_usec, 16 + k);
                assert_int_equal(out[k].current_bytes, (16 + k) * 4096);
        }
        sample_ring_done(&r);
}

static void test_budget_drops_oldest(void **state)
{
        (void)state;
        struct sample_ring r;
        struct sample in[400];
        uint64_t rnd = 7;

        /* Every field a new random 64-bit value: records of about 150 bytes, not 24. */
        assert_int_equal(sample_ring_init(&r, 300), 0);
        for (size_t k = 0; k < ELEMENTSOF(in); k++) {
                in[k] = (struct sample){
                        .t_usec = lcg(&rnd),
                        .current_bytes = lcg(&rnd),
                        .anon_bytes = lcg(&rnd),
                        .file_bytes = lcg(&rnd),
                        .max_bytes = lcg(&rnd),
                        .high_bytes = lcg(&rnd),
                        .limit_bytes = lcg(&rnd),
                        .events = {lcg(&rnd), lcg(&rnd), lcg(&rnd), lcg(&rnd), lcg(&rnd),
                                   lcg(&rnd)},
                        .pressure = {.some.total_usec = lcg(&rnd), .full.total_usec = lcg(&rnd)},
                        .has = (unsigned)lcg(&rnd),
                };
                sample_ring_push(&r, &in[k]);
                assert_true(r.used <= r.size);
        }
        assert_true(r.len >= 2);
        assert_true(r.len < 300 * SAMPLE_RING_BYTES_PER_SAMPLE / 100);

        _cleanup_free_ struct sample *out = NULL;
        size_t n;
        assert_int_equal(sample_ring_copy(&r, &out, &n), 0);
        assert_int_equal(n, r.len);
        for (size_t k = 0; k < n; k++)
                assert_same(&out[k], &in[ELEMENTSOF(in) - n + k]);

        /* Quiet samples again: the ring fills back up to its capacity. */
        for (uint64_t k = 0; k < 300; k++) {
                struct sample s = {.t_usec = k * 1000000, .current_bytes = 1u << 30};
                sample_ring_push(&r, &s);
        }
        assert_int_equal(r.len, 300);
        sample_ring_done(&r);
}

static void test_resize_keeps_newest(void **state)
{
        (void)state;
        struct sample_ring r;
        struct sample in[50];
        uint64_t rnd = 3;

        assert_int_equal(sample_ring_init(&r, 50), 0);
        for (uint64_t k = 0; k < ELEMENTSOF(in); k++) {
                in[k] = made_up(k, &rnd);
                sample_ring_push(&r, &in[k]);
        }
        assert_int_equal(sample_ring_resize(&r, 200), 0);
        assert_int_equal(r.cap, 200);
        assert_int_equal(r.len, 50);
        assert_int_equal(sample_ring_resize(&r, 20), 0);
        assert_int_equal(r.len, 20);

        _cleanup_free_ struct sample *out = NULL;
        size_t n;
        assert_int_equal(sample_ring_copy(&r, &out, &n), 0);
        assert_int_equal(n, 20);
        for (size_t k = 0; k < n; k++)
                assert_same(&out[k], &in[30 + k]);
        sample_ring_done(&r);
}

/*
 * The recorded traces (tests/traces/real: leaks, bursts, caches, GC sawtooth of a real Go
 * service in a real cgroup): every sample is held at full capacity and round-trips.
 */
static void test_real_traces_fit_the_budget(void **state)
{
        (void)state;
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/tests/traces/real", MEMGOV_SOURCE_DIR);
        DIR *d = opendir(dir);
        assert_non_null(d);
        unsigned n_traces = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);
                if (len < 5 || strcmp(de->d_name + len - 4, ".csv") != 0)
                        continue;
                char path[PATH_MAX + 256];
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                _cleanup_(trace_freep) struct trace *t = NULL;
                assert_int_equal(trace_load_file(path, NULL, &t), 0);

                struct sample_ring r;
                assert_int_equal(sample_ring_init(&r, t->n_samples), 0);
                for (size_t k = 0; k < t->n_samples; k++) {
                        t->samples[k].limit_bytes = t->samples[k].max_bytes;
                        sample_ring_push(&r, &t->samples[k]);
                }
                print_message("%-24s %5zu samples, %6.1f bytes per sample\n", de->d_name,
                              t->n_samples, (double)r.used / (double)MAX(r.len - 1, (size_t)1));
                assert_int_equal(r.len, t->n_samples);
                _cleanup_free_ struct sample *out = NULL;
                size_t n;
                assert_int_equal(sample_ring_copy(&r, &out, &n), 0);
                for (size_t k = 0; k < n; k++)
                        assert_same(&out[k], &t->samples[k]);
                sample_ring_done(&r);
                n_traces++;
        }
        closedir(d);
        assert_true(n_traces >= 5);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_capacity_drops_oldest),
                cmocka_unit_test(test_budget_drops_oldest),
                cmocka_unit_test(test_resize_keeps_newest),
                cmocka_unit_test(test_real_traces_fit_the_budget),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

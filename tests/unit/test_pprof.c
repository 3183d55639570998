/* SPDX-License-Identifier: MIT */
/*
 * Capture stage, analysis: the text-profile parsers on real profiles of the leaky example
 * service (tests/fixtures/pprof, captured from its /debug/pprof 2 s apart), tables of
 * hostile input, and the suspect ranking that must name the leaking function.
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
#include <json-c/json.h>

#include "memgov/macro.h"
#include "memgov/pprof.h"

static char *read_fixture(const char *name, size_t *ret_len)
{
        char path[4096];
        FILE *f;
        char *buf;
        long n;

        snprintf(path, sizeof(path), "%s/tests/fixtures/pprof/%s", MEMGOV_SOURCE_DIR, name);
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
        *ret_len = (size_t)n;
        return buf;
}

static struct pprof_profile *parse_fixture(const char *name)
{
        struct pprof_profile *p = NULL;
        size_t len;
        _cleanup_free_ char *buf = read_fixture(name, &len);

        assert_int_equal(pprof_parse(buf, len, &p), 0);
        assert_non_null(p);
        return p;
}

static struct pprof_profile *parse_string(const char *s)
{
        struct pprof_profile *p = NULL;

        assert_int_equal(pprof_parse(s, strlen(s), &p), 0);
        return p;
}

/* The stack whose site is function, or NULL. */
static const struct pprof_stack *find_site(const struct pprof_profile *p, const char *function)
{
        for (size_t i = 0; i < p->n_stacks; i++) {
                const struct pprof_frame *f = pprof_stack_site(&p->stacks[i]);
                if (f && strcmp(f->function, function) == 0)
                        return &p->stacks[i];
        }
        return NULL;
}

static void test_pprof_parse_goroutine_fixture(void **state _unused_)
{
        _cleanup_(pprof_profile_freep) struct pprof_profile *p =
                parse_fixture("leaky-goroutine-current.txt");
        const struct pprof_stack *s;
        const struct pprof_frame *site;

        assert_int_equal(p->kind, PPROF_TEXT_GOROUTINE);
        assert_int_equal(p->header_total, 73);
        assert_int_equal(p->total_count, 73);
        assert_int_equal(p->n_dropped_stacks, 0);

        s = find_site(p, "main.stuckWorker");
        assert_non_null(s);
        assert_int_equal(s->count, 66);
        site = pprof_stack_site(s);
        assert_string_equal(site->file, "memgov.example/leaky/leak.go");
        assert_int_equal(site->line, 101);
        assert_int_equal(site->pc, 0x6904c4);

        /* The server goroutine's site is the first user frame, under net/http's frames. */
        s = find_site(p, "main.run.func6");
        assert_non_null(s);
        assert_string_equal(s->frames[0].function, "internal/poll.runtime_pollWait");
}

static void test_pprof_parse_heap_fixture(void **state _unused_)
{
        _cleanup_(pprof_profile_freep) struct pprof_profile *p =
                parse_fixture("leaky-heap-current.txt");
        const struct pprof_stack *s;

        assert_int_equal(p->kind, PPROF_TEXT_HEAP);
        assert_int_equal(p->header_total, 38);
        assert_int_equal(p->header_bytes, 18874880);
        assert_int_equal(p->sampling_bytes, 524288);

        /*
         * 36 objects of 512 KiB seen at a 512 KiB rate: each was sampled with probability
         * 1 - 1/e, so the estimate is the raw sum times 1.58, as `go tool pprof` shows it.
         */
        s = find_site(p, "main.leakIntoGlobalMap");
        assert_non_null(s);
        assert_true(s->bytes > 18874368 / 100 * 157);
        assert_true(s->bytes < 18874368 / 100 * 159);
        assert_int_equal(s->count, 57);
        assert_int_equal(s->n_frames, 3);
        assert_string_equal(s->frames[1].function, "main.(*Leaker).step");

        assert_true(p->memstats.has);
        assert_int_equal(p->memstats.heap_alloc, 27969264);
        assert_int_equal(p->memstats.heap_inuse, 28647424);
        assert_int_equal(p->memstats.sys, 44152072);
        assert_int_equal(p->memstats.stack_inuse, 458752);
        assert_int_equal(p->memstats.stack_sys, 458752);
        assert_int_equal(p->memstats.num_gc, 5);
        assert_int_equal(p->memstats.next_gc, 56205528);
}

/* A small heap record is an estimate of many: 1 KiB seen at a 512 KiB rate is ~512 KiB. */
static void test_pprof_parse_heap_scales_small_records(void **state _unused_)
{
        _cleanup_(pprof_profile_freep) struct pprof_profile *p =
                parse_string("heap profile: 1: 1024 [2: 2048] @ heap/1048576\n"
                             "1: 1024 [2: 2048] @ 0x1\n"
                             "#\t0x1\tmain.f+0x1\t/src/main.go:3\n");

        assert_int_equal(p->n_stacks, 1);
        assert_true(p->stacks[0].bytes > 500 * 1024 && p->stacks[0].bytes < 530 * 1024);
        assert_true(p->stacks[0].count >= 500 && p->stacks[0].count <= 530);
        assert_true(p->stacks[0].alloc_bytes > 1000 * 1024);
        assert_false(p->memstats.has);
}

/* Records with other PCs but the same frames (another call of the same line) are one stack. */
static void test_pprof_parse_aggregates_by_symbolic_stack(void **state _unused_)
{
        _cleanup_(pprof_profile_freep) struct pprof_profile *p =
                parse_string("goroutine profile: total 5\n"
                             "2 @ 0x10 0x20\n"
                             "# labels: {\"req\":\"a\"}\n"
                             "#\t0x10\tmain.wait+0x4\t\t/src/main.go:10\n"
                             "#\t0x20\tmain.main+0x8\t\t/src/main.go:20\n"
                             "\n"
                             "3 @ 0x11 0x21\r\n"
                             "#\t0x11\tmain.wait+0x5\t/src/main.go:10\r\n"
                             "#\t0x21\tmain.main+0x9\t/src/main.go:20\r\n");

        assert_int_equal(p->n_stacks, 1);
        assert_int_equal(p->stacks[0].count, 5);
        assert_int_equal(p->total_count, 5);
        assert_string_equal(p->stacks[0].frames[0].function, "main.wait");
        assert_int_equal(p->stacks[0].frames[1].line, 20);
}

/* A goroutine whose only frame is hidden (runtime.goexit): a site of its own. */
static void test_pprof_parse_record_without_frames(void **state _unused_)
{
        _cleanup_(pprof_profile_freep) struct pprof_profile *p =
                parse_string("goroutine profile: total 3\n"
                             "2 @ 0x46a7c1\n"
                             "\n"
                             "1 @ 0x10\n"
                             "#\t0x10\truntime.gopark+0x1\truntime/proc.go:1\n"
                             "\n");
        _cleanup_(suspect_list_freep) struct suspect_list *l = NULL;

        assert_int_equal(p->n_stacks, 2);
        assert_int_equal(p->stacks[0].n_frames, 0);
        assert_null(pprof_stack_site(&p->stacks[0]));
        /* Only runtime frames: the site is the first frame. */
        assert_string_equal(pprof_stack_site(&p->stacks[1])->function, "runtime.gopark");

        assert_int_equal(pprof_rank(NULL, p, 0, &l), 0);
        assert_int_equal(l->n_items, 2);
        assert_string_equal(l->items[0].function, "(no frames)");
        assert_string_equal(l->items[0].file, "");
        assert_int_equal(l->items[0].current, 2);
        assert_int_equal(l->items[0].n_stack, 0);
}

/* A pc without a symbol, and names that hold spaces, colons and "+0x" inside. */
static void test_pprof_parse_odd_frames(void **state _unused_)
{
        _cleanup_(pprof_profile_freep) struct pprof_profile *p =
                parse_string("goroutine profile: total 1\n"
                             "1 @ 0x10 0x20 0x30\n"
                             "#\t0x10\n"
                             "#\t0x20\tmain.(*T[...]).M+0x0\tC:/Program Files/x: y/a.go:7\n"
                             "#\t0x30\tpkg.fn+0xzz+0x1f\t/a.go:8\n");
        const struct pprof_frame *f = p->stacks[0].frames;

        assert_int_equal(p->stacks[0].n_frames, 3);
        assert_string_equal(f[0].function, "");
        assert_int_equal(f[0].pc, 0x10);
        assert_string_equal(f[1].function, "main.(*T[...]).M");
        assert_string_equal(f[1].file, "C:/Program Files/x: y/a.go");
        assert_int_equal(f[1].line, 7);
        assert_string_equal(f[2].function, "pkg.fn+0xzz");
        /* The site is the first user frame: the unsymbolized pc is not user code. */
        assert_ptr_equal(pprof_stack_site(&p->stacks[0]), &f[1]);
}

static void test_pprof_parse_hostile(void **state _unused_)
{
        static const struct {
                const char *input;
                int expect;
        } table[] = {
                {"", -EINVAL},
                {"\n", -EINVAL},
                {"garbage\n", -EINVAL},
                {"goroutine profile: total\n", -EINVAL},
                {"goroutine profile: total -1\n", -EINVAL},
                {"goroutine profile: total 1 x\n", -EINVAL},
                {"goroutine profile: total 99999999999999999999\n", -EINVAL},
                {"heap profile: 1: 2 [3: 4] @ heap/x\n", -EINVAL},
                {"heap profile: 1: 2 [3 4] @ heap/2\n", -EINVAL},
                {"heap profile: 1: 2 [3: 4 @ heap/2\n", -EINVAL},
                {"heap profile: 1: 2 [3: 4] heap/2\n", -EINVAL},
                /* a frame before any record */
                {"goroutine profile: total 1\n#\t0x1\tmain.f+0x1\t/a.go:1\n", -EINVAL},
                {"goroutine profile: total 1\n1 @\n#\t0x1\tmain.f+0x1\t/a.go:1\n\n"
                 "#\t0x1\tmain.f+0x1\t/a.go:1\n",
                 -EINVAL},
                /* bad addresses and frames */
                {"goroutine profile: total 1\n1 @ 0xg\n", -EINVAL},
                {"goroutine profile: total 1\n1 @ 12\n", -EINVAL},
                {"goroutine profile: total 1\n1 0x1\n", -EINVAL},
                {"goroutine profile: total 1\n1 @ 0x11111111111111111\n", -EINVAL},
                {"goroutine profile: total 1\n1 @ 0x1\n#\tzz\n", -EINVAL},
                {"goroutine profile: total 1\n1 @ 0x1\n#\t0x1 main.f\n", -EINVAL},
                {"goroutine profile: total 1\n1 @ 0x1\n#\t0x1\tmain.f+0x1\n", -EINVAL},
                {"goroutine profile: total 1\n1 @ 0x1\n#\t0x1\tmain.f+0x1\t\n", -EINVAL},
                {"goroutine profile: total 1\n1 @ 0x1\n#\t0x1\tmain.f+0x1\t/a.go\n", -EINVAL},
                {"goroutine profile: total 1\n1 @ 0x1\n#\t0x1\tmain.f+0x1\t/a.go:\n", -EINVAL},
                {"goroutine profile: total 1\n1 @ 0x1\n#\t0x1\tmain.f+0x1\t/a.go:x1\n", -EINVAL},
                {"goroutine profile: total 1\n1 @ 0x1\n#\t0x1\tmain.f+0x1\t:1\n", -EINVAL},
                {"goroutine profile: total 1\n1 @ 0x1\n#\t0x1\tmain.f+0x1\t/a.go:4294967296\n",
                 -EINVAL},
                {"goroutine profile: total 1\n1 @ 0x1\n#\t0x1\t+0x1\t/a.go:1\n", -EINVAL},
                {"goroutine profile: total 1\n1 @ 0x1\n#\t0x1\t\t\t/a.go:1\n", -EINVAL},
                /* labels after frames, a heap record in a goroutine profile, stray text */
                {"goroutine profile: total 1\n1 @ 0x1\n#\t0x1\tmain.f+0x1\t/a.go:1\n"
                 "# labels: {}\n",
                 -EINVAL},
                {"goroutine profile: total 1\n1: 2 [3: 4] @ 0x1\n", -EINVAL},
                {"goroutine profile: total 1\n# runtime.MemStats\n", -EINVAL},
                {"goroutine profile: total 1\n1 @ 0x1\n  #\t0x1\tmain.f+0x1\t/a.go:1\n", -EINVAL},
                {"heap profile: 1: 2 [3: 4] @ heap/2\n1 @ 0x1\n", -EINVAL},
                {"heap profile: 1: 2 [3: 4] @ heap/2\n1: 2 [3: 99999999999999999999] @ 0x1\n",
                 -EINVAL},
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                struct pprof_profile *p = NULL;
                int r = pprof_parse(table[i].input, strlen(table[i].input), &p);

                if (r != table[i].expect) {
                        print_error("row %zu (\"%s\"): got %d, expected %d\n", i, table[i].input, r,
                                    table[i].expect);
                        fail();
                }
                assert_null(p);
        }
}

/* A NUL inside, a line or a name over its cap, an input over its cap. */
static void test_pprof_parse_caps(void **state _unused_)
{
        static const char nul[] = "goroutine profile: total 1\n1 @ 0x1\0\n";
        struct pprof_profile *p = NULL;
        char *big;
        size_t n;

        assert_int_equal(pprof_parse(nul, sizeof(nul) - 1, &p), -EINVAL);

        /* A line of PPROF_LINE_MAX + 1 characters. */
        n = PPROF_LINE_MAX + 64;
        big = malloc(n + 1);
        assert_non_null(big);
        n = (size_t)snprintf(big, n, "goroutine profile: total 1\n1 @");
        while (n < PPROF_LINE_MAX + 40)
                n += (size_t)snprintf(big + n, 8, " 0x1");
        assert_int_equal(pprof_parse(big, n, &p), -EINVAL);
        free(big);

        /* A function name of PPROF_NAME_MAX + 1 characters. */
        big = malloc(PPROF_NAME_MAX + 256);
        assert_non_null(big);
        n = (size_t)snprintf(big, 64, "goroutine profile: total 1\n1 @ 0x1\n#\t0x1\tm");
        memset(big + n, 'a', PPROF_NAME_MAX);
        n += PPROF_NAME_MAX;
        n += (size_t)snprintf(big + n, 64, "+0x1\t/a.go:1\n");
        assert_int_equal(pprof_parse(big, n, &p), -EINVAL);
        free(big);

        big = malloc(PPROF_INPUT_MAX + 1);
        assert_non_null(big);
        memset(big, '\n', PPROF_INPUT_MAX + 1);
        assert_int_equal(pprof_parse(big, PPROF_INPUT_MAX + 1, &p), -EFBIG);
        free(big);
        assert_null(p);
}

/* Deep stacks keep PPROF_FRAMES_MAX frames; stacks past PPROF_STACKS_MAX are counted. */
static void test_pprof_parse_bounds_frames_and_stacks(void **state _unused_)
{
        size_t cap = (PPROF_STACKS_MAX + 10) * 64 + 100 * 64 + 64, n;
        _cleanup_free_ char *buf = malloc(cap);
        _cleanup_(pprof_profile_freep) struct pprof_profile *p = NULL;

        assert_non_null(buf);
        n = (size_t)snprintf(buf, cap, "goroutine profile: total 1\n1 @ 0x1\n");
        for (int i = 0; i < 100; i++)
                n += (size_t)snprintf(buf + n, cap - n, "#\t0x1\tmain.f%d+0x1\t/a.go:%d\n", i, i);
        for (size_t i = 0; i < PPROF_STACKS_MAX + 10; i++)
                n += (size_t)snprintf(buf + n, cap - n,
                                      "\n2 @ 0x1\n#\t0x1\tmain.g+0x1\t/b.go:%zu\n", i + 1);
        assert_true(n < cap);

        assert_int_equal(pprof_parse(buf, n, &p), 0);
        assert_int_equal(p->n_stacks, PPROF_STACKS_MAX);
        assert_int_equal(p->stacks[0].n_frames, PPROF_FRAMES_MAX);
        assert_true(p->stacks[0].truncated);
        assert_string_equal(p->stacks[0].frames[PPROF_FRAMES_MAX - 1].function, "main.f63");
        assert_int_equal(p->n_dropped_stacks, 11);
        assert_int_equal(p->dropped_count, 22);
        assert_int_equal(p->total_count, 1 + 2 * (PPROF_STACKS_MAX + 10));
}

/* Mutations of a real profile: each either parses or is refused; none crashes. */
static void test_pprof_parse_mutations(void **state _unused_)
{
        size_t len;
        _cleanup_free_ char *orig = read_fixture("leaky-heap-current.txt", &len);
        _cleanup_free_ char *buf = malloc(len);
        uint64_t seed = 42;
        size_t ok = 0, refused = 0;

        assert_non_null(buf);
        for (int round = 0; round < 3000; round++) {
                struct pprof_profile *p = NULL;
                size_t n = len;
                int r;

                memcpy(buf, orig, len);
                for (int k = 0; k < 1 + round % 4; k++) {
                        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                        size_t at = (size_t)(seed >> 33) % len;
                        static const char alphabet[] = "\n\t #:@[]+0x9azZ.\r/";
                        buf[at] = alphabet[(seed >> 20) % (sizeof(alphabet) - 1)];
                        if (round % 7 == 0)
                                n = at;
                }
                r = pprof_parse(buf, n, &p);
                assert_true(r == 0 || r == -EINVAL);
                if (r == 0) {
                        struct suspect_list *l = NULL;
                        assert_int_equal(pprof_rank(NULL, p, 0, &l), 0);
                        suspect_list_free(l);
                        ok++;
                } else
                        refused++;
                pprof_profile_free(p);
        }
        assert_true(ok > 0 && refused > 0);
}

static void test_pprof_function_is_user(void **state _unused_)
{
        static const struct {
                const char *function;
                bool user;
        } table[] = {
                {"main.leakIntoGlobalMap", true},
                {"main.(*Leaker).Run", true},
                {"main.run.func6", true},
                {"github.com/acme/shop/cart.(*Cart).Add", true},
                {"memgov.example/leaky/store.Put", true},
                {"leaky/store.Put", true},
                {"gopkg.in/yaml%2ev3.unmarshal", true},
                {"runtime.gopark", false},
                {"runtime/pprof.writeGoroutine", false},
                {"internal/poll.(*FD).Accept", false},
                {"net/http.(*conn).serve", false},
                {"net.(*netFD).accept", false},
                {"os/signal.signal_recv", false},
                {"sync.(*WaitGroup).Wait", false},
                {"encoding/json.Marshal", false},
                {"vendor/golang.org/x/net/http2/hpack.(*Decoder).Write", false},
                {"type..eq.main.T", false},
                {"go.buildid", false},
                {"reflect.Value.Call", false},
                {"main", true},
                {"", false},
                {".x", false},
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (pprof_function_is_user(table[i].function) != table[i].user) {
                        print_error("row %zu (%s): expected %s\n", i, table[i].function,
                                    table[i].user ? "user code" : "standard library");
                        fail();
                }
}

static void test_pprof_rank_heap_pair_names_the_leak(void **state _unused_)
{
        _cleanup_(pprof_profile_freep) struct pprof_profile *base =
                parse_fixture("leaky-heap-base.txt");
        _cleanup_(pprof_profile_freep) struct pprof_profile *cur =
                parse_fixture("leaky-heap-current.txt");
        _cleanup_(suspect_list_freep) struct suspect_list *l = NULL;
        _cleanup_free_ char *line = NULL;

        assert_int_equal(pprof_rank(base, cur, 5, &l), 0);
        assert_true(l->paired);
        assert_int_equal(l->kind, SUSPECT_HEAP);
        assert_true(l->n_items >= 1 && l->n_items <= 5);
        assert_string_equal(l->items[0].function, "main.leakIntoGlobalMap");
        assert_string_equal(l->items[0].file, "memgov.example/leaky/leak.go");
        assert_int_equal(l->items[0].line, 76);
        /* 25 more 512 KiB buffers seen, 12.5 MiB raw: an estimated 19.8 MiB. */
        assert_true(l->items[0].growth > 19 * 1024 * 1024);
        assert_true(l->items[0].growth < 21 * 1024 * 1024);
        assert_int_equal((uint64_t)l->items[0].growth, l->items[0].current - l->items[0].base);
        assert_true(l->items[0].n_stack >= 2);
        assert_string_equal(l->items[0].stack[0],
                            "main.leakIntoGlobalMap memgov.example/leaky/leak.go:76");
        for (size_t i = 1; i < l->n_items; i++)
                assert_true(l->items[i].growth <= l->items[i - 1].growth && l->items[i].growth > 0);

        line = suspect_format(&l->items[0], true);
        assert_non_null(line);
        assert_non_null(strstr(line, "main.leakIntoGlobalMap (leak.go:76) +1"));
        assert_non_null(strstr(line, " MiB heap"));
}

static void test_pprof_rank_goroutine_pair_names_the_leak(void **state _unused_)
{
        _cleanup_(pprof_profile_freep) struct pprof_profile *base =
                parse_fixture("leaky-goroutine-base.txt");
        _cleanup_(pprof_profile_freep) struct pprof_profile *cur =
                parse_fixture("leaky-goroutine-current.txt");
        _cleanup_(suspect_list_freep) struct suspect_list *l = NULL;
        _cleanup_free_ char *line = NULL;

        assert_int_equal(pprof_rank(base, cur, 0, &l), 0);
        assert_int_equal(l->kind, SUSPECT_GOROUTINE);
        /* Only the stuck workers grew; the other goroutines are the same in both. */
        assert_int_equal(l->n_items, 1);
        assert_string_equal(l->items[0].function, "main.stuckWorker");
        assert_int_equal(l->items[0].base, 22);
        assert_int_equal(l->items[0].current, 66);
        assert_int_equal(l->items[0].growth, 44);
        assert_int_equal(l->base_total, 29);
        assert_int_equal(l->current_total, 73);

        line = suspect_format(&l->items[0], true);
        assert_string_equal(line, "main.stuckWorker (leak.go:101) +44 goroutines");
}

/* Without a base: the goroutine clusters by first user frame, biggest first. */
static void test_pprof_rank_clusters_without_base(void **state _unused_)
{
        _cleanup_(pprof_profile_freep) struct pprof_profile *cur =
                parse_fixture("leaky-goroutine-current.txt");
        _cleanup_(suspect_list_freep) struct suspect_list *l = NULL;
        uint64_t sum = 0;
        bool server = false;

        assert_int_equal(pprof_rank(NULL, cur, 100, &l), 0);
        assert_false(l->paired);
        assert_string_equal(l->items[0].function, "main.stuckWorker");
        assert_int_equal(l->items[0].current, 66);
        assert_int_equal(l->items[0].growth, 66);
        for (size_t i = 0; i < l->n_items; i++) {
                sum += l->items[i].current;
                if (strcmp(l->items[i].function, "main.run.func6") == 0)
                        server = true;
                if (i > 0)
                        assert_true(l->items[i].current <= l->items[i - 1].current);
        }
        /* Every goroutine is in some cluster. */
        assert_int_equal(sum, 73);
        assert_true(server);
}

static void test_pprof_rank_refuses_mixed_kinds(void **state _unused_)
{
        _cleanup_(pprof_profile_freep) struct pprof_profile *heap =
                parse_fixture("leaky-heap-base.txt");
        _cleanup_(pprof_profile_freep) struct pprof_profile *gr =
                parse_fixture("leaky-goroutine-base.txt");
        struct suspect_list *l = NULL;

        assert_int_equal(pprof_rank(heap, gr, 0, &l), -EINVAL);
        assert_null(l);
}

static void test_pprof_summarize_json(void **state _unused_)
{
        _cleanup_(pprof_profile_freep) struct pprof_profile *hb =
                parse_fixture("leaky-heap-base.txt");
        _cleanup_(pprof_profile_freep) struct pprof_profile *hc =
                parse_fixture("leaky-heap-current.txt");
        _cleanup_(pprof_profile_freep) struct pprof_profile *gc =
                parse_fixture("leaky-goroutine-current.txt");
        _cleanup_(pprof_summary_freep) struct pprof_summary *s = NULL;
        struct pprof_summary_input in = {
                .base_dir = "/d/base",
                .current_dir = "/d/cur",
                .heap_base = hb,
                .heap_current = hc,
                .goroutine_current = gc,
        };
        struct json_object *o, *v, *first;

        assert_int_equal(pprof_summarize(&in, &s), 0);
        assert_non_null(s->heap_growth);
        assert_null(s->goroutine_growth);
        assert_non_null(s->goroutine_top);
        assert_true(s->n_ordered >= 1);
        assert_string_equal(s->ordered[0]->function, "main.leakIntoGlobalMap");

        o = json_tokener_parse(s->json);
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "suspects", &v));
        first = json_object_array_get_idx(v, 0);
        assert_non_null(strstr(json_object_get_string(first), "main.leakIntoGlobalMap"));
        assert_true(json_object_object_get_ex(o, "base", &v));
        assert_string_equal(json_object_get_string(v), "/d/base");
        assert_true(json_object_object_get_ex(o, "heap", &v));
        assert_true(json_object_object_get_ex(v, "growth", &v));
        first = json_object_array_get_idx(v, 0);
        assert_true(json_object_object_get_ex(first, "function", &v));
        assert_string_equal(json_object_get_string(v), "main.leakIntoGlobalMap");
        assert_true(json_object_object_get_ex(first, "line", &v));
        assert_int_equal(json_object_get_int(v), 76);
        assert_true(json_object_object_get_ex(o, "goroutine", &v));
        assert_true(json_object_object_get_ex(v, "growth", &first));
        assert_true(json_object_is_type(first, json_type_null));
        assert_true(json_object_object_get_ex(v, "clusters", &v));
        first = json_object_array_get_idx(v, 0);
        assert_true(json_object_object_get_ex(first, "function", &v));
        assert_string_equal(json_object_get_string(v), "main.stuckWorker");
        json_object_put(o);
}

/* In goroutine mode both lists exist; the goroutines tripled, so they are reported first. */
static void test_pprof_summarize_orders_by_relative_growth(void **state _unused_)
{
        _cleanup_(pprof_profile_freep) struct pprof_profile *hb =
                parse_fixture("leaky-heap-base.txt");
        _cleanup_(pprof_profile_freep) struct pprof_profile *hc =
                parse_fixture("leaky-heap-base.txt");
        _cleanup_(pprof_profile_freep) struct pprof_profile *gb =
                parse_fixture("leaky-goroutine-base.txt");
        _cleanup_(pprof_profile_freep) struct pprof_profile *gc =
                parse_fixture("leaky-goroutine-current.txt");
        _cleanup_(pprof_summary_freep) struct pprof_summary *s = NULL;
        struct pprof_summary_input in = {
                .heap_base = hb, .heap_current = hc, .goroutine_base = gb, .goroutine_current = gc};

        assert_int_equal(pprof_summarize(&in, &s), 0);
        /* The same heap twice: nothing grew, so no heap suspect. */
        assert_int_equal(s->heap_growth->n_items, 0);
        assert_int_equal(s->n_ordered, 1);
        assert_string_equal(s->ordered[0]->function, "main.stuckWorker");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pprof_parse_goroutine_fixture),
                cmocka_unit_test(test_pprof_parse_heap_fixture),
                cmocka_unit_test(test_pprof_parse_heap_scales_small_records),
                cmocka_unit_test(test_pprof_parse_aggregates_by_symbolic_stack),
                cmocka_unit_test(test_pprof_parse_record_without_frames),
                cmocka_unit_test(test_pprof_parse_odd_frames),
                cmocka_unit_test(test_pprof_parse_hostile),
                cmocka_unit_test(test_pprof_parse_caps),
                cmocka_unit_test(test_pprof_parse_bounds_frames_and_stacks),
                cmocka_unit_test(test_pprof_parse_mutations),
                cmocka_unit_test(test_pprof_function_is_user),
                cmocka_unit_test(test_pprof_rank_heap_pair_names_the_leak),
                cmocka_unit_test(test_pprof_rank_goroutine_pair_names_the_leak),
                cmocka_unit_test(test_pprof_rank_clusters_without_base),
                cmocka_unit_test(test_pprof_rank_refuses_mixed_kinds),
                cmocka_unit_test(test_pprof_summarize_json),
                cmocka_unit_test(test_pprof_summarize_orders_by_relative_growth),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}

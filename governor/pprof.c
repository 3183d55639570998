/* SPDX-License-Identifier: MIT */
/*
 * Capture stage, analysis: pure parsers for Go's text profiles (goroutine?debug=1,
 * heap?debug=1) and the leak-suspect ranking of a current profile against a base. The
 * input is untrusted (a service near its OOM, or anything on its port): every length and
 * count is capped and every malformed line refused; nothing here reads a file or a clock.
 *
 * The ranking and suspects.json live in governor/pprof-rank.c. This file is longer than
 * most (~750 lines) because the parser is one state machine over lines whose helpers each
 * enforce one of the caps; split, the bounds would be harder to audit.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "memgov/pprof.h"
#include "pprof-internal.h"

/* ---- interned strings --------------------------------------------------------------- */

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
        const unsigned char *s = p;

        for (size_t i = 0; i < n; i++) {
                h ^= s[i];
                h *= UINT64_C(1099511628211);
        }
        return h;
}

#define HASH_INIT UINT64_C(14695981039346656037)

/*
 * Function and file names repeat across thousands of stacks: each distinct one is stored
 * once, so that frames are three words and equal names are equal pointers.
 */
static int pool_intern(struct pprof_internal *in, const char *s, size_t n, const char **ret)
{
        uint64_t h = hash_bytes(HASH_INIT, s, n);
        size_t i;

        if (in->n_strings * 2 >= in->strings_cap) {
                size_t cap = in->strings_cap ? in->strings_cap * 2 : 256;
                char **t = calloc(cap, sizeof(*t));

                if (!t)
                        return -ENOMEM;
                for (size_t k = 0; k < in->strings_cap; k++) {
                        char *o = in->strings[k];
                        if (!o)
                                continue;
                        size_t j = hash_bytes(HASH_INIT, o, strlen(o)) & (cap - 1);
                        while (t[j])
                                j = (j + 1) & (cap - 1);
                        t[j] = o;
                }
                free(in->strings);
                in->strings = t;
                in->strings_cap = cap;
        }

        for (i = h & (in->strings_cap - 1); in->strings[i]; i = (i + 1) & (in->strings_cap - 1)) {
                if (strncmp(in->strings[i], s, n) == 0 && in->strings[i][n] == '\0') {
                        *ret = in->strings[i];
                        return 0;
                }
        }
        in->strings[i] = strndup(s, n);
        if (!in->strings[i])
                return -ENOMEM;
        in->n_strings++;
        *ret = in->strings[i];
        return 0;
}

/* ---- numbers and lines -------------------------------------------------------------- */

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static int hex_value(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* A decimal at *p (digits only); advances *p. -EINVAL for none or an overflow. */
static int eat_u64(const char **p, const char *end, uint64_t *ret)
{
        const char *s = *p;
        uint64_t v = 0;

        if (s >= end || !is_digit(*s))
                return -EINVAL;
        for (; s < end && is_digit(*s); s++) {
                uint64_t d = (uint64_t)(*s - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -EINVAL;
                v = v * 10 + d;
        }
        *p = s;
        *ret = v;
        return 0;
}

/* "0x" and hex digits at *p; advances *p. */
static int eat_hex(const char **p, const char *end, uint64_t *ret)
{
        const char *s = *p;
        uint64_t v = 0;

        if (end - s < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') || hex_value(s[2]) < 0)
                return -EINVAL;
        for (s += 2; s < end && hex_value(*s) >= 0; s++) {
                if (v >> 60)
                        return -EINVAL;
                v = v << 4 | (uint64_t)hex_value(*s);
        }
        *p = s;
        *ret = v;
        return 0;
}

static void eat_blanks(const char **p, const char *end)
{
        while (*p < end && (**p == ' ' || **p == '\t'))
                (*p)++;
}

static int eat_literal(const char **p, const char *end, const char *lit)
{
        size_t n = strlen(lit);

        if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
                return -EINVAL;
        *p += n;
        return 0;
}

static bool starts_with(const char *p, const char *end, const char *lit)
{
        size_t n = strlen(lit);

        return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* ---- stacks ------------------------------------------------------------------------- */

/* The record being read: its values and frames until the blank line that ends it. */
struct record {
        bool open;
        uint64_t count, bytes, alloc_objects, alloc_bytes;
        struct pprof_frame frames[PPROF_FRAMES_MAX];
        size_t n_frames;
        bool truncated;
};

static uint64_t stack_hash(const struct pprof_frame *f, size_t n)
{
        uint64_t h = HASH_INIT;

        for (size_t i = 0; i < n; i++) {
                h = hash_bytes(h, &f[i].function, sizeof(f[i].function));
                h = hash_bytes(h, &f[i].file, sizeof(f[i].file));
                h = hash_bytes(h, &f[i].line, sizeof(f[i].line));
        }
        return h;
}

/*
 * The frames of stack k, or NULL when it has none: in->frames stays NULL until some stack
 * has frames, and NULL + 0 is undefined behaviour.
 */
static const struct pprof_frame *stack_frames(const struct pprof_internal *in, size_t k)
{
        return in->stacks[k].n_frames > 0 ? in->frames + in->frame_off[k] : NULL;
}

static bool stack_equal(const struct pprof_internal *in, size_t k, const struct record *r)
{
        const struct pprof_stack *s = &in->stacks[k];
        const struct pprof_frame *f = stack_frames(in, k);

        if (s->n_frames != r->n_frames)
                return false;
        for (size_t i = 0; i < r->n_frames; i++)
                if (f[i].function != r->frames[i].function || f[i].file != r->frames[i].file ||
                    f[i].line != r->frames[i].line)
                        return false;
        return true;
}

static int stack_index_grow(struct pprof_internal *in)
{
        size_t cap = in->index_cap ? in->index_cap * 2 : 256;
        size_t *t = malloc(cap * sizeof(*t));

        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < cap; i++)
                t[i] = SIZE_MAX;
        for (size_t k = 0; k < in->n_stacks; k++) {
                const struct pprof_frame *f = stack_frames(in, k);
                size_t j = stack_hash(f, in->stacks[k].n_frames) & (cap - 1);
                while (t[j] != SIZE_MAX)
                        j = (j + 1) & (cap - 1);
                t[j] = k;
        }
        free(in->index);
        in->index = t;
        in->index_cap = cap;
        return 0;
}

static int grow_array(void **p, size_t *cap, size_t need, size_t elem)
{
        size_t n;
        void *t;

        if (need <= *cap)
                return 0;
        n = MAX(*cap * 2, MAX(need, (size_t)64));
        t = realloc(*p, n * elem);
        if (!t)
                return -ENOMEM;
        *p = t;
        *cap = n;
        return 0;
}

/* Add the finished record to its stack (same symbolic frames) or a new one. */
static int record_flush(struct pprof_profile *p, struct record *r)
{
        struct pprof_internal *in = p->internal;
        size_t j;
        int ret;

        if (!r->open)
                return 0;
        r->open = false;

        p->total_count = add_sat(p->total_count, r->count);
        p->total_bytes = add_sat(p->total_bytes, r->bytes);

        if (in->n_stacks * 2 >= in->index_cap) {
                ret = stack_index_grow(in);
                if (ret < 0)
                        return ret;
        }
        for (j = stack_hash(r->frames, r->n_frames) & (in->index_cap - 1); in->index[j] != SIZE_MAX;
             j = (j + 1) & (in->index_cap - 1)) {
                size_t k = in->index[j];
                if (stack_equal(in, k, r)) {
                        struct pprof_stack *s = &in->stacks[k];
                        s->count = add_sat(s->count, r->count);
                        s->bytes = add_sat(s->bytes, r->bytes);
                        s->alloc_objects = add_sat(s->alloc_objects, r->alloc_objects);
                        s->alloc_bytes = add_sat(s->alloc_bytes, r->alloc_bytes);
                        s->truncated |= r->truncated;
                        return 0;
                }
        }

        if (in->n_stacks >= PPROF_STACKS_MAX) {
                p->n_dropped_stacks++;
                p->dropped_count = add_sat(p->dropped_count, r->count);
                p->dropped_bytes = add_sat(p->dropped_bytes, r->bytes);
                return 0;
        }
        if (grow_array((void **)&in->stacks, &in->stacks_cap, in->n_stacks + 1,
                       sizeof(*in->stacks)) < 0 ||
            grow_array((void **)&in->frame_off, &in->frame_off_cap, in->n_stacks + 1,
                       sizeof(*in->frame_off)) < 0 ||
            grow_array((void **)&in->frames, &in->frames_cap, in->n_frames + r->n_frames,
                       sizeof(*in->frames)) < 0)
                return -ENOMEM;

        if (r->n_frames > 0) /* frames may still be NULL: memcpy wants a pointer */
                memcpy(in->frames + in->n_frames, r->frames, r->n_frames * sizeof(*r->frames));
        in->frame_off[in->n_stacks] = in->n_frames;
        in->n_frames += r->n_frames;
        in->stacks[in->n_stacks] = (struct pprof_stack){
                .count = r->count,
                .bytes = r->bytes,
                .alloc_objects = r->alloc_objects,
                .alloc_bytes = r->alloc_bytes,
                .n_frames = r->n_frames,
                .truncated = r->truncated,
        };
        in->index[j] = in->n_stacks++;
        return 0;
}

/*
 * "#\t0x466e4e\tos/signal.signal_recv+0x2e\truntime/sigqueue.go:152": pc, function with
 * its offset, file:line, separated by one or more tabs. A pc without a symbol is printed
 * alone ("#\t0x466e4e").
 */
static int parse_frame(struct pprof_internal *in, const char *p, const char *end,
                       struct pprof_frame *ret)
{
        struct pprof_frame f = {.function = "", .file = ""};
        const char *fn, *fn_end, *colon;
        uint64_t line;
        int r;

        p += 2; /* "#\t" */
        r = eat_hex(&p, end, &f.pc);
        if (r < 0)
                return r;
        if (p == end) {
                r = pool_intern(in, "", 0, &f.function);
                if (r < 0)
                        return r;
                f.file = f.function;
                *ret = f;
                return 0;
        }
        if (*p != '\t')
                return -EINVAL;
        while (p < end && *p == '\t')
                p++;

        fn = p;
        fn_end = memchr(p, '\t', (size_t)(end - p));
        if (!fn_end || fn_end == fn)
                return -EINVAL;
        /* Strip "+0xOFF", the offset from the function's entry. */
        for (const char *q = fn_end - 1; q >= fn + 2; q--) {
                if (hex_value(*q) >= 0)
                        continue;
                if (*q == 'x' && q[-1] == '0' && q[-2] == '+' && q < fn_end - 1) {
                        fn_end = q - 2;
                        break;
                }
                break;
        }
        if (fn_end == fn || (size_t)(fn_end - fn) > PPROF_NAME_MAX)
                return -EINVAL;

        p = fn_end;
        while (p < end && *p != '\t')
                p++; /* the "+0xOFF" */
        while (p < end && *p == '\t')
                p++;
        if (p == end)
                return -EINVAL;

        colon = NULL;
        for (const char *q = end - 1; q >= p; q--)
                if (*q == ':') {
                        colon = q;
                        break;
                }
        if (!colon || colon == p || (size_t)(colon - p) > PPROF_NAME_MAX)
                return -EINVAL;
        {
                const char *d = colon + 1;
                r = eat_u64(&d, end, &line);
                if (r < 0 || d != end || line > UINT32_MAX)
                        return -EINVAL;
        }
        f.line = (uint32_t)line;

        r = pool_intern(in, fn, (size_t)(fn_end - fn), &f.function);
        if (r < 0)
                return r;
        r = pool_intern(in, p, (size_t)(colon - p), &f.file);
        if (r < 0)
                return r;
        *ret = f;
        return 0;
}

/* " @ 0x… 0x…" after the values of a record: checked, not kept (frames are symbolic). */
static int parse_addresses(const char *p, const char *end)
{
        uint64_t pc;

        eat_blanks(&p, end);
        if (eat_literal(&p, end, "@") < 0)
                return -EINVAL;
        for (;;) {
                eat_blanks(&p, end);
                if (p == end)
                        return 0;
                if (eat_hex(&p, end, &pc) < 0)
                        return -EINVAL;
        }
}

/*
 * The estimate `go tool pprof` makes of a legacy heap record: a sample of average size s
 * at rate R was taken with probability 1 - e^(-s/R).
 */
static void heap_scale(uint64_t rate, uint64_t *count, uint64_t *bytes)
{
        double avg, scale, c, b;

        if (*count == 0 || *bytes == 0) {
                *count = *bytes = 0;
                return;
        }
        if (rate <= 1)
                return;
        avg = (double)*bytes / (double)*count;
        scale = 1.0 / (1.0 - exp(-avg / (double)rate));
        c = (double)*count * scale;
        b = (double)*bytes * scale;
        *count = c >= 1.8e19 ? UINT64_MAX : (uint64_t)(c + 0.5);
        *bytes = b >= 1.8e19 ? UINT64_MAX : (uint64_t)(b + 0.5);
}

/* "A: B [C: D]" of the heap header and records. */
static int parse_heap_values(const char **pp, const char *end, uint64_t v[4])
{
        const char *p = *pp;

        if (eat_u64(&p, end, &v[0]) < 0 || eat_literal(&p, end, ":") < 0)
                return -EINVAL;
        eat_blanks(&p, end);
        if (eat_u64(&p, end, &v[1]) < 0)
                return -EINVAL;
        eat_blanks(&p, end);
        if (eat_literal(&p, end, "[") < 0)
                return -EINVAL;
        eat_blanks(&p, end);
        if (eat_u64(&p, end, &v[2]) < 0 || eat_literal(&p, end, ":") < 0)
                return -EINVAL;
        eat_blanks(&p, end);
        if (eat_u64(&p, end, &v[3]) < 0)
                return -EINVAL;
        eat_blanks(&p, end);
        if (eat_literal(&p, end, "]") < 0)
                return -EINVAL;
        *pp = p;
        return 0;
}

static int parse_header(struct pprof_profile *p, const char *s, const char *end)
{
        uint64_t v[4];

        if (starts_with(s, end, "goroutine profile: total ")) {
                s += strlen("goroutine profile: total ");
                p->kind = PPROF_TEXT_GOROUTINE;
                if (eat_u64(&s, end, &p->header_total) < 0)
                        return -EINVAL;
                eat_blanks(&s, end);
                return s == end ? 0 : -EINVAL;
        }
        if (starts_with(s, end, "heap profile: ")) {
                s += strlen("heap profile: ");
                p->kind = PPROF_TEXT_HEAP;
                if (parse_heap_values(&s, end, v) < 0)
                        return -EINVAL;
                p->header_total = v[0];
                p->header_bytes = v[1];
                eat_blanks(&s, end);
                if (eat_literal(&s, end, "@") < 0)
                        return -EINVAL;
                eat_blanks(&s, end);
                if (eat_literal(&s, end, "heap") < 0)
                        return -EINVAL;
                if (s < end && *s == '/') {
                        uint64_t r;
                        s++;
                        if (eat_u64(&s, end, &r) < 0)
                                return -EINVAL;
                        /* Go prints 2 × MemProfileRate here; pprof halves it back. */
                        p->sampling_bytes = r / 2;
                }
                eat_blanks(&s, end);
                return s == end ? 0 : -EINVAL;
        }
        return -EINVAL;
}

/* "# Key = value" in the MemStats section; unknown keys and non-numbers are skipped. */
static void parse_memstat(struct pprof_memstats *m, const char *s, const char *end)
{
        static const struct {
                const char *key;
                size_t offset;
        } keys[] = {
                {"Alloc", offsetof(struct pprof_memstats, alloc)},
                {"TotalAlloc", offsetof(struct pprof_memstats, total_alloc)},
                {"Sys", offsetof(struct pprof_memstats, sys)},
                {"Mallocs", offsetof(struct pprof_memstats, mallocs)},
                {"Frees", offsetof(struct pprof_memstats, frees)},
                {"HeapAlloc", offsetof(struct pprof_memstats, heap_alloc)},
                {"HeapSys", offsetof(struct pprof_memstats, heap_sys)},
                {"HeapIdle", offsetof(struct pprof_memstats, heap_idle)},
                {"HeapInuse", offsetof(struct pprof_memstats, heap_inuse)},
                {"HeapReleased", offsetof(struct pprof_memstats, heap_released)},
                {"HeapObjects", offsetof(struct pprof_memstats, heap_objects)},
                {"Stack", offsetof(struct pprof_memstats, stack_inuse)},
                {"NextGC", offsetof(struct pprof_memstats, next_gc)},
                {"NumGC", offsetof(struct pprof_memstats, num_gc)},
        };
        const char *eq;
        uint64_t v;

        if (!starts_with(s, end, "# "))
                return;
        s += 2;
        eq = memchr(s, '=', (size_t)(end - s));
        if (!eq || eq == s || eq[-1] != ' ')
                return;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                size_t n = strlen(keys[i].key);
                const char *q = eq + 1;

                if ((size_t)(eq - 1 - s) != n || memcmp(s, keys[i].key, n) != 0)
                        continue;
                eat_blanks(&q, end);
                if (eat_u64(&q, end, &v) < 0)
                        return;
                *(uint64_t *)((char *)m + keys[i].offset) = v;
                /* "Stack = inuse / sys" */
                if (strcmp(keys[i].key, "Stack") == 0) {
                        eat_blanks(&q, end);
                        if (eat_literal(&q, end, "/") == 0) {
                                eat_blanks(&q, end);
                                if (eat_u64(&q, end, &v) == 0)
                                        m->stack_sys = v;
                        }
                }
                return;
        }
}

static int parse_record_line(struct pprof_profile *p, struct record *r, const char *s,
                             const char *end)
{
        uint64_t v[4];

        *r = (struct record){.open = true};
        if (p->kind == PPROF_TEXT_GOROUTINE) {
                if (eat_u64(&s, end, &r->count) < 0)
                        return -EINVAL;
        } else {
                if (parse_heap_values(&s, end, v) < 0)
                        return -EINVAL;
                heap_scale(p->sampling_bytes, &v[0], &v[1]);
                heap_scale(p->sampling_bytes, &v[2], &v[3]);
                r->count = v[0];
                r->bytes = v[1];
                r->alloc_objects = v[2];
                r->alloc_bytes = v[3];
        }
        return parse_addresses(s, end);
}

static void internal_free(struct pprof_internal *in)
{
        if (!in)
                return;
        for (size_t i = 0; i < in->strings_cap; i++)
                free(in->strings[i]);
        free(in->strings);
        free(in->stacks);
        free(in->frames);
        free(in->frame_off);
        free(in->index);
        free(in);
}

struct pprof_profile *pprof_profile_free(struct pprof_profile *p)
{
        if (!p)
                return NULL;
        internal_free(p->internal);
        free(p);
        return NULL;
}

static int parse_lines(struct pprof_profile *p, const char *buf, size_t len)
{
        struct pprof_internal *in = p->internal;
        _cleanup_free_ struct record *r = calloc(1, sizeof(*r));
        const char *end = buf + len;
        bool header = false, memstats = false;
        int ret;

        if (!r)
                return -ENOMEM;

        for (const char *s = buf; s < end;) {
                const char *nl = memchr(s, '\n', (size_t)(end - s));
                const char *e = nl ? nl : end;
                const char *next = nl ? nl + 1 : end;

                if ((size_t)(e - s) > PPROF_LINE_MAX)
                        return -EINVAL;
                if (e > s && e[-1] == '\r')
                        e--;

                if (!header) {
                        ret = parse_header(p, s, e);
                        if (ret < 0)
                                return ret;
                        header = true;
                } else if (memstats) {
                        parse_memstat(&p->memstats, s, e);
                } else if (s == e) {
                        ret = record_flush(p, r);
                        if (ret < 0)
                                return ret;
                } else if (starts_with(s, e, "#\t")) {
                        struct pprof_frame f;

                        if (!r->open)
                                return -EINVAL;
                        ret = parse_frame(in, s, e, &f);
                        if (ret < 0)
                                return ret;
                        if (r->n_frames < PPROF_FRAMES_MAX)
                                r->frames[r->n_frames++] = f;
                        else
                                r->truncated = true;
                } else if (starts_with(s, e, "# labels:")) {
                        if (!r->open || r->n_frames > 0)
                                return -EINVAL;
                } else if (p->kind == PPROF_TEXT_HEAP && starts_with(s, e, "# runtime.MemStats")) {
                        ret = record_flush(p, r);
                        if (ret < 0)
                                return ret;
                        memstats = true;
                        p->memstats.has = true;
                } else if (is_digit(*s)) {
                        ret = record_flush(p, r);
                        if (ret < 0)
                                return ret;
                        ret = parse_record_line(p, r, s, e);
                        if (ret < 0)
                                return ret;
                } else
                        return -EINVAL;
                s = next;
        }
        if (!header)
                return -EINVAL;
        return record_flush(p, r);
}

int pprof_parse(const char *buf, size_t len, struct pprof_profile **ret)
{
        _cleanup_(pprof_profile_freep) struct pprof_profile *p = NULL;
        struct pprof_internal *in;
        int r;

        if (!buf || !ret)
                return -EINVAL;
        if (len > PPROF_INPUT_MAX)
                return -EFBIG;
        if (memchr(buf, '\0', len))
                return -EINVAL;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->internal = in = calloc(1, sizeof(*in));
        if (!in)
                return -ENOMEM;

        r = parse_lines(p, buf, len);
        if (r < 0)
                return r;

        /* The frame storage no longer moves: point the stacks into it. */
        for (size_t k = 0; k < in->n_stacks; k++)
                in->stacks[k].frames =
                        in->stacks[k].n_frames ? in->frames + in->frame_off[k] : NULL;
        p->stacks = in->stacks;
        p->n_stacks = in->n_stacks;
        *ret = TAKE_PTR(p);
        return 0;
}

const char *pprof_text_kind_to_string(enum pprof_text_kind k)
{
        switch (k) {
        case PPROF_TEXT_GOROUTINE:
                return "goroutine";
        case PPROF_TEXT_HEAP:
                return "heap";
        default:
                return NULL;
        }
}

/*
 * The standard library's top-level directories (Go 1.19–1.22, plus "vendor" for its
 * vendored golang.org/x packages and "type"/"go" for compiler-generated symbols such as
 * type..eq.main.T and go.buildid). A first path element outside this list is user code.
 */
static const char *const std_roots[] = {
        "archive", "arena",   "bufio",    "builtin", "bytes",   "cmp",      "compress", "container",
        "context", "crypto",  "database", "debug",   "embed",   "encoding", "errors",   "expvar",
        "flag",    "fmt",     "go",       "hash",    "html",    "image",    "index",    "internal",
        "io",      "iter",    "log",      "maps",    "math",    "mime",     "net",      "os",
        "path",    "plugin",  "reflect",  "regexp",  "runtime", "slices",   "sort",     "strconv",
        "strings", "structs", "sync",     "syscall", "testing", "text",     "time",     "type",
        "unicode", "unique",  "unsafe",   "vendor",  "weak",    "cmd",
};

bool pprof_function_is_user(const char *function)
{
        size_t n, first, last_slash = SIZE_MAX, pkg_end;

        if (!function || !function[0])
                return false;
        /* Only the package part may hold '/': look before any receiver or type list. */
        n = strcspn(function, "([");
        for (size_t i = 0; i < n; i++)
                if (function[i] == '/')
                        last_slash = i;
        {
                const char *dot = memchr(function + (last_slash == SIZE_MAX ? 0 : last_slash), '.',
                                         n - (last_slash == SIZE_MAX ? 0 : last_slash));
                pkg_end = dot ? (size_t)(dot - function) : n;
        }
        first = strcspn(function, "/");
        if (first > pkg_end)
                first = pkg_end;
        if (first == 0)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(std_roots); i++)
                if (strlen(std_roots[i]) == first && memcmp(function, std_roots[i], first) == 0)
                        return false;
        return true;
}

const struct pprof_frame *pprof_stack_site(const struct pprof_stack *s)
{
        if (!s || s->n_frames == 0)
                return NULL;
        for (size_t i = 0; i < s->n_frames; i++)
                if (pprof_function_is_user(s->frames[i].function))
                        return &s->frames[i];
        return &s->frames[0];
}

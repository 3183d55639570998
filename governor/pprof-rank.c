/* SPDX-License-Identifier: MIT */
/*
 * Capture stage, analysis: leak suspects. The stacks of a parsed profile are grouped by
 * site (their first frame in user code), the base's values are subtracted, and the sites
 * that grew are ranked — the automated form of `go tool pprof -diff_base` and of the
 * classic goroutine clustering by hand. Pure: suspects.json is built here as a string and
 * written by the capture module.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "memgov/pprof.h"

/* Frames of the heaviest stack shown with each suspect. */
#define SUSPECT_STACK_MAX 16

struct site {
        const char *function, *file;
        uint32_t line;
        uint64_t current, base, objects;
        size_t n_stacks;
        const struct pprof_stack *heaviest;
        uint64_t heaviest_value;
};

struct site_table {
        struct site *sites;
        size_t n_sites;
        size_t *index; /* SIZE_MAX: empty */
        size_t cap;    /* of index, a power of two >= 2 × the number of stacks */
};

static uint64_t site_hash(const char *function, const char *file, uint32_t line)
{
        uint64_t h = UINT64_C(14695981039346656037);

        for (const char *s = function; *s; s++)
                h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
        h = (h ^ 0xff) * UINT64_C(1099511628211);
        for (const char *s = file; *s; s++)
                h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
        return (h ^ line) * UINT64_C(1099511628211);
}

static void stack_site_key(const struct pprof_stack *s, const char **function, const char **file,
                           uint32_t *line)
{
        const struct pprof_frame *f = pprof_stack_site(s);

        *function = f ? (f->function[0] ? f->function : "(unknown)") : "(no frames)";
        *file = f ? f->file : "";
        *line = f ? f->line : 0;
}

/* The slot of a site in the table: its index entry, which is SIZE_MAX when it is new. */
static size_t *site_slot(struct site_table *t, const char *function, const char *file,
                         uint32_t line)
{
        size_t j = site_hash(function, file, line) & (t->cap - 1);

        for (; t->index[j] != SIZE_MAX; j = (j + 1) & (t->cap - 1)) {
                const struct site *s = &t->sites[t->index[j]];
                if (s->line == line && strcmp(s->function, function) == 0 &&
                    strcmp(s->file, file) == 0)
                        break;
        }
        return &t->index[j];
}

static uint64_t stack_value(const struct pprof_profile *p, const struct pprof_stack *s)
{
        return p->kind == PPROF_TEXT_HEAP ? s->bytes : s->count;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static int64_t growth_of(const struct site *s)
{
        if (s->current >= s->base) {
                uint64_t g = s->current - s->base;
                return g > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)g;
        }
        uint64_t g = s->base - s->current;
        return g > (uint64_t)INT64_MAX ? -INT64_MAX : -(int64_t)g;
}

static int site_cmp_common(const struct site *a, const struct site *b)
{
        int c;

        if (a->current != b->current)
                return a->current > b->current ? -1 : 1;
        c = strcmp(a->function, b->function);
        if (c != 0)
                return c;
        c = strcmp(a->file, b->file);
        if (c != 0)
                return c;
        return a->line < b->line ? -1 : a->line > b->line;
}

static int site_cmp_growth(const void *x, const void *y)
{
        const struct site *a = x, *b = y;
        int64_t ga = growth_of(a), gb = growth_of(b);

        if (ga != gb)
                return ga > gb ? -1 : 1;
        return site_cmp_common(a, b);
}

static int site_cmp_size(const void *x, const void *y)
{
        return site_cmp_common(x, y);
}

struct suspect_list *suspect_list_free(struct suspect_list *l)
{
        if (!l)
                return NULL;
        for (size_t i = 0; i < l->n_items; i++) {
                struct suspect *s = &l->items[i];
                free(s->function);
                free(s->file);
                for (size_t k = 0; k < s->n_stack; k++)
                        free(s->stack[k]);
                free(s->stack);
        }
        free(l->items);
        free(l);
        return NULL;
}

static int suspect_fill(struct suspect *out, const struct site *s, enum suspect_kind kind)
{
        const struct pprof_stack *h = s->heaviest;
        size_t n = h ? MIN(h->n_frames, (size_t)SUSPECT_STACK_MAX) : 0;

        *out = (struct suspect){
                .kind = kind,
                .line = s->line,
                .current = s->current,
                .base = s->base,
                .growth = growth_of(s),
                .objects = s->objects,
                .n_stacks = s->n_stacks,
        };
        out->function = strdup(s->function);
        out->file = strdup(s->file);
        if (!out->function || !out->file)
                return -ENOMEM;
        if (n == 0)
                return 0;
        out->stack = calloc(n, sizeof(*out->stack));
        if (!out->stack)
                return -ENOMEM;
        for (size_t k = 0; k < n; k++) {
                const struct pprof_frame *f = &h->frames[k];
                if (asprintf(&out->stack[k], "%s %s:%" PRIu32,
                             f->function[0] ? f->function : "(unknown)", f->file, f->line) < 0) {
                        out->stack[k] = NULL;
                        return -ENOMEM;
                }
                out->n_stack = k + 1;
        }
        return 0;
}

int pprof_rank(const struct pprof_profile *base, const struct pprof_profile *current, size_t top_n,
               struct suspect_list **ret)
{
        _cleanup_(suspect_list_freep) struct suspect_list *l = NULL;
        struct site_table t = {};
        int r = 0;

        if (!current || !ret || (base && base->kind != current->kind))
                return -EINVAL;
        if (top_n == 0)
                top_n = PPROF_TOP_DEFAULT;

        t.cap = 16;
        while (t.cap < current->n_stacks * 2)
                t.cap *= 2;
        t.index = malloc(t.cap * sizeof(*t.index));
        t.sites = calloc(MAX(current->n_stacks, (size_t)1), sizeof(*t.sites));
        if (!t.index || !t.sites) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t j = 0; j < t.cap; j++)
                t.index[j] = SIZE_MAX;

        for (size_t k = 0; k < current->n_stacks; k++) {
                const struct pprof_stack *st = &current->stacks[k];
                uint64_t v = stack_value(current, st);
                const char *fn, *file;
                uint32_t line;
                size_t *slot;
                struct site *s;

                stack_site_key(st, &fn, &file, &line);
                slot = site_slot(&t, fn, file, line);
                if (*slot == SIZE_MAX) {
                        *slot = t.n_sites++;
                        t.sites[*slot] = (struct site){.function = fn, .file = file, .line = line};
                }
                s = &t.sites[*slot];
                s->current = add_sat(s->current, v);
                s->objects = add_sat(s->objects, current->kind == PPROF_TEXT_HEAP ? st->count : 0);
                s->n_stacks++;
                if (!s->heaviest || v > s->heaviest_value) {
                        s->heaviest = st;
                        s->heaviest_value = v;
                }
        }

        if (base)
                for (size_t k = 0; k < base->n_stacks; k++) {
                        const struct pprof_stack *st = &base->stacks[k];
                        const char *fn, *file;
                        uint32_t line;
                        size_t *slot;

                        stack_site_key(st, &fn, &file, &line);
                        slot = site_slot(&t, fn, file, line);
                        /* A site gone from current shrank: not a suspect. */
                        if (*slot != SIZE_MAX)
                                t.sites[*slot].base =
                                        add_sat(t.sites[*slot].base, stack_value(base, st));
                }

        qsort(t.sites, t.n_sites, sizeof(*t.sites), base ? site_cmp_growth : site_cmp_size);

        l = calloc(1, sizeof(*l));
        if (!l) {
                r = -ENOMEM;
                goto out;
        }
        l->kind = current->kind == PPROF_TEXT_HEAP ? SUSPECT_HEAP : SUSPECT_GOROUTINE;
        l->paired = base != NULL;
        l->current_total =
                current->kind == PPROF_TEXT_HEAP ? current->total_bytes : current->total_count;
        if (base)
                l->base_total =
                        base->kind == PPROF_TEXT_HEAP ? base->total_bytes : base->total_count;
        l->items = calloc(MIN(top_n, MAX(t.n_sites, (size_t)1)), sizeof(*l->items));
        if (!l->items) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t k = 0; k < t.n_sites && l->n_items < top_n; k++) {
                const struct site *s = &t.sites[k];

                if (base ? growth_of(s) <= 0 : s->current == 0)
                        break;
                r = suspect_fill(&l->items[l->n_items], s, l->kind);
                l->n_items++;
                if (r < 0)
                        goto out;
        }
        *ret = TAKE_PTR(l);
out:
        free(t.index);
        free(t.sites);
        return r;
}

const char *suspect_kind_to_string(enum suspect_kind k)
{
        switch (k) {
        case SUSPECT_HEAP:
                return "heap";
        case SUSPECT_GOROUTINE:
                return "goroutine";
        default:
                return NULL;
        }
}

static void format_bytes(char *buf, size_t size, uint64_t v)
{
        static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
        double d = (double)v;
        size_t u = 0;

        if (v < 1024) {
                (void)snprintf(buf, size, "%" PRIu64 " B", v);
                return;
        }
        d /= 1024;
        while (d >= 1024 && u + 1 < ELEMENTSOF(units)) {
                d /= 1024;
                u++;
        }
        (void)snprintf(buf, size, "%.1f %s", d, units[u]);
}

char *suspect_format(const struct suspect *s, bool paired)
{
        const char *file = strrchr(s->file, '/');
        uint64_t mag = paired ? (s->growth < 0 ? (uint64_t)(-s->growth) : (uint64_t)s->growth)
                              : s->current;
        const char *sign = !paired ? "" : s->growth < 0 ? "-" : "+";
        char value[48], where[PPROF_NAME_MAX + 32] = "";
        char *out;

        file = file ? file + 1 : s->file;
        if (file[0])
                (void)snprintf(where, sizeof(where), " (%s:%" PRIu32 ")", file, s->line);
        if (s->kind == SUSPECT_HEAP) {
                format_bytes(value, sizeof(value), mag);
                if (asprintf(&out, "%s%s %s%s heap", s->function, where, sign, value) < 0)
                        return NULL;
        } else if (asprintf(&out, "%s%s %s%" PRIu64 " goroutine%s", s->function, where, sign, mag,
                            mag == 1 ? "" : "s") < 0)
                return NULL;
        return out;
}

/* ---- suspects.json ------------------------------------------------------------------ */

/* Add v (NULL: out of memory) to o; json_add_null() adds a JSON null. */
static int json_add(struct json_object *o, const char *key, struct json_object *v)
{
        if (!v)
                return -ENOMEM;
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int json_add_null(struct json_object *o, const char *key)
{
        return json_object_object_add(o, key, NULL) < 0 ? -ENOMEM : 0;
}

static int json_push(struct json_object *a, struct json_object *v)
{
        if (!v)
                return -ENOMEM;
        if (json_object_array_add(a, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int json_add_string_or_null(struct json_object *o, const char *key, const char *s)
{
        return s ? json_add(o, key, json_object_new_string(s)) : json_add_null(o, key);
}

static struct json_object *suspect_json(const struct suspect *s, bool paired)
{
        struct json_object *o = json_object_new_object(), *st;
        int r = 0;

        if (!o)
                return NULL;
        r |= json_add(o, "function", json_object_new_string(s->function));
        r |= json_add(o, "file", json_object_new_string(s->file));
        r |= json_add(o, "line", json_object_new_int64(s->line));
        r |= json_add(o, "current", json_object_new_uint64(s->current));
        if (paired) {
                r |= json_add(o, "base", json_object_new_uint64(s->base));
                r |= json_add(o, "growth", json_object_new_int64(s->growth));
        }
        if (s->kind == SUSPECT_HEAP)
                r |= json_add(o, "objects", json_object_new_uint64(s->objects));
        r |= json_add(o, "stacks", json_object_new_uint64(s->n_stacks));
        st = json_object_new_array();
        for (size_t k = 0; st && k < s->n_stack; k++)
                r |= json_push(st, json_object_new_string(s->stack[k]));
        r |= json_add(o, "stack", st);
        {
                _cleanup_free_ char *text = suspect_format(s, paired);
                r |= json_add(o, "summary", text ? json_object_new_string(text) : NULL);
        }
        if (r != 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

static struct json_object *list_json(const struct suspect_list *l)
{
        struct json_object *a = json_object_new_array();

        for (size_t i = 0; a && l && i < l->n_items; i++)
                if (json_push(a, suspect_json(&l->items[i], l->paired)) < 0) {
                        json_object_put(a);
                        return NULL;
                }
        return a;
}

static struct json_object *kind_json(const struct pprof_profile *base,
                                     const struct pprof_profile *cur,
                                     const struct suspect_list *growth,
                                     const struct suspect_list *top, const char *top_key)
{
        bool heap = cur->kind == PPROF_TEXT_HEAP;
        struct json_object *o = json_object_new_object();
        int r = 0;

        if (!o)
                return NULL;
        r |= json_add(o, "unit", json_object_new_string(heap ? "bytes" : "goroutines"));
        r |= json_add(o, "paired", json_object_new_boolean(base != NULL));
        r |= json_add(o, "current_total",
                      json_object_new_uint64(heap ? cur->total_bytes : cur->total_count));
        if (base)
                r |= json_add(o, "base_total",
                              json_object_new_uint64(heap ? base->total_bytes : base->total_count));
        else
                r |= json_add_null(o, "base_total");
        r |= json_add(o, "stacks", json_object_new_uint64(cur->n_stacks));
        r |= json_add(o, "dropped_stacks", json_object_new_uint64(cur->n_dropped_stacks));
        if (heap && cur->memstats.has) {
                struct json_object *m = json_object_new_object();
                if (m) {
                        r |= json_add(m, "heap_alloc",
                                      json_object_new_uint64(cur->memstats.heap_alloc));
                        r |= json_add(m, "heap_inuse",
                                      json_object_new_uint64(cur->memstats.heap_inuse));
                        r |= json_add(m, "heap_sys",
                                      json_object_new_uint64(cur->memstats.heap_sys));
                        r |= json_add(m, "sys", json_object_new_uint64(cur->memstats.sys));
                        r |= json_add(m, "next_gc", json_object_new_uint64(cur->memstats.next_gc));
                        r |= json_add(m, "num_gc", json_object_new_uint64(cur->memstats.num_gc));
                }
                r |= json_add(o, "memstats", m);
        }
        if (growth)
                r |= json_add(o, "growth", list_json(growth));
        else
                r |= json_add_null(o, "growth");
        r |= json_add(o, top_key, list_json(top));
        if (r != 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

/* Growth of a whole profile relative to its base, for ordering the kinds. */
static double relative_growth(const struct suspect_list *l)
{
        if (!l)
                return -1.0;
        if (l->current_total <= l->base_total)
                return 0.0;
        return (double)(l->current_total - l->base_total) /
               (double)(l->base_total ? l->base_total : 1);
}

struct pprof_summary *pprof_summary_free(struct pprof_summary *s)
{
        if (!s)
                return NULL;
        suspect_list_free(s->heap_growth);
        suspect_list_free(s->goroutine_growth);
        suspect_list_free(s->heap_top);
        suspect_list_free(s->goroutine_top);
        free(s->ordered);
        free(s->json);
        free(s);
        return NULL;
}

static int summary_json(const struct pprof_summary_input *in, struct pprof_summary *s)
{
        struct json_object *o = json_object_new_object(), *lines;
        const char *text;
        int r = 0;

        if (!o)
                return -ENOMEM;
        r |= json_add(o, "version", json_object_new_int(1));
        r |= json_add_string_or_null(o, "base", in->base_dir);
        r |= json_add_string_or_null(o, "current", in->current_dir);
        lines = json_object_new_array();
        for (size_t i = 0; lines && i < s->n_ordered; i++) {
                _cleanup_free_ char *t = suspect_format(s->ordered[i], true);
                r |= json_push(lines, t ? json_object_new_string(t) : NULL);
        }
        r |= json_add(o, "suspects", lines);
        if (in->heap_current)
                r |= json_add(o, "heap",
                              kind_json(in->heap_base, in->heap_current, s->heap_growth,
                                        s->heap_top, "top"));
        else
                r |= json_add_null(o, "heap");
        if (in->goroutine_current)
                r |= json_add(o, "goroutine",
                              kind_json(in->goroutine_base, in->goroutine_current,
                                        s->goroutine_growth, s->goroutine_top, "clusters"));
        else
                r |= json_add_null(o, "goroutine");
        if (r != 0) {
                json_object_put(o);
                return -ENOMEM;
        }
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE);
        s->json = text ? strdup(text) : NULL;
        json_object_put(o);
        return s->json ? 0 : -ENOMEM;
}

int pprof_summarize(const struct pprof_summary_input *input, struct pprof_summary **ret)
{
        _cleanup_(pprof_summary_freep) struct pprof_summary *s = NULL;
        struct pprof_summary_input in;
        struct suspect_list *first, *second;
        int r;

        if (!input || !ret)
                return -EINVAL;
        in = *input;
        /* A base of the wrong kind (a mislabelled file) is no base. */
        if (in.heap_base && (!in.heap_current || in.heap_base->kind != in.heap_current->kind))
                in.heap_base = NULL;
        if (in.goroutine_base &&
            (!in.goroutine_current || in.goroutine_base->kind != in.goroutine_current->kind))
                in.goroutine_base = NULL;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        if (in.heap_current) {
                r = pprof_rank(NULL, in.heap_current, in.top_n, &s->heap_top);
                if (r >= 0 && in.heap_base)
                        r = pprof_rank(in.heap_base, in.heap_current, in.top_n, &s->heap_growth);
                if (r < 0)
                        return r;
        }
        if (in.goroutine_current) {
                r = pprof_rank(NULL, in.goroutine_current, in.top_n, &s->goroutine_top);
                if (r >= 0 && in.goroutine_base)
                        r = pprof_rank(in.goroutine_base, in.goroutine_current, in.top_n,
                                       &s->goroutine_growth);
                if (r < 0)
                        return r;
        }

        first = s->heap_growth;
        second = s->goroutine_growth;
        if (relative_growth(second) > relative_growth(first)) {
                first = s->goroutine_growth;
                second = s->heap_growth;
        }
        s->ordered = calloc((first ? first->n_items : 0) + (second ? second->n_items : 0) + 1,
                            sizeof(*s->ordered));
        if (!s->ordered)
                return -ENOMEM;
        for (size_t i = 0; first && i < first->n_items; i++)
                s->ordered[s->n_ordered++] = &first->items[i];
        for (size_t i = 0; second && i < second->n_items; i++)
                s->ordered[s->n_ordered++] = &second->items[i];

        r = summary_json(&in, s);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Capture stage, analysis: pure parsers for the text forms of Go's pprof profiles
 * (`goroutine?debug=1`, `heap?debug=1`, also `allocs?debug=1`), and the leak-suspect
 * ranking that diffs a current profile against a base one. No I/O, no clock, no logging:
 * the capture module reads the files and writes suspects.json.
 *
 * Memory is bounded whatever the input: at most PPROF_INPUT_MAX bytes are accepted, lines
 * are at most PPROF_LINE_MAX, names at most PPROF_NAME_MAX, a stack keeps its first
 * PPROF_FRAMES_MAX frames (the rest are counted, the stack marked truncated) and a profile
 * its first PPROF_STACKS_MAX distinct stacks (later ones are counted in n_dropped_stacks and
 * their values in dropped_*). Malformed input is -EINVAL, never a crash.
 *
 * "User code" (where a site is placed): the first frame, from the leaf outwards, whose
 * function is not in the Go standard library or runtime. A function's package path is its
 * name up to the first '.' after the last '/' (searched before any '(' or '['); the package
 * is standard when the first element of that path is one of the standard library's
 * top-level directories (runtime, internal, net, os, sync, syscall, reflect, fmt, io, …,
 * see pprof_function_is_user()), "vendor" (the standard library's vendored packages) or
 * "type" / "go" (compiler-generated). Everything else is user code: "main", and any module
 * path ("github.com/x/y", "memgov.example/leaky", "leaky/store"). So
 * net/http.(*conn).serve and runtime.gopark are skipped, main.stuckWorker is kept.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memgov/macro.h"

#define PPROF_INPUT_MAX  ((size_t)64 << 20)
#define PPROF_LINE_MAX   ((size_t)16384)
#define PPROF_NAME_MAX   ((size_t)4096)
#define PPROF_FRAMES_MAX ((size_t)64)
#define PPROF_STACKS_MAX ((size_t)20000)

/* Suspects kept per list by default (pprof_rank() with top_n 0). */
#define PPROF_TOP_DEFAULT ((size_t)10)

enum pprof_text_kind {
        PPROF_TEXT_GOROUTINE, /* "goroutine profile: total N" */
        PPROF_TEXT_HEAP,      /* "heap profile: A: B [C: D] @ heap/R" (heap and allocs) */
        _PPROF_TEXT_KIND_MAX,
        _PPROF_TEXT_KIND_INVALID = -1,
};

struct pprof_frame {
        uint64_t pc;
        const char *function; /* "main.leakIntoGlobalMap"; "" when the pc has no symbol */
        const char *file;     /* "memgov.example/leaky/leak.go"; "" when unknown */
        uint32_t line;        /* 0 when unknown */
};

/*
 * One distinct stack (aggregated by the symbolic frames: function, file, line), leaf first.
 * Heap values are scaled the way `go tool pprof` scales the legacy text format (each
 * record by 1 / (1 - e^(-avg_size / rate))), so they estimate the real totals.
 */
struct pprof_stack {
        uint64_t count;         /* goroutines; heap: in-use objects */
        uint64_t bytes;         /* heap: in-use bytes; goroutines: 0 */
        uint64_t alloc_objects; /* heap: allocated since start; goroutines: 0 */
        uint64_t alloc_bytes;
        const struct pprof_frame *frames; /* n_frames of them, owned by the profile */
        size_t n_frames;
        bool truncated; /* frames past PPROF_FRAMES_MAX were dropped */
};

/* The "# runtime.MemStats" section at the end of heap?debug=1 (has = it was there). */
struct pprof_memstats {
        bool has;
        uint64_t alloc, total_alloc, sys, mallocs, frees;
        uint64_t heap_alloc, heap_sys, heap_idle, heap_inuse, heap_released, heap_objects;
        uint64_t stack_inuse, stack_sys, next_gc, num_gc;
};

struct pprof_profile {
        enum pprof_text_kind kind;
        uint64_t header_total;   /* goroutine: "total N"; heap: in-use objects of the header */
        uint64_t header_bytes;   /* heap: in-use bytes of the header (unscaled) */
        uint64_t sampling_bytes; /* heap: the MemProfileRate (header "heap/R" is 2×rate) */
        struct pprof_stack *stacks;
        size_t n_stacks;
        uint64_t n_dropped_stacks; /* distinct stacks past PPROF_STACKS_MAX, not kept */
        uint64_t dropped_count, dropped_bytes;
        uint64_t total_count; /* sum over all records, dropped ones included (scaled) */
        uint64_t total_bytes;
        struct pprof_memstats memstats;
        void *internal; /* string and frame storage */
};

/*
 * Parse a text profile of len bytes (need not be NUL-terminated; a NUL inside is -EINVAL).
 * The kind is told by the header line. Returns 0 with *ret (pprof_profile_free()), -EINVAL
 * (malformed, or a line or name over its cap), -EFBIG (len > PPROF_INPUT_MAX), -ENOMEM.
 */
int pprof_parse(const char *buf, size_t len, struct pprof_profile **ret);

struct pprof_profile *pprof_profile_free(struct pprof_profile *p);
DEFINE_FREE_FUNC(pprof_profile)

/* "goroutine", "heap"; NULL for an invalid value. */
const char *pprof_text_kind_to_string(enum pprof_text_kind k);

/* Whether function is user code by the rule at the top of this file. "" is not. */
bool pprof_function_is_user(const char *function);

/*
 * The site of a stack: its first user-code frame; with none, its first frame; NULL for a
 * stack without frames.
 */
const struct pprof_frame *pprof_stack_site(const struct pprof_stack *s);

enum suspect_kind {
        SUSPECT_HEAP,      /* values in bytes (heap in use) */
        SUSPECT_GOROUTINE, /* values in goroutines */
        _SUSPECT_KIND_MAX,
        _SUSPECT_KIND_INVALID = -1,
};

/* One site: where memory or goroutines are held, and how that changed. */
struct suspect {
        enum suspect_kind kind;
        char *function; /* "main.leakIntoGlobalMap"; "(no frames)" for empty stacks */
        char *file;     /* "memgov.example/leaky/leak.go" or "" */
        uint32_t line;
        uint64_t current; /* bytes or goroutines at the current capture */
        uint64_t base;    /* the same at the base; 0 without one */
        int64_t growth;   /* current - base (== current without a base) */
        uint64_t objects; /* heap: in-use objects at the current capture */
        size_t n_stacks;  /* distinct current stacks merged into this site */
        /* The heaviest current stack of the site, "fn file:line" per frame, leaf first. */
        char **stack;
        size_t n_stack;
};

struct suspect_list {
        enum suspect_kind kind;
        bool paired;         /* ranked by growth against a base; false: by current size */
        uint64_t base_total; /* whole-profile totals (bytes or goroutines) */
        uint64_t current_total;
        struct suspect *items; /* best first */
        size_t n_items;
};

/*
 * Rank the sites of current (grouped by pprof_stack_site(): function, file and line). With
 * a base of the same kind, each site's value in base is subtracted and only sites that
 * grew are kept, by growth, then current value, then name; without a base (NULL), every
 * site by current value: the goroutine clusters by first user frame. At most top_n items
 * (0: PPROF_TOP_DEFAULT). Heap lists use in-use bytes, goroutine lists counts. Returns 0
 * with *ret (suspect_list_free()), -EINVAL (kinds differ), -ENOMEM.
 */
int pprof_rank(const struct pprof_profile *base, const struct pprof_profile *current, size_t top_n,
               struct suspect_list **ret);

struct suspect_list *suspect_list_free(struct suspect_list *l);
DEFINE_FREE_FUNC(suspect_list)

/* "heap", "goroutine"; NULL for an invalid value. */
const char *suspect_kind_to_string(enum suspect_kind k);

/*
 * One line for a webhook or a log: "main.leakIntoGlobalMap (leak.go:76) +24.0 MiB heap" or
 * "main.stuckWorker (leak.go:101) +44 goroutines"; without a base, the current value with
 * no sign. Returns a malloc'ed string, or NULL on ENOMEM.
 */
char *suspect_format(const struct suspect *s, bool paired);

/*
 * What suspects.json says about one capture. Any profile may be NULL (not captured or not
 * parsable); base_dir and current_dir name the dumps (may be NULL).
 */
struct pprof_summary_input {
        const char *base_dir;
        const char *current_dir;
        const struct pprof_profile *heap_base, *heap_current;
        const struct pprof_profile *goroutine_base, *goroutine_current;
        size_t top_n; /* 0: PPROF_TOP_DEFAULT */
};

/*
 * The analysis of one capture. growth lists exist when both profiles of a kind do; top
 * lists when the current one does. ordered holds the suspects to report first: the growth
 * lists, the kind that grew more relative to its base total first, each cut to top_n.
 */
struct pprof_summary {
        struct suspect_list *heap_growth, *goroutine_growth; /* NULL: no pair */
        struct suspect_list *heap_top, *goroutine_top;       /* NULL: no current */
        const struct suspect **ordered;                      /* pointers into the growth lists */
        size_t n_ordered;
        char *json; /* suspects.json, NUL-terminated, pretty-printed */
};

/* Build the summary and its JSON. Returns 0 with *ret (pprof_summary_free()), -ENOMEM. */
int pprof_summarize(const struct pprof_summary_input *in, struct pprof_summary **ret);

struct pprof_summary *pprof_summary_free(struct pprof_summary *s);
DEFINE_FREE_FUNC(pprof_summary)

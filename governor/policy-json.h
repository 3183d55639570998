/* SPDX-License-Identifier: MIT */
/*
 * Reading JSON for the policy module (policy.c, policy-config.c), before anything runs:
 * strict parsing with "FILE:LINE:COL" syntax errors, JSON paths, and typed getters that
 * report each problem as one "FILE: .json.path: message" line and carry on, so a user
 * sees every problem of a file at once. Private to the policy module: json-c objects never
 * leave it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "memgov/diag.h"

#define PJ_MAX_DEPTH      32
#define PJ_MAX_FILE_BYTES (1024 * 1024)
#define PJ_MAX_PROBLEMS   50
#define PJ_PATH_MAX       512

/* The known keys of one object kind, for unknown-key suggestions. */
struct pj_object_keys {
        const char *path;        /* ".", ".forecast", ".collectors[]", … */
        const char *const *keys; /* NULL-terminated */
};

/* One validation pass over one document. */
struct pj {
        struct diag *diag;
        const char *file;                     /* FILE in messages */
        const struct pj_object_keys *objects; /* all object kinds, NULL-path terminated */
        char path[PJ_PATH_MAX];               /* the current JSON path, "" at the top */
        size_t path_len;
        unsigned n_problems;
        bool oom; /* a diag line was lost: the load fails with -ENOMEM */
};

/*
 * Read a whole regular file of at most PJ_MAX_FILE_BYTES. On failure one line goes to diag
 * ("FILE: cannot read: …") and -errno is returned (-EFBIG when too large, -EISDIR for a
 * directory, -EINVAL for another non-regular file). *ret_buf is NUL-terminated; free it.
 */
int pj_read_file(const char *path, struct diag *diag, char **ret_buf, size_t *ret_len);

/*
 * Parse buf strictly (json-c's strict tokenizer, depth PJ_MAX_DEPTH, then a pass for what
 * json-c lets through: single quotes, NaN, control characters in strings, duplicate keys).
 * Syntax errors are reported as "FILE:LINE:COL: invalid JSON: …" and give -EINVAL with
 * *ret untouched. Duplicate keys are reported at their path ("FILE: PATH: given twice …")
 * but return 0 with *ret set, so that validation goes on and finds the other problems: the
 * caller judges by c->n_problems. A top-level null sets *ret = NULL. -ENOMEM on allocation
 * failure. Free *ret with json_object_put().
 */
int pj_parse(struct pj *c, const char *buf, size_t len, struct json_object **ret);

/* Internal to the pj_*.c files: "FILE:LINE:COL: invalid JSON: message" at byte off of buf. */
void pj_syntax_problem(struct pj *c, const char *buf, size_t off, const char *fmt, ...)
        _printf_(4, 5);
/* The 1-based line of byte off. */
unsigned pj_line_of(const char *buf, size_t off);
/* "\"a\", \"b\"" for the names whose bit is in mask (NULL entries skipped), into buf. */
const char *pj_join_names(const char *const *names, size_t n, unsigned mask, char *buf,
                          size_t size);

/* Add "FILE: PATH: message" at the current path. */
void pj_problem(struct pj *c, const char *fmt, ...) _printf_(2, 3);
/* Add "FILE: PATH: message" at an explicit path (e.g. ".levels.warn.eta"). */
void pj_problem_at(struct pj *c, const char *path, const char *fmt, ...) _printf_(3, 4);

/* The current path as printed: "." at the top. Valid until the path changes. */
const char *pj_path(struct pj *c);

/* Descend into a key or an array index; returns the length to give back to pj_pop(). */
size_t pj_push_key(struct pj *c, const char *key);
size_t pj_push_index(struct pj *c, size_t i);
void pj_pop(struct pj *c, size_t len);

/* A short rendering of a value for "got …": "\"soon\"", "5", "true", "an object". */
const char *pj_got(struct json_object *v, char *buf, size_t size);
#define PJ_GOT_MAX 96
#define PJ_GOT(v)  pj_got((v), (char[PJ_GOT_MAX]){}, PJ_GOT_MAX)

/*
 * The candidate nearest to word: the one that differs by case only, is a unique prefix of
 * it or that it is a prefix of, or is within edit distance 2 (1 for short words). NULL
 * when none is near.
 */
const char *pj_suggest(const char *word, const char *const *candidates);

/*
 * Report every key of obj (an object, at the current path) that is not in keys: with the
 * nearest known key, or the object where that key belongs, or the list of allowed keys.
 * Returns the number of unknown keys.
 */
unsigned pj_check_keys(struct pj *c, struct json_object *obj, const char *const *keys);

/* Require obj (the value at the current path) to be an object; describe what was found. */
bool pj_expect_object(struct pj *c, struct json_object *obj, const char *example);

/*
 * Typed getters for obj[key]. Each returns 1 when the key is present and valid (and sets
 * *ret), 0 when absent (*ret untouched), or -EINVAL after reporting the problem at
 * ".path.key". Ranges are inclusive; messages show limits as the user writes them.
 */
int pj_get_string(struct pj *c, struct json_object *obj, const char *key, const char **ret);
int pj_get_bool(struct pj *c, struct json_object *obj, const char *key, bool *ret);
int pj_get_object(struct pj *c, struct json_object *obj, const char *key, const char *example,
                  struct json_object **ret);
int pj_get_array(struct pj *c, struct json_object *obj, const char *key, size_t max_len,
                 struct json_object **ret);
/* A string like "30s" or a number of seconds. */
int pj_get_duration(struct pj *c, struct json_object *obj, const char *key, uint64_t min_usec,
                    uint64_t max_usec, uint64_t *ret);
/*
 * A size: a string like "256M" or a whole number of bytes; with allow_share also a share of
 * the effective limit ("80%"), returned in *ret_permille (then *ret_bytes is 0). "max" and
 * zero are refused.
 */
int pj_get_size(struct pj *c, struct json_object *obj, const char *key, bool allow_share,
                uint64_t min_bytes, uint64_t max_bytes, uint64_t *ret_bytes,
                uint32_t *ret_permille);
/* A share of the effective limit only: "80%" → 800 permille. */
int pj_get_share(struct pj *c, struct json_object *obj, const char *key, uint32_t *ret_permille);
/* A number (integer or not) with lo < x (or lo <= x with lo_inclusive) and x <= hi. */
int pj_get_number(struct pj *c, struct json_object *obj, const char *key, double lo,
                  bool lo_inclusive, double hi, const char *what, double *ret);
/* A whole number in [min, max]. */
int pj_get_uint(struct pj *c, struct json_object *obj, const char *key, uint64_t min, uint64_t max,
                uint64_t *ret);
/* One of names[0..n) (NULL entries skipped); *ret is the index. */
int pj_get_enum(struct pj *c, struct json_object *obj, const char *key, const char *const *names,
                size_t n, int *ret);
/*
 * A non-empty array of distinct names from names[0..n), only those whose bit is in
 * allowed_mask; *ret is the mask of 1u << index.
 */
int pj_get_name_list(struct pj *c, struct json_object *obj, const char *key,
                     const char *const *names, size_t n, unsigned allowed_mask, unsigned *ret);

/* "500ms", "30s", "5m", "2h" — the exact value in the largest unit that divides it. */
const char *pj_format_duration(uint64_t usec, char *buf, size_t size);
/* 800 → "80%", 975 → "97.5%". */
const char *pj_format_permille(uint32_t permille, char *buf, size_t size);
/* 268435456 → "256M", 1000 → "1000". */
const char *pj_format_bytes(uint64_t bytes, char *buf, size_t size);
#define PJ_DURATION(u) pj_format_duration((u), (char[32]){}, 32)
#define PJ_PERMILLE(p) pj_format_permille((p), (char[32]){}, 32)
#define PJ_BYTES(b)    pj_format_bytes((b), (char[32]){}, 32)

/* SPDX-License-Identifier: MIT */
/*
 * Typed getters for policy and config JSON (before probe): each checks one key's type and
 * range and, when it is wrong, says what was expected and what was found, at its path.
 */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "memgov/macro.h"
#include "memgov/parse.h"
#include "policy-json.h"

/* ---- typed getters -------------------------------------------------------------------- */

bool pj_expect_object(struct pj *c, struct json_object *obj, const char *example)
{
        if (json_object_get_type(obj) == json_type_object)
                return true;
        pj_problem(c, "expected an object%s%s, got %s", example ? " like " : "",
                   example ? example : "", PJ_GOT(obj));
        return false;
}

/* Look key up; on presence push its path (the caller pops). */
static bool lookup(struct pj *c, struct json_object *obj, const char *key, struct json_object **ret,
                   size_t *ret_old)
{
        if (!json_object_object_get_ex(obj, key, ret))
                return false;
        *ret_old = pj_push_key(c, key);
        return true;
}

#define GETTER_FAIL(c, old, ...)                                                                   \
        do {                                                                                       \
                pj_problem((c), __VA_ARGS__);                                                      \
                pj_pop((c), (old));                                                                \
                return -EINVAL;                                                                    \
        } while (0)

/* A string without embedded NUL; NULL otherwise. */
static const char *string_of(struct json_object *v)
{
        const char *s;

        if (json_object_get_type(v) != json_type_string)
                return NULL;
        s = json_object_get_string(v);
        if (strlen(s) != (size_t)json_object_get_string_len(v))
                return NULL;
        return s;
}

int pj_get_string(struct pj *c, struct json_object *obj, const char *key, const char **ret)
{
        struct json_object *v;
        size_t old;
        const char *s;

        if (!lookup(c, obj, key, &v, &old))
                return 0;
        if (json_object_get_type(v) != json_type_string)
                GETTER_FAIL(c, old, "expected a string, got %s", PJ_GOT(v));
        s = string_of(v);
        if (!s)
                GETTER_FAIL(c, old, "must not contain a NUL character (\\u0000)");
        pj_pop(c, old);
        *ret = s;
        return 1;
}

int pj_get_bool(struct pj *c, struct json_object *obj, const char *key, bool *ret)
{
        struct json_object *v;
        size_t old;

        if (!lookup(c, obj, key, &v, &old))
                return 0;
        if (json_object_get_type(v) != json_type_boolean)
                GETTER_FAIL(c, old, "expected true or false, got %s", PJ_GOT(v));
        pj_pop(c, old);
        *ret = json_object_get_boolean(v);
        return 1;
}

int pj_get_object(struct pj *c, struct json_object *obj, const char *key, const char *example,
                  struct json_object **ret)
{
        struct json_object *v;
        size_t old;

        if (!lookup(c, obj, key, &v, &old))
                return 0;
        if (!pj_expect_object(c, v, example)) {
                pj_pop(c, old);
                return -EINVAL;
        }
        pj_pop(c, old);
        *ret = v;
        return 1;
}

int pj_get_array(struct pj *c, struct json_object *obj, const char *key, size_t max_len,
                 struct json_object **ret)
{
        struct json_object *v;
        size_t old;

        if (!lookup(c, obj, key, &v, &old))
                return 0;
        if (json_object_get_type(v) != json_type_array)
                GETTER_FAIL(c, old, "expected an array [...], got %s", PJ_GOT(v));
        if (json_object_array_length(v) > max_len)
                GETTER_FAIL(c, old, "at most %zu entries are allowed, got %zu", max_len,
                            json_object_array_length(v));
        pj_pop(c, old);
        *ret = v;
        return 1;
}

/* A non-negative JSON number as a double; false for other types, negatives and non-finite. */
static bool number_of(struct json_object *v, double *ret)
{
        double d;

        switch (json_object_get_type(v)) {
        case json_type_int:
                if (json_object_get_int64(v) < 0)
                        return false;
                d = (double)json_object_get_uint64(v);
                break;
        case json_type_double:
                d = json_object_get_double(v);
                break;
        default:
                return false;
        }
        if (!isfinite(d) || d < 0)
                return false;
        *ret = d;
        return true;
}

static bool is_negative_number(struct json_object *v)
{
        if (json_object_get_type(v) == json_type_int)
                return json_object_get_int64(v) < 0;
        if (json_object_get_type(v) == json_type_double)
                return json_object_get_double(v) < 0;
        return false;
}

int pj_get_duration(struct pj *c, struct json_object *obj, const char *key, uint64_t min_usec,
                    uint64_t max_usec, uint64_t *ret)
{
        struct json_object *v;
        const char *s;
        uint64_t usec = 0;
        double secs;
        size_t old;

        if (!lookup(c, obj, key, &v, &old))
                return 0;
        s = string_of(v);
        if (is_negative_number(v))
                GETTER_FAIL(c, old, "must not be negative, got %s", PJ_GOT(v));
        if (s) {
                int r = parse_duration(s, &usec);
                if (r == -ERANGE)
                        usec = UINT64_MAX;
                else if (r < 0)
                        GETTER_FAIL(c, old, "expected a duration like \"30s\" or \"5m\", got %s",
                                    PJ_GOT(v));
        } else if (number_of(v, &secs)) {
                /* a bare number is seconds; anything past max is rejected below anyway */
                usec = secs >= 1e12 ? UINT64_MAX : (uint64_t)llround(secs * 1e6);
        } else
                GETTER_FAIL(c, old, "expected a duration like \"30s\" or \"5m\", got %s",
                            PJ_GOT(v));

        if (usec < min_usec) {
                if (min_usec == 1)
                        GETTER_FAIL(c, old, "must be longer than 0, got %s", PJ_GOT(v));
                GETTER_FAIL(c, old, "must be at least %s, got %s", PJ_DURATION(min_usec),
                            PJ_GOT(v));
        }
        if (usec > max_usec)
                GETTER_FAIL(c, old, "must be at most %s, got %s", PJ_DURATION(max_usec), PJ_GOT(v));
        pj_pop(c, old);
        *ret = usec;
        return 1;
}

int pj_get_size(struct pj *c, struct json_object *obj, const char *key, bool allow_share,
                uint64_t min_bytes, uint64_t max_bytes, uint64_t *ret_bytes, uint32_t *ret_permille)
{
        const char *example = allow_share ? "expected a size like \"256M\" or \"80%\""
                                          : "expected a size like \"64M\"";
        struct json_object *v;
        uint64_t bytes = 0;
        uint32_t permille = 0;
        const char *s;
        size_t old;

        if (!lookup(c, obj, key, &v, &old))
                return 0;
        s = string_of(v);
        if (is_negative_number(v))
                GETTER_FAIL(c, old, "must not be negative, got %s", PJ_GOT(v));
        if (s) {
                int r = parse_size_or_share(s, &bytes, &permille);
                bool percent = strchr(s, '%');

                if (r == -ERANGE && percent && allow_share)
                        GETTER_FAIL(c, old,
                                    "a share must be more than 0%% and at most 100%%, got %s",
                                    PJ_GOT(v));
                if (r == -ERANGE)
                        bytes = UINT64_MAX - 1;
                else if (r < 0 || (percent && !allow_share))
                        GETTER_FAIL(c, old, "%s, or a number of bytes%s, got %s", example,
                                    percent ? " (a share of the limit does not fit here)" : "",
                                    PJ_GOT(v));
                else if (bytes == CGROUP_LIMIT_MAX)
                        GETTER_FAIL(c, old, "%s; \"max\" does not fit here", example);
        } else if (json_object_get_type(v) == json_type_int)
                bytes = json_object_get_uint64(v);
        else
                GETTER_FAIL(c, old, "%s or a whole number of bytes, got %s", example, PJ_GOT(v));

        if (permille == 0) {
                if (bytes == 0)
                        GETTER_FAIL(c, old, "must be more than 0, got %s", PJ_GOT(v));
                if (bytes < min_bytes)
                        GETTER_FAIL(c, old, "must be at least %s, got %s", PJ_BYTES(min_bytes),
                                    PJ_GOT(v));
                if (bytes > max_bytes)
                        GETTER_FAIL(c, old, "must be at most %s, got %s", PJ_BYTES(max_bytes),
                                    PJ_GOT(v));
        }
        pj_pop(c, old);
        *ret_bytes = bytes;
        *ret_permille = permille;
        return 1;
}

/* "80" or "0.8": digits and at most one '.'. */
static bool plain_number(const char *s, double *ret)
{
        size_t n = s ? strlen(s) : 0;

        if (n == 0 || n > 20 || strspn(s, "0123456789.") != n ||
            strchr(s, '.') != strrchr(s, '.') || s[0] == '.' || s[n - 1] == '.')
                return false;
        *ret = strtod(s, NULL);
        return true;
}

int pj_get_share(struct pj *c, struct json_object *obj, const char *key, uint32_t *ret_permille)
{
        struct json_object *v;
        uint64_t bytes = 0;
        uint32_t permille = 0;
        const char *s;
        size_t old;
        int r;

        if (!lookup(c, obj, key, &v, &old))
                return 0;
        s = string_of(v);
        r = s ? parse_size_or_share(s, &bytes, &permille) : -EINVAL;
        if (r == -ERANGE && strchr(s, '%'))
                GETTER_FAIL(c, old, "a share must be more than 0%% and at most 100%%, got %s",
                            PJ_GOT(v));
        if (r < 0 || permille == 0) {
                /* 80, "80" or 0.8 where "80%" was meant: say so */
                char hint[48] = "";
                double d;
                if (number_of(v, &d) || plain_number(s, &d)) {
                        if (d > 0 && d < 1)
                                d *= 100;
                        if (d > 0 && d <= 100)
                                (void)snprintf(hint, sizeof(hint), "; did you mean \"%g%%\"?", d);
                }
                GETTER_FAIL(c, old, "expected a share of the limit like \"80%%\", got %s%s",
                            PJ_GOT(v), hint);
        }
        pj_pop(c, old);
        *ret_permille = permille;
        return 1;
}

/* Numbers in messages: "100", "0.5", "1000000". */
static const char *fmt_num(double d, char *buf, size_t size)
{
        if (d == floor(d) && fabs(d) < 1e15)
                (void)snprintf(buf, size, "%.0f", d);
        else
                (void)snprintf(buf, size, "%g", d);
        return buf;
}
#define FMT_NUM(d) fmt_num((d), (char[32]){}, 32)

int pj_get_number(struct pj *c, struct json_object *obj, const char *key, double lo,
                  bool lo_inclusive, double hi, const char *what, double *ret)
{
        struct json_object *v;
        const char *s;
        double d;
        size_t old;

        if (!lookup(c, obj, key, &v, &old))
                return 0;
        s = string_of(v);
        if (s && s[0] && s[strlen(s) - 1] == '%')
                GETTER_FAIL(c, old, "expected a plain number of percent like 20, got %s",
                            PJ_GOT(v));
        if (!number_of(v, &d) && !is_negative_number(v))
                GETTER_FAIL(c, old, "expected a number (%s), got %s", what, PJ_GOT(v));
        if (is_negative_number(v))
                d = -1;
        if (d < lo || (!lo_inclusive && d == lo) || d > hi)
                GETTER_FAIL(c, old, "must be %s %s and at most %s (%s), got %s",
                            lo_inclusive ? "at least" : "more than", FMT_NUM(lo), FMT_NUM(hi), what,
                            PJ_GOT(v));
        pj_pop(c, old);
        *ret = d;
        return 1;
}

int pj_get_uint(struct pj *c, struct json_object *obj, const char *key, uint64_t min, uint64_t max,
                uint64_t *ret)
{
        struct json_object *v;
        uint64_t u;
        size_t old;

        if (!lookup(c, obj, key, &v, &old))
                return 0;
        if (json_object_get_type(v) != json_type_int)
                GETTER_FAIL(c, old, "expected a whole number, got %s", PJ_GOT(v));
        u = json_object_get_int64(v) < 0 ? 0 : json_object_get_uint64(v);
        if (json_object_get_int64(v) < 0 || u < min || u > max)
                GETTER_FAIL(c, old, "must be between %" PRIu64 " and %" PRIu64 ", got %s", min, max,
                            PJ_GOT(v));
        pj_pop(c, old);
        *ret = u;
        return 1;
}

/* The index of s in names[0..n) with its bit in mask, or -1. */
static int find_name(const char *s, const char *const *names, size_t n, unsigned mask)
{
        for (size_t i = 0; s && i < n; i++)
                if (names[i] && (mask & (1u << i)) && strcmp(names[i], s) == 0)
                        return (int)i;
        return -1;
}

/* "expected one of …, got …[; did you mean …?]" at the current path. */
static void bad_name(struct pj *c, struct json_object *v, const char *const *names, size_t n,
                     unsigned mask)
{
        const char *allowed[33] = {};
        const char *s = string_of(v), *sugg = NULL;
        char list[512];
        size_t k = 0;

        for (size_t i = 0; i < n && k < 32; i++)
                if (names[i] && (mask & (1u << i)))
                        allowed[k++] = names[i];
        if (s)
                sugg = pj_suggest(s, allowed);
        pj_problem(c, "expected one of %s, got %s%s%s%s",
                   pj_join_names(names, n, mask, list, sizeof(list)), PJ_GOT(v),
                   sugg ? "; did you mean \"" : "", sugg ? sugg : "", sugg ? "\"?" : "");
}

int pj_get_enum(struct pj *c, struct json_object *obj, const char *key, const char *const *names,
                size_t n, int *ret)
{
        struct json_object *v;
        size_t old;
        int i;

        if (!lookup(c, obj, key, &v, &old))
                return 0;
        i = find_name(string_of(v), names, n, ~0u);
        if (i < 0) {
                bad_name(c, v, names, n, ~0u);
                pj_pop(c, old);
                return -EINVAL;
        }
        pj_pop(c, old);
        *ret = i;
        return 1;
}

int pj_get_name_list(struct pj *c, struct json_object *obj, const char *key,
                     const char *const *names, size_t n, unsigned allowed_mask, unsigned *ret)
{
        struct json_object *arr;
        unsigned mask = 0;
        bool bad = false;
        size_t old, len;
        char list[512];
        int r;

        r = pj_get_array(c, obj, key, 32, &arr);
        if (r <= 0)
                return r;
        old = pj_push_key(c, key);
        len = json_object_array_length(arr);
        if (len == 0)
                GETTER_FAIL(c, old, "must list at least one of %s",
                            pj_join_names(names, n, allowed_mask, list, sizeof(list)));
        for (size_t i = 0; i < len; i++) {
                struct json_object *v = json_object_array_get_idx(arr, i);
                size_t o = pj_push_index(c, i);
                int k = find_name(string_of(v), names, n, allowed_mask);

                if (k < 0) {
                        bad_name(c, v, names, n, allowed_mask);
                        bad = true;
                } else if (mask & (1u << k)) {
                        pj_problem(c, "\"%s\" is listed twice", names[k]);
                        bad = true;
                } else
                        mask |= 1u << k;
                pj_pop(c, o);
        }
        pj_pop(c, old);
        if (bad)
                return -EINVAL;
        *ret = mask;
        return 1;
}

/* SPDX-License-Identifier: MIT */
/*
 * Probe stage: pure parsers for cgroup v2 memory files, pressure lines and the units that
 * policies use. They read the caller's buffer in place (no copy, no allocation, no I/O) and
 * fill a local struct that reaches ret_* only when the whole input was good.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "memgov/macro.h"
#include "memgov/parse.h"

#define NANO ((uint64_t)1000000000)

/*
 * A non-negative decimal as a user or the kernel writes it: "12" or "12.345". The fraction
 * is kept in billionths, so "1.5G" and "97.5%" are computed exactly in integers; digits
 * past the ninth only ever round down, which is what every caller wants.
 */
struct decimal {
        uint64_t whole;
        uint64_t frac_nano; /* 0 .. NANO - 1 */
        bool has_point;
};

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static char to_lower(char c)
{
        return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/*
 * Digits only, no sign, no space: strtoull() would take "-1" as UINT64_MAX and skip
 * leading blanks. The syntax is checked before the value so that "99999999999999999999x" is
 * junk (-EINVAL), not a range problem.
 */
static int span_to_u64(const char *p, size_t n, uint64_t *ret)
{
        uint64_t v = 0;

        if (n == 0)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!is_digit(p[i]))
                        return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (__builtin_mul_overflow(v, 10, &v) ||
                    __builtin_add_overflow(v, (uint64_t)(p[i] - '0'), &v))
                        return -ERANGE;
        *ret = v;
        return 0;
}

/* "D+" or "D+.D+"; nothing else (no sign, exponent, "nan", "inf", ".5" or "5."). */
static int span_to_decimal(const char *p, size_t n, struct decimal *ret)
{
        const char *dot = memchr(p, '.', n);
        struct decimal d = {};
        int r;

        r = span_to_u64(p, dot ? (size_t)(dot - p) : n, &d.whole);
        if (r == -ERANGE) {
                /* still junk if the fraction is not digits */
                if (dot)
                        for (const char *q = dot + 1; q < p + n; q++)
                                if (!is_digit(*q))
                                        return -EINVAL;
                return r;
        }
        if (r < 0)
                return r;
        if (dot) {
                const char *f = dot + 1;
                size_t fn = n - (size_t)(f - p);
                uint64_t scale = NANO;

                if (fn == 0)
                        return -EINVAL;
                for (size_t i = 0; i < fn; i++) {
                        if (!is_digit(f[i]))
                                return -EINVAL;
                        if (scale > 1) {
                                scale /= 10;
                                d.frac_nano += (uint64_t)(f[i] - '0') * scale;
                        }
                }
                d.has_point = true;
        }
        *ret = d;
        return 0;
}

/* value * mult, rounded down; -ERANGE past UINT64_MAX. */
static int decimal_scale(const struct decimal *d, uint64_t mult, uint64_t *ret)
{
        unsigned __int128 v =
                (unsigned __int128)d->whole * mult + (unsigned __int128)d->frac_nano * mult / NANO;

        if (v > UINT64_MAX)
                return -ERANGE;
        *ret = (uint64_t)v;
        return 0;
}

/* The length of the leading "[0-9.]*" run: the number in "1.5G" or "500ms". */
static size_t number_prefix_len(const char *s)
{
        size_t n = 0;

        while (is_digit(s[n]) || s[n] == '.')
                n++;
        return n;
}

static bool span_eq(const char *p, size_t n, const char *word)
{
        return strlen(word) == n && memcmp(p, word, n) == 0;
}

static bool span_eq_nocase(const char *p, size_t n, const char *word)
{
        if (strlen(word) != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (to_lower(p[i]) != word[i])
                        return false;
        return true;
}

/* The end of the line starting at p: its '\n' or the terminating NUL. */
static const char *line_end(const char *p)
{
        const char *e = strchr(p, '\n');
        return e ? e : p + strlen(p);
}

/* Optional single '\n', then the end of the string: the tail of a one-value cgroup file. */
static size_t strip_one_newline(const char *s)
{
        size_t n = strlen(s);

        if (n > 0 && s[n - 1] == '\n')
                n--;
        return n;
}

int parse_u64(const char *buf, uint64_t *ret)
{
        if (!buf)
                return -EINVAL;
        return span_to_u64(buf, strip_one_newline(buf), ret);
}

int parse_limit(const char *buf, uint64_t *ret_bytes)
{
        size_t n;

        if (!buf)
                return -EINVAL;
        n = strip_one_newline(buf);
        if (span_eq(buf, n, "max")) {
                *ret_bytes = CGROUP_LIMIT_MAX;
                return 0;
        }
        return span_to_u64(buf, n, ret_bytes);
}

struct flat_key {
        const char *name;
        size_t len;    /* strlen(name) */
        size_t offset; /* of a uint64_t in the target struct */
};

#define FLAT_KEYS_MAX    64 /* the seen mask's bits */
#define FLAT_KEY_LEN_MAX 32 /* longer keys are not indexed (none are) */
#define FLAT_NONE        0xff

/*
 * A table of keys with an index by length, made at the first parse: a line's key is
 * compared only with the known keys of its length (memory.stat has about 60 lines and
 * memgov reads 21 of its keys, on every sample).
 */
struct flat_table {
        const struct flat_key *keys;
        size_t n_keys;
        bool indexed;
        uint8_t first[FLAT_KEY_LEN_MAX + 1]; /* by length: the first key of it, or FLAT_NONE */
        uint8_t next[FLAT_KEYS_MAX];         /* the next key of the same length */
};

static void flat_table_index(struct flat_table *t)
{
        memset(t->first, FLAT_NONE, sizeof(t->first));
        memset(t->next, FLAT_NONE, sizeof(t->next));
        for (size_t i = t->n_keys; i-- > 0;) {
                size_t len = t->keys[i].len;
                if (len > FLAT_KEY_LEN_MAX)
                        continue;
                t->next[i] = t->first[len];
                t->first[len] = (uint8_t)i;
        }
        t->indexed = true;
}

/* The index of the key k[0..klen) in t, or -1. */
static int flat_table_find(const struct flat_table *t, const char *k, size_t klen)
{
        if (klen > FLAT_KEY_LEN_MAX)
                return -1;
        for (uint8_t i = t->first[klen]; i != FLAT_NONE; i = t->next[i])
                if (memcmp(k, t->keys[i].name, klen) == 0)
                        return i;
        return -1;
}

static bool is_key_char(char c)
{
        return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

/*
 * A flat-keyed file ("KEY VALUE\n" per line) into the uint64_t fields of out, which the
 * caller zeroed. Keys are compared whole, so "oom" never matches "oom_kill". Unknown keys
 * are skipped with their values unread (new kernels add keys); a known key seen twice is
 * -EINVAL, because the kernel never prints one twice and two reads glued together must not
 * pass for one.
 */
static int parse_flat_keyed(const char *buf, struct flat_table *t, void *out)
{
        uint64_t seen = 0; /* bit i: keys[i] was read; tables have at most 64 keys */

        if (!buf)
                return -EINVAL;
        if (!t->indexed)
                flat_table_index(t);
        for (const char *p = buf; *p;) {
                const char *eol = line_end(p);
                const char *k = p;
                size_t klen = 0;

                p = *eol ? eol + 1 : eol;
                if (eol == k)
                        continue; /* blank line */

                while (k + klen < eol && is_key_char(k[klen]))
                        klen++;
                if (klen == 0 || k + klen == eol || k[klen] != ' ')
                        return -EINVAL;

                int i = flat_table_find(t, k, klen);
                if (i < 0)
                        continue;
                const char *v = k + klen + 1;
                uint64_t value;
                if (seen & (UINT64_C(1) << i))
                        return -EINVAL;
                int r = span_to_u64(v, (size_t)(eol - v), &value);
                if (r < 0)
                        return r;
                memcpy((char *)out + t->keys[i].offset, &value, sizeof(value));
                seen |= UINT64_C(1) << i;
        }
        return 0;
}

#define EVENT_KEY(f)                                                                               \
        {                                                                                          \
#f, sizeof(#f) - 1, offsetof(struct memory_events, f)                              \
        }
static const struct flat_key memory_events_keys[] = {
        EVENT_KEY(low), EVENT_KEY(high),     EVENT_KEY(max),
        EVENT_KEY(oom), EVENT_KEY(oom_kill), EVENT_KEY(oom_group_kill),
};

_Static_assert(ELEMENTSOF(memory_events_keys) <= FLAT_KEYS_MAX, "seen mask");
static struct flat_table memory_events_table = {.keys = memory_events_keys,
                                                .n_keys = ELEMENTSOF(memory_events_keys)};

int parse_memory_events(const char *buf, struct memory_events *ret)
{
        struct memory_events e = {};
        int r;

        r = parse_flat_keyed(buf, &memory_events_table, &e);
        if (r < 0)
                return r;
        *ret = e;
        return 0;
}

#define STAT_KEY(f)                                                                                \
        {                                                                                          \
#f, sizeof(#f) - 1, offsetof(struct memory_stat, f)                                \
        }
static const struct flat_key memory_stat_keys[] = {
        STAT_KEY(anon),
        STAT_KEY(file),
        STAT_KEY(kernel),
        STAT_KEY(kernel_stack),
        STAT_KEY(sock),
        STAT_KEY(shmem),
        STAT_KEY(slab),
        STAT_KEY(slab_reclaimable),
        STAT_KEY(slab_unreclaimable),
        STAT_KEY(file_mapped),
        STAT_KEY(file_dirty),
        STAT_KEY(file_writeback),
        STAT_KEY(anon_thp),
        STAT_KEY(inactive_anon),
        STAT_KEY(active_anon),
        STAT_KEY(inactive_file),
        STAT_KEY(active_file),
        STAT_KEY(unevictable),
        STAT_KEY(pgmajfault),
        STAT_KEY(workingset_refault_anon),
        STAT_KEY(workingset_refault_file),
};

_Static_assert(ELEMENTSOF(memory_stat_keys) <= FLAT_KEYS_MAX, "seen mask");
static struct flat_table memory_stat_table = {.keys = memory_stat_keys,
                                              .n_keys = ELEMENTSOF(memory_stat_keys)};

int parse_memory_stat(const char *buf, struct memory_stat *ret)
{
        struct memory_stat s = {};
        int r;

        r = parse_flat_keyed(buf, &memory_stat_table, &s);
        if (r < 0)
                return r;
        *ret = s;
        return 0;
}

/* An avgN= value: a percentage, 0..100 as the kernel prints it ("%lu.%02lu"). */
static int span_to_percent(const char *p, size_t n, double *ret)
{
        struct decimal d;
        int r;

        r = span_to_decimal(p, n, &d);
        if (r < 0)
                return r;
        if (d.whole > 100 || (d.whole == 100 && d.frac_nano > 0))
                return -ERANGE;
        *ret = (double)d.whole + (double)d.frac_nano / (double)NANO;
        return 0;
}

/*
 * The fields after "some " or "full ": exactly avg10=, avg60=, avg300= and total=, each
 * once, separated by single spaces, in any order. A line cut short is -EINVAL.
 */
static int parse_pressure_fields(const char *p, const char *eol, struct pressure_line *ret)
{
        struct pressure_line l = {};
        unsigned seen = 0;

        for (;;) {
                const char *end = memchr(p, ' ', (size_t)(eol - p));
                const char *eq;
                size_t klen;
                unsigned bit;
                int r;

                if (!end)
                        end = eol;
                eq = memchr(p, '=', (size_t)(end - p));
                if (!eq)
                        return -EINVAL;
                klen = (size_t)(eq - p);
                if (span_eq(p, klen, "avg10")) {
                        bit = 1u << 0;
                        r = span_to_percent(eq + 1, (size_t)(end - eq - 1), &l.avg10_pct);
                } else if (span_eq(p, klen, "avg60")) {
                        bit = 1u << 1;
                        r = span_to_percent(eq + 1, (size_t)(end - eq - 1), &l.avg60_pct);
                } else if (span_eq(p, klen, "avg300")) {
                        bit = 1u << 2;
                        r = span_to_percent(eq + 1, (size_t)(end - eq - 1), &l.avg300_pct);
                } else if (span_eq(p, klen, "total")) {
                        bit = 1u << 3;
                        r = span_to_u64(eq + 1, (size_t)(end - eq - 1), &l.total_usec);
                } else
                        return -EINVAL;
                if (r < 0)
                        return r;
                if (seen & bit)
                        return -EINVAL;
                seen |= bit;
                if (end == eol)
                        break;
                p = end + 1;
        }
        if (seen != 0xf)
                return -EINVAL;
        *ret = l;
        return 0;
}

int parse_pressure(const char *buf, struct pressure *ret)
{
        struct pressure pr = {};
        bool has_some = false;

        if (!buf)
                return -EINVAL;
        for (const char *p = buf; *p;) {
                const char *eol = line_end(p);
                const char *line = p;
                struct pressure_line *target;
                bool *seen;
                int r;

                p = *eol ? eol + 1 : eol;
                if (eol == line)
                        continue; /* blank line */
                if ((size_t)(eol - line) > 5 && memcmp(line, "some ", 5) == 0) {
                        target = &pr.some;
                        seen = &has_some;
                } else if ((size_t)(eol - line) > 5 && memcmp(line, "full ", 5) == 0) {
                        target = &pr.full;
                        seen = &pr.has_full;
                } else
                        return -EINVAL;
                if (*seen)
                        return -EINVAL;
                r = parse_pressure_fields(line + 5, eol, target);
                if (r < 0)
                        return r;
                *seen = true;
        }
        if (!has_some)
                return -EINVAL;
        *ret = pr;
        return 0;
}

enum size_kind {
        SIZE_BYTES,
        SIZE_PERCENT,
        SIZE_MAX_WORD,
};

/*
 * Split a size into its number and unit. Units: none or "B" (bytes), K M G T P E each
 * optionally followed by "B" or "iB" (all binary, case-insensitive), or "%". A fraction
 * of a byte ("1.5", "1.5B") is -EINVAL: it is a typo, not a size.
 */
static int size_split(const char *s, enum size_kind *ret_kind, struct decimal *ret_num,
                      uint64_t *ret_mult)
{
        static const char prefixes[] = "kmgtpe";
        struct decimal d;
        const char *unit;
        size_t un, nlen;
        uint64_t mult = 1;
        int r;

        if (!s)
                return -EINVAL;
        if (strcmp(s, "max") == 0) {
                *ret_kind = SIZE_MAX_WORD;
                return 0;
        }
        nlen = number_prefix_len(s);
        unit = s + nlen;
        un = strlen(unit);

        if (span_eq(unit, un, "%")) {
                r = span_to_decimal(s, nlen, &d);
                if (r < 0)
                        return r;
                *ret_kind = SIZE_PERCENT;
                *ret_num = d;
                return 0;
        }
        if (un > 0) {
                const char *pfx = strchr(prefixes, to_lower(unit[0]));

                if (pfx && *pfx) {
                        mult = UINT64_C(1) << (10 * (pfx - prefixes + 1));
                        unit++;
                        un--;
                        if (!(un == 0 || span_eq_nocase(unit, un, "b") ||
                              span_eq_nocase(unit, un, "ib")))
                                return -EINVAL;
                } else if (!span_eq_nocase(unit, un, "b"))
                        return -EINVAL;
        }
        r = span_to_decimal(s, nlen, &d);
        if (r < 0)
                return r;
        if (d.has_point && mult == 1)
                return -EINVAL;
        *ret_kind = SIZE_BYTES;
        *ret_num = d;
        *ret_mult = mult;
        return 0;
}

int parse_size(const char *s, uint64_t base_bytes, uint64_t *ret_bytes)
{
        enum size_kind kind;
        struct decimal d;
        uint64_t mult = 1, v;
        int r;

        r = size_split(s, &kind, &d, &mult);
        if (r < 0)
                return r;
        switch (kind) {
        case SIZE_MAX_WORD:
                *ret_bytes = CGROUP_LIMIT_MAX;
                return 0;
        case SIZE_PERCENT: {
                unsigned __int128 x;

                if (base_bytes == 0)
                        return -EINVAL;
                /* bounds the product below 2^124; no sane percent comes near */
                if (d.whole >= NANO)
                        return -ERANGE;
                x = (unsigned __int128)base_bytes * (d.whole * NANO + d.frac_nano) /
                    ((unsigned __int128)100 * NANO);
                if (x > UINT64_MAX)
                        return -ERANGE;
                *ret_bytes = (uint64_t)x;
                return 0;
        }
        case SIZE_BYTES:
                break;
        }
        r = decimal_scale(&d, mult, &v);
        if (r < 0)
                return r;
        *ret_bytes = v;
        return 0;
}

int parse_size_or_share(const char *s, uint64_t *ret_bytes, uint32_t *ret_permille)
{
        enum size_kind kind;
        struct decimal d;
        uint64_t mult = 1, v;
        int r;

        r = size_split(s, &kind, &d, &mult);
        if (r < 0)
                return r;
        switch (kind) {
        case SIZE_MAX_WORD:
                *ret_bytes = CGROUP_LIMIT_MAX;
                *ret_permille = 0;
                return 0;
        case SIZE_PERCENT: {
                uint64_t permille;

                if (d.whole > 100 || (d.whole == 100 && d.frac_nano > 0))
                        return -ERANGE;
                permille = d.whole * 10 + d.frac_nano / (NANO / 10);
                if (permille == 0)
                        return -ERANGE; /* 0 would read as "absolute" */
                *ret_bytes = 0;
                *ret_permille = (uint32_t)permille;
                return 0;
        }
        case SIZE_BYTES:
                break;
        }
        r = decimal_scale(&d, mult, &v);
        if (r < 0)
                return r;
        *ret_bytes = v;
        *ret_permille = 0;
        return 0;
}

int parse_duration(const char *s, uint64_t *ret_usec)
{
        static const struct {
                const char *unit;
                uint64_t usec;
        } units[] = {
                {"", USEC_PER_SEC},     {"s", USEC_PER_SEC},
                {"ms", USEC_PER_MSEC},  {"us", 1},
                {"m", USEC_PER_MINUTE}, {"min", USEC_PER_MINUTE},
                {"h", USEC_PER_HOUR},   {"d", 24 * USEC_PER_HOUR},
        };
        struct decimal d;
        const char *unit;
        size_t nlen;
        uint64_t v;
        int r;

        if (!s)
                return -EINVAL;
        nlen = number_prefix_len(s);
        unit = s + nlen;
        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                if (strcmp(unit, units[i].unit) != 0)
                        continue;
                r = span_to_decimal(s, nlen, &d);
                if (r < 0)
                        return r;
                r = decimal_scale(&d, units[i].usec, &v);
                if (r < 0)
                        return r;
                *ret_usec = v;
                return 0;
        }
        return -EINVAL;
}

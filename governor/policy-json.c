/* SPDX-License-Identifier: MIT */
/*
 * Strict JSON reading for policies and the daemon config (before probe): parse, locate
 * syntax errors by line and column, walk paths, check types and ranges, suggest keys.
 * Every problem becomes one "FILE: PATH: message" line; the caller goes on after each.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "memgov/macro.h"
#include "memgov/parse.h"
#include "policy-json.h"

/* ---- reading ---------------------------------------------------------------------------- */

int pj_read_file(const char *path, struct diag *diag, char **ret_buf, size_t *ret_len)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t len = 0;
        int r;

        /* O_NONBLOCK: a FIFO named like a policy must not hang the loader */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0 || fstat(fd, &st) < 0) {
                r = negative_errno();
                (void)diag_add(diag, "%s: cannot read: %s", path, strerror(-r));
                return r;
        }
        if (S_ISDIR(st.st_mode)) {
                (void)diag_add(diag, "%s: is a directory, not a JSON file", path);
                return -EISDIR;
        }
        if (!S_ISREG(st.st_mode)) {
                (void)diag_add(diag, "%s: not a regular file", path);
                return -EINVAL;
        }

        buf = malloc(PJ_MAX_FILE_BYTES + 2);
        if (!buf)
                return -ENOMEM;
        /* read one byte past the limit: the file may have grown since fstat() */
        while (len <= PJ_MAX_FILE_BYTES) {
                ssize_t n = read(fd, buf + len, PJ_MAX_FILE_BYTES + 1 - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        (void)diag_add(diag, "%s: cannot read: %s", path, strerror(-r));
                        return r;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        if (len > PJ_MAX_FILE_BYTES) {
                (void)diag_add(diag, "%s: larger than 1 MiB, the limit for a policy or config file",
                               path);
                return -EFBIG;
        }
        buf[len] = '\0';
        *ret_buf = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

/* ---- problems and paths --------------------------------------------------------------- */

static _printf_(3, 0) void add_problem(struct pj *c, const char *where, const char *fmt, va_list ap)
{
        _cleanup_free_ char *msg = NULL;

        c->n_problems++;
        if (c->n_problems > PJ_MAX_PROBLEMS + 1)
                return;
        if (c->n_problems == PJ_MAX_PROBLEMS + 1) {
                if (diag_add(c->diag, "%s: more problems not shown (stopped after %d)", c->file,
                             PJ_MAX_PROBLEMS) < 0)
                        c->oom = true;
                return;
        }
        if (vasprintf(&msg, fmt, ap) < 0) {
                msg = NULL;
                c->oom = true;
                return;
        }
        if (diag_add(c->diag, "%s%s%s", c->file, where, msg) < 0)
                c->oom = true;
}

void pj_problem(struct pj *c, const char *fmt, ...)
{
        char where[PJ_PATH_MAX + 4];
        va_list ap;

        (void)snprintf(where, sizeof(where), ": %s: ", pj_path(c));
        va_start(ap, fmt);
        add_problem(c, where, fmt, ap);
        va_end(ap);
}

void pj_problem_at(struct pj *c, const char *path, const char *fmt, ...)
{
        char where[PJ_PATH_MAX + 4];
        va_list ap;

        (void)snprintf(where, sizeof(where), ": %s: ", path);
        va_start(ap, fmt);
        add_problem(c, where, fmt, ap);
        va_end(ap);
}

/* A syntax problem: "FILE:LINE:COL: invalid JSON: message", columns counted in characters. */
void pj_syntax_problem(struct pj *c, const char *buf, size_t off, const char *fmt, ...)
{
        char where[64];
        unsigned line = 1, col = 1;
        va_list ap;

        for (size_t i = 0; i < off; i++) {
                if (buf[i] == '\n') {
                        line++;
                        col = 1;
                } else if (((unsigned char)buf[i] & 0xc0) != 0x80)
                        col++;
        }
        (void)snprintf(where, sizeof(where), ":%u:%u: invalid JSON: ", line, col);
        va_start(ap, fmt);
        add_problem(c, where, fmt, ap);
        va_end(ap);
}

unsigned pj_line_of(const char *buf, size_t off)
{
        unsigned line = 1;

        for (size_t i = 0; i < off; i++)
                if (buf[i] == '\n')
                        line++;
        return line;
}

const char *pj_path(struct pj *c)
{
        return c->path_len == 0 ? "." : c->path;
}

/* Append s to buf (JSON string escapes), at most max source bytes, cut at a UTF-8 boundary. */
static void append_escaped(char *buf, size_t size, const char *s, size_t n, size_t max)
{
        size_t len = strlen(buf);
        bool cut = n > max;

        if (cut) {
                n = max;
                while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
                        n--;
        }
        for (size_t i = 0; i < n && len + 8 < size; i++) {
                unsigned char ch = (unsigned char)s[i];
                if (ch == '"' || ch == '\\')
                        len += (size_t)snprintf(buf + len, size - len, "\\%c", ch);
                else if (ch < 0x20 || ch == 0x7f)
                        len += (size_t)snprintf(buf + len, size - len, "\\u%04x", ch);
                else
                        buf[len++] = (char)ch;
        }
        buf[len] = '\0';
        if (cut && len + 4 < size)
                strcat(buf, "…");
}

static bool is_plain_key(const char *key)
{
        size_t n = strlen(key);

        if (n == 0 || n > 64)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(key[i] == '_' || key[i] == '-' || key[i] == '$' ||
                      (key[i] >= '0' && key[i] <= '9') || (key[i] >= 'a' && key[i] <= 'z') ||
                      (key[i] >= 'A' && key[i] <= 'Z')))
                        return false;
        return true;
}

size_t pj_push_key(struct pj *c, const char *key)
{
        size_t old = c->path_len;
        char part[160] = "";

        if (is_plain_key(key))
                (void)snprintf(part, sizeof(part), ".%s", key);
        else {
                strcpy(part, ".[\"");
                append_escaped(part, sizeof(part) - 3, key, strlen(key), 40);
                strcat(part, "\"]");
        }
        (void)snprintf(c->path + old, sizeof(c->path) - old, "%s", part);
        c->path_len = strlen(c->path);
        return old;
}

size_t pj_push_index(struct pj *c, size_t i)
{
        size_t old = c->path_len;

        (void)snprintf(c->path + old, sizeof(c->path) - old, "[%zu]", i);
        c->path_len = strlen(c->path);
        return old;
}

void pj_pop(struct pj *c, size_t len)
{
        c->path_len = len;
        c->path[len] = '\0';
}

const char *pj_got(struct json_object *v, char *buf, size_t size)
{
        buf[0] = '\0';
        switch (json_object_get_type(v)) {
        case json_type_null:
                (void)snprintf(buf, size, "null");
                break;
        case json_type_object:
                (void)snprintf(buf, size, "an object");
                break;
        case json_type_array:
                (void)snprintf(buf, size, "an array");
                break;
        case json_type_string:
                (void)snprintf(buf, size, "\"");
                append_escaped(buf, size - 2, json_object_get_string(v),
                               (size_t)json_object_get_string_len(v), 40);
                strcat(buf, "\"");
                break;
        default: {
                /* numbers keep the text they were written with ("1.50", "1e400") */
                const char *s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
                (void)snprintf(buf, size, "%.40s", s ? s : "?");
                break;
        }
        }
        return buf;
}

/* ---- suggestions ---------------------------------------------------------------------- */

static char lower(char ch)
{
        return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* Optimal string alignment distance (edits and adjacent swaps), case-insensitive. */
static size_t edit_distance(const char *a, const char *b)
{
        size_t n = strlen(a), m = strlen(b);
        size_t d[65][65];

        if (n > 64 || m > 64)
                return SIZE_MAX;
        for (size_t i = 0; i <= n; i++)
                d[i][0] = i;
        for (size_t j = 0; j <= m; j++)
                d[0][j] = j;
        for (size_t i = 1; i <= n; i++)
                for (size_t j = 1; j <= m; j++) {
                        size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
                        size_t v = MIN(d[i - 1][j] + 1, d[i][j - 1] + 1);
                        v = MIN(v, d[i - 1][j - 1] + cost);
                        if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
                            lower(a[i - 2]) == lower(b[j - 1]))
                                v = MIN(v, d[i - 2][j - 2] + 1);
                        d[i][j] = v;
                }
        return d[n][m];
}

static bool has_prefix_nocase(const char *s, const char *prefix)
{
        for (; *prefix; s++, prefix++)
                if (lower(*s) != lower(*prefix))
                        return false;
        return true;
}

const char *pj_suggest(const char *word, const char *const *candidates)
{
        size_t wl = strlen(word), limit = wl >= 5 ? 2 : 1, best_d = SIZE_MAX;
        const char *best = NULL, *prefixed = NULL;
        unsigned n_prefixed = 0;

        for (const char *const *k = candidates; *k; k++) {
                size_t d = edit_distance(word, *k), kl = strlen(*k);
                if (d < best_d) {
                        best_d = d;
                        best = *k;
                }
                /* "crit" for "critical", "warning" for "warn", "timeout_s" for "timeout" */
                if ((wl >= 3 && wl < kl && has_prefix_nocase(*k, word)) ||
                    (kl >= 3 && kl < wl && has_prefix_nocase(word, *k))) {
                        prefixed = *k;
                        n_prefixed++;
                }
        }
        if (best && best_d <= limit)
                return best;
        if (n_prefixed == 1)
                return prefixed;
        return NULL;
}

const char *pj_join_names(const char *const *names, size_t n, unsigned mask, char *buf, size_t size)
{
        size_t len = 0;
        bool first = true;

        buf[0] = '\0';
        for (size_t i = 0; i < n && len < size; i++) {
                if (!names[i] || !(mask & (1u << i)))
                        continue;
                len += (size_t)snprintf(buf + len, size - len, "%s\"%s\"", first ? "" : ", ",
                                        names[i]);
                first = false;
        }
        return buf;
}

static size_t count_names(const char *const *names)
{
        size_t n = 0;

        while (names[n])
                n++;
        return n;
}

unsigned pj_check_keys(struct pj *c, struct json_object *obj, const char *const *keys)
{
        unsigned unknown = 0;

        json_object_object_foreach (obj, key, val) {
                const char *s;
                bool known = false;
                size_t old;

                (void)val;
                for (const char *const *k = keys; *k; k++)
                        if (strcmp(*k, key) == 0)
                                known = true;
                if (known)
                        continue;

                unknown++;
                old = pj_push_key(c, key);
                s = pj_suggest(key, keys);
                if (s) {
                        pj_problem(c, "unknown key; did you mean \"%s\"?", s);
                } else {
                        /* a known key in the wrong object: say where it belongs */
                        char where[256] = "";
                        size_t n_where = 0, len = 0;

                        for (const struct pj_object_keys *o = c->objects; o && o->path; o++)
                                for (const char *const *k = o->keys; *k; k++)
                                        if (strcmp(*k, key) == 0 && n_where < 3 &&
                                            len < sizeof(where)) {
                                                len += (size_t)snprintf(
                                                        where + len, sizeof(where) - len, "%s%s",
                                                        n_where ? " or " : "", o->path);
                                                n_where++;
                                        }
                        if (n_where > 0) {
                                pj_problem(c, "unknown key here; \"%s\" belongs in %s", key, where);
                        } else {
                                char list[512];
                                size_t n = count_names(keys);

                                pj_problem(c, "unknown key; the keys here are %s",
                                           pj_join_names(keys, n, ~0u, list, sizeof(list)));
                        }
                }
                pj_pop(c, old);
        }
        return unknown;
}

/* ---- formatting ----------------------------------------------------------------------- */

const char *pj_format_duration(uint64_t usec, char *buf, size_t size)
{
        static const struct {
                uint64_t usec;
                const char *unit;
        } units[] = {
                {USEC_PER_HOUR, "h"},
                {USEC_PER_MINUTE, "m"},
                {USEC_PER_SEC, "s"},
                {USEC_PER_MSEC, "ms"},
                {1, "us"},
        };

        if (usec == 0) {
                (void)snprintf(buf, size, "0s");
                return buf;
        }
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (usec % units[i].usec == 0) {
                        (void)snprintf(buf, size, "%" PRIu64 "%s", usec / units[i].usec,
                                       units[i].unit);
                        break;
                }
        return buf;
}

const char *pj_format_permille(uint32_t permille, char *buf, size_t size)
{
        if (permille % 10 == 0)
                (void)snprintf(buf, size, "%u%%", permille / 10);
        else
                (void)snprintf(buf, size, "%u.%u%%", permille / 10, permille % 10);
        return buf;
}

const char *pj_format_bytes(uint64_t bytes, char *buf, size_t size)
{
        static const char units[] = "KMGTPE";

        for (int i = 5; i >= 0; i--) {
                uint64_t m = UINT64_C(1) << (10 * (i + 1));
                if (bytes >= m && bytes % m == 0) {
                        (void)snprintf(buf, size, "%" PRIu64 "%c", bytes / m, units[i]);
                        return buf;
                }
        }
        (void)snprintf(buf, size, "%" PRIu64, bytes);
        return buf;
}

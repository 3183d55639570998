/* SPDX-License-Identifier: MIT */
/*
 * Strict JSON parsing for policies and the daemon config (before probe): json-c's strict
 * tokenizer, then a pass for what it lets through, with each syntax error placed by line
 * and column and worded so that the fix is obvious.
 */
#include <string.h>

#include "memgov/macro.h"
#include "policy-json.h"

/* ---- parsing -------------------------------------------------------------------------- */

static bool is_ws(char ch)
{
        return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* "'x'" for a printable ASCII character, else "byte 0xNN". */
static const char *describe_char(char ch, char *buf, size_t size)
{
        if (ch > 0x20 && ch < 0x7f)
                (void)snprintf(buf, size, "'%c'", ch);
        else
                (void)snprintf(buf, size, "byte 0x%02x", (unsigned char)ch);
        return buf;
}
#define DESCRIBE_CHAR(ch) describe_char((ch), (char[16]){}, 16)

/* The offset of the last non-blank byte before off, or SIZE_MAX. */
static size_t prev_token(const char *buf, size_t off)
{
        while (off > 0) {
                off--;
                if (!is_ws(buf[off]))
                        return off;
        }
        return SIZE_MAX;
}

/* Turn json-c's error at off into a message a person can act on. */
static void jsonc_error(struct pj *c, const char *buf, size_t len, size_t off,
                        enum json_tokener_error e)
{
        size_t prev = prev_token(buf, MIN(off, len));
        char ch = off < len ? buf[off] : '\0';
        char hint[96] = "";

        if (e == json_tokener_continue || off >= len) {
                pj_syntax_problem(c, buf, prev == SIZE_MAX ? 0 : prev + 1,
                                  "unexpected end of file; is a closing '}' or ']' missing?");
                return;
        }
        if (ch == '/' && off + 1 < len && (buf[off + 1] == '/' || buf[off + 1] == '*')) {
                pj_syntax_problem(c, buf, off, "comments are not allowed in JSON");
                return;
        }
        if ((ch == '}' || ch == ']') && prev != SIZE_MAX && buf[prev] == ',') {
                pj_syntax_problem(c, buf, prev, "trailing comma before '%c'; JSON allows none", ch);
                return;
        }
        if (prev != SIZE_MAX && pj_line_of(buf, prev) < pj_line_of(buf, off))
                (void)snprintf(hint, sizeof(hint), "; is a ',' missing at the end of line %u?",
                               pj_line_of(buf, prev));

        switch (e) {
        case json_tokener_error_depth:
                pj_syntax_problem(c, buf, off, "nested more than %d levels deep", PJ_MAX_DEPTH);
                break;
        case json_tokener_error_parse_null:
        case json_tokener_error_parse_boolean:
                pj_syntax_problem(c, buf, off,
                                  "invalid literal; JSON has true, false and null, in lower case");
                break;
        case json_tokener_error_parse_number:
                pj_syntax_problem(c, buf, off, "invalid number");
                break;
        case json_tokener_error_parse_array:
                pj_syntax_problem(c, buf, off, "expected ',' or ']' after an array element%s",
                                  hint);
                break;
        case json_tokener_error_parse_object_key_name:
                if (ch == '\'')
                        pj_syntax_problem(c, buf, off, "keys need double quotes (\"), not single");
                else
                        pj_syntax_problem(c, buf, off, "expected a key in double quotes, got %s",
                                          DESCRIBE_CHAR(ch));
                break;
        case json_tokener_error_parse_object_key_sep:
                pj_syntax_problem(c, buf, off, "expected ':' after the key, got %s",
                                  DESCRIBE_CHAR(ch));
                break;
        case json_tokener_error_parse_object_value_sep:
                pj_syntax_problem(c, buf, off, "expected ',' or '}' after a value%s", hint);
                break;
        case json_tokener_error_parse_string:
                pj_syntax_problem(c, buf, off, "invalid escape sequence in a string");
                break;
        case json_tokener_error_parse_comment:
                pj_syntax_problem(c, buf, off, "comments are not allowed in JSON");
                break;
        case json_tokener_error_parse_utf8_string:
                /* json-c stops after a cut-short sequence: point at its lead byte */
                if ((unsigned char)ch < 0x80) {
                        size_t start = off;
                        while (start > 0 && off - start < 3 &&
                               ((unsigned char)buf[start - 1] & 0xc0) == 0x80)
                                start--;
                        if (start > 0 && (unsigned char)buf[start - 1] >= 0xc0)
                                start--;
                        off = start;
                }
                pj_syntax_problem(c, buf, off, "invalid UTF-8; save the file as UTF-8");
                break;
        default:
                if (ch == '\'')
                        pj_syntax_problem(c, buf, off,
                                          "strings need double quotes (\"), not single");
                else
                        pj_syntax_problem(c, buf, off, "unexpected %s%s", DESCRIBE_CHAR(ch), hint);
                break;
        }
}

/*
 * The strictness json-c 0.16 lacks even in strict mode, checked over a document json-c
 * has already accepted: single quotes, NaN/Infinity, "1.", raw control characters in
 * strings, and duplicate keys (json-c keeps the last one silently — a classic way to lose
 * a setting when two edits meet).
 */
struct lint {
        struct pj *c;
        const char *buf;
        size_t len, pos;
        bool failed;
};

struct lint_key {
        size_t start, end, off;
};

static bool lint_fail(struct lint *l, size_t off, const char *msg)
{
        pj_syntax_problem(l->c, l->buf, off, "%s", msg);
        l->failed = true;
        return false;
}

static void lint_ws(struct lint *l)
{
        while (l->pos < l->len && is_ws(l->buf[l->pos]))
                l->pos++;
}

static bool is_digit(char ch)
{
        return ch >= '0' && ch <= '9';
}

static bool is_alpha(char ch)
{
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool lint_string(struct lint *l, size_t *ret_start, size_t *ret_end)
{
        size_t i = l->pos;

        if (l->buf[i] == '\'')
                return lint_fail(l, i, "strings need double quotes (\"), not single");
        if (l->buf[i] != '"')
                return lint_fail(l, i, "expected a string");
        for (i++; i < l->len; i++) {
                unsigned char ch = (unsigned char)l->buf[i];
                if (ch == '"') {
                        *ret_start = l->pos + 1;
                        *ret_end = i;
                        l->pos = i + 1;
                        return true;
                }
                if (ch == '\\')
                        i++; /* json-c has checked the escape */
                else if (ch < 0x20)
                        return lint_fail(l, i,
                                         "a control character (tab, newline) inside a string must "
                                         "be written as an escape like \\t or \\n");
        }
        return lint_fail(l, i, "unterminated string");
}

static bool lint_number(struct lint *l)
{
        const char *b = l->buf;
        size_t i = l->pos, n = l->len;

        if (b[i] == '-')
                i++;
        if (i < n && is_alpha(b[i]))
                return lint_fail(l, l->pos, "invalid number; JSON has no NaN or Infinity");
        if (i < n && b[i] == '0')
                i++;
        else if (i < n && is_digit(b[i]))
                while (i < n && is_digit(b[i]))
                        i++;
        else
                return lint_fail(l, l->pos, "invalid number");
        if (i < n && b[i] == '.') {
                i++;
                if (i >= n || !is_digit(b[i]))
                        return lint_fail(l, l->pos, "invalid number; a digit must follow '.'");
                while (i < n && is_digit(b[i]))
                        i++;
        }
        if (i < n && (b[i] == 'e' || b[i] == 'E')) {
                i++;
                if (i < n && (b[i] == '+' || b[i] == '-'))
                        i++;
                if (i >= n || !is_digit(b[i]))
                        return lint_fail(l, l->pos, "invalid number");
                while (i < n && is_digit(b[i]))
                        i++;
        }
        l->pos = i;
        return true;
}

static bool lint_value(struct lint *l, unsigned depth);

static bool lint_object(struct lint *l, unsigned depth)
{
        _cleanup_free_ struct lint_key *keys = NULL;
        size_t n_keys = 0, cap = 0;

        l->pos++;
        lint_ws(l);
        if (l->pos < l->len && l->buf[l->pos] == '}') {
                l->pos++;
                return true;
        }
        for (;;) {
                size_t start, end, koff, old;
                char key[256];

                lint_ws(l);
                koff = l->pos;
                if (l->pos >= l->len || !lint_string(l, &start, &end))
                        return l->failed ? false : lint_fail(l, l->pos, "expected a key");
                (void)snprintf(key, sizeof(key), "%.*s", (int)MIN(end - start, 255),
                               l->buf + start);
                old = pj_push_key(l->c, key);

                for (size_t i = 0; i < n_keys; i++)
                        if (keys[i].end - keys[i].start == end - start &&
                            memcmp(l->buf + keys[i].start, l->buf + start, end - start) == 0) {
                                pj_problem(l->c,
                                           "given twice (lines %u and %u); only the last would "
                                           "count, remove one",
                                           pj_line_of(l->buf, keys[i].off),
                                           pj_line_of(l->buf, koff));
                                break;
                        }
                /* objects with hundreds of keys are garbage anyway: bound the work */
                if (n_keys < 512) {
                        if (n_keys == cap) {
                                size_t ncap = cap ? cap * 2 : 16;
                                struct lint_key *k = realloc(keys, ncap * sizeof(*k));
                                if (!k) {
                                        l->c->oom = true;
                                        return false;
                                }
                                keys = k;
                                cap = ncap;
                        }
                        keys[n_keys++] = (struct lint_key){start, end, koff};
                }

                lint_ws(l);
                if (l->pos >= l->len || l->buf[l->pos] != ':')
                        return lint_fail(l, l->pos, "expected ':' after the key");
                l->pos++;
                if (!lint_value(l, depth + 1))
                        return false;
                pj_pop(l->c, old);
                lint_ws(l);
                if (l->pos < l->len && l->buf[l->pos] == ',') {
                        l->pos++;
                        continue;
                }
                if (l->pos < l->len && l->buf[l->pos] == '}') {
                        l->pos++;
                        return true;
                }
                return lint_fail(l, l->pos, "expected ',' or '}' after a value");
        }
}

static bool lint_array(struct lint *l, unsigned depth)
{
        l->pos++;
        lint_ws(l);
        if (l->pos < l->len && l->buf[l->pos] == ']') {
                l->pos++;
                return true;
        }
        for (size_t i = 0;; i++) {
                size_t old = pj_push_index(l->c, i);

                if (!lint_value(l, depth + 1))
                        return false;
                pj_pop(l->c, old);
                lint_ws(l);
                if (l->pos < l->len && l->buf[l->pos] == ',') {
                        l->pos++;
                        continue;
                }
                if (l->pos < l->len && l->buf[l->pos] == ']') {
                        l->pos++;
                        return true;
                }
                return lint_fail(l, l->pos, "expected ',' or ']' after an array element");
        }
}

static bool lint_value(struct lint *l, unsigned depth)
{
        size_t start, end;
        char ch;

        lint_ws(l);
        if (l->pos >= l->len)
                return lint_fail(l, l->pos, "unexpected end of file");
        if (depth > PJ_MAX_DEPTH)
                return lint_fail(l, l->pos, "nested too deep");
        ch = l->buf[l->pos];
        if (ch == '{')
                return lint_object(l, depth);
        if (ch == '[')
                return lint_array(l, depth);
        if (ch == '"' || ch == '\'')
                return lint_string(l, &start, &end);
        if (ch == '-' || is_digit(ch))
                return lint_number(l);
        if (is_alpha(ch)) {
                size_t i = l->pos;
                while (i < l->len && is_alpha(l->buf[i]))
                        i++;
                if ((i - l->pos == 4 && memcmp(l->buf + l->pos, "true", 4) == 0) ||
                    (i - l->pos == 5 && memcmp(l->buf + l->pos, "false", 5) == 0) ||
                    (i - l->pos == 4 && memcmp(l->buf + l->pos, "null", 4) == 0)) {
                        l->pos = i;
                        return true;
                }
                return lint_fail(l, l->pos,
                                 "invalid literal; JSON has true, false and null, and no NaN "
                                 "or Infinity");
        }
        return lint_fail(l, l->pos, "unexpected character");
}

int pj_parse(struct pj *c, const char *buf, size_t len, struct json_object **ret)
{
        struct json_tokener *tok;
        struct json_object *obj;
        enum json_tokener_error e;
        size_t skip = 0, end, saved = c->path_len;
        const char *nul;

        /* a UTF-8 byte order mark is allowed by RFC 8259 parsers; some editors write one */
        if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
                skip = 3;
        nul = memchr(buf, '\0', len);
        if (nul) {
                pj_syntax_problem(c, buf, (size_t)(nul - buf),
                                  "a NUL byte; this is not a text file");
                return -EINVAL;
        }
        end = skip;
        while (end < len && is_ws(buf[end]))
                end++;
        if (end == len) {
                if (diag_add(c->diag, "%s: empty file; expected a JSON object {...}", c->file) < 0)
                        return -ENOMEM;
                c->n_problems++;
                return -EINVAL;
        }

        tok = json_tokener_new_ex(PJ_MAX_DEPTH);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
                                            JSON_TOKENER_VALIDATE_UTF8);
        obj = json_tokener_parse_ex(tok, buf + skip, (int)(len - skip));
        e = json_tokener_get_error(tok);
        end = skip + json_tokener_get_parse_end(tok);
        if (e == json_tokener_continue) {
                /* a top-level literal ("null", "12") ends only at the end of input: say so */
                obj = json_tokener_parse_ex(tok, "", 1);
                e = json_tokener_get_error(tok);
                end = len;
                if (e != json_tokener_success)
                        e = json_tokener_continue;
        }
        json_tokener_free(tok);

        if (e != json_tokener_success) {
                json_object_put(obj);
                jsonc_error(c, buf, len, end, e);
                return -EINVAL;
        }
        while (end < len && is_ws(buf[end]))
                end++;
        if (end < len) {
                json_object_put(obj);
                pj_syntax_problem(c, buf, end,
                                  "unexpected %s after the end of the top-level value; one file "
                                  "holds one object",
                                  DESCRIBE_CHAR(buf[end]));
                return -EINVAL;
        }

        struct lint l = {.c = c, .buf = buf, .len = len, .pos = skip};
        (void)lint_value(&l, 1);
        pj_pop(c, saved);
        if (l.failed || c->oom) {
                json_object_put(obj);
                return c->oom ? -ENOMEM : -EINVAL;
        }
        *ret = obj;
        return 0;
}

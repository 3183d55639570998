/* SPDX-License-Identifier: MIT */
/*
 * Record stage and replay input: the trace CSV (DESIGN.md §3). Parsing is pure and reports
 * every problem it finds, up to a limit, so that a hand-edited trace is fixed in one pass;
 * writing formats one sample per row.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memgov/diag.h"
#include "memgov/macro.h"
#include "memgov/trace.h"

#define TRACE_MAX_FILE_BYTES (UINT64_C(256) << 20)
#define TRACE_MAX_PROBLEMS   10

enum column {
        COL_T_MS,
        COL_CURRENT,
        COL_ANON,
        COL_FILE,
        COL_MAX,
        COL_HIGH,
        COL_EV_HIGH,
        COL_EV_MAX,
        COL_EV_OOM,
        COL_EV_OOM_KILL,
        COL_PSI_SOME,
        COL_PSI_FULL,
        _COL_COUNT,
        COL_UNKNOWN = -1,
};

/* In the order trace_write_header() writes them. */
static const char *const column_names[_COL_COUNT] = {
        [COL_T_MS] = "t_ms",
        [COL_CURRENT] = "current",
        [COL_ANON] = "anon",
        [COL_FILE] = "file",
        [COL_MAX] = "max",
        [COL_HIGH] = "high",
        [COL_EV_HIGH] = "ev_high",
        [COL_EV_MAX] = "ev_max",
        [COL_EV_OOM] = "ev_oom",
        [COL_EV_OOM_KILL] = "ev_oom_kill",
        [COL_PSI_SOME] = "psi_some_us",
        [COL_PSI_FULL] = "psi_full_us",
};

/* What a cell holds, for parsing it and for saying what was expected. */
static const char *const column_expects[_COL_COUNT] = {
        [COL_T_MS] = "milliseconds",
        [COL_CURRENT] = "bytes",
        [COL_ANON] = "bytes",
        [COL_FILE] = "bytes",
        [COL_MAX] = "bytes or \"max\"",
        [COL_HIGH] = "bytes or \"max\"",
        [COL_EV_HIGH] = "a count",
        [COL_EV_MAX] = "a count",
        [COL_EV_OOM] = "a count",
        [COL_EV_OOM_KILL] = "a count",
        [COL_PSI_SOME] = "microseconds",
        [COL_PSI_FULL] = "microseconds",
};

static bool column_is_event(enum column c)
{
        return c >= COL_EV_HIGH && c <= COL_EV_OOM_KILL;
}

struct span {
        const char *p;
        size_t n;
};

static bool is_blank(char c)
{
        return c == ' ' || c == '\t';
}

static struct span span_trim(struct span s)
{
        while (s.n > 0 && is_blank(s.p[0])) {
                s.p++;
                s.n--;
        }
        while (s.n > 0 && (is_blank(s.p[s.n - 1]) || s.p[s.n - 1] == '\r'))
                s.n--;
        return s;
}

static bool span_eq(struct span s, const char *word)
{
        return strlen(word) == s.n && memcmp(s.p, word, s.n) == 0;
}

/*
 * Cut the next field, up to sep or the end, off the front of *rest. *more says whether a
 * separator was found, i.e. whether another field (perhaps empty) follows.
 */
static struct span span_cut(struct span *rest, char sep, bool *more)
{
        const char *e = rest->n > 0 ? memchr(rest->p, sep, rest->n) : NULL;
        struct span field = *rest;

        if (!e) {
                rest->p += rest->n;
                rest->n = 0;
                *more = false;
                return field;
        }
        field.n = (size_t)(e - rest->p);
        rest->n -= field.n + 1;
        rest->p = e + 1;
        *more = true;
        return field;
}

static size_t span_count(struct span s, char c)
{
        size_t n = 0;

        for (size_t i = 0; i < s.n; i++)
                if (s.p[i] == c)
                        n++;
        return n;
}

/* Digits only: "-1", "+1", "1e3" and " 1" are not numbers here. */
static int span_to_u64(struct span s, uint64_t *ret)
{
        uint64_t v = 0;

        if (s.n == 0)
                return -EINVAL;
        for (size_t i = 0; i < s.n; i++)
                if (s.p[i] < '0' || s.p[i] > '9')
                        return -EINVAL;
        for (size_t i = 0; i < s.n; i++) {
                uint64_t d = (uint64_t)(s.p[i] - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

/* A cell as the user should see it in a message: quoted, escaped, at most ~40 chars. */
static void span_quote(struct span s, char *buf, size_t size)
{
        size_t o = 0;

        for (size_t i = 0; i < s.n; i++) {
                unsigned char c = (unsigned char)s.p[i];
                char esc[8];

                if (o + 8 >= size || i >= 40) {
                        snprintf(buf + o, size - o, "…");
                        return;
                }
                if (c == '"' || c == '\\')
                        snprintf(esc, sizeof(esc), "\\%c", c);
                else if (c < 0x20 || c >= 0x7f)
                        snprintf(esc, sizeof(esc), "\\x%02x", c);
                else
                        snprintf(esc, sizeof(esc), "%c", c);
                o += (size_t)snprintf(buf + o, size - o, "%s", esc);
        }
        buf[o] = '\0';
}

struct parser {
        const char *name;
        struct diag *diag;
        size_t n_problems;
};

/* Count a problem; keep the first TRACE_MAX_PROBLEMS as "NAME: line N: message". */
_printf_(3, 4) static void problem(struct parser *p, size_t line, const char *fmt, ...)
{
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        int r;

        if (p->n_problems++ >= TRACE_MAX_PROBLEMS || !p->diag)
                return;
        va_start(ap, fmt);
        r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0) {
                msg = NULL;
                return; /* the message is lost, the problem still counts */
        }
        (void)diag_add(p->diag, "%s: line %zu: %s", p->name, line, msg);
}

static void cell_problem(struct parser *p, size_t line, enum column c, struct span cell, int r)
{
        char quoted[128];

        span_quote(cell, quoted, sizeof(quoted));
        problem(p, line, "column '%s': expected %s, got \"%s\"%s", column_names[c],
                column_expects[c], quoted, r == -ERANGE ? " (too large)" : "");
}

/*
 * The header: which column each cell is. Unknown names are kept as COL_UNKNOWN and their
 * cells never read, so that traces with extra columns stay readable.
 */
static int parse_header(struct parser *p, struct span line, enum column **ret_cols, size_t *ret_n)
{
        _cleanup_free_ enum column *cols = NULL;
        bool seen[_COL_COUNT] = {};
        size_t n = span_count(line, ',') + 1, i = 0;
        size_t before = p->n_problems;

        cols = calloc(n, sizeof(enum column));
        if (!cols)
                return -ENOMEM;
        for (bool more = true; more;) {
                struct span cell = span_trim(span_cut(&line, ',', &more));

                cols[i] = COL_UNKNOWN;
                for (enum column c = 0; c < _COL_COUNT; c++) {
                        if (!span_eq(cell, column_names[c]))
                                continue;
                        if (seen[c])
                                problem(p, 1, "column '%s' appears twice", column_names[c]);
                        seen[c] = true;
                        cols[i] = c;
                        break;
                }
                i++;
        }
        static const enum column required[] = {COL_T_MS, COL_CURRENT, COL_MAX};
        for (size_t k = 0; k < ELEMENTSOF(required); k++)
                if (!seen[required[k]])
                        problem(p, 1,
                                "missing required column '%s' (the header needs t_ms, "
                                "current and max)",
                                column_names[required[k]]);
        if (p->n_problems > before)
                return -EINVAL;
        *ret_cols = TAKE_PTR(cols);
        *ret_n = n;
        return 0;
}

/*
 * One row into *ret. Every bad cell is reported; the row is kept only when all are good.
 * memory.events is read whole, so a row with some ev_ cells filled and others empty is a
 * damaged row, not a partial sample.
 */
static int parse_row(struct parser *p, size_t lineno, struct span line, const enum column *cols,
                     size_t n_cols, struct sample *ret)
{
        struct sample s = {};
        size_t before = p->n_problems, n = span_count(line, ',') + 1, i = 0;
        size_t n_events = 0, n_event_cols = 0;

        if (n != n_cols) {
                problem(p, lineno, "expected %zu columns as in the header, got %zu", n_cols, n);
                return -EINVAL;
        }
        for (bool more = true; more;) {
                struct span cell = span_trim(span_cut(&line, ',', &more));
                enum column c = cols[i++];
                uint64_t v = 0;
                int r;

                if (c == COL_UNKNOWN)
                        continue;
                if (column_is_event(c))
                        n_event_cols++;
                if (cell.n == 0) {
                        if (c == COL_T_MS || c == COL_CURRENT || c == COL_MAX)
                                problem(p, lineno, "column '%s': missing value, expected %s",
                                        column_names[c], column_expects[c]);
                        continue;
                }
                if ((c == COL_MAX || c == COL_HIGH) && span_eq(cell, "max")) {
                        v = CGROUP_LIMIT_MAX;
                        r = 0;
                } else
                        r = span_to_u64(cell, &v);
                if (r == 0 && c == COL_T_MS && v > UINT64_MAX / USEC_PER_MSEC)
                        r = -ERANGE;
                if (r < 0) {
                        cell_problem(p, lineno, c, cell, r);
                        continue;
                }

                switch (c) {
                case COL_T_MS:
                        s.t_usec = v * USEC_PER_MSEC;
                        break;
                case COL_CURRENT:
                        s.current_bytes = v;
                        break;
                case COL_ANON:
                        s.anon_bytes = v;
                        s.has |= SAMPLE_HAS_ANON;
                        break;
                case COL_FILE:
                        s.file_bytes = v;
                        s.has |= SAMPLE_HAS_FILE;
                        break;
                case COL_MAX:
                        s.max_bytes = v;
                        s.limit_bytes = v;
                        break;
                case COL_HIGH:
                        s.high_bytes = v;
                        s.has |= SAMPLE_HAS_HIGH;
                        break;
                case COL_EV_HIGH:
                        s.events.high = v;
                        n_events++;
                        break;
                case COL_EV_MAX:
                        s.events.max = v;
                        n_events++;
                        break;
                case COL_EV_OOM:
                        s.events.oom = v;
                        n_events++;
                        break;
                case COL_EV_OOM_KILL:
                        s.events.oom_kill = v;
                        n_events++;
                        break;
                case COL_PSI_SOME:
                        s.pressure.some.total_usec = v;
                        s.has |= SAMPLE_HAS_PSI_SOME;
                        break;
                case COL_PSI_FULL:
                        s.pressure.full.total_usec = v;
                        s.pressure.has_full = true;
                        s.has |= SAMPLE_HAS_PSI_FULL;
                        break;
                case COL_UNKNOWN:
                case _COL_COUNT:
                        break;
                }
        }
        if (n_events > 0 && n_events < n_event_cols)
                problem(p, lineno,
                        "ev_ columns: %zu of %zu have a value; memory.events is read whole, so "
                        "fill all of them or none",
                        n_events, n_event_cols);
        else if (n_events > 0)
                s.has |= SAMPLE_HAS_EVENTS;
        if (p->n_problems > before)
                return -EINVAL;
        *ret = s;
        return 0;
}

static bool span_is_blank(struct span s)
{
        for (size_t i = 0; i < s.n; i++)
                if (!is_blank(s.p[i]) && s.p[i] != '\r' && s.p[i] != '\n')
                        return false;
        return true;
}

static int samples_append(struct trace *t, size_t *cap, const struct sample *s)
{
        if (t->n_samples == *cap) {
                size_t ncap = *cap ? *cap * 2 : 256;
                struct sample *n;

                if (ncap > TRACE_MAX_SAMPLES)
                        ncap = TRACE_MAX_SAMPLES;
                if (ncap <= t->n_samples)
                        return -E2BIG;
                n = realloc(t->samples, ncap * sizeof(struct sample));
                if (!n)
                        return -ENOMEM;
                t->samples = n;
                *cap = ncap;
        }
        t->samples[t->n_samples++] = *s;
        return 0;
}

int trace_parse(const char *name, const char *buf, size_t len, struct diag *diag,
                struct trace **ret)
{
        _cleanup_(trace_freep) struct trace *t = NULL;
        _cleanup_free_ enum column *cols = NULL;
        struct parser p = {.name = name ? name : "trace", .diag = diag};
        struct span rest = {buf, buf ? len : 0}, line;
        size_t n_cols = 0, cap = 0, lineno = 1;
        uint64_t prev_t_usec = 0;
        bool more, have_prev = false;
        int r;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;

        /* a byte order mark, as some spreadsheets write */
        if (rest.n >= 3 && memcmp(rest.p, "\xef\xbb\xbf", 3) == 0) {
                rest.p += 3;
                rest.n -= 3;
        }
        line = span_cut(&rest, '\n', &more);
        if (span_is_blank(line)) {
                problem(&p, 1, "expected a header line with the columns t_ms, current and max");
                return -EINVAL;
        }
        r = parse_header(&p, line, &cols, &n_cols);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_cols; i++)
                if (cols[i] == COL_EV_OOM_KILL)
                        t->has_oom_kill_column = true;

        while (more) {
                struct sample s;

                line = span_cut(&rest, '\n', &more);
                lineno++;
                if (span_is_blank(line)) {
                        if (span_is_blank(rest))
                                break; /* blank lines at the end */
                        problem(&p, lineno, "empty row");
                        continue;
                }
                if (parse_row(&p, lineno, line, cols, n_cols, &s) < 0)
                        continue;
                if (have_prev && s.t_usec < prev_t_usec) {
                        problem(&p, lineno,
                                "t_ms %" PRIu64 " is before the previous row's %" PRIu64
                                " (rows must be in time order)",
                                s.t_usec / USEC_PER_MSEC, prev_t_usec / USEC_PER_MSEC);
                        continue;
                }
                prev_t_usec = s.t_usec;
                have_prev = true;
                if (p.n_problems > 0)
                        continue; /* the trace is rejected; keep reading only to report */
                r = samples_append(t, &cap, &s);
                if (r == -E2BIG) {
                        problem(&p, lineno, "more than %u rows; split the trace",
                                (unsigned)TRACE_MAX_SAMPLES);
                        break;
                }
                if (r < 0)
                        return r;
        }

        if (p.n_problems > TRACE_MAX_PROBLEMS && diag)
                (void)diag_add(diag, "%s: …and %zu more", p.name,
                               p.n_problems - TRACE_MAX_PROBLEMS);
        if (p.n_problems > 0)
                return -EINVAL;
        *ret = TAKE_PTR(t);
        return 0;
}

static int too_big(const char *path, struct diag *diag)
{
        if (diag)
                (void)diag_add(diag, "%s: larger than 256 MiB; split the trace", path);
        return -EFBIG;
}

int trace_load_file(const char *path, struct diag *diag, struct trace **ret)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, size;
        struct stat st;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = negative_errno();
                if (diag)
                        (void)diag_add(diag, "%s: cannot open: %s", path, strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > TRACE_MAX_FILE_BYTES)
                return too_big(path, diag);

        /* st_size is a hint only: pipes say 0, and a file may grow while it is read */
        size = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 65536;
        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n;

                if (len == size) {
                        char *nbuf;

                        if (len > TRACE_MAX_FILE_BYTES)
                                return too_big(path, diag);
                        size = MIN(size * 2, (size_t)TRACE_MAX_FILE_BYTES + 1);
                        nbuf = realloc(buf, size);
                        if (!nbuf)
                                return -ENOMEM;
                        buf = nbuf;
                }
                n = read(fd, buf + len, size - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = negative_errno();
                        if (diag)
                                (void)diag_add(diag, "%s: cannot read: %s", path, strerror(-r));
                        return r;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        return trace_parse(path, buf, len, diag, ret);
}

struct trace *trace_free(struct trace *t)
{
        if (t) {
                free(t->samples);
                free(t);
        }
        return NULL;
}

ssize_t trace_oom_index(const struct trace *t)
{
        if (!t)
                return -1;
        if (t->has_oom_kill_column) {
                bool have_prev = false;
                uint64_t prev = 0;

                for (size_t i = 0; i < t->n_samples; i++) {
                        const struct sample *s = &t->samples[i];

                        if (!(s->has & SAMPLE_HAS_EVENTS))
                                continue; /* an empty row says nothing */
                        if (have_prev && s->events.oom_kill > prev)
                                return (ssize_t)i;
                        prev = s->events.oom_kill;
                        have_prev = true;
                }
                return -1;
        }
        for (size_t i = 0; i < t->n_samples; i++) {
                const struct sample *s = &t->samples[i];

                if (s->max_bytes != CGROUP_LIMIT_MAX && s->current_bytes >= s->max_bytes)
                        return (ssize_t)i;
        }
        return -1;
}

int trace_write_header(FILE *f)
{
        for (size_t i = 0; i < _COL_COUNT; i++)
                if (fputs(column_names[i], f) < 0 || fputc(i + 1 < _COL_COUNT ? ',' : '\n', f) < 0)
                        return -EIO;
        return ferror(f) ? -EIO : 0;
}

static int write_u64(FILE *f, bool has, uint64_t v, bool max_word, char sep)
{
        int r;

        if (!has)
                r = fprintf(f, "%c", sep);
        else if (max_word && v == CGROUP_LIMIT_MAX)
                r = fprintf(f, "max%c", sep);
        else
                r = fprintf(f, "%" PRIu64 "%c", v, sep);
        return r < 0 ? -EIO : 0;
}

int trace_write_row(FILE *f, uint64_t t0_usec, const struct sample *s)
{
        bool ev = s->has & SAMPLE_HAS_EVENTS;
        int r = 0;

        if (s->t_usec < t0_usec)
                return -EINVAL;
        /* same order as column_names[] */
        r |= write_u64(f, true, (s->t_usec - t0_usec) / USEC_PER_MSEC, false, ',');
        r |= write_u64(f, true, s->current_bytes, false, ',');
        r |= write_u64(f, s->has & SAMPLE_HAS_ANON, s->anon_bytes, false, ',');
        r |= write_u64(f, s->has & SAMPLE_HAS_FILE, s->file_bytes, false, ',');
        r |= write_u64(f, true, s->max_bytes, true, ',');
        r |= write_u64(f, s->has & SAMPLE_HAS_HIGH, s->high_bytes, true, ',');
        r |= write_u64(f, ev, s->events.high, false, ',');
        r |= write_u64(f, ev, s->events.max, false, ',');
        r |= write_u64(f, ev, s->events.oom, false, ',');
        r |= write_u64(f, ev, s->events.oom_kill, false, ',');
        r |= write_u64(f, s->has & SAMPLE_HAS_PSI_SOME, s->pressure.some.total_usec, false, ',');
        r |= write_u64(f, s->has & SAMPLE_HAS_PSI_FULL, s->pressure.full.total_usec, false, '\n');
        if (r != 0 || ferror(f))
                return -EIO;
        return 0;
}

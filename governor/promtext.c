/* SPDX-License-Identifier: MIT */
/* Export: Prometheus text exposition format 0.0.4, the body of GET /metrics. */
#include <math.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "memgov/promtext.h"
#include "memgov/utf8.h"

static const char *const type_names[_PROMTEXT_TYPE_MAX] = {
        [PROMTEXT_COUNTER] = "counter",
        [PROMTEXT_GAUGE] = "gauge",
};

const char *promtext_type_to_string(enum promtext_type t)
{
        if (t < 0 || t >= _PROMTEXT_TYPE_MAX)
                return NULL;
        return type_names[t];
}

static bool is_alpha_(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

bool promtext_metric_name_valid(const char *name)
{
        if (!name || !(is_alpha_(name[0]) || name[0] == ':'))
                return false;
        for (const char *c = name + 1; *c; c++)
                if (!is_alpha_(*c) && !is_digit(*c) && *c != ':')
                        return false;
        return true;
}

bool promtext_label_name_valid(const char *name)
{
        if (!name || !is_alpha_(name[0]) || strncmp(name, "__", 2) == 0)
                return false;
        for (const char *c = name + 1; *c; c++)
                if (!is_alpha_(*c) && !is_digit(*c))
                        return false;
        return true;
}

/* Escape s: backslash and newline always, the double quote when quote is set. */
static char *escape(const char *s, bool quote)
{
        size_t len = strlen(s);
        /* Worst case: every byte becomes U+FFFD (3 bytes). */
        char *buf = malloc(len * 3 + 1), *o = buf;

        if (!buf)
                return NULL;
        for (const unsigned char *c = (const unsigned char *)s; *c;) {
                size_t n = utf8_valid_len(c);

                if (n == 0) {
                        memcpy(o, UTF8_REPLACEMENT, 3);
                        o += 3;
                        c++;
                        continue;
                }
                if (*c == '\\' || (*c == '"' && quote)) {
                        *o++ = '\\';
                        *o++ = (char)*c;
                } else if (*c == '\n') {
                        *o++ = '\\';
                        *o++ = 'n';
                } else {
                        memcpy(o, c, n);
                        o += n;
                }
                c += n;
        }
        *o = '\0';
        return buf;
}

char *promtext_escape_label_value(const char *s)
{
        return escape(s, true);
}

char *promtext_escape_help(const char *s)
{
        return escape(s, false);
}

char *promtext_format_double(double v, char buf[static 32])
{
        if (isnan(v))
                return strcpy(buf, "NaN");
        if (isinf(v))
                return strcpy(buf, v > 0 ? "+Inf" : "-Inf");
        /* The shortest %g that reads back to the same value; 17 digits always do. */
        for (int prec = 1; prec <= 17; prec++) {
                (void)snprintf(buf, 32, "%.*g", prec, v);
                if (strtod(buf, NULL) == v)
                        break;
        }
        return buf;
}

static int fail(struct promtext *p, int error)
{
        if (p->error == 0)
                p->error = error;
        return p->error;
}

void promtext_init(struct promtext *p, FILE *out)
{
        *p = (struct promtext){.out = out, .type = _PROMTEXT_TYPE_INVALID};
}

static bool ends_with(const char *s, const char *suffix)
{
        size_t n = strlen(s), k = strlen(suffix);
        return n >= k && strcmp(s + n - k, suffix) == 0;
}

int promtext_family(struct promtext *p, const char *name, enum promtext_type type, const char *help)
{
        _cleanup_free_ char *help_escaped = NULL;

        if (p->error)
                return p->error;
        if (!promtext_metric_name_valid(name) || !promtext_type_to_string(type))
                return fail(p, -EINVAL);
        if (type == PROMTEXT_COUNTER && !ends_with(name, "_total"))
                return fail(p, -EINVAL);
        if (p->family && strcmp(p->family, name) == 0)
                return type == p->type ? 0 : fail(p, -EINVAL);
        for (size_t i = 0; i < p->n_done; i++)
                if (strcmp(p->done[i], name) == 0)
                        return fail(p, -EINVAL);

        if (p->family) {
                char **done = realloc(p->done, (p->n_done + 1) * sizeof(*done));
                if (!done)
                        return fail(p, -ENOMEM);
                p->done = done;
                p->done[p->n_done++] = TAKE_PTR(p->family);
        }
        p->family = strdup(name);
        help_escaped = promtext_escape_help(help ? help : "");
        if (!p->family || !help_escaped)
                return fail(p, -ENOMEM);
        p->type = type;

        if (fprintf(p->out, "# HELP %s %s\n# TYPE %s %s\n", name, help_escaped, name,
                    promtext_type_to_string(type)) < 0)
                return fail(p, -EIO);
        return 0;
}

/* "name{a="x",b="y"} " (no braces when no label is written). */
static int write_series(struct promtext *p, const struct promtext_label *labels)
{
        bool first = true;

        if (!p->family)
                return fail(p, -EINVAL);
        if (fputs(p->family, p->out) < 0)
                return fail(p, -EIO);
        for (const struct promtext_label *l = labels; l && l->name; l++) {
                _cleanup_free_ char *v = NULL;

                if (!promtext_label_name_valid(l->name))
                        return fail(p, -EINVAL);
                if (!l->value)
                        continue;
                v = promtext_escape_label_value(l->value);
                if (!v)
                        return fail(p, -ENOMEM);
                if (fprintf(p->out, "%s%s=\"%s\"", first ? "{" : ",", l->name, v) < 0)
                        return fail(p, -EIO);
                first = false;
        }
        if (fputs(first ? " " : "} ", p->out) < 0)
                return fail(p, -EIO);
        return 0;
}

int promtext_sample(struct promtext *p, const struct promtext_label *labels, double value)
{
        char buf[32];
        int r;

        if (p->error)
                return p->error;
        if (p->family && p->type == PROMTEXT_COUNTER && (isnan(value) || value < 0))
                return fail(p, -EINVAL);
        r = write_series(p, labels);
        if (r < 0)
                return r;
        if (fprintf(p->out, "%s\n", promtext_format_double(value, buf)) < 0)
                return fail(p, -EIO);
        return 0;
}

int promtext_sample_u64(struct promtext *p, const struct promtext_label *labels, uint64_t value)
{
        int r;

        if (p->error)
                return p->error;
        r = write_series(p, labels);
        if (r < 0)
                return r;
        if (fprintf(p->out, "%" PRIu64 "\n", value) < 0)
                return fail(p, -EIO);
        return 0;
}

int promtext_finish(struct promtext *p)
{
        int r = p->error;

        if (p->out && (fflush(p->out) != 0 || ferror(p->out)) && r == 0)
                r = -EIO;
        free(p->family);
        for (size_t i = 0; i < p->n_done; i++)
                free(p->done[i]);
        free(p->done);
        *p = (struct promtext){.type = _PROMTEXT_TYPE_INVALID};
        return r;
}

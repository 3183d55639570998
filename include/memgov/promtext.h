/* SPDX-License-Identifier: MIT */
/*
 * Export: the Prometheus text exposition format, version 0.0.4, written to a FILE (the
 * /metrics handler writes into an open_memstream()). Pure formatting: it reads no clock and
 * logs nothing.
 *
 * The format wants every sample of a metric family on consecutive lines, after one HELP and
 * one TYPE line. The writer enforces that: promtext_family() starts a family (a repeat of
 * the current family is a no-op, so a loop may call it before each sample), and going back
 * to a family that was already closed is an error. Errors are sticky: the first one is kept
 * and every later call does nothing, so that a writer checks promtext_finish() once.
 *
 *   struct promtext p;
 *   promtext_init(&p, out);
 *   promtext_family(&p, "memgov_level", PROMTEXT_GAUGE, "Level: 0 ok, 1 warn, …");
 *   promtext_sample(&p, PROMTEXT_LABELS({"service", "api"}, {"cgroup", "api.service"}), 1);
 *   return promtext_finish(&p);
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "memgov/macro.h"

/* The Content-Type of a /metrics response in this format. */
#define PROMTEXT_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum promtext_type {
        PROMTEXT_COUNTER, /* name ends in _total (memgov's rule, DESIGN.md §3 Metrics) */
        PROMTEXT_GAUGE,
        _PROMTEXT_TYPE_MAX,
        _PROMTEXT_TYPE_INVALID = -1,
};

/* One label: name [a-zA-Z_][a-zA-Z0-9_]* not starting with "__"; value any string. */
struct promtext_label {
        const char *name;
        const char *value; /* NULL: the label is left out */
};

/* A label list for promtext_sample*(), NULL-terminated for you. */
#define PROMTEXT_LABELS(...) ((const struct promtext_label[]){__VA_ARGS__, {NULL, NULL}})

struct promtext {
        FILE *out;
        int error;    /* the first error, sticky; 0 while all is well */
        char *family; /* the current family (owned) */
        enum promtext_type type;
        char **done; /* families already closed (owned), to catch a family written twice */
        size_t n_done;
};

/* Start writing to out (borrowed). */
void promtext_init(struct promtext *p, FILE *out);

/*
 * Start the family name: "# HELP name help" and "# TYPE name type" lines. Calling it again
 * for the current family (same type) writes nothing. Returns 0, or -EINVAL (a bad metric
 * name [a-zA-Z_:][a-zA-Z0-9_:]*, a counter not ending in _total, a family already closed,
 * the current family with another type), -ENOMEM, -EIO (writing failed).
 */
int promtext_family(struct promtext *p, const char *name, enum promtext_type type,
                    const char *help);

/*
 * One sample of the current family: "name{labels} value". labels is NULL or terminated by
 * a NULL name; labels with a NULL value are left out. Counters must not be negative.
 * Returns 0, or -EINVAL (no family started, a bad label name, a negative or NaN counter),
 * -EIO.
 */
int promtext_sample(struct promtext *p, const struct promtext_label *labels, double value);

/* The same for an integer value, written exactly (a double would round above 2^53). */
int promtext_sample_u64(struct promtext *p, const struct promtext_label *labels, uint64_t value);

/*
 * End: flushes out, frees what p holds and returns the first error of any call on p (or
 * -EIO if out reports an error). p can be promtext_init()ed again afterwards.
 */
int promtext_finish(struct promtext *p);

/*
 * Helpers, exposed for tests and for other writers of the format. A label value escaped
 * for the inside of "...": backslash, double quote and newline as \\ \" \n, and every
 * byte that is not part of valid UTF-8 replaced by U+FFFD (the format is UTF-8). Returns a
 * malloc'ed string, or NULL on ENOMEM.
 */
char *promtext_escape_label_value(const char *s);

/* HELP text escaped: backslash and newline as \\ and \n, invalid UTF-8 as above. */
char *promtext_escape_help(const char *s);

/*
 * v as the format writes it, into buf: "+Inf", "-Inf", "NaN", or the shortest decimal that
 * reads back to the same double (e.g. "0.1", "1e+21", "1048576"). Returns buf.
 */
char *promtext_format_double(double v, char buf[static 32]);

/* Whether name is a valid metric name / label name for the format. */
bool promtext_metric_name_valid(const char *name);
bool promtext_label_name_valid(const char *name);

/* "counter", "gauge"; NULL for an invalid value. */
const char *promtext_type_to_string(enum promtext_type t);

/* SPDX-License-Identifier: MIT */
/*
 * Trace CSV (DESIGN.md §3, a contract): what `memgovctl record` writes, `memgovctl replay`
 * and the forecast benchmark read, and incident bundles carry. Parsing is pure (a buffer
 * in, samples out); writing formats into a caller's FILE.
 *
 * Columns, any order, only t_ms, current and max required, others absent or empty:
 *   t_ms,current,anon,file,max,high,ev_high,ev_max,ev_oom,ev_oom_kill,psi_some_us,psi_full_us
 * Sizes in bytes; max/high may be the word "max".
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "memgov/diag.h"
#include "memgov/macro.h"
#include "memgov/sample.h"

struct trace {
        struct sample *samples; /* t_usec = t_ms * 1000; limit_bytes = max_bytes */
        size_t n_samples;
        bool has_oom_kill_column; /* ev_oom_kill present (ground truth is then that column) */
};

/*
 * Parse a whole trace CSV. Problems go to diag as "NAME: line N: message" (NAME is used
 * only for messages). Rows must have non-decreasing t_ms. Returns 0, -EINVAL (diag says
 * why), -ENOMEM. A sample's has bits say which optional columns had a value.
 */
int trace_parse(const char *name, const char *buf, size_t len, struct diag *diag,
                struct trace **ret);

/* Read and parse a file (at most 256 MiB). */
int trace_load_file(const char *path, struct diag *diag, struct trace **ret);

struct trace *trace_free(struct trace *t);
DEFINE_FREE_FUNC(trace)

/*
 * The index of the ground-truth OOM: the first row where ev_oom_kill increases (over the
 * previous row) when the column is present, else the first row where current >= max.
 * Returns the index, or -1 when the trace has no OOM.
 */
ssize_t trace_oom_index(const struct trace *t);

/* Write the header line (all columns, in the order above). */
int trace_write_header(FILE *f);

/*
 * Write one row; t_ms = (s->t_usec - t0_usec) / 1000. Columns whose has bit is clear are
 * left empty; max/high CGROUP_LIMIT_MAX are written as "max". Returns 0 or -EIO.
 */
int trace_write_row(FILE *f, uint64_t t0_usec, const struct sample *s);

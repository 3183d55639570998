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

/* The most rows a trace may have (about 1.5 GiB of samples; 48 days at one per second). */
#define TRACE_MAX_SAMPLES (UINT32_C(1) << 22)

struct trace {
        /*
         * t_usec = t_ms * 1000; limit_bytes = max_bytes, so CGROUP_LIMIT_MAX when the trace
         * says "max": unlike the daemon's samples, a trace may not know the limit, and
         * consumers treat CGROUP_LIMIT_MAX as "no limit known".
         */
        struct sample *samples;
        size_t n_samples;
        bool has_oom_kill_column; /* ev_oom_kill present (ground truth is then that column) */
};

/*
 * Parse a whole trace CSV. Problems go to diag as "NAME: line N: message" (NAME is used
 * only for messages). Rows must have non-decreasing t_ms. Returns 0, -EINVAL (diag says
 * why), -ENOMEM. A sample's has bits say which optional columns had a value.
 *
 * The details: unknown columns are ignored, their cells unread; a known column named twice
 * or a required one missing is an error naming it. Blanks around names and cells, CRLF
 * line ends, a leading UTF-8 byte order mark, a missing final newline and blank lines at
 * the end are accepted; a blank line between rows is an error. Every row has as many cells
 * as the header. Empty cells are absent (has bit clear), except in t_ms, current and max,
 * which every row needs. The ev_* cells of a row are all filled (SAMPLE_HAS_EVENTS) or all
 * empty: memory.events is read whole. psi_full_us sets pressure.has_full. The first 10
 * problems are listed, then "NAME: …and N more"; a trace with any problem yields no
 * samples. Also an error: more than TRACE_MAX_SAMPLES rows. diag may be NULL.
 */
int trace_parse(const char *name, const char *buf, size_t len, struct diag *diag,
                struct trace **ret);

/*
 * Read and parse a file (at most 256 MiB, else -EFBIG). Open and read failures return
 * -errno and add "PATH: cannot open: reason" to diag; PATH is NAME in parse messages.
 */
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
 * left empty; max/high CGROUP_LIMIT_MAX are written as "max". Returns 0, -EIO, or
 * -EINVAL when s->t_usec < t0_usec (nothing is written then).
 */
int trace_write_row(FILE *f, uint64_t t0_usec, const struct sample *s);

/* SPDX-License-Identifier: MIT */
/*
 * Replay input under fuzzing: trace_parse(). A trace that parses is written back with
 * trace_write_row() and parsed again, and must come back the same (the record → replay
 * contract).
 */
#include <errno.h>
#include <stdio.h>

#include "fuzz.h"
#include "memgov/diag.h"
#include "memgov/macro.h"
#include "memgov/trace.h"

static void check_same(const struct sample *a, const struct sample *b)
{
        fuzz_check(a->t_usec == b->t_usec);
        fuzz_check(a->current_bytes == b->current_bytes);
        fuzz_check(a->max_bytes == b->max_bytes);
        fuzz_check(a->limit_bytes == b->limit_bytes);
        fuzz_check(a->has == b->has);
        fuzz_check(a->high_bytes == b->high_bytes);
        fuzz_check(a->anon_bytes == b->anon_bytes);
        fuzz_check(a->file_bytes == b->file_bytes);
        fuzz_check(memcmp(&a->events, &b->events, sizeof(a->events)) == 0);
        fuzz_check(a->pressure.some.total_usec == b->pressure.some.total_usec);
        fuzz_check(a->pressure.full.total_usec == b->pressure.full.total_usec);
        fuzz_check(a->pressure.has_full == b->pressure.has_full);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_(trace_freep) struct trace *t = NULL, *again = NULL;
        _cleanup_free_ char *out = NULL;
        struct diag d = {};
        size_t out_len = 0;
        FILE *f;
        int r;

        r = trace_parse("fuzz.csv", (const char *)data, size, &d, &t);
        fuzz_check(r == 0 || r == -EINVAL || r == -ENOMEM);
        fuzz_check(r == 0 ? d.n_lines == 0 && t : d.n_lines > 0 || r == -ENOMEM);
        fuzz_check(d.n_lines <= 11);
        diag_clear(&d);
        if (r < 0)
                return 0;
        (void)trace_oom_index(t);

        f = open_memstream(&out, &out_len);
        fuzz_check(f);
        fuzz_check(trace_write_header(f) == 0);
        for (size_t i = 0; i < t->n_samples; i++)
                fuzz_check(trace_write_row(f, 0, &t->samples[i]) == 0);
        fuzz_check(fclose(f) == 0);

        r = trace_parse("again.csv", out, out_len, &d, &again);
        fuzz_check(r == 0);
        fuzz_check(again->n_samples == t->n_samples);
        for (size_t i = 0; i < t->n_samples; i++)
                check_same(&t->samples[i], &again->samples[i]);
        /* the written header always has ev_oom_kill, so the ground truth may differ only then */
        if (t->has_oom_kill_column)
                fuzz_check(trace_oom_index(t) == trace_oom_index(again));
        return 0;
}

/* SPDX-License-Identifier: MIT */
/* Probe stage under fuzzing: memory.pressure and /proc/pressure/memory. */
#include <errno.h>

#include "fuzz.h"
#include "memgov/macro.h"
#include "memgov/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *s = fuzz_strndup(data, size);
        struct pressure p, before;
        int r;

        memset(&p, 0x5a, sizeof(p));
        memcpy(&before, &p, sizeof(p));
        r = parse_pressure(s, &p);
        fuzz_check(r == 0 || r == -EINVAL || r == -ERANGE);
        if (r < 0) {
                fuzz_check(memcmp(&p, &before, sizeof(p)) == 0);
                return 0;
        }
        /* what decide compares against thresholds is a real percentage */
        fuzz_check(p.some.avg10_pct >= 0 && p.some.avg10_pct <= 100);
        fuzz_check(p.some.avg60_pct >= 0 && p.some.avg60_pct <= 100);
        fuzz_check(p.some.avg300_pct >= 0 && p.some.avg300_pct <= 100);
        if (p.has_full)
                fuzz_check(p.full.avg10_pct >= 0 && p.full.avg10_pct <= 100);
        return 0;
}

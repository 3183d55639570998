/* SPDX-License-Identifier: MIT */
/* Probe stage under fuzzing: memory.stat, and memory.events through the same input. */
#include <errno.h>

#include "fuzz.h"
#include "memgov/macro.h"
#include "memgov/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *s = fuzz_strndup(data, size);
        struct memory_stat st, st_before;
        int r;

        memset(&st, 0x5a, sizeof(st));
        st_before = st;
        r = parse_memory_stat(s, &st);
        fuzz_check(r == 0 || r == -EINVAL || r == -ERANGE);
        if (r < 0)
                fuzz_check(memcmp(&st, &st_before, sizeof(st)) == 0);
        return 0;
}

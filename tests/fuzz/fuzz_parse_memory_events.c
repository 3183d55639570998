/* SPDX-License-Identifier: MIT */
/* Probe stage under fuzzing: memory.events and memory.events.local. */
#include <errno.h>

#include "fuzz.h"
#include "memgov/macro.h"
#include "memgov/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *s = fuzz_strndup(data, size);
        struct memory_events e, before;
        int r;

        memset(&e, 0x5a, sizeof(e));
        before = e;
        r = parse_memory_events(s, &e);
        fuzz_check(r == 0 || r == -EINVAL || r == -ERANGE);
        if (r < 0)
                fuzz_check(memcmp(&e, &before, sizeof(e)) == 0);
        return 0;
}

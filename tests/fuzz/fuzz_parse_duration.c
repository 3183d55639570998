/* SPDX-License-Identifier: MIT */
/* Policy units under fuzzing: parse_duration(). */
#include <errno.h>

#include "fuzz.h"
#include "memgov/macro.h"
#include "memgov/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *s = fuzz_strndup(data, size);
        const uint64_t sentinel = UINT64_C(0x5a5a5a5a5a5a5a5a);
        uint64_t usec = sentinel;
        int r;

        r = parse_duration(s, &usec);
        fuzz_check(r == 0 || r == -EINVAL || r == -ERANGE);
        if (r < 0)
                fuzz_check(usec == sentinel);
        return 0;
}

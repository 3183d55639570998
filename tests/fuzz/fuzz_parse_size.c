/* SPDX-License-Identifier: MIT */
/*
 * Policy units under fuzzing: parse_size(), parse_size_or_share(), and the one-value cgroup
 * files (parse_limit(), parse_u64()), which share the number grammar.
 */
#include <errno.h>

#include "fuzz.h"
#include "memgov/macro.h"
#include "memgov/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *s = fuzz_strndup(data, size);
        const uint64_t sentinel = UINT64_C(0x5a5a5a5a5a5a5a5a);
        const uint64_t base = UINT64_C(1) << 30;
        uint64_t bytes = sentinel, share_bytes = sentinel, v = sentinel;
        uint32_t permille = 0x5a5a;
        int r, r_share;

        r = parse_size(s, base, &bytes);
        fuzz_check(r == 0 || r == -EINVAL || r == -ERANGE);
        if (r < 0)
                fuzz_check(bytes == sentinel);

        r_share = parse_size_or_share(s, &share_bytes, &permille);
        fuzz_check(r_share == 0 || r_share == -EINVAL || r_share == -ERANGE);
        if (r_share < 0)
                fuzz_check(share_bytes == sentinel && permille == 0x5a5a);
        else if (permille == 0)
                /* an absolute size means the same to both */
                fuzz_check(r == 0 && bytes == share_bytes);
        else
                /* a share resolves, against the same base, to what parse_size() gives */
                fuzz_check(permille <= 1000 && share_bytes == 0 && r == 0 && bytes <= base &&
                           bytes >= base / 1000 * permille);

        r = parse_limit(s, &v);
        fuzz_check(r == 0 || r == -EINVAL || r == -ERANGE);
        r = parse_u64(s, &v);
        fuzz_check(r == 0 || r == -EINVAL || r == -ERANGE);
        return 0;
}

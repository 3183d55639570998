/* SPDX-License-Identifier: MIT */
/*
 * The daemon config (memgovd --config FILE) under fuzzing: memgov_config_load_buffer(), what
 * memgov_config_load() runs on the file's bytes. Accepted values must be usable as they are.
 */
#include <errno.h>

#include "fuzz.h"
#include "memgov/diag.h"
#include "memgov/macro.h"
#include "memgov/policy.h"

static bool is_dir_name(const char *s)
{
        if (!s || s[0] != '/')
                return false;
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return false;
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct memgov_config c = {};
        struct diag d = {};
        int r;

        r = memgov_config_load_buffer("memgovd.json", (const char *)data, size, &d, &c);
        fuzz_check(r == 0 || r == -EINVAL || r == -ENOMEM || r == -EFBIG);
        if (r == 0) {
                fuzz_check(d.n_lines == 0);
                fuzz_check(is_dir_name(c.policy_dir) && is_dir_name(c.state_dir) &&
                           is_dir_name(c.runtime_dir));
                fuzz_check(!c.cgroup_root || is_dir_name(c.cgroup_root));
                fuzz_check(!c.listen || strrchr(c.listen, ':'));
                fuzz_check(c.rescan_interval_usec >= USEC_PER_SEC &&
                           c.rescan_interval_usec <= USEC_PER_HOUR);
                memgov_config_clear(&c);
        } else {
                fuzz_check(!c.policy_dir && !c.state_dir && !c.runtime_dir);
                fuzz_check(r == -ENOMEM || d.n_lines > 0);
                for (size_t i = 0; i < d.n_lines; i++)
                        fuzz_check(strncmp(d.lines[i], "memgovd.json:", 13) == 0);
        }
        diag_clear(&d);
        return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Restore records under fuzzing: the files under <state-dir>/restore/ that memgovd reads
 * first at start (restore_record_parse()), which a crash, a full disk or a hand edit may
 * leave in any shape, and the file name made from a record's cgroup (restore_file_name()).
 * A record that parses must be one that can be restored; one that does not must leave
 * *ret untouched, so that it is set aside as corrupt and nothing else changes.
 */
#include <errno.h>
#include <limits.h>

#include "fuzz.h"
#include "memgov/macro.h"
#include "memgov/restore.h"

static bool name_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               strchr("_.@:+-%~", c);
}

static void check_file_name(const char *relpath)
{
        _cleanup_free_ char *name = NULL;
        int r = restore_file_name(relpath, &name);
        size_t len;

        fuzz_check(r == 0 || r == -EINVAL || r == -ENOMEM);
        if (r < 0) {
                fuzz_check(!name);
                /* only a path of nothing but slashes has no name */
                fuzz_check(r != -EINVAL || strspn(relpath, "/") == strlen(relpath));
                return;
        }
        len = strlen(name);
        fuzz_check(len > strlen(".json") && len <= NAME_MAX);
        fuzz_check(strcmp(name + len - strlen(".json"), ".json") == 0);
        fuzz_check(name[0] != '.');
        for (size_t i = 0; i < len; i++)
                fuzz_check(name_char(name[i]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *s = fuzz_strndup(data, size);
        struct restore_record rec, before;
        int r;

        memset(&rec, 0x5a, sizeof(rec));
        before = rec;
        r = restore_record_parse(s, &rec);
        fuzz_check(r == 0 || r == -EBADMSG || r == -ENOMEM);
        if (r < 0) {
                fuzz_check(memcmp(&rec, &before, sizeof(rec)) == 0);
                /* the input as a cgroup path instead */
                check_file_name(s);
                return 0;
        }
        fuzz_check(rec.relpath && rec.relpath[0]);
        fuzz_check(!rec.service || rec.service[0]);
        fuzz_check(rec.backend == ACTUATE_BACKEND_CGROUPFS ||
                   (rec.backend == ACTUATE_BACKEND_SYSTEMD && rec.unit && rec.unit[0]));
        check_file_name(rec.relpath);
        restore_record_clear(&rec);
        fuzz_check(!rec.relpath && !rec.service && !rec.unit);
        return 0;
}

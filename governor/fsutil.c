/* SPDX-License-Identifier: MIT */
/*
 * Record and capture effects: file-system helpers for atomic writes (renaming into place
 * without ever replacing what is there).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memgov/fsutil.h"
#include "memgov/macro.h"

int fs_rename_noreplace(int olddirfd, const char *oldname, int newdirfd, const char *newname)
{
        struct stat st;
        int r;

        if (renameat2(olddirfd, oldname, newdirfd, newname, RENAME_NOREPLACE) >= 0)
                return 0;
        r = negative_errno();
        if (r != -EINVAL && r != -ENOSYS && r != -EOPNOTSUPP)
                return r;

        /* The filesystem has no RENAME_NOREPLACE: refuse an existing name another way. */
        if (fstatat(olddirfd, oldname, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return negative_errno();
        if (S_ISDIR(st.st_mode)) {
                /* rename() replaces an empty directory only: the new one is ours, just made. */
                if (mkdirat(newdirfd, newname, 0700) < 0)
                        return negative_errno();
                if (renameat(olddirfd, oldname, newdirfd, newname) < 0) {
                        r = negative_errno();
                        (void)unlinkat(newdirfd, newname, AT_REMOVEDIR);
                        return r;
                }
                return 0;
        }
        if (linkat(olddirfd, oldname, newdirfd, newname, 0) < 0)
                return negative_errno();
        /*
         * The file is in place under its new name; an old name that cannot go is a leftover
         * temporary, which the writers' cleanup at the next start removes.
         */
        (void)unlinkat(olddirfd, oldname, 0);
        return 0;
}

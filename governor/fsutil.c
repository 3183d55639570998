/* SPDX-License-Identifier: MIT */
/*
 * Record and capture effects: file-system helpers for atomic writes (renaming into place
 * without ever replacing what is there).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
         * temporary, a second link to it: fs_write_file_atomic() unlinks its temporary
         * before it opens one, and the dump store removes its leftovers at start.
         */
        (void)unlinkat(olddirfd, oldname, 0);
        return 0;
}

int fs_open_subdir(const char *parent, const char *sub, bool create, int *ret_fd)
{
        _cleanup_close_ int pfd = -1;
        int fd;

        if (create && mkdir(parent, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd < 0)
                return negative_errno();
        if (create && mkdirat(pfd, sub, 0700) < 0 && errno != EEXIST)
                return negative_errno();
        fd = openat(pfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        *ret_fd = fd;
        return 0;
}

static int write_all(int fd, const char *s)
{
        size_t len = strlen(s);

        while (len > 0) {
                ssize_t k = write(fd, s, len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return negative_errno();
                s += k;
                len -= (size_t)k;
        }
        return 0;
}

int fs_write_file_atomic(int dirfd, const char *name, const char *text, bool replace)
{
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        if (asprintf(&tmp, ".%s.tmp", name) < 0)
                return -ENOMEM;
        /* A leftover may be a second link to name (see above): never truncate through it. */
        (void)unlinkat(dirfd, tmp, 0);
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return negative_errno();
        r = write_all(fd, text);
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r >= 0)
                r = replace ? (renameat(dirfd, tmp, dirfd, name) < 0 ? negative_errno() : 0)
                            : fs_rename_noreplace(dirfd, tmp, dirfd, name);
        if (r < 0) {
                (void)unlinkat(dirfd, tmp, 0);
                return r;
        }
        return fsync(dirfd) < 0 ? negative_errno() : 0;
}

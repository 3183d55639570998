/* SPDX-License-Identifier: MIT */
/*
 * File-system helpers shared by the effects that write files atomically (the dump store's
 * commit, the restore records): what they need beyond a plain syscall.
 */
#pragma once

#include <stdbool.h>

/*
 * Rename olddirfd/oldname to newdirfd/newname, never over an existing newname:
 * renameat2(RENAME_NOREPLACE), and where the filesystem does not support it (EINVAL,
 * ENOSYS or EOPNOTSUPP: some tmpfs, overlayfs and 9p versions) the same refusal another
 * way: a file is linked under the new name (linkat() fails on an existing one), then its old
 * name unlinked; a directory first claims the new name with an empty mkdirat() (fails on an
 * existing one), then is renamed over that empty directory. Returns 0, -EEXIST when newname
 * exists (nothing moved), or another -errno.
 */
int fs_rename_noreplace(int olddirfd, const char *oldname, int newdirfd, const char *newname);

/*
 * Open the directory parent/sub. With create, parent (0755) and sub (0700) are made first
 * where missing. Returns 0 and the fd in *ret_fd, or -errno (-ENOENT when either is missing
 * and create is not set).
 */
int fs_open_subdir(const char *parent, const char *sub, bool create, int *ret_fd);

/*
 * Put text in dirfd/name whole or not at all: written in full to ".<name>.tmp", fsync'ed,
 * renamed into place — over an existing name when replace is set, never otherwise (then
 * -EEXIST and nothing changes) — and the directory fsync'ed. Returns 0 or -errno; no
 * temporary file is left behind on failure.
 */
int fs_write_file_atomic(int dirfd, const char *name, const char *text, bool replace);

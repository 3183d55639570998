/* SPDX-License-Identifier: MIT */
/*
 * File-system helpers shared by the effects that write files atomically (the dump store's
 * commit, the restore records): what they need beyond a plain syscall.
 */
#pragma once

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

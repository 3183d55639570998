/* SPDX-License-Identifier: MIT */
/* Helpers shared by the cgfs source files (cgfs.c, cgfs-sample.c, cgfs-glob.c); not API. */
#pragma once

#include <stddef.h>

/*
 * Read a whole file of unknown size at dirfd/name into a malloc'ed, NUL-terminated buffer
 * of at most max_bytes (-EFBIG beyond). For mountinfo, meminfo and cgroup.procs, which
 * grow with the machine. Returns 0 or -errno; *ret_buf is the caller's to free.
 */
int cgfs_read_alloc_at(int dirfd, const char *name, size_t max_bytes, char **ret_buf,
                       size_t *ret_len);

/*
 * A cgroup path relative to the root, cleaned: leading, trailing and doubled '/' and "."
 * components dropped ("/a//b/" → "a/b", "" and "/" → ""). A ".." component is -EINVAL:
 * nothing reached through cgfs may lie outside the root. *ret is malloc'ed.
 */
int cgfs_relpath_clean(const char *in, char **ret);

/* SPDX-License-Identifier: MIT */
/*
 * cgfs: the probe's file access. Every read and write of cgroupfs and /proc goes through
 * here, relative to the root directory fds of struct cgfs, so that tests and
 * `--cgroup-root` point the whole program at another tree. Interpretation of the bytes is
 * left to governor/parse.c. Here: the roots, whole-file reads and writes, the cgroup2 mount,
 * cgroup directories and PSI triggers; samples and the effective limit are in
 * cgfs-sample.c, policy globs in cgfs-glob.c.
 */
#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>

#include "cgfs-internal.h"
#include "memgov/cgfs.h"

/* Upper bounds for files read whole; beyond them something is wrong with the file. */
#define MOUNTINFO_MAX_BYTES (16u << 20)
#define PROCS_MAX_BYTES     (64u << 20)

/* Open a file for reading relative to dirfd; never follows into a controlling tty. */
static int open_read_at(int dirfd, const char *name)
{
        int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        return fd < 0 ? negative_errno() : fd;
}

/* read() until the buffer is full or EOF, retrying EINTR. Returns bytes read or -errno. */
static ssize_t read_loop(int fd, char *buf, size_t size)
{
        size_t n = 0;

        while (n < size) {
                ssize_t k = read(fd, buf + n, size - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        break;
                n += (size_t)k;
        }
        return (ssize_t)n;
}

ssize_t cgfs_read_at(int dirfd, const char *name, char *buf, size_t size)
{
        if (size < 2)
                return -EINVAL;

        _cleanup_close_ int fd = open_read_at(dirfd, name);
        if (fd < 0)
                return fd;

        ssize_t n = read_loop(fd, buf, size - 1);
        if (n < 0)
                return n;
        if ((size_t)n == size - 1) {
                /* Full: the file is larger only if one more byte comes. */
                char extra;
                ssize_t k = read_loop(fd, &extra, 1);
                if (k < 0)
                        return k;
                if (k > 0)
                        return -EFBIG;
        }
        buf[n] = '\0';
        return n;
}

/*
 * Read a whole file of unknown size into a malloc'ed, NUL-terminated buffer, at most
 * max_bytes. For mountinfo and cgroup.procs, which grow with the machine.
 */
int cgfs_read_alloc_at(int dirfd, const char *name, size_t max_bytes, char **ret_buf,
                       size_t *ret_len)
{
        _cleanup_close_ int fd = open_read_at(dirfd, name);
        if (fd < 0)
                return fd;

        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
                if (cap - len < 2) {
                        if (cap >= max_bytes)
                                return -EFBIG;
                        size_t ncap = cap ? MIN(cap * 2, max_bytes) : 4096;
                        char *nbuf = realloc(buf, ncap);
                        if (!nbuf)
                                return -ENOMEM;
                        buf = nbuf;
                        cap = ncap;
                }
                ssize_t k = read_loop(fd, buf + len, cap - len - 1);
                if (k < 0)
                        return (int)k;
                if (k == 0)
                        break;
                len += (size_t)k;
        }
        buf[len] = '\0';
        *ret_buf = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static int write_at_flags(int dirfd, const char *name, const char *value, int flags)
{
        _cleanup_close_ int fd =
                openat(dirfd, name, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY | flags, 0644);
        if (fd < 0)
                return negative_errno();

        /* Controller files take one write(); a split value would be two commands. */
        size_t len = strlen(value);
        ssize_t k;
        do
                k = write(fd, value, len);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return negative_errno();
        if ((size_t)k != len)
                return -EIO;
        return 0;
}

int cgfs_write_at(int dirfd, const char *name, const char *value)
{
        return write_at_flags(dirfd, name, value, 0);
}

int cgfs_write_create_at(int dirfd, const char *name, const char *value)
{
        return write_at_flags(dirfd, name, value, O_CREAT);
}

/*
 * Undo the octal escapes (\040 space, \011 tab, \012 newline, \134 backslash) that the
 * kernel puts in mountinfo paths, in place.
 */
static void unescape_octal(char *s)
{
        char *w = s;

        for (char *r = s; *r;) {
                if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
                    r[3] >= '0' && r[3] <= '7') {
                        *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
                        r += 4;
                } else
                        *w++ = *r++;
        }
        *w = '\0';
}

/*
 * The mount point of the first cgroup2 line of a mountinfo buffer:
 *   36 35 0:31 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate
 * Field 5 is the mount point; the filesystem type follows the lone "-" that ends the
 * variable list of optional fields. Lines that do not have that shape are skipped.
 */
static int mountinfo_find_cgroup2(char *buf, char **ret_path)
{
        char *save_line = NULL;

        for (char *line = strtok_r(buf, "\n", &save_line); line;
             line = strtok_r(NULL, "\n", &save_line)) {
                char *save = NULL, *mount_point = NULL, *fstype = NULL;
                unsigned i = 0;
                bool after_dash = false;

                for (char *f = strtok_r(line, " ", &save); f; f = strtok_r(NULL, " ", &save)) {
                        i++;
                        if (i == 5)
                                mount_point = f;
                        else if (i > 6 && !after_dash && strcmp(f, "-") == 0)
                                after_dash = true;
                        else if (after_dash) {
                                fstype = f;
                                break;
                        }
                }
                if (!mount_point || !fstype || strcmp(fstype, "cgroup2") != 0)
                        continue;

                unescape_octal(mount_point);
                if (mount_point[0] != '/')
                        continue;
                char *p = strdup(mount_point);
                if (!p)
                        return -ENOMEM;
                *ret_path = p;
                return 0;
        }
        return -ENOENT;
}

int cgfs_find_cgroup2_mount(const char *proc_root, char **ret_path)
{
        _cleanup_free_ char *path = NULL, *buf = NULL;
        size_t len;

        if (asprintf(&path, "%s/self/mountinfo", proc_root ? proc_root : "/proc") < 0)
                return -ENOMEM;
        int r = cgfs_read_alloc_at(AT_FDCWD, path, MOUNTINFO_MAX_BYTES, &buf, &len);
        if (r < 0)
                return r;
        return mountinfo_find_cgroup2(buf, ret_path);
}

static int open_dir(const char *path, int *ret_fd, char **ret_abs)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        char *abs = realpath(path, NULL);
        if (!abs)
                return negative_errno();
        *ret_fd = TAKE_FD(fd);
        *ret_abs = abs;
        return 0;
}

int cgfs_new(const char *cgroup_root, const char *proc_root, struct cgfs **ret)
{
        _cleanup_free_ char *mount = NULL;
        int r;

        if (!proc_root)
                proc_root = "/proc";
        if (!cgroup_root) {
                r = cgfs_find_cgroup2_mount(proc_root, &mount);
                if (r < 0)
                        return r;
                cgroup_root = mount;
        }

        _cleanup_(cgfs_freep) struct cgfs *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->cgroup_fd = c->proc_fd = -1;

        r = open_dir(cgroup_root, &c->cgroup_fd, &c->cgroup_path);
        if (r < 0)
                return r;
        r = open_dir(proc_root, &c->proc_fd, &c->proc_path);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(c);
        return 0;
}

struct cgfs *cgfs_free(struct cgfs *c)
{
        if (!c)
                return NULL;
        closep(&c->cgroup_fd);
        closep(&c->proc_fd);
        free(c->cgroup_path);
        free(c->proc_path);
        free(c);
        return NULL;
}

/* Whether a whitespace-separated list (cgroup.controllers) holds word. */
static bool word_list_has(const char *list, const char *word)
{
        size_t n = strlen(word);

        for (const char *p = list; *p;) {
                p += strspn(p, " \t\n");
                size_t k = strcspn(p, " \t\n");
                if (k == n && strncmp(p, word, n) == 0)
                        return true;
                p += k;
        }
        return false;
}

int cgfs_lists_controller(int dirfd, const char *name, const char *controller)
{
        char buf[4096];

        ssize_t n = cgfs_read_at(dirfd, name, buf, sizeof(buf));
        if (n < 0)
                return (int)n;
        return word_list_has(buf, controller);
}

int cgfs_has_memory_controller(const struct cgfs *c)
{
        return cgfs_lists_controller(c->cgroup_fd, "cgroup.controllers", "memory");
}

int cgfs_root_is_cgroup2(const struct cgfs *c)
{
        struct statfs sfs;

        if (fstatfs(c->cgroup_fd, &sfs) < 0)
                return negative_errno();
        return sfs.f_type == CGROUP2_SUPER_MAGIC;
}

/*
 * A cgroup path relative to the root, cleaned: leading, trailing and doubled '/' and "."
 * components dropped ("/a//b/" → "a/b", "" and "/" → ""). A ".." component is -EINVAL:
 * nothing reached through cgfs may lie outside the root.
 */
int cgfs_relpath_clean(const char *in, char **ret)
{
        size_t len = strlen(in);
        _cleanup_free_ char *out = malloc(len + 1);
        if (!out)
                return -ENOMEM;

        size_t w = 0;
        for (const char *p = in; *p;) {
                p += strspn(p, "/");
                size_t k = strcspn(p, "/");
                if (k == 0)
                        break;
                if (k == 2 && p[0] == '.' && p[1] == '.')
                        return -EINVAL;
                if (!(k == 1 && p[0] == '.')) {
                        if (w > 0)
                                out[w++] = '/';
                        memcpy(out + w, p, k);
                        w += k;
                }
                p += k;
        }
        out[w] = '\0';
        *ret = TAKE_PTR(out);
        return 0;
}

int cgfs_open_cgroup(const struct cgfs *c, const char *relpath, int *ret_fd)
{
        _cleanup_free_ char *clean = NULL;

        int r = cgfs_relpath_clean(relpath, &clean);
        if (r < 0)
                return r;
        int fd = openat(c->cgroup_fd, clean[0] ? clean : ".",
                        O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return negative_errno();
        *ret_fd = fd;
        return 0;
}

int cgfs_mkdir_cgroup(const struct cgfs *c, const char *relpath)
{
        _cleanup_free_ char *clean = NULL;

        int r = cgfs_relpath_clean(relpath, &clean);
        if (r < 0)
                return r;
        if (!clean[0])
                return -EEXIST; /* the root */
        if (mkdirat(c->cgroup_fd, clean, 0755) < 0)
                return negative_errno();
        return 0;
}

int cgfs_rmdir_cgroup(const struct cgfs *c, const char *relpath)
{
        _cleanup_free_ char *clean = NULL;

        int r = cgfs_relpath_clean(relpath, &clean);
        if (r < 0)
                return r;
        if (!clean[0])
                return -EBUSY; /* the root */
        if (unlinkat(c->cgroup_fd, clean, AT_REMOVEDIR) < 0)
                return negative_errno();
        return 0;
}

int cgfs_read_procs(int dirfd, pid_t **ret_pids, size_t *ret_n)
{
        _cleanup_free_ char *buf = NULL;
        _cleanup_free_ pid_t *pids = NULL;
        size_t len, n = 0, cap = 0;

        int r = cgfs_read_alloc_at(dirfd, "cgroup.procs", PROCS_MAX_BYTES, &buf, &len);
        if (r < 0)
                return r;

        for (char *p = buf; *p;) {
                if (*p == '\n') {
                        p++;
                        continue;
                }
                if (!isdigit((unsigned char)*p))
                        return -EINVAL;
                errno = 0;
                char *end;
                unsigned long v = strtoul(p, &end, 10);
                if (errno != 0 || v == 0 || v > INT_MAX || (*end != '\n' && *end != '\0'))
                        return -EINVAL;
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        pid_t *np = reallocarray(pids, ncap, sizeof(pid_t));
                        if (!np)
                                return -ENOMEM;
                        pids = np;
                        cap = ncap;
                }
                pids[n++] = (pid_t)v;
                p = end;
        }

        *ret_pids = TAKE_PTR(pids);
        *ret_n = n;
        return 0;
}

int cgfs_psi_trigger_open(int dirfd, uint64_t stall_usec, uint64_t window_usec, int *ret_fd)
{
        char buf[64];

        snprintf(buf, sizeof(buf), "some %" PRIu64 " %" PRIu64, stall_usec, window_usec);

        _cleanup_close_ int fd =
                openat(dirfd, "memory.pressure", O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();

        /* The kernel's PSI documentation writes the trigger with its terminating NUL. */
        ssize_t k;
        do
                k = write(fd, buf, strlen(buf) + 1);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return negative_errno();

        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * cgfs: the probe's file access. Every read and write of cgroupfs and /proc goes through
 * here, relative to the root directory fds of struct cgfs, so that tests and
 * `--cgroup-root` point the whole program at another tree. Interpretation of the bytes is
 * left to governor/parse.c.
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>

#include "memgov/cgfs.h"
#include "memgov/parse.h"

/* Upper bounds for files read whole; beyond them something is wrong with the file. */
#define MOUNTINFO_MAX_BYTES (16u << 20)
#define PROCS_MAX_BYTES     (64u << 20)
#define MEMINFO_MAX_BYTES   (1u << 20)

char **strv_free(char **l)
{
        if (!l)
                return NULL;
        for (char **s = l; *s; s++)
                free(*s);
        free(l);
        return NULL;
}

static void strv_freep(char ***l)
{
        *l = strv_free(*l);
}

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
static int read_alloc_at(int dirfd, const char *name, size_t max_bytes, char **ret_buf,
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
        int r = read_alloc_at(AT_FDCWD, path, MOUNTINFO_MAX_BYTES, &buf, &len);
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
static int relpath_clean(const char *in, char **ret)
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

        int r = relpath_clean(relpath, &clean);
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

        int r = relpath_clean(relpath, &clean);
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

        int r = relpath_clean(relpath, &clean);
        if (r < 0)
                return r;
        if (!clean[0])
                return -EBUSY; /* the root */
        if (unlinkat(c->cgroup_fd, clean, AT_REMOVEDIR) < 0)
                return negative_errno();
        return 0;
}

/* "MemTotal:       16318480 kB" → bytes. Pure; the rest of meminfo is ignored. */
static int meminfo_memtotal(const char *buf, uint64_t *ret_bytes)
{
        for (const char *line = buf; line && *line;) {
                if (strncmp(line, "MemTotal:", 9) == 0) {
                        const char *p = line + 9;
                        while (*p == ' ' || *p == '\t')
                                p++;
                        if (!isdigit((unsigned char)*p))
                                return -EINVAL;
                        errno = 0;
                        char *end;
                        unsigned long long kb = strtoull(p, &end, 10);
                        if (errno != 0 || kb > UINT64_MAX / 1024)
                                return -ERANGE;
                        while (*end == ' ')
                                end++;
                        if (strncmp(end, "kB", 2) != 0)
                                return -EINVAL;
                        *ret_bytes = (uint64_t)kb * 1024;
                        return 0;
                }
                line = strchr(line, '\n');
                if (line)
                        line++;
        }
        return -EINVAL;
}

int cgfs_read_memtotal(const struct cgfs *c, uint64_t *ret_bytes)
{
        _cleanup_free_ char *buf = NULL;
        size_t len;

        int r = read_alloc_at(c->proc_fd, "meminfo", MEMINFO_MAX_BYTES, &buf, &len);
        if (r < 0)
                return r;
        return meminfo_memtotal(buf, ret_bytes);
}

int cgfs_effective_limit(const struct cgfs *c, const char *relpath, uint64_t *ret_bytes)
{
        _cleanup_free_ char *path = NULL;
        uint64_t limit = CGROUP_LIMIT_MAX, memtotal;
        int r;

        r = relpath_clean(relpath, &path);
        if (r < 0)
                return r;

        /* A vanished cgroup is -ENOENT, not "no limit". */
        if (path[0] && faccessat(c->cgroup_fd, path, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
                return negative_errno();

        /* Walk up by cutting the path at its last '/', down to the root's direct child. */
        for (size_t len = strlen(path); len > 0;) {
                char buf[64];

                path[len] = '\0';
                _cleanup_free_ char *file = NULL;
                if (asprintf(&file, "%s/memory.max", path) < 0)
                        return -ENOMEM;
                ssize_t n = cgfs_read_at(c->cgroup_fd, file, buf, sizeof(buf));
                if (n >= 0) {
                        uint64_t v;
                        if (parse_limit(buf, &v) >= 0)
                                limit = MIN(limit, v);
                } else if (n != -ENOENT)
                        return (int)n;

                char *slash = strrchr(path, '/');
                len = slash ? (size_t)(slash - path) : 0;
        }

        /*
         * Nothing is allowed more memory than the machine has: a memory.max above MemTotal
         * is never the limit that bites.
         */
        r = cgfs_read_memtotal(c, &memtotal);
        if (r < 0) {
                if (limit == CGROUP_LIMIT_MAX)
                        /* -ENOENT would read as "the cgroup vanished". */
                        return r == -ENOENT ? -ENODATA : r;
                memtotal = CGROUP_LIMIT_MAX;
        }
        *ret_bytes = MIN(limit, memtotal);
        return 0;
}

/* The outcome of one optional read in cgfs_read_sample(). */
enum {
        OPT_OK,
        OPT_ABSENT, /* no such file, or a value the parser refused */
};

/*
 * Read an optional file of a sample. Returns OPT_OK with buf filled, OPT_ABSENT, or -errno
 * for failures that must not pass silently (-ENODEV: the cgroup is going away; -EACCES).
 */
static int read_optional(int dirfd, const char *name, char *buf, size_t size, bool *missing)
{
        ssize_t n = cgfs_read_at(dirfd, name, buf, size);
        if (n == -ENOENT) {
                *missing = true;
                return OPT_ABSENT;
        }
        if (n < 0)
                return (int)n;
        return OPT_OK;
}

int cgfs_read_sample(int dirfd, uint64_t now_usec, struct sample *ret)
{
        struct sample s = {.t_usec = now_usec};
        char small[64], events[1024], pressure[512], stat[16384];
        bool missing = false;
        ssize_t n;
        int r;

        n = cgfs_read_at(dirfd, "memory.current", small, sizeof(small));
        if (n < 0)
                return (int)n;
        r = parse_u64(small, &s.current_bytes);
        if (r < 0)
                return r;

        s.max_bytes = s.high_bytes = s.swap_max_bytes = CGROUP_LIMIT_MAX;

        r = read_optional(dirfd, "memory.max", small, sizeof(small), &missing);
        if (r < 0)
                return r;
        if (r == OPT_OK)
                (void)parse_limit(small, &s.max_bytes); /* junk leaves "max" */

        r = read_optional(dirfd, "memory.high", small, sizeof(small), &missing);
        if (r < 0)
                return r;
        if (r == OPT_OK && parse_limit(small, &s.high_bytes) >= 0)
                s.has |= SAMPLE_HAS_HIGH;

        r = read_optional(dirfd, "memory.low", small, sizeof(small), &missing);
        if (r < 0)
                return r;
        if (r == OPT_OK && parse_limit(small, &s.low_bytes) >= 0)
                s.has |= SAMPLE_HAS_LOW_MIN;
        r = read_optional(dirfd, "memory.min", small, sizeof(small), &missing);
        if (r < 0)
                return r;
        if (r == OPT_OK && parse_limit(small, &s.min_bytes) >= 0)
                s.has |= SAMPLE_HAS_LOW_MIN;

        r = read_optional(dirfd, "memory.events", events, sizeof(events), &missing);
        if (r < 0)
                return r;
        if (r == OPT_OK && parse_memory_events(events, &s.events) >= 0)
                s.has |= SAMPLE_HAS_EVENTS;

        r = read_optional(dirfd, "memory.stat", stat, sizeof(stat), &missing);
        if (r < 0)
                return r;
        if (r == OPT_OK && parse_memory_stat(stat, &s.stat) >= 0) {
                s.anon_bytes = s.stat.anon;
                s.file_bytes = s.stat.file;
                s.has |= SAMPLE_HAS_STAT | SAMPLE_HAS_ANON | SAMPLE_HAS_FILE;
        }

        r = read_optional(dirfd, "memory.pressure", pressure, sizeof(pressure), &missing);
        if (r < 0)
                return r;
        if (r == OPT_OK && parse_pressure(pressure, &s.pressure) >= 0) {
                s.has |= SAMPLE_HAS_PSI_SOME | SAMPLE_HAS_PSI_AVG;
                if (s.pressure.has_full)
                        s.has |= SAMPLE_HAS_PSI_FULL;
        }

        r = read_optional(dirfd, "memory.swap.current", small, sizeof(small), &missing);
        if (r < 0)
                return r;
        if (r == OPT_OK && parse_u64(small, &s.swap_current_bytes) >= 0) {
                s.has |= SAMPLE_HAS_SWAP;
                r = read_optional(dirfd, "memory.swap.max", small, sizeof(small), &missing);
                if (r < 0)
                        return r;
                if (r == OPT_OK)
                        (void)parse_limit(small, &s.swap_max_bytes);
        }

        /*
         * A file missing after memory.current was there: either this kernel lacks it (swap
         * accounting off, PSI disabled) or the cgroup was removed meanwhile. Look again.
         */
        if (missing && faccessat(dirfd, "memory.current", F_OK, 0) < 0)
                return negative_errno();

        s.limit_bytes = s.max_bytes;
        *ret = s;
        return 0;
}

int cgfs_read_procs(int dirfd, pid_t **ret_pids, size_t *ret_n)
{
        _cleanup_free_ char *buf = NULL;
        _cleanup_free_ pid_t *pids = NULL;
        size_t len, n = 0, cap = 0;

        int r = read_alloc_at(dirfd, "cgroup.procs", PROCS_MAX_BYTES, &buf, &len);
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

static bool has_glob_chars(const char *s)
{
        return strpbrk(s, "*?[\\") != NULL;
}

static int strcmp_ptr(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A growing list of (relative path, directory fd) pairs: the glob's frontier. */
struct glob_set {
        char **paths;
        int *fds;
        size_t n, cap;
};

static void glob_set_clear(struct glob_set *g)
{
        for (size_t i = 0; i < g->n; i++) {
                free(g->paths[i]);
                closep(&g->fds[i]);
        }
        free(g->paths);
        free(g->fds);
        *g = (struct glob_set){};
}

/* Append parent/name with its fd; takes the fd (closed on failure). */
static int glob_set_add(struct glob_set *g, const char *parent, const char *name, int fd)
{
        _cleanup_close_ int owned = fd;
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "%s%s%s", parent, parent[0] ? "/" : "", name) < 0)
                return -ENOMEM;
        if (g->n == g->cap) {
                size_t ncap = g->cap ? g->cap * 2 : 8;
                char **np = reallocarray(g->paths, ncap, sizeof(char *));
                if (!np)
                        return -ENOMEM;
                g->paths = np;
                int *nf = reallocarray(g->fds, ncap, sizeof(int));
                if (!nf)
                        return -ENOMEM;
                g->fds = nf;
                g->cap = ncap;
        }
        g->paths[g->n] = TAKE_PTR(path);
        g->fds[g->n] = TAKE_FD(owned);
        g->n++;
        return 0;
}

/* Open dirfd/name if it is a directory (not a symlink to one). -ENOTDIR otherwise. */
static int open_subdir(int dirfd, const char *name)
{
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno == ELOOP ? -ENOTDIR : negative_errno();
        return fd;
}

/* Add to next the subdirectories of dir (path, fd) whose names match one component. */
static int glob_component(const char *path, int fd, const char *component, struct glob_set *next)
{
        int r;

        if (!has_glob_chars(component)) {
                int sub = open_subdir(fd, component);
                if (sub == -ENOENT || sub == -ENOTDIR)
                        return 0;
                if (sub < 0)
                        return sub;
                return glob_set_add(next, path, component, sub);
        }

        /* fdopendir() takes the fd it is given; the frontier keeps its own. */
        int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (dfd < 0)
                return negative_errno();
        DIR *d = fdopendir(dfd);
        if (!d) {
                r = negative_errno();
                close(dfd);
                return r;
        }
        rewinddir(d); /* the dup shares the offset with earlier walks of the same fd */

        r = 0;
        for (;;) {
                errno = 0;
                struct dirent *de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                r = negative_errno();
                        break;
                }
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
                        continue;
                if (fnmatch(component, de->d_name, FNM_PERIOD) != 0)
                        continue;
                int sub = open_subdir(fd, de->d_name);
                if (sub == -ENOENT || sub == -ENOTDIR)
                        continue; /* gone meanwhile, or not a directory after all */
                if (sub < 0) {
                        r = sub;
                        break;
                }
                r = glob_set_add(next, path, de->d_name, sub);
                if (r < 0)
                        break;
        }
        closedir(d);
        return r;
}

int cgfs_glob(const struct cgfs *c, const char *pattern, char ***ret_paths)
{
        _cleanup_(glob_set_clear) struct glob_set cur = {}, next = {};
        int r;

        if (!pattern[0] || pattern[0] == '/')
                return -EINVAL;

        _cleanup_free_ char *pat = strdup(pattern);
        if (!pat)
                return -ENOMEM;

        int root = fcntl(c->cgroup_fd, F_DUPFD_CLOEXEC, 3);
        if (root < 0)
                return negative_errno();
        r = glob_set_add(&cur, "", "", root);
        if (r < 0)
                return r;

        char *save = NULL;
        for (char *comp = strtok_r(pat, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
                if (strcmp(comp, ".") == 0)
                        continue;
                if (strcmp(comp, "..") == 0)
                        return -EINVAL;
                for (size_t i = 0; i < cur.n; i++) {
                        r = glob_component(cur.paths[i], cur.fds[i], comp, &next);
                        if (r < 0)
                                return r;
                }
                glob_set_clear(&cur);
                cur = next;
                next = (struct glob_set){};
                if (cur.n == 0)
                        break;
        }

        _cleanup_(strv_freep) char **l = calloc(cur.n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        size_t n = 0;
        for (size_t i = 0; i < cur.n; i++) {
                if (!cur.paths[i][0])
                        continue; /* the root itself: the pattern was only "." */
                l[n++] = TAKE_PTR(cur.paths[i]);
        }
        qsort(l, n, sizeof(char *), strcmp_ptr);

        *ret_paths = TAKE_PTR(l);
        return (int)MIN(n, (size_t)INT_MAX);
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

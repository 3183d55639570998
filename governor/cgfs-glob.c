/* SPDX-License-Identifier: MIT */
/*
 * cgfs, policy globs: a policy's cgroup pattern (a path whose components may hold fnmatch
 * wildcards) expanded, one component at a time, into the directories it matches under the
 * cgroup root.
 */
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memgov/cgfs.h"

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

/* SPDX-License-Identifier: MIT */
/*
 * Capture and record effects: the dump store. Dumps are directories written under a
 * temporary name and renamed when complete; each file inside is written under a temporary
 * name, fsync'ed and renamed; manifest.json lists every file with its sha256. Retention
 * and a free-space floor keep the store from ever filling the disk.
 *
 * Every access is relative to a directory fd opened without following symlinks, so that a
 * collector that plants a link in its dump directory cannot make us read or delete outside.
 * This file: the store, a dump and its files; dumps-commit.c completes a dump, dumps-fs.c
 * holds the file-system helpers and the retention.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dumps-internal.h"
#include "memgov/log.h"

static void format_size(char *buf, size_t n, uint64_t v)
{
        if (v >= (uint64_t)1 << 30)
                (void)snprintf(buf, n, "%.1f GiB", (double)v / (double)(1 << 30));
        else
                (void)snprintf(buf, n, "%.1f MiB", (double)v / (double)(1 << 20));
}

/* ---- the store ---------------------------------------------------------------------- */

/* Remove the .<name>.tmp directories an interrupted run left in one service directory. */
static int clean_service_dir(int service_fd)
{
        _cleanup_close_ int fd = dup(service_fd);
        DIR *dir;
        struct dirent *de;
        int n = 0;

        if (fd < 0)
                return negative_errno();
        dir = fdopendir(fd);
        if (!dir)
                return negative_errno();
        fd = -1;
        while ((de = readdir(dir))) {
                size_t len = strlen(de->d_name);
                if (de->d_name[0] != '.' || len < 6 || strcmp(de->d_name + len - 4, ".tmp") != 0)
                        continue;
                if (dumps_rm_rf_at(dirfd(dir), de->d_name, 0) >= 0)
                        n++;
        }
        closedir(dir);
        return n;
}

static int store_clean_leftovers(struct dump_store *s)
{
        _cleanup_close_ int fd = dup(s->fd);
        DIR *dir;
        struct dirent *de;
        int n = 0;

        if (fd < 0)
                return negative_errno();
        dir = fdopendir(fd);
        if (!dir)
                return negative_errno();
        fd = -1;
        while ((de = readdir(dir))) {
                _cleanup_close_ int sfd = -1;
                int k;

                if (de->d_name[0] == '.')
                        continue;
                sfd = openat(dirfd(dir), de->d_name,
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sfd < 0)
                        continue;
                k = clean_service_dir(sfd);
                if (k > 0)
                        n += k;
        }
        closedir(dir);
        return n;
}

int dump_store_open(const char *state_dir, const struct dumps_limits *limits,
                    struct dump_store **ret)
{
        _cleanup_close_ int state_fd = -1;
        struct dump_store *s;
        int r;

        if (!state_dir || !state_dir[0] || !ret)
                return -EINVAL;

        if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
                return log_error_errno(errno, "Cannot create the state directory %s: %m",
                                       state_dir);
        state_fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (state_fd < 0)
                return log_error_errno(errno, "Cannot open the state directory %s: %m", state_dir);

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->fd = -1;
        if (limits)
                s->limits = *limits;
        if (!s->limits.max_count)
                s->limits.max_count = DUMPS_DEFAULT_MAX_COUNT;
        if (!s->limits.max_bytes)
                s->limits.max_bytes = DUMPS_DEFAULT_MAX_BYTES;
        if (!s->limits.max_age_usec)
                s->limits.max_age_usec = DUMPS_DEFAULT_MAX_AGE_USEC;
        if (!s->limits.min_free_bytes)
                s->limits.min_free_bytes = DUMPS_DEFAULT_MIN_FREE_BYTES;
        if (!s->limits.min_free_permille)
                s->limits.min_free_permille = DUMPS_DEFAULT_MIN_FREE_PERMILLE;

        if (asprintf(&s->path, "%s/dumps", state_dir) < 0) {
                s->path = NULL;
                dump_store_free(s);
                return -ENOMEM;
        }
        r = dumps_open_or_make_dir(state_fd, "dumps", &s->fd);
        if (r < 0) {
                log_error_errno(r, "Cannot open the dump directory %s: %m", s->path);
                dump_store_free(s);
                return r;
        }

        r = store_clean_leftovers(s);
        if (r > 0)
                log_info("Removed %d unfinished dump%s left in %s by an earlier run.", r,
                         r == 1 ? "" : "s", s->path);
        *ret = s;
        return 0;
}

struct dump_store *dump_store_free(struct dump_store *s)
{
        if (!s)
                return NULL;
        if (s->fd >= 0)
                (void)close(s->fd);
        free(s->path);
        free(s);
        return NULL;
}

const char *dump_store_path(const struct dump_store *s)
{
        return s->path;
}

void dump_store_set_statvfs(struct dump_store *s, dumps_statvfs_fn fn, void *userdata)
{
        s->statvfs_fn = fn;
        s->statvfs_userdata = userdata;
}

/* Bytes available to us on the store's filesystem, and the floor in bytes. */
static int store_measure(struct dump_store *s, uint64_t *ret_avail, uint64_t *ret_floor)
{
        struct statvfs sv = {};
        uint64_t total, share;

        if (s->statvfs_fn) {
                int r = s->statvfs_fn(s->fd, &sv, s->statvfs_userdata);
                if (r < 0)
                        return r;
        } else if (fstatvfs(s->fd, &sv) < 0)
                return negative_errno();

        total = (uint64_t)sv.f_blocks * sv.f_frsize;
        *ret_avail = (uint64_t)sv.f_bavail * sv.f_frsize;
        share = total / 1000 * s->limits.min_free_permille +
                total % 1000 * s->limits.min_free_permille / 1000;
        *ret_floor = MAX(s->limits.min_free_bytes, share);
        return 0;
}

int dump_store_room(struct dump_store *s, uint64_t *ret_room, uint64_t *ret_floor)
{
        uint64_t avail, floor;
        int r;

        r = store_measure(s, &avail, &floor);
        if (r < 0)
                return r;
        if (ret_room)
                *ret_room = avail > floor ? avail - floor : 0;
        if (ret_floor)
                *ret_floor = floor;
        return 0;
}

/* ---- one dump ----------------------------------------------------------------------- */

int dump_begin(struct dump_store *s, const char *service, const char *event, uint64_t realtime_usec,
               uint64_t reserve_bytes, struct dump **ret)
{
        _cleanup_(dump_freep) struct dump *d = NULL;
        uint64_t avail = 0, floor = 0;
        char stamp[32], base[DUMPS_EVENT_MAX + 32];
        time_t t = (time_t)(realtime_usec / USEC_PER_SEC);
        struct tm tm;
        int r;

        if (!s || !ret || !dumps_name_valid(service, DUMPS_SERVICE_MAX, true) ||
            !dumps_name_valid(event, DUMPS_EVENT_MAX, false))
                return -EINVAL;

        r = store_measure(s, &avail, &floor);
        if (r < 0)
                return log_warning_errno(r,
                                         "%s: not capturing (%s): cannot measure free space "
                                         "in %s: %m",
                                         service, event, s->path);
        if (avail < floor || avail - floor < reserve_bytes) {
                char a[32], b[32], c[32];
                format_size(a, sizeof(a), avail);
                format_size(b, sizeof(b), floor);
                format_size(c, sizeof(c), reserve_bytes);
                log_warning("%s: not capturing (%s): %s free in %s, the floor is %s and this "
                            "capture may need %s.",
                            service, event, a, s->path, b, c);
                return -ENOSPC;
        }

        if (!gmtime_r(&t, &tm) || strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm) == 0)
                return -EINVAL;
        (void)snprintf(base, sizeof(base), "%s-%s", stamp, event);

        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->store = s;
        d->service_fd = d->fd = -1;
        d->realtime_usec = realtime_usec;
        d->service = strdup(service);
        d->event = strdup(event);
        if (!d->service || !d->event)
                return -ENOMEM;

        r = dumps_open_or_make_dir(s->fd, service, &d->service_fd);
        if (r < 0)
                return log_warning_errno(r, "%s: cannot create %s/%s: %m", service, s->path,
                                         service);

        for (unsigned i = 1; i <= DUMP_NAME_SUFFIX_MAX; i++) {
                struct stat st;

                free(d->name);
                free(d->tmp_name);
                d->tmp_name = NULL;
                if ((i == 1 ? asprintf(&d->name, "%s", base)
                            : asprintf(&d->name, "%s-%u", base, i)) < 0) {
                        d->name = NULL;
                        return -ENOMEM;
                }
                if (asprintf(&d->tmp_name, ".%s.tmp", d->name) < 0) {
                        d->tmp_name = NULL;
                        return -ENOMEM;
                }
                if (fstatat(d->service_fd, d->name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                        continue;
                if (mkdirat(d->service_fd, d->tmp_name, 0700) == 0)
                        break;
                if (errno != EEXIST)
                        return log_warning_errno(errno, "%s: cannot create a dump in %s/%s: %m",
                                                 service, s->path, service);
                if (i == DUMP_NAME_SUFFIX_MAX)
                        return -EEXIST;
        }

        d->fd = openat(d->service_fd, d->tmp_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (d->fd < 0) {
                r = negative_errno();
                (void)unlinkat(d->service_fd, d->tmp_name, AT_REMOVEDIR);
                return r;
        }
        if (asprintf(&d->path, "%s/%s/%s", s->path, service, d->name) < 0) {
                d->path = NULL;
                return -ENOMEM;
        }
        if (asprintf(&d->tmp_path, "%s/%s/%s", s->path, service, d->tmp_name) < 0) {
                d->tmp_path = NULL;
                return -ENOMEM;
        }
        *ret = TAKE_PTR(d);
        return 0;
}

const char *dump_name(const struct dump *d)
{
        return d->name;
}

const char *dump_path(const struct dump *d)
{
        return d->path;
}

const char *dump_tmp_path(const struct dump *d)
{
        return d->tmp_path;
}

int dump_dirfd(const struct dump *d)
{
        return d->fd;
}

const struct dump_entry *dump_entries(const struct dump *d, size_t *ret_n)
{
        *ret_n = d->n_entries;
        return d->entries;
}

const struct dump_entry *dumps_entry_find(const struct dump *d, const char *name)
{
        for (size_t i = 0; i < d->n_entries; i++)
                if (strcmp(d->entries[i].name, name) == 0)
                        return &d->entries[i];
        return NULL;
}

void dumps_entry_clear(struct dump_entry *e)
{
        free(e->name);
        free(e->kind);
        free(e->error);
}

/* Hash the file at fd and add it to the manifest as name. */
int dumps_entry_add(struct dump *d, int fd, const char *name, const char *kind, const char *error)
{
        struct dump_entry e = {.complete = !error};
        struct dump_entry *t;
        int r;

        if (d->n_entries >= DUMP_ENTRIES_MAX)
                return -E2BIG;
        r = dumps_sha256_fd(fd, e.sha256, &e.size);
        if (r < 0)
                return r;
        e.name = strdup(name);
        e.kind = strdup(kind);
        e.error = error ? strdup(error) : NULL;
        t = reallocarray(d->entries, d->n_entries + 1, sizeof(*t));
        if (!e.name || !e.kind || (error && !e.error) || !t) {
                dumps_entry_clear(&e);
                if (t)
                        d->entries = t;
                return -ENOMEM;
        }
        d->entries = t;
        d->entries[d->n_entries++] = e;
        return 0;
}

static bool file_name_valid(const char *name)
{
        return name && name[0] && name[0] != '.' && !strchr(name, '/') && strlen(name) < 200 &&
               strcmp(name, "manifest.json") != 0;
}

int dump_file_open(struct dump *d, const char *name, const char *kind, struct dump_file **ret)
{
        struct dump_file *f;

        if (!d || d->committed || !file_name_valid(name) || !kind || !ret)
                return -EINVAL;
        if (dumps_entry_find(d, name))
                return -EEXIST;

        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->fd = -1;
        f->name = strdup(name);
        f->kind = strdup(kind);
        if (!f->name || !f->kind || asprintf(&f->tmp_name, ".%s.tmp", name) < 0) {
                f->tmp_name = NULL;
                dump_file_abort(d, f);
                return -ENOMEM;
        }
        f->fd = openat(d->fd, f->tmp_name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       0600);
        if (f->fd < 0) {
                int r = negative_errno();
                free(f->tmp_name);
                f->tmp_name = NULL; /* not ours to unlink */
                dump_file_abort(d, f);
                return r;
        }
        *ret = f;
        return 0;
}

int dump_file_fd(const struct dump_file *f)
{
        return f->fd;
}

struct dump_file *dump_file_abort(struct dump *d, struct dump_file *f)
{
        if (!f)
                return NULL;
        if (f->fd >= 0)
                (void)close(f->fd);
        if (f->tmp_name && d)
                (void)unlinkat(d->fd, f->tmp_name, 0);
        free(f->name);
        free(f->tmp_name);
        free(f->kind);
        free(f);
        return NULL;
}

int dump_file_commit(struct dump *d, struct dump_file *f, const char *error)
{
        _cleanup_free_ char *final = NULL;
        int r;

        if (!d || !f)
                return -EINVAL;
        if (error) {
                if (asprintf(&final, "%s.partial", f->name) < 0)
                        final = NULL;
        } else
                final = strdup(f->name);
        if (!final) {
                dump_file_abort(d, f);
                return -ENOMEM;
        }
        if (fsync(f->fd) < 0 || renameat(d->fd, f->tmp_name, d->fd, final) < 0) {
                r = negative_errno();
                dump_file_abort(d, f);
                return r;
        }
        free(f->tmp_name);
        f->tmp_name = NULL; /* renamed: nothing to unlink */
        r = dumps_entry_add(d, f->fd, final, f->kind, error);
        dump_file_abort(d, f);
        return r;
}

int dump_write_file(struct dump *d, const char *name, const char *kind, const void *data,
                    size_t size)
{
        struct dump_file *f = NULL;
        const char *p = data;
        int r;

        r = dump_file_open(d, name, kind, &f);
        if (r < 0)
                return r;
        while (size > 0) {
                ssize_t n = write(f->fd, p, size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        dump_file_abort(d, f);
                        return r;
                }
                p += n;
                size -= (size_t)n;
        }
        return dump_file_commit(d, f, NULL);
}

int dump_add_error(struct dump *d, const char *what, const char *fmt, ...)
{
        struct dump_error e = {};
        struct dump_error *t;
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = vasprintf(&e.message, fmt, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;
        e.what = strdup(what ? what : "");
        t = reallocarray(d->errors, d->n_errors + 1, sizeof(*t));
        if (!e.what || !t) {
                free(e.what);
                free(e.message);
                if (t)
                        d->errors = t;
                return -ENOMEM;
        }
        d->errors = t;
        d->errors[d->n_errors++] = e;
        return 0;
}

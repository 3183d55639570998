/* SPDX-License-Identifier: MIT */
/*
 * Capture and record effects: the dump store. Dumps are directories written under a
 * temporary name and renamed when complete; each file inside is written under a temporary
 * name, fsync'ed and renamed; manifest.json lists every file with its sha256. Retention
 * and a free-space floor keep the store from ever filling the disk.
 *
 * Every access is relative to a directory fd opened without following symlinks, so that a
 * collector that plants a link in its dump directory cannot make us read or delete outside.
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

#include <json-c/json.h>
#include <openssl/evp.h>

#include "memgov/dumps.h"
#include "memgov/log.h"

#define DUMP_WALK_DEPTH_MAX  8
#define DUMP_ENTRIES_MAX     4096
#define DUMP_NAME_SUFFIX_MAX 100

struct dump_store {
        char *path; /* <state>/dumps */
        int fd;
        struct dumps_limits limits;
        dumps_statvfs_fn statvfs_fn;
        void *statvfs_userdata;
};

struct dump_error {
        char *what;
        char *message;
};

struct dump {
        struct dump_store *store;
        char *service;
        char *name;     /* final */
        char *tmp_name; /* .<name>.tmp */
        char *path;
        char *tmp_path;
        int service_fd;
        int fd;
        uint64_t realtime_usec;
        char *event;
        struct dump_entry *entries;
        size_t n_entries;
        struct dump_error *errors;
        size_t n_errors;
        bool committed;
};

struct dump_file {
        int fd;
        char *name;
        char *tmp_name;
        char *kind;
};

/* ---- small helpers ------------------------------------------------------------------ */

static bool name_valid(const char *s, size_t max, bool allow_dot)
{
        size_t n = s ? strlen(s) : 0;

        if (n == 0 || n > max || s[0] == '.')
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-' || (allow_dot && c == '.')))
                        return false;
        }
        return true;
}

static int fsync_dirfd(int fd)
{
        return fsync(fd) < 0 ? negative_errno() : 0;
}

/* Open dirfd/name as a directory, creating it (0700) when missing; never through a link. */
static int open_or_make_dir(int parent_fd, const char *name, int *ret_fd)
{
        int fd;

        if (mkdirat(parent_fd, name, 0700) < 0 && errno != EEXIST)
                return negative_errno();
        fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        /* Dumps hold memory contents: nobody but us reads them, whatever made the dir. */
        (void)fchmod(fd, 0700);
        *ret_fd = fd;
        return 0;
}

/* Remove dirfd/name and everything under it, following no link. */
static int rm_rf_at(int parent_fd, const char *name, unsigned depth)
{
        _cleanup_close_ int fd = -1;
        DIR *dir;
        struct dirent *de;
        int r = 0;

        if (unlinkat(parent_fd, name, 0) == 0)
                return 0;
        if (errno == ENOENT)
                return 0;
        if (errno != EISDIR && errno != EPERM)
                return negative_errno();
        if (depth > 32)
                return -ELOOP;

        fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        dir = fdopendir(fd);
        if (!dir)
                return negative_errno();
        fd = -1; /* owned by dir now */
        while ((de = readdir(dir))) {
                int k;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                k = rm_rf_at(dirfd(dir), de->d_name, depth + 1);
                if (k < 0 && r == 0)
                        r = k;
        }
        closedir(dir);
        if (unlinkat(parent_fd, name, AT_REMOVEDIR) < 0 && r == 0)
                r = negative_errno();
        return r;
}

/* Sum of the sizes of the regular files under parent_fd/name (a file: its size). */
static uint64_t size_at(int parent_fd, const char *name, unsigned depth)
{
        _cleanup_close_ int fd = -1;
        struct stat st;
        uint64_t sum = 0;
        DIR *dir;
        struct dirent *de;

        if (fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return 0;
        if (S_ISREG(st.st_mode))
                return (uint64_t)st.st_size;
        if (!S_ISDIR(st.st_mode) || depth > 32)
                return 0;
        fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return 0;
        dir = fdopendir(fd);
        if (!dir)
                return 0;
        fd = -1;
        while ((de = readdir(dir)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        sum += size_at(dirfd(dir), de->d_name, depth + 1);
        closedir(dir);
        return sum;
}

/* The UTC time at the head of a dump name, "20240501T123456Z-…", in µs; -EINVAL if none. */
static int dump_name_time(const char *name, uint64_t *ret_usec)
{
        struct tm tm = {};
        const char *end;
        time_t t;

        end = strptime(name, "%Y%m%dT%H%M%SZ-", &tm);
        if (!end || end - name != 17 || !name_valid(end, DUMPS_EVENT_MAX + 8, false))
                return -EINVAL;
        t = timegm(&tm);
        if (t < 0)
                return -EINVAL;
        *ret_usec = (uint64_t)t * USEC_PER_SEC;
        return 0;
}

static int sha256_fd(int fd, char hex[65], uint64_t *ret_size)
{
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned md_len = 0;
        _cleanup_free_ char *buf = malloc(1 << 16);
        uint64_t size = 0;
        off_t off = 0;
        int r = 0;

        if (!ctx || !buf) {
                EVP_MD_CTX_free(ctx);
                return -ENOMEM;
        }
        if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
                r = -EIO;
                goto out;
        }
        for (;;) {
                ssize_t n = pread(fd, buf, 1 << 16, off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        goto out;
                }
                if (n == 0)
                        break;
                if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
                        r = -EIO;
                        goto out;
                }
                off += n;
                size += (uint64_t)n;
        }
        if (EVP_DigestFinal_ex(ctx, md, &md_len) != 1 || md_len != 32) {
                r = -EIO;
                goto out;
        }
        for (unsigned i = 0; i < md_len; i++)
                (void)snprintf(hex + 2 * i, 3, "%02x", md[i]);
        *ret_size = size;
out:
        EVP_MD_CTX_free(ctx);
        return r;
}

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
                if (rm_rf_at(dirfd(dir), de->d_name, 0) >= 0)
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
        r = open_or_make_dir(state_fd, "dumps", &s->fd);
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

        if (!s || !ret || !name_valid(service, DUMPS_SERVICE_MAX, true) ||
            !name_valid(event, DUMPS_EVENT_MAX, false))
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

        r = open_or_make_dir(s->fd, service, &d->service_fd);
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

static const struct dump_entry *entry_find(const struct dump *d, const char *name)
{
        for (size_t i = 0; i < d->n_entries; i++)
                if (strcmp(d->entries[i].name, name) == 0)
                        return &d->entries[i];
        return NULL;
}

static void entry_clear(struct dump_entry *e)
{
        free(e->name);
        free(e->kind);
        free(e->error);
}

/* Hash the file at fd and add it to the manifest as name. */
static int entry_add(struct dump *d, int fd, const char *name, const char *kind, const char *error)
{
        struct dump_entry e = {.complete = !error};
        struct dump_entry *t;
        int r;

        if (d->n_entries >= DUMP_ENTRIES_MAX)
                return -E2BIG;
        r = sha256_fd(fd, e.sha256, &e.size);
        if (r < 0)
                return r;
        e.name = strdup(name);
        e.kind = strdup(kind);
        e.error = error ? strdup(error) : NULL;
        t = reallocarray(d->entries, d->n_entries + 1, sizeof(*t));
        if (!e.name || !e.kind || (error && !e.error) || !t) {
                entry_clear(&e);
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
        if (entry_find(d, name))
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
        r = entry_add(d, f->fd, final, f->kind, error);
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

/* ---- completing a dump -------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Take in what others wrote into the dump directory (prefix: the path so far, "" at the
 * top): regular files are listed, directories walked, anything else removed.
 */
static int adopt_foreign(struct dump *d, int dir_fd, const char *prefix, unsigned depth)
{
        _cleanup_close_ int fd = dup(dir_fd);
        char **names = NULL;
        size_t n = 0;
        DIR *dir;
        struct dirent *de;
        int r = 0;

        if (fd < 0)
                return negative_errno();
        dir = fdopendir(fd);
        if (!dir)
                return negative_errno();
        fd = -1;
        rewinddir(dir);
        while ((de = readdir(dir))) {
                char **t;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                t = reallocarray(names, n + 1, sizeof(*names));
                if (!t || !(t[n] = strdup(de->d_name))) {
                        names = t ? t : names;
                        r = -ENOMEM;
                        break;
                }
                names = t;
                n++;
        }
        if (r == 0 && n > 1)
                qsort(names, n, sizeof(*names), cmp_str);

        for (size_t i = 0; r == 0 && i < n; i++) {
                const char *name = names[i];
                size_t len = strlen(name);
                _cleanup_free_ char *rel = NULL;
                struct stat st;

                if (depth == 0 && strcmp(name, "manifest.json") == 0)
                        continue;
                if (asprintf(&rel, "%s%s", prefix, name) < 0) {
                        rel = NULL;
                        r = -ENOMEM;
                        break;
                }
                if (fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                /* A file still being written by us, abandoned: not part of the dump. */
                if (name[0] == '.' && len > 4 && strcmp(name + len - 4, ".tmp") == 0) {
                        (void)rm_rf_at(dirfd(dir), name, 0);
                        continue;
                }
                if (S_ISREG(st.st_mode)) {
                        _cleanup_close_ int ffd = -1;

                        if (entry_find(d, rel))
                                continue;
                        if (d->n_entries >= DUMP_ENTRIES_MAX) {
                                (void)unlinkat(dirfd(dir), name, 0);
                                (void)dump_add_error(d, rel, "removed: more than %d files",
                                                     DUMP_ENTRIES_MAX);
                                continue;
                        }
                        ffd = openat(dirfd(dir), name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                        if (ffd < 0)
                                continue;
                        (void)fchmod(ffd, 0600);
                        (void)fsync(ffd);
                        r = entry_add(d, ffd, rel, "collector-output", NULL);
                } else if (S_ISDIR(st.st_mode) && depth < DUMP_WALK_DEPTH_MAX) {
                        _cleanup_close_ int sub = openat(
                                dirfd(dir), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        _cleanup_free_ char *sub_prefix = NULL;

                        if (sub < 0)
                                continue;
                        (void)fchmod(sub, 0700);
                        if (asprintf(&sub_prefix, "%s/", rel) < 0) {
                                sub_prefix = NULL;
                                r = -ENOMEM;
                                break;
                        }
                        r = adopt_foreign(d, sub, sub_prefix, depth + 1);
                        (void)fsync(sub);
                } else {
                        /* Links, fifos, sockets, devices, too-deep trees: not dump content. */
                        (void)rm_rf_at(dirfd(dir), name, 0);
                        (void)dump_add_error(d, rel,
                                             S_ISDIR(st.st_mode)
                                                     ? "removed: directories nested too deep"
                                                     : "removed: not a regular file");
                }
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        closedir(dir);
        return r;
}

static int json_put_add(struct json_object *o, const char *key, struct json_object *v)
{
        if (!v || json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static char *manifest_json(const struct dump *d)
{
        struct json_object *o = json_object_new_object(), *files, *errors;
        char when[32];
        time_t t = (time_t)(d->realtime_usec / USEC_PER_SEC);
        struct tm tm;
        char *out = NULL;
        int r = 0;

        if (!o)
                return NULL;
        if (!gmtime_r(&t, &tm) || strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                when[0] = '\0';
        r |= json_put_add(o, "version", json_object_new_int(1));
        r |= json_put_add(o, "service", json_object_new_string(d->service));
        r |= json_put_add(o, "event", json_object_new_string(d->event));
        r |= json_put_add(o, "name", json_object_new_string(d->name));
        r |= json_put_add(o, "time", json_object_new_string(when));
        r |= json_put_add(o, "generator", json_object_new_string("memgovd " MEMGOV_VERSION));

        files = json_object_new_array();
        for (size_t i = 0; files && i < d->n_entries; i++) {
                const struct dump_entry *e = &d->entries[i];
                struct json_object *f = json_object_new_object();

                if (!f || json_object_array_add(files, f) < 0) {
                        json_object_put(f);
                        r = -ENOMEM;
                        break;
                }
                r |= json_put_add(f, "name", json_object_new_string(e->name));
                r |= json_put_add(f, "kind", json_object_new_string(e->kind));
                r |= json_put_add(f, "size", json_object_new_uint64(e->size));
                r |= json_put_add(f, "sha256", json_object_new_string(e->sha256));
                r |= json_put_add(f, "complete", json_object_new_boolean(e->complete));
                if (e->error)
                        r |= json_put_add(f, "error", json_object_new_string(e->error));
        }
        r |= json_put_add(o, "files", files);

        errors = json_object_new_array();
        for (size_t i = 0; errors && i < d->n_errors; i++) {
                struct json_object *e = json_object_new_object();

                if (!e || json_object_array_add(errors, e) < 0) {
                        json_object_put(e);
                        r = -ENOMEM;
                        break;
                }
                r |= json_put_add(e, "what", json_object_new_string(d->errors[i].what));
                r |= json_put_add(e, "error", json_object_new_string(d->errors[i].message));
        }
        r |= json_put_add(o, "errors", errors);

        if (r == 0) {
                const char *s = json_object_to_json_string_ext(
                        o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                   JSON_C_TO_STRING_NOSLASHESCAPE);
                out = s ? strdup(s) : NULL;
        }
        json_object_put(o);
        return out;
}

/* manifest.json through a temporary name, like every other file, but not listed in itself. */
static int write_manifest(struct dump *d)
{
        _cleanup_free_ char *text = manifest_json(d);
        _cleanup_close_ int fd = -1;
        size_t len, done = 0;

        if (!text)
                return -ENOMEM;
        len = strlen(text);
        fd = openat(d->fd, ".manifest.json.tmp",
                    O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return negative_errno();
        while (done < len) {
                ssize_t n = write(fd, text + done, len - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                done += (size_t)n;
        }
        if (write(fd, "\n", 1) != 1 || fsync(fd) < 0 ||
            renameat(d->fd, ".manifest.json.tmp", d->fd, "manifest.json") < 0)
                return negative_errno();
        return 0;
}

int dump_commit(struct dump *d, uint64_t realtime_usec)
{
        int r;

        if (!d || d->committed)
                return -EINVAL;

        r = adopt_foreign(d, d->fd, "", 0);
        if (r < 0)
                return log_warning_errno(r, "%s: cannot list the files of dump %s: %m", d->service,
                                         d->name);
        r = write_manifest(d);
        if (r < 0)
                return log_warning_errno(r, "%s: cannot write the manifest of dump %s: %m",
                                         d->service, d->name);
        r = fsync_dirfd(d->fd);
        if (r >= 0 &&
            renameat2(d->service_fd, d->tmp_name, d->service_fd, d->name, RENAME_NOREPLACE) < 0)
                r = negative_errno();
        if (r >= 0)
                r = fsync_dirfd(d->service_fd);
        if (r < 0)
                return log_warning_errno(r, "%s: cannot complete dump %s: %m", d->service, d->name);
        d->committed = true;

        r = dump_store_prune(d->store, d->service, realtime_usec);
        if (r < 0)
                log_warning_errno(r, "%s: cannot apply the dump retention: %m", d->service);
        return 0;
}

struct dump *dump_free(struct dump *d)
{
        if (!d)
                return NULL;
        if (!d->committed && d->tmp_name && d->service_fd >= 0 && d->fd >= 0)
                (void)rm_rf_at(d->service_fd, d->tmp_name, 0);
        if (d->fd >= 0)
                (void)close(d->fd);
        if (d->service_fd >= 0)
                (void)close(d->service_fd);
        for (size_t i = 0; i < d->n_entries; i++)
                entry_clear(&d->entries[i]);
        free(d->entries);
        for (size_t i = 0; i < d->n_errors; i++) {
                free(d->errors[i].what);
                free(d->errors[i].message);
        }
        free(d->errors);
        free(d->service);
        free(d->event);
        free(d->name);
        free(d->tmp_name);
        free(d->path);
        free(d->tmp_path);
        free(d);
        return NULL;
}

/* ---- retention ---------------------------------------------------------------------- */

int dump_store_list(struct dump_store *s, const char *service, char ***ret)
{
        _cleanup_close_ int fd = -1;
        char **names = NULL;
        size_t n = 0;
        DIR *dir;
        struct dirent *de;
        uint64_t t;

        if (!s || !ret || !name_valid(service, DUMPS_SERVICE_MAX, true))
                return -EINVAL;
        fd = openat(s->fd, service, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno != ENOENT)
                return negative_errno();
        if (fd >= 0) {
                dir = fdopendir(fd);
                if (!dir)
                        return negative_errno();
                fd = -1;
                while ((de = readdir(dir))) {
                        struct stat st;
                        char **tmp;

                        if (de->d_name[0] == '.' || dump_name_time(de->d_name, &t) < 0 ||
                            fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                            !S_ISDIR(st.st_mode))
                                continue;
                        tmp = reallocarray(names, n + 2, sizeof(*names));
                        if (!tmp || !(tmp[n] = strdup(de->d_name))) {
                                names = tmp ? tmp : names;
                                for (size_t i = 0; i < n; i++)
                                        free(names[i]);
                                free(names);
                                closedir(dir);
                                return -ENOMEM;
                        }
                        names = tmp;
                        names[++n] = NULL;
                }
                closedir(dir);
        }
        if (!names) {
                names = calloc(1, sizeof(*names));
                if (!names)
                        return -ENOMEM;
        }
        qsort(names, n, sizeof(*names), cmp_str);
        *ret = names;
        return (int)MIN(n, (size_t)INT32_MAX);
}

int dump_store_prune(struct dump_store *s, const char *service, uint64_t realtime_usec)
{
        _cleanup_close_ int fd = -1;
        char **names = NULL;
        uint64_t bytes = 0;
        size_t count = 0;
        bool over = false;
        int n, removed = 0;

        n = dump_store_list(s, service, &names);
        if (n < 0)
                return n;
        fd = openat(s->fd, service, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        /* Newest first: keep while the limits allow, the newest always. */
        for (int i = n - 1; fd >= 0 && i >= 0; i--) {
                uint64_t t = 0, size = size_at(fd, names[i], 0);
                bool keep;

                (void)dump_name_time(names[i], &t);
                count++;
                bytes += size;
                /* Past a count or size limit, this dump and every older one go. */
                if (count > s->limits.max_count || bytes > s->limits.max_bytes)
                        over = true;
                keep = i == n - 1 || (!over && (t >= realtime_usec ||
                                                realtime_usec - t <= s->limits.max_age_usec));
                if (keep)
                        continue;
                if (rm_rf_at(fd, names[i], 0) >= 0) {
                        removed++;
                        log_debug("%s: removed dump %s (retention)", service, names[i]);
                }
                count--;
                bytes -= size;
        }
        for (int i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return removed;
}

/* SPDX-License-Identifier: MIT */
/*
 * Capture and record effects, the dump store: completing a dump. What collectors left is
 * taken in (regular files) or removed (anything else), manifest.json is written like any
 * other file, and the directory is renamed to its final name.
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

#include "dumps-internal.h"
#include "memgov/fsutil.h"
#include "memgov/log.h"

/* ---- completing a dump -------------------------------------------------------------- */

int dumps_cmp_str(const void *a, const void *b)
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
                qsort(names, n, sizeof(*names), dumps_cmp_str);

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
                        (void)dumps_rm_rf_at(dirfd(dir), name, 0);
                        continue;
                }
                if (S_ISREG(st.st_mode)) {
                        _cleanup_close_ int ffd = -1;

                        if (dumps_entry_find(d, rel))
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
                        r = dumps_entry_add(d, ffd, rel, "collector-output", NULL);
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
                        (void)dumps_rm_rf_at(dirfd(dir), name, 0);
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
                                         d->tmp_path);
        r = write_manifest(d);
        if (r < 0)
                return log_warning_errno(r, "%s: cannot write the manifest of dump %s: %m",
                                         d->service, d->tmp_path);
        r = dumps_fsync_dirfd(d->fd);
        if (r >= 0)
                r = fs_rename_noreplace(d->service_fd, d->tmp_name, d->service_fd, d->name);
        if (r >= 0)
                r = dumps_fsync_dirfd(d->service_fd);
        if (r < 0)
                return log_warning_errno(r, "%s: cannot complete dump %s: %m", d->service, d->path);
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
                (void)dumps_rm_rf_at(d->service_fd, d->tmp_name, 0);
        if (d->fd >= 0)
                (void)close(d->fd);
        if (d->service_fd >= 0)
                (void)close(d->service_fd);
        for (size_t i = 0; i < d->n_entries; i++)
                dumps_entry_clear(&d->entries[i]);
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

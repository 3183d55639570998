/* SPDX-License-Identifier: MIT */
/*
 * restore: the original memory.high of every cgroup memgov changed, kept in the state dir
 * and put back on exit, after a crash, or by hand (actuate stage; see restore.h).
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memgov/actuate.h"
#include "memgov/fsutil.h"
#include "memgov/log.h"
#include "memgov/restore.h"

#define RECORD_VERSION   1
#define RECORD_MAX_BYTES 8192
#define NAME_MAX_KEPT    200 /* longer escaped names end in a hash */

void restore_record_clear(struct restore_record *r)
{
        free(r->service);
        free(r->relpath);
        free(r->unit);
        *r = (struct restore_record){};
}

/* "/a//b/" → "a/b"; malloc'ed. */
static char *normalize(const char *relpath)
{
        char *n = malloc(strlen(relpath) + 1), *w = n;

        if (!n)
                return NULL;
        for (const char *p = relpath; *p; p++) {
                if (*p == '/' && (w == n || w[-1] == '/'))
                        continue;
                *w++ = *p;
        }
        while (w > n && w[-1] == '/')
                w--;
        *w = '\0';
        return n;
}

static bool safe_char(char c, bool first)
{
        if (c == '.')
                return !first;
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '@' || c == ':' || c == '+' || c == '-';
}

int restore_file_name(const char *relpath, char **ret)
{
        _cleanup_free_ char *n = normalize(relpath);
        char *out, *w;

        if (!n)
                return -ENOMEM;
        if (!*n)
                return -EINVAL;
        out = malloc(strlen(n) * 3 + sizeof(".json") + 20);
        if (!out)
                return -ENOMEM;
        w = out;
        for (const char *p = n; *p; p++) {
                if (safe_char(*p, p == n))
                        *w++ = *p;
                else
                        w += sprintf(w, "%%%02X", (unsigned char)*p);
        }
        if (w - out > NAME_MAX_KEPT) {
                /* FNV-1a over the whole path keeps long names apart */
                uint64_t h = 0xcbf29ce484222325ULL;
                for (const char *p = n; *p; p++)
                        h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
                w = out + NAME_MAX_KEPT;
                w += sprintf(w, "~%016" PRIx64, h);
        }
        strcpy(w, ".json");
        *ret = out;
        return 0;
}

/* Open <state_dir>/restore, making both when create is set. */
static int open_dir(const char *state_dir, bool create, int *ret_fd)
{
        return fs_open_subdir(state_dir, RESTORE_SUBDIR, create, ret_fd);
}

static char *record_to_json(const struct restore_record *r)
{
        struct json_object *o = json_object_new_object();
        char *s = NULL;

        if (!o)
                return NULL;
        json_object_object_add(o, "version", json_object_new_int(RECORD_VERSION));
        if (r->service)
                json_object_object_add(o, "service", json_object_new_string(r->service));
        json_object_object_add(o, "cgroup", json_object_new_string(r->relpath));
        json_object_object_add(o, "inode", json_object_new_uint64(r->ino));
        json_object_object_add(o, "backend",
                               json_object_new_string(actuate_backend_to_string(r->backend)));
        if (r->backend == ACTUATE_BACKEND_SYSTEMD && r->unit)
                json_object_object_add(o, "unit", json_object_new_string(r->unit));
        json_object_object_add(o, "memory_high",
                               r->high_bytes == CGROUP_LIMIT_MAX
                                       ? json_object_new_string("max")
                                       : json_object_new_uint64(r->high_bytes));
        const char *text = json_object_to_json_string_ext(
                o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (text && asprintf(&s, "%s\n", text) < 0)
                s = NULL;
        json_object_put(o);
        return s;
}

int restore_save(const char *state_dir, const struct restore_record *r)
{
        _cleanup_free_ char *name = NULL, *text = NULL, *relpath = NULL;
        _cleanup_close_ int dfd = -1;
        struct restore_record norm = *r;
        int k;

        k = restore_file_name(r->relpath, &name);
        if (k < 0)
                return k;
        relpath = normalize(r->relpath);
        if (!relpath)
                return -ENOMEM;
        norm.relpath = relpath;
        k = open_dir(state_dir, true, &dfd);
        if (k < 0)
                return k;
        if (faccessat(dfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                return 0;

        text = record_to_json(&norm);
        if (!text)
                return -ENOMEM;
        /* Never over an existing record: it holds the older, true original. */
        k = fs_write_file_atomic(dfd, name, text, false);
        if (k < 0)
                return k == -EEXIST ? 0 : k;
        return 1;
}

int restore_exists(const char *state_dir, const char *relpath)
{
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int dfd = -1;
        int r;

        r = restore_file_name(relpath, &name);
        if (r < 0)
                return r;
        r = open_dir(state_dir, false, &dfd);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (faccessat(dfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                return 1;
        return errno == ENOENT ? 0 : negative_errno();
}

static int get_string(struct json_object *o, const char *key, bool required, char **ret)
{
        struct json_object *v;

        if (!json_object_object_get_ex(o, key, &v))
                return required ? -EBADMSG : 0;
        if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0)
                return -EBADMSG;
        *ret = strdup(json_object_get_string(v));
        return *ret ? 0 : -ENOMEM;
}

static int get_u64(struct json_object *v, uint64_t *ret)
{
        if (!json_object_is_type(v, json_type_int))
                return -EBADMSG;
        /* json-c keeps negative numbers as int64, others as uint64 */
        if (json_object_get_int64(v) < 0)
                return -EBADMSG;
        *ret = json_object_get_uint64(v);
        return 0;
}

int restore_record_parse(const char *text, struct restore_record *ret)
{
        struct restore_record r = {};
        struct json_object *o = json_tokener_parse(text), *v;
        _cleanup_free_ char *backend = NULL;
        int k = -EBADMSG;

        if (!o || !json_object_is_type(o, json_type_object))
                goto out;
        if (!json_object_object_get_ex(o, "version", &v) ||
            !json_object_is_type(v, json_type_int) || json_object_get_int(v) != RECORD_VERSION)
                goto out;
        if ((k = get_string(o, "service", false, &r.service)) < 0 ||
            (k = get_string(o, "cgroup", true, &r.relpath)) < 0 ||
            (k = get_string(o, "backend", true, &backend)) < 0 ||
            (k = get_string(o, "unit", false, &r.unit)) < 0)
                goto out;
        k = -EBADMSG;
        if (!json_object_object_get_ex(o, "inode", &v) || get_u64(v, &r.ino) < 0)
                goto out;
        if (strcmp(backend, "cgroupfs") == 0)
                r.backend = ACTUATE_BACKEND_CGROUPFS;
        else if (strcmp(backend, "systemd") == 0 && r.unit)
                r.backend = ACTUATE_BACKEND_SYSTEMD;
        else
                goto out;
        if (!json_object_object_get_ex(o, "memory_high", &v))
                goto out;
        if (json_object_is_type(v, json_type_string) &&
            strcmp(json_object_get_string(v), "max") == 0)
                r.high_bytes = CGROUP_LIMIT_MAX;
        else if (get_u64(v, &r.high_bytes) < 0)
                goto out;
        *ret = r;
        r = (struct restore_record){};
        k = 0;
out:
        json_object_put(o);
        restore_record_clear(&r);
        return k;
}

static int load_at(int dfd, const char *name, struct restore_record *ret)
{
        char buf[RECORD_MAX_BYTES];
        ssize_t n = cgfs_read_at(dfd, name, buf, sizeof(buf));

        if (n == -EFBIG)
                return -EBADMSG;
        if (n < 0)
                return (int)n;
        return restore_record_parse(buf, ret);
}

int restore_load(const char *state_dir, const char *relpath, struct restore_record *ret)
{
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int dfd = -1;
        int r;

        r = restore_file_name(relpath, &name);
        if (r < 0)
                return r;
        r = open_dir(state_dir, false, &dfd);
        if (r < 0)
                return r;
        return load_at(dfd, name, ret);
}

static int remove_at(int dfd, const char *name)
{
        if (unlinkat(dfd, name, 0) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        return fsync(dfd) < 0 ? negative_errno() : 0;
}

int restore_remove(const char *state_dir, const char *relpath)
{
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int dfd = -1;
        int r;

        r = restore_file_name(relpath, &name);
        if (r < 0)
                return r;
        r = open_dir(state_dir, false, &dfd);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        return remove_at(dfd, name);
}

#define RECORD_FIELDS(rec)                                                                         \
        LOG_FIELDS({"MEMGOV_SERVICE", (rec)->service}, {"MEMGOV_CGROUP", (rec)->relpath})

/* Put one record's original back; the record goes when that is done or pointless. */
static int apply(int dfd, const char *name, const struct restore_record *rec,
                 struct restore_env *env, struct restore_stats *stats)
{
        const char *who = rec->service ? rec->service : rec->relpath;
        _cleanup_close_ int cfd = -1;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        struct stat st;
        char buf[24];
        int r;

        actuate_format_high(buf, rec->high_bytes);
        r = cgfs_open_cgroup(env->cgfs, rec->relpath, &cfd);
        if (r == -ENOENT || r == -ENODEV || r == -ENOTDIR) {
                log_struct(LOG_INFO, RECORD_FIELDS(rec),
                           "%s: cgroup %s is gone: nothing to restore, record dropped", who,
                           rec->relpath);
                stats->dropped++;
                return env->dry_run ? 0 : remove_at(dfd, name);
        }
        if (r < 0) {
                stats->failed++;
                return log_error_errno(r, "%s: cannot open cgroup %s to restore it: %m", who,
                                       rec->relpath);
        }
        if (fstat(cfd, &st) < 0) {
                stats->failed++;
                return log_error_errno(errno, "%s: cannot stat cgroup %s: %m", who, rec->relpath);
        }
        if ((uint64_t)st.st_ino != rec->ino) {
                log_struct(LOG_INFO, RECORD_FIELDS(rec),
                           "%s: cgroup %s was made anew (inode %" PRIu64 ", recorded %" PRIu64
                           "): not the one changed, record dropped",
                           who, rec->relpath, (uint64_t)st.st_ino, rec->ino);
                stats->dropped++;
                return env->dry_run ? 0 : remove_at(dfd, name);
        }

        if (env->dry_run) {
                log_struct(LOG_NOTICE, RECORD_FIELDS(rec),
                           "%s: dry run: would restore memory.high of %s to %s%s%s", who,
                           rec->relpath, buf,
                           rec->backend == ACTUATE_BACKEND_SYSTEMD ? " through systemd unit " : "",
                           rec->backend == ACTUATE_BACKEND_SYSTEMD ? rec->unit : "");
                stats->skipped++;
                return 0;
        }

        if (rec->backend == ACTUATE_BACKEND_SYSTEMD) {
                if (!env->bus && env->open_bus) {
                        env->open_bus = false;
                        r = actuate_bus_open(NULL, &env->bus);
                        if (r < 0)
                                log_warning_errno(r, "cannot reach the systemd manager: %m");
                }
                if (!env->bus) {
                        stats->failed++;
                        log_struct(LOG_ERR, RECORD_FIELDS(rec),
                                   "%s: memory.high of %s was set through systemd (unit %s), "
                                   "which cannot be reached: record kept",
                                   who, rec->relpath, rec->unit);
                        return -EHOSTDOWN;
                }
                r = actuate_systemd_set_high(env->bus, rec->unit, rec->high_bytes, &error);
                if (r < 0 && actuate_bus_disconnected(r)) {
                        /* systemd re-executed since the connection was made: a new one, once */
                        sd_bus *fresh = NULL;
                        if (actuate_bus_open(NULL, &fresh) >= 0) {
                                sd_bus_error_free(&error);
                                r = actuate_systemd_set_high(fresh, rec->unit, rec->high_bytes,
                                                             &error);
                                sd_bus_flush_close_unref(fresh);
                        }
                }
                if (r < 0) {
                        stats->failed++;
                        log_struct_errno(LOG_ERR, r, RECORD_FIELDS(rec),
                                         "%s: systemd did not restore MemoryHigh=%s of %s: %s", who,
                                         buf, rec->unit,
                                         error.message ? error.message : strerror(-r));
                        sd_bus_error_free(&error);
                        return r;
                }
        } else {
                r = actuate_cgroupfs_set_high(cfd, rec->high_bytes);
                if (r < 0) {
                        stats->failed++;
                        return log_struct_errno(LOG_ERR, r, RECORD_FIELDS(rec),
                                                "%s: cannot restore memory.high of %s to %s: "
                                                "%m",
                                                who, rec->relpath, buf);
                }
        }
        log_struct(LOG_NOTICE, RECORD_FIELDS(rec), "%s: memory.high of %s restored to %s%s%s", who,
                   rec->relpath, buf,
                   rec->backend == ACTUATE_BACKEND_SYSTEMD ? " through systemd unit " : "",
                   rec->backend == ACTUATE_BACKEND_SYSTEMD ? rec->unit : "");
        stats->restored++;
        r = remove_at(dfd, name);
        if (r < 0)
                log_warning_errno(r, "%s: restored, but the record %s stays: %m", who, name);
        return 0;
}

/* A record that cannot be read: kept aside as NAME.corrupt, out of the way of the others. */
static void set_aside(int dfd, const char *state_dir, const char *name, int error,
                      struct restore_stats *stats)
{
        _cleanup_free_ char *aside = NULL;

        stats->corrupt++;
        if (asprintf(&aside, "%s.corrupt", name) < 0 || renameat(dfd, name, dfd, aside) < 0) {
                log_error("restore record %s/" RESTORE_SUBDIR "/%s cannot be read (%s) nor "
                          "set aside: %m",
                          state_dir, name, strerror(error > 0 ? error : -error));
                return;
        }
        (void)fsync(dfd);
        log_error("restore record %s/" RESTORE_SUBDIR "/%s cannot be read (%s): kept as %s; "
                  "the cgroup it was about may need its memory.high put back by hand",
                  state_dir, name, error == -EBADMSG ? "not a valid record" : strerror(-error),
                  aside);
}

static bool is_record_name(const char *n)
{
        size_t len = strlen(n);
        return n[0] != '.' && len > 5 && strcmp(n + len - 5, ".json") == 0;
}

static bool is_tmp_name(const char *n)
{
        size_t len = strlen(n);
        return n[0] == '.' && len > 4 && strcmp(n + len - 4, ".tmp") == 0;
}

static int compare_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int restore_all(const char *state_dir, const char *match, struct restore_env *env,
                struct restore_stats *stats)
{
        struct restore_stats dummy = {};
        _cleanup_close_ int dfd = -1;
        _cleanup_free_ char *want = NULL;
        char **names = NULL;
        size_t n = 0, cap = 0;
        unsigned matched = 0;
        DIR *d;
        int r;

        if (!stats)
                stats = &dummy;
        if (match && !(want = normalize(match)))
                return -ENOMEM;
        r = open_dir(state_dir, false, &dfd);
        if (r == -ENOENT)
                return match ? -ENOENT : 0;
        if (r < 0)
                return r;

        int lfd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
        if (lfd < 0)
                return negative_errno();
        d = fdopendir(lfd);
        if (!d) {
                r = negative_errno();
                close(lfd);
                return r;
        }
        for (struct dirent *de; (de = readdir(d));) {
                if (is_tmp_name(de->d_name) && !env->dry_run) {
                        /* a record half-written when memgovd died: no change followed it */
                        log_debug("removing the unfinished record %s", de->d_name);
                        (void)unlinkat(dfd, de->d_name, 0);
                        continue;
                }
                if (!is_record_name(de->d_name))
                        continue;
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        char **nn = reallocarray(names, ncap, sizeof(*nn));
                        if (!nn) {
                                r = -ENOMEM;
                                break;
                        }
                        names = nn;
                        cap = ncap;
                }
                if (!(names[n] = strdup(de->d_name))) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        closedir(d);
        if (r < 0)
                goto out;
        if (n > 0)
                qsort(names, n, sizeof(*names), compare_names);

        for (size_t i = 0; i < n; i++) {
                struct restore_record rec = {};
                int k = load_at(dfd, names[i], &rec);

                if (k == -ENOENT)
                        continue; /* removed meanwhile */
                if (k < 0) {
                        /* whatever cgroup it was about, it is in the way of all of them */
                        set_aside(dfd, state_dir, names[i], k, stats);
                        continue;
                }
                if (want && strcmp(rec.relpath, want) != 0 &&
                    !(rec.service && strcmp(rec.service, want) == 0)) {
                        restore_record_clear(&rec);
                        continue;
                }
                matched++;
                (void)apply(dfd, names[i], &rec, env, stats);
                restore_record_clear(&rec);
        }
        r = match && matched == 0 ? -ENOENT : 0;
out:
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return r;
}

int restore_one(const char *state_dir, const char *relpath, struct restore_env *env,
                struct restore_stats *stats)
{
        struct restore_stats dummy = {};
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int dfd = -1;
        struct restore_record rec = {};
        int r;

        if (!stats)
                stats = &dummy;
        r = restore_file_name(relpath, &name);
        if (r < 0)
                return r;
        r = open_dir(state_dir, false, &dfd);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        r = load_at(dfd, name, &rec);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                set_aside(dfd, state_dir, name, r, stats);
                return r;
        }
        r = apply(dfd, name, &rec, env, stats);
        restore_record_clear(&rec);
        return r;
}

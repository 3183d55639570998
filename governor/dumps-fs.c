/* SPDX-License-Identifier: MIT */
/*
 * Capture and record effects, the dump store: file-system helpers that never follow a
 * link (remove, measure, hash), dump names, and retention per service.
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

#include <openssl/evp.h>

#include "dumps-internal.h"
#include "memgov/log.h"

/* ---- small helpers ------------------------------------------------------------------ */

bool dumps_name_valid(const char *s, size_t max, bool allow_dot)
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

int dumps_fsync_dirfd(int fd)
{
        return fsync(fd) < 0 ? negative_errno() : 0;
}

/* Open dirfd/name as a directory, creating it (0700) when missing; never through a link. */
int dumps_open_or_make_dir(int parent_fd, const char *name, int *ret_fd)
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
int dumps_rm_rf_at(int parent_fd, const char *name, unsigned depth)
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
                k = dumps_rm_rf_at(dirfd(dir), de->d_name, depth + 1);
                if (k < 0 && r == 0)
                        r = k;
        }
        closedir(dir);
        if (unlinkat(parent_fd, name, AT_REMOVEDIR) < 0 && r == 0)
                r = negative_errno();
        return r;
}

/* Sum of the sizes of the regular files under parent_fd/name (a file: its size). */
uint64_t dumps_size_at(int parent_fd, const char *name, unsigned depth)
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
                        sum += dumps_size_at(dirfd(dir), de->d_name, depth + 1);
        closedir(dir);
        return sum;
}

/* The UTC time at the head of a dump name, "20240501T123456Z-…", in µs; -EINVAL if none. */
int dumps_name_time(const char *name, uint64_t *ret_usec)
{
        struct tm tm = {};
        const char *end;
        time_t t;

        end = strptime(name, "%Y%m%dT%H%M%SZ-", &tm);
        if (!end || end - name != 17 || !dumps_name_valid(end, DUMPS_EVENT_MAX + 8, false))
                return -EINVAL;
        t = timegm(&tm);
        if (t < 0)
                return -EINVAL;
        *ret_usec = (uint64_t)t * USEC_PER_SEC;
        return 0;
}

int dumps_sha256_fd(int fd, char hex[65], uint64_t *ret_size)
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

/* ---- retention ---------------------------------------------------------------------- */

int dump_store_list(struct dump_store *s, const char *service, char ***ret)
{
        _cleanup_close_ int fd = -1;
        char **names = NULL;
        size_t n = 0;
        DIR *dir;
        struct dirent *de;
        uint64_t t;

        if (!s || !ret || !dumps_name_valid(service, DUMPS_SERVICE_MAX, true))
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

                        if (de->d_name[0] == '.' || dumps_name_time(de->d_name, &t) < 0 ||
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
        qsort(names, n, sizeof(*names), dumps_cmp_str);
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
                uint64_t t = 0, size = dumps_size_at(fd, names[i], 0);
                bool keep;

                (void)dumps_name_time(names[i], &t);
                count++;
                bytes += size;
                /* Past a count or size limit, this dump and every older one go. */
                if (count > s->limits.max_count || bytes > s->limits.max_bytes)
                        over = true;
                keep = i == n - 1 || (!over && (t >= realtime_usec ||
                                                realtime_usec - t <= s->limits.max_age_usec));
                if (keep)
                        continue;
                if (dumps_rm_rf_at(fd, names[i], 0) >= 0) {
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

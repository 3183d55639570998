/* SPDX-License-Identifier: MIT */
/*
 * The notify effect's secrets: reading a webhook signing key from a file that must be
 * private, with a message that says how to fix it when it is not.
 */
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>

#include "memgov/notify.h"

/* Whether the symlink at path resolves to a file inside the directory holding path. */
static int symlink_stays_home(const char *path, char **ret_target)
{
        _cleanup_free_ char *copy = strdup(path), *dir = NULL, *target = NULL;
        size_t len;

        if (!copy)
                return -ENOMEM;
        dir = realpath(dirname(copy), NULL);
        target = realpath(path, NULL);
        if (!dir || !target)
                return negative_errno();
        len = strlen(dir);
        *ret_target = TAKE_PTR(target);
        return strncmp(*ret_target, dir, len) == 0 &&
               ((*ret_target)[len] == '/' || strcmp(dir, "/") == 0);
}

int notify_load_secret(const char *path, struct diag *diag, uint8_t **ret_key, size_t *ret_size)
{
        _cleanup_free_ char *target = NULL;
        _cleanup_close_ int fd = -1;
        char buf[NOTIFY_SECRET_MAX_BYTES + 1];
        size_t size = 0;
        struct stat st;
        int r;

        if (!path || !ret_key || !ret_size)
                return -EINVAL;

        if (lstat(path, &st) < 0) {
                r = negative_errno();
                (void)diag_add(diag, "%s: cannot read the webhook secret: %s", path, strerror(-r));
                return r;
        }
        if (S_ISLNK(st.st_mode)) {
                r = symlink_stays_home(path, &target);
                if (r < 0) {
                        (void)diag_add(diag, "%s: cannot resolve the webhook secret: %s", path,
                                       strerror(-r));
                        return r;
                }
                if (r == 0) {
                        (void)diag_add(diag,
                                       "%s: a symlink out of its directory (to %s); point "
                                       "secret_file at the file itself",
                                       path, target);
                        return -EPERM;
                }
        }

        fd = open(target ? target : path,
                  O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (target ? 0 : O_NOFOLLOW));
        if (fd < 0) {
                r = negative_errno();
                (void)diag_add(diag, "%s: cannot read the webhook secret: %s", path, strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0) {
                r = negative_errno();
                (void)diag_add(diag, "%s: cannot read the webhook secret: %s", path, strerror(-r));
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                (void)diag_add(diag, "%s: the webhook secret is not a regular file", path);
                return -EINVAL;
        }
        if (st.st_mode & 077) {
                (void)diag_add(diag,
                               "%s: readable by group or others (mode %04o); make it private: "
                               "chmod 600 %s",
                               path, (unsigned)(st.st_mode & 07777), path);
                return -EPERM;
        }

        for (;;) {
                ssize_t k = read(fd, buf + size, sizeof(buf) - size);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = negative_errno();
                        (void)diag_add(diag, "%s: cannot read the webhook secret: %s", path,
                                       strerror(-r));
                        return r;
                }
                if (k == 0)
                        break;
                size += (size_t)k;
                if (size == sizeof(buf)) {
                        (void)diag_add(diag, "%s: larger than %d bytes, not a webhook secret", path,
                                       NOTIFY_SECRET_MAX_BYTES);
                        memset(buf, 0, sizeof(buf));
                        return -EINVAL;
                }
        }
        r = webhook_key_from_secret(buf, size, ret_key, ret_size);
        memset(buf, 0, sizeof(buf));
        if (r == -EINVAL)
                (void)diag_add(diag,
                               "%s: not a usable webhook secret: empty, or whsec_ followed by "
                               "something that is not base64",
                               path);
        return r;
}

/* SPDX-License-Identifier: MIT */
/*
 * record: the incidents still open, kept in the state dir so that a memgovd started again
 * in the middle of an episode (after a crash, a SIGKILL, an upgrade) does not write a
 * second bundle for it. One small JSON file per cgroup, written atomically.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memgov/fsutil.h"
#include "memgov/incident.h"
#include "memgov/macro.h"
#include "memgov/restore.h"

/* Open <state_dir>/incidents, making both when create is set. */
static int open_dir(const char *state_dir, bool create, int *ret_fd)
{
        return fs_open_subdir(state_dir, INCIDENT_OPEN_SUBDIR, create, ret_fd);
}

int incident_open_save(const char *state_dir, const char *service, const char *relpath,
                       uint64_t ino, const char *bundle)
{
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int dfd = -1;
        int r;

        if (!state_dir || !service || !relpath || !bundle)
                return -EINVAL;
        r = restore_file_name(relpath, &name);
        if (r < 0)
                return r;
        r = open_dir(state_dir, true, &dfd);
        if (r < 0)
                return r;

        struct json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "service", json_object_new_string(service));
        json_object_object_add(o, "cgroup", json_object_new_string(relpath));
        json_object_object_add(o, "inode", json_object_new_uint64(ino));
        json_object_object_add(o, "bundle", json_object_new_string(bundle));
        const char *text = json_object_to_json_string_ext(
                o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        /* Over an older one: the newest bundle of the cgroup is the one that counts. */
        r = text ? fs_write_file_atomic(dfd, name, text, true) : -ENOMEM;
        json_object_put(o);
        return r;
}

int incident_open_find(const char *state_dir, const char *service, const char *relpath,
                       uint64_t ino, char **ret_bundle)
{
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int dfd = -1, fd = -1;
        char buf[8192];
        int r;

        if (!state_dir || !service || !relpath)
                return -EINVAL;
        r = restore_file_name(relpath, &name);
        if (r < 0)
                return r;
        r = open_dir(state_dir, false, &dfd);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno == ENOENT ? 0 : negative_errno();
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return negative_errno();
        buf[n] = '\0';

        /* Anything unreadable is no open incident: at worst one bundle too many. */
        struct json_object *o = json_tokener_parse(buf), *v;
        r = 0;
        if (o && json_object_is_type(o, json_type_object) &&
            json_object_object_get_ex(o, "service", &v) &&
            json_object_is_type(v, json_type_string) &&
            strcmp(json_object_get_string(v), service) == 0 &&
            json_object_object_get_ex(o, "cgroup", &v) &&
            json_object_is_type(v, json_type_string) &&
            strcmp(json_object_get_string(v), relpath) == 0 &&
            json_object_object_get_ex(o, "inode", &v) && json_object_is_type(v, json_type_int) &&
            json_object_get_uint64(v) == ino && json_object_object_get_ex(o, "bundle", &v) &&
            json_object_is_type(v, json_type_string)) {
                r = 1;
                if (ret_bundle) {
                        *ret_bundle = strdup(json_object_get_string(v));
                        if (!*ret_bundle)
                                r = -ENOMEM;
                }
        }
        json_object_put(o);
        return r;
}

int incident_open_remove(const char *state_dir, const char *relpath)
{
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int dfd = -1;
        int r;

        if (!state_dir || !relpath)
                return -EINVAL;
        r = restore_file_name(relpath, &name);
        if (r < 0)
                return r;
        r = open_dir(state_dir, false, &dfd);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (unlinkat(dfd, name, 0) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        return 1;
}

/* SPDX-License-Identifier: MIT */
/*
 * Export: the listen sockets of the HTTP server. memgovd makes them itself rather than
 * letting libmicrohttpd bind: a Unix socket needs a path, a mode, a group and the
 * handling of a socket left by a dead memgovd, and a TCP socket bound here tells its port
 * (port 0 in tests) and its errors plainly.
 */
#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "memgov/log.h"
#include "server-internal.h"

static int mkdir_parents(const char *path, mode_t mode)
{
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *slash = strchr(p + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
                *slash = '\0';
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *slash = '/';
        }
        return 0;
}

/* Whether a process accepts connections on the socket at path (a live memgovd). */
static bool socket_alive(const struct sockaddr_un *sa)
{
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        return fd >= 0 && connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
}

void server_socket_set_owner(const char *path, mode_t mode, const char *group)
{
        if (chmod(path, mode) < 0)
                log_warning_errno(errno, "chmod %s: %m", path);
        if (group) {
                struct group *g = getgrnam(group);
                if (!g)
                        log_debug("group %s does not exist; %s keeps the daemon's group", group,
                                  path);
                else if (chown(path, (uid_t)-1, g->gr_gid) < 0)
                        log_warning_errno(errno, "chown %s to group %s: %m", path, group);
        }
}

int server_unix_socket_open(const char *path, mode_t mode, const char *group, int *ret_fd,
                            dev_t *ret_dev, ino_t *ret_ino)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = -1;
        mode_t old_umask;
        struct stat st;
        int r;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        r = mkdir_parents(path, 0755);
        if (r < 0)
                return r;

        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                if (socket_alive(&sa))
                        return -EADDRINUSE;
                /* Left behind by a memgovd that did not exit cleanly. */
                if (unlink(path) < 0 && errno != ENOENT)
                        return -errno;
        } else if (errno != ENOENT)
                return -errno;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* The mode applies from the first moment: no window with the umask's wider one. */
        old_umask = umask(~mode & 0777);
        r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        if (r < 0)
                r = -errno;
        (void)umask(old_umask);
        if (r < 0)
                return r;
        if (listen(fd, 16) < 0 || stat(path, &st) < 0) {
                r = -errno;
                (void)unlink(path);
                return r;
        }
        server_socket_set_owner(path, mode, group);
        *ret_fd = TAKE_FD(fd);
        *ret_dev = st.st_dev;
        *ret_ino = st.st_ino;
        return 0;
}

/* "127.0.0.1:9464" or "[::1]:9464" (literal addresses, not names) into a sockaddr. */
static int parse_listen(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len)
{
        const char *colon = strrchr(s, ':');
        char host[64], *end;
        unsigned long port;

        if (!colon || !colon[1] || (size_t)(colon - s) >= sizeof(host))
                return -EINVAL;
        errno = 0;
        port = strtoul(colon + 1, &end, 10);
        if (errno || *end || port > 65535 || colon[1] < '0' || colon[1] > '9')
                return -EINVAL;

        *ret = (struct sockaddr_storage){0};
        if (s[0] == '[') {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *)ret;
                if (colon - s < 3 || colon[-1] != ']')
                        return -EINVAL;
                (void)snprintf(host, sizeof(host), "%.*s", (int)(colon - s - 2), s + 1);
                a->sin6_family = AF_INET6;
                a->sin6_port = htons((uint16_t)port);
                if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
                        return -EINVAL;
                *ret_len = sizeof(*a);
        } else {
                struct sockaddr_in *a = (struct sockaddr_in *)ret;
                (void)snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
                a->sin_family = AF_INET;
                a->sin_port = htons((uint16_t)port);
                if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
                        return -EINVAL;
                *ret_len = sizeof(*a);
        }
        return 0;
}

bool server_listen_valid(const char *listen)
{
        struct sockaddr_storage sa;
        socklen_t len;

        return parse_listen(listen, &sa, &len) == 0;
}

int server_tcp_socket_open(const char *listen_address, int *ret_fd, uint16_t *ret_port)
{
        struct sockaddr_storage sa, bound;
        socklen_t len, bound_len = sizeof(bound);
        _cleanup_close_ int fd = -1;
        int one = 1, r;

        r = parse_listen(listen_address, &sa, &len);
        if (r < 0)
                return r;
        fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* Restart right after a stop, while old connections sit in TIME_WAIT. */
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (sa.ss_family == AF_INET6)
                (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, 16) < 0 ||
            getsockname(fd, (struct sockaddr *)&bound, &bound_len) < 0)
                return -errno;
        *ret_port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                      : ((struct sockaddr_in *)&bound)->sin_port);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Export: the listen sockets under the HTTP server (governor/server-socket.c), apart from
 * the HTTP on the loop (governor/server.c). Internal to the server.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "memgov/macro.h"

/*
 * A listening Unix socket at path, made with mode (and given to group when that group
 * exists), its parent directories made 0755 if missing. A stale socket (nothing accepts
 * on it) is replaced. Returns the fd (non-blocking, close-on-exec) and the socket file's
 * identity, or -ENAMETOOLONG, -EADDRINUSE (a live socket), -EEXIST (not a socket), -errno.
 */
int server_unix_socket_open(const char *path, mode_t mode, const char *group, int *ret_fd,
                            dev_t *ret_dev, ino_t *ret_ino);

/* Set mode and group (if it exists) of the socket file at path; problems are logged. */
void server_socket_set_owner(const char *path, mode_t mode, const char *group);

/* Whether listen is "IPv4:PORT" or "[IPv6]:PORT" with literal addresses. */
bool server_listen_valid(const char *listen);

/*
 * A listening TCP socket on listen ("127.0.0.1:9464", "[::1]:0"). Returns the fd and the
 * port bound (the one picked for port 0), or -EINVAL (not IP:PORT), -EADDRINUSE,
 * -EADDRNOTAVAIL, -errno.
 */
int server_tcp_socket_open(const char *listen, int *ret_fd, uint16_t *ret_port);

/* SPDX-License-Identifier: MIT */
/*
 * Export: memgovd's HTTP server — Prometheus /metrics and the status API — on the daemon's
 * sd-event loop. libmicrohttpd runs without threads of its own, in its epoll mode: its
 * epoll fd is one sd-event I/O source, its timeout one sd-event time source, and every
 * request is answered from a callback on the loop, so handlers read the daemon's state
 * without locks. Nothing here blocks: a handler must not either.
 *
 * Where it listens: a Unix socket (by default <runtime_dir>/memgovd.sock, mode 0660), which
 * serves every route; and, only when configured, a TCP address (config "listen", e.g.
 * 127.0.0.1:9464), which serves the read-only routes — anyone who can reach a TCP port
 * could otherwise trigger dumps and reloads.
 *
 *   GET|HEAD /metrics            200 text/plain; version=0.0.4   handlers.metrics
 *   GET|HEAD /v1/status          200 application/json            handlers.status
 *   POST     /v1/dump/SERVICE    202 application/json            handlers.dump
 *   POST     /v1/reload          200 application/json            handlers.reload
 *
 * Other paths get 404, other methods 405 (with Allow:), POST over TCP 403, a request body
 * over SERVER_MAX_BODY_BYTES 413. Every answer but /metrics and /v1/status is a JSON object,
 * {"ok":true,"message":"…"} or {"ok":false,"error":"…"}; docs/status-api.md is the
 * reference.
 */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "memgov/macro.h"

#define SERVER_SOCKET_NAME    "memgovd.sock" /* in the runtime dir */
#define SERVER_SOCKET_MODE    0660
#define SERVER_MAX_BODY_BYTES 65536
/* A connection idle this long is closed, so that a stuck client cannot hold a slot. */
#define SERVER_CONNECTION_TIMEOUT_SEC 10
#define SERVER_CONNECTION_LIMIT       32

/*
 * What the daemon supplies. Each handler runs on the loop, inside the server's event
 * source; it must not block and must not free the server (server_reconfigure() is fine).
 * A NULL handler makes its route answer 501.
 *
 * Return values map to HTTP statuses: 0 → 200 (202 for dump), -ENOENT → 404 (no such
 * service), -EINVAL → 422 (e.g. a reload found invalid policies), -EBUSY → 409 (a capture
 * of that service is running), -EAGAIN → 429 (rate-limited), -EOPNOTSUPP → 501, any other
 * -errno → 500. A message in *ret_msg (malloc'ed, freed by the server; may stay NULL) goes
 * into the answer as "message" or "error"; without one, strerror() is used for errors.
 */
struct server_handlers {
        /* Write the whole /metrics body (promtext.h, metrics.h) to out. */
        int (*metrics)(void *userdata, FILE *out);
        /* Write the /v1/status document (status_write_json()) to out. */
        int (*status)(void *userdata, FILE *out);
        /*
         * Start an on-demand capture of service (a policy's service name, already checked
         * to be [A-Za-z0-9_.-]+). Answer at once; say in *ret_msg where the dump will be.
         */
        int (*dump)(void *userdata, const char *service, char **ret_msg);
        /* Reload config and policies (daemon_reload()); say what changed in *ret_msg. */
        int (*reload)(void *userdata, char **ret_msg);
        void *userdata;
};

struct server_config {
        /*
         * The Unix socket; NULL: none. Its parent directory is created (0755) if missing.
         * A stale socket left by a dead memgovd is replaced; a live one is -EADDRINUSE; a
         * file that is not a socket is -EEXIST (never removed).
         */
        const char *socket_path;
        mode_t socket_mode;       /* 0: SERVER_SOCKET_MODE */
        const char *socket_group; /* a group name to own the socket (e.g. "memgov"); NULL or
                                     a group that does not exist: the daemon's group */
        /* A TCP address: an IP literal and a port, "127.0.0.1:9464", "[::1]:9464"; port 0
         * picks a free one (tests). NULL: no TCP listener. */
        const char *listen;
};

struct server;

/*
 * Start listening as cfg says, on event (referenced until server_free()). Returns 0, or
 * -EINVAL (a listen address that is not IP:PORT, no listener at all), -ENAMETOOLONG (a
 * socket path longer than sockaddr_un allows), -EADDRINUSE (a live memgovd owns the socket,
 * or the TCP port is taken), -EEXIST, -EACCES, -ENOMEM, -EIO (libmicrohttpd refused). The
 * message for the log is the caller's to write; nothing is logged here on failure.
 */
int server_new(sd_event *event, const struct server_config *cfg, const struct server_handlers *h,
               struct server **ret);

/*
 * Stop listening at once (connections are closed), remove the Unix socket, free. Must not
 * be called from a handler. Accepts NULL; returns NULL.
 */
struct server *server_free(struct server *s);
DEFINE_FREE_FUNC(server)

/*
 * Apply a new config after a reload: a listener whose address changed is replaced — the
 * new socket is bound first, so on failure (returned as for server_new()) the old one
 * stays — and the old one drains: it accepts nothing more, finishes the answers in flight
 * (the reload's own answer included) and then closes. Safe to call from a handler.
 * Returns 0 when nothing changed or everything was applied.
 */
int server_reconfigure(struct server *s, const struct server_config *cfg);

/* The TCP port listened on (the one picked for port 0), or 0 when there is no TCP listener. */
uint16_t server_get_tcp_port(const struct server *s);

/* Requests answered since server_new(), for tests and logs. */
uint64_t server_get_n_requests(const struct server *s);

/* SPDX-License-Identifier: MIT */
/*
 * Export: /metrics and the status API over HTTP, served by libmicrohttpd on the daemon's
 * sd-event loop.
 *
 * libmicrohttpd runs in its "external" epoll mode: it starts no thread; its epoll fd
 * (listen socket and connections inside) is one sd-event I/O source, MHD_get_timeout() is
 * one sd-event time source, and both call MHD_run(), which accepts, reads, calls our
 * request handler and writes without blocking. So the handlers run on the loop like every
 * other effect and read the daemon's state without locks.
 *
 * The listen sockets are made in governor/server-socket.c and handed to libmicrohttpd
 * (MHD_OPTION_LISTEN_SOCKET). The file is a little over 600 lines because routing and the
 * listeners' life (start, drain on a reload, reap) both hang on libmicrohttpd's callbacks
 * and read best next to each other.
 */
#include <assert.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>

#include <microhttpd.h>

#include "memgov/log.h"
#include "memgov/promtext.h"
#include "memgov/server.h"
#include "memgov/status.h"
#include "server-internal.h"

enum listener_kind {
        LISTENER_UNIX,
        LISTENER_TCP,
};

struct listener {
        struct server *server;
        enum listener_kind kind;
        char *address; /* the socket path, or the listen string as configured */
        struct MHD_Daemon *mhd;
        sd_event_source *io;    /* MHD's epoll fd */
        sd_event_source *timer; /* MHD_get_timeout() */
        int quiesced_fd;        /* the listen fd taken back from MHD when draining; else -1 */
        dev_t dev;              /* of the socket file: only our own is removed */
        ino_t ino;
        uint16_t port;
        struct listener *next; /* in server->draining */
};

struct server {
        sd_event *event;
        struct server_handlers handlers;
        struct listener *unix_listener;
        struct listener *tcp_listener;
        struct listener *draining; /* replaced listeners finishing their connections */
        unsigned dispatch_depth;   /* > 0 while inside MHD_run() */
        uint64_t n_requests;
};

/* Per request: how much body was thrown away (the POST routes take no body yet). */
struct request {
        size_t body_bytes;
};

enum route {
        ROUTE_METRICS,
        ROUTE_STATUS,
        ROUTE_DUMP,
        ROUTE_RELOAD,
};

#define DUMP_PREFIX "/v1/dump/"

/* ---- Answers -------------------------------------------------------------------------- */

/* Queue status with body (malloc'ed, taken; NULL: empty) of content type ctype. */
static enum MHD_Result respond(struct listener *l, struct MHD_Connection *conn, const char *method,
                               const char *url, unsigned status, const char *ctype, char *body,
                               size_t size, const char *allow)
{
        struct MHD_Response *resp;
        enum MHD_Result ok;

        if (body)
                resp = MHD_create_response_from_buffer(size, body, MHD_RESPMEM_MUST_FREE);
        else
                resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (!resp) {
                free(body);
                return MHD_NO; /* closes the connection */
        }
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        if (allow)
                (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
        ok = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);

        l->server->n_requests++;
        /* Failures worth a warning were logged where they happened. */
        log_debug("%s %s over %s: answered %u", method, url,
                  l->kind == LISTENER_UNIX ? "the socket" : l->address, status);
        return ok;
}

/* A JSON answer object ({"ok":…}) with status. */
static enum MHD_Result respond_message(struct listener *l, struct MHD_Connection *conn,
                                       const char *method, const char *url, unsigned status,
                                       const char *text, const char *allow)
{
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return respond(l, conn, method, url, status, STATUS_CONTENT_TYPE, NULL, 0, allow);
        (void)status_write_message(f, status < 300, text);
        if (fclose(f) != 0) {
                free(buf);
                buf = NULL;
                size = 0;
        }
        return respond(l, conn, method, url, status, STATUS_CONTENT_TYPE, buf, size, allow);
}

/* The HTTP status for a handler's -errno (see server.h). */
static unsigned status_for_errno(int r)
{
        switch (r) {
        case -ENOENT:
                return MHD_HTTP_NOT_FOUND;
        case -EINVAL:
                return MHD_HTTP_UNPROCESSABLE_CONTENT;
        case -EBUSY:
                return MHD_HTTP_CONFLICT;
        case -EAGAIN:
                return MHD_HTTP_TOO_MANY_REQUESTS;
        case -EOPNOTSUPP:
                return MHD_HTTP_NOT_IMPLEMENTED;
        default:
                return MHD_HTTP_INTERNAL_SERVER_ERROR;
        }
}

/* ---- Routing -------------------------------------------------------------------------- */

static bool service_name_valid(const char *s)
{
        if (!s[0] || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                      (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
                        return false;
        return true;
}

/*
 * Which route url names, or an early answer: a status != 0 in *ret_status with *ret_error
 * (and *ret_allow for 405). Decided from the request line alone, before any body is read.
 */
static enum route route_request(const struct listener *l, const char *url, const char *method,
                                unsigned *ret_status, const char **ret_error,
                                const char **ret_allow)
{
        bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
                   strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
        bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
        enum route rt;

        *ret_status = 0;
        *ret_error = NULL;
        *ret_allow = NULL;
        if (strcmp(url, "/metrics") == 0)
                rt = ROUTE_METRICS;
        else if (strcmp(url, "/v1/status") == 0)
                rt = ROUTE_STATUS;
        else if (strcmp(url, "/v1/reload") == 0)
                rt = ROUTE_RELOAD;
        else if (strncmp(url, DUMP_PREFIX, strlen(DUMP_PREFIX)) == 0)
                rt = ROUTE_DUMP;
        else {
                *ret_status = MHD_HTTP_NOT_FOUND;
                *ret_error = "no such endpoint; try /metrics, /v1/status, POST /v1/dump/SERVICE "
                             "or POST /v1/reload";
                return ROUTE_METRICS;
        }

        if (rt == ROUTE_METRICS || rt == ROUTE_STATUS) {
                if (!get) {
                        *ret_status = MHD_HTTP_METHOD_NOT_ALLOWED;
                        *ret_error = "this endpoint answers GET and HEAD";
                        *ret_allow = "GET, HEAD";
                }
                return rt;
        }
        if (!post) {
                *ret_status = MHD_HTTP_METHOD_NOT_ALLOWED;
                *ret_error = "this endpoint answers POST";
                *ret_allow = "POST";
        } else if (l->kind != LISTENER_UNIX) {
                *ret_status = MHD_HTTP_FORBIDDEN;
                *ret_error = "dumps and reloads are accepted on memgovd's Unix socket only";
        } else if (rt == ROUTE_DUMP && !service_name_valid(url + strlen(DUMP_PREFIX))) {
                *ret_status = MHD_HTTP_BAD_REQUEST;
                *ret_error = "expected /v1/dump/SERVICE with a service name of letters, digits, "
                             "'_', '.' and '-'";
        }
        return rt;
}

/* GET /metrics or /v1/status: the handler writes the body into memory. */
static enum MHD_Result answer_document(struct listener *l, struct MHD_Connection *conn,
                                       const char *method, const char *url, enum route rt)
{
        const struct server_handlers *h = &l->server->handlers;
        int (*write)(void *, FILE *) = rt == ROUTE_METRICS ? h->metrics : h->status;
        char *buf = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        if (!write)
                return respond_message(l, conn, method, url, MHD_HTTP_NOT_IMPLEMENTED,
                                       "not served by this memgovd", NULL);
        f = open_memstream(&buf, &size);
        if (!f)
                return respond_message(l, conn, method, url, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                       strerror(ENOMEM), NULL);
        r = write(h->userdata, f);
        if (fclose(f) != 0 && r >= 0)
                r = -EIO;
        if (r < 0) {
                free(buf);
                log_warning_errno(r, "%s %s: writing the answer failed: %m", method, url);
                return respond_message(l, conn, method, url, status_for_errno(r), strerror(-r),
                                       NULL);
        }
        return respond(l, conn, method, url, MHD_HTTP_OK,
                       rt == ROUTE_METRICS ? PROMTEXT_CONTENT_TYPE : STATUS_CONTENT_TYPE, buf, size,
                       NULL);
}

/* POST /v1/dump/SERVICE or /v1/reload. */
static enum MHD_Result answer_action(struct listener *l, struct MHD_Connection *conn,
                                     const char *method, const char *url, enum route rt)
{
        const struct server_handlers *h = &l->server->handlers;
        _cleanup_free_ char *msg = NULL;
        int r;

        if (rt == ROUTE_DUMP && h->dump)
                r = h->dump(h->userdata, url + strlen(DUMP_PREFIX), &msg);
        else if (rt == ROUTE_RELOAD && h->reload)
                r = h->reload(h->userdata, &msg);
        else
                r = -EOPNOTSUPP;
        if (r < 0)
                return respond_message(l, conn, method, url, status_for_errno(r),
                                       msg                ? msg
                                       : r == -EOPNOTSUPP ? "not supported by this memgovd"
                                                          : strerror(-r),
                                       NULL);
        return respond_message(l, conn, method, url,
                               rt == ROUTE_DUMP ? MHD_HTTP_ACCEPTED : MHD_HTTP_OK,
                               msg ? msg : "done", NULL);
}

/*
 * libmicrohttpd's request callback: the first call per request has the request line and
 * headers, then one call per chunk of body, then a last call with no data, where we answer.
 * Errors that the request line shows are answered at once, before any body is read.
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version _unused_,
                                  const char *upload_data _unused_, size_t *upload_data_size,
                                  void **req_cls)
{
        struct listener *l = cls;
        struct request *req = *req_cls;
        const char *error, *allow;
        unsigned status;
        enum route rt;

        rt = route_request(l, url, method, &status, &error, &allow);
        if (!req) {
                const char *length;

                if (status != 0)
                        return respond_message(l, conn, method, url, status, error, allow);
                length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
                if (length && strtoull(length, NULL, 10) > SERVER_MAX_BODY_BYTES)
                        return respond_message(l, conn, method, url, MHD_HTTP_CONTENT_TOO_LARGE,
                                               "request body too large", NULL);
                req = calloc(1, sizeof(*req));
                if (!req)
                        return MHD_NO;
                *req_cls = req;
                return MHD_YES;
        }
        if (*upload_data_size > 0) {
                /* No route takes a body yet: count it and throw it away. */
                req->body_bytes += *upload_data_size;
                *upload_data_size = 0;
                if (req->body_bytes > SERVER_MAX_BODY_BYTES)
                        return respond_message(l, conn, method, url, MHD_HTTP_CONTENT_TOO_LARGE,
                                               "request body too large", NULL);
                return MHD_YES;
        }
        if (rt == ROUTE_METRICS || rt == ROUTE_STATUS)
                return answer_document(l, conn, method, url, rt);
        return answer_action(l, conn, method, url, rt);
}

static void on_request_completed(void *cls _unused_, struct MHD_Connection *conn _unused_,
                                 void **req_cls, enum MHD_RequestTerminationCode toe _unused_)
{
        free(*req_cls);
        *req_cls = NULL;
}

static int hex_value(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/*
 * Percent-decoding of the path and query, as libmicrohttpd's own, except that "%00" stays
 * as it is: decoded, it would cut the path short at the NUL ("/v1/dump/a%00b" would read
 * as a dump of "a"); kept, the '%' makes it an invalid name.
 */
static size_t on_unescape(void *cls _unused_, struct MHD_Connection *conn _unused_, char *s)
{
        char *o = s;

        for (const char *i = s; *i;) {
                int hi, lo;

                if (i[0] == '%' && (hi = hex_value(i[1])) >= 0 && (lo = hex_value(i[2])) >= 0 &&
                    (hi | lo) != 0) {
                        *o++ = (char)(hi << 4 | lo);
                        i += 3;
                } else
                        *o++ = *i++;
        }
        *o = '\0';
        return (size_t)(o - s);
}

static _printf_(2, 0) void on_mhd_log(void *cls _unused_, const char *fmt, va_list ap)
{
        _cleanup_free_ char *msg = NULL;

        if (vasprintf(&msg, fmt, ap) < 0)
                return;
        /* libmicrohttpd ends its messages with a newline. */
        msg[strcspn(msg, "\n")] = '\0';
        log_debug("libmicrohttpd: %s", msg);
}

/* ---- Listeners on the loop ------------------------------------------------------------ */

static void server_reap(struct server *s);

/* Arm the timer for when libmicrohttpd next wants to run, or disarm it. */
static void listener_arm(struct listener *l)
{
        MHD_UNSIGNED_LONG_LONG ms = 0;
        uint64_t now = 0;

        if (MHD_get_timeout(l->mhd, &ms) != MHD_YES) {
                (void)sd_event_source_set_enabled(l->timer, SD_EVENT_OFF);
                return;
        }
        (void)sd_event_now(l->server->event, CLOCK_MONOTONIC, &now);
        ms = MIN(ms, (MHD_UNSIGNED_LONG_LONG)(UINT64_MAX - now) / USEC_PER_MSEC);
        (void)sd_event_source_set_time(l->timer, now + ms * USEC_PER_MSEC);
        (void)sd_event_source_set_enabled(l->timer, SD_EVENT_ONESHOT);
}

static void listener_run(struct listener *l)
{
        struct server *s = l->server;

        s->dispatch_depth++;
        (void)MHD_run(l->mhd);
        s->dispatch_depth--;
        listener_arm(l);
        /* Last: l itself may be a drained listener that goes now. */
        server_reap(s);
}

static int on_io(sd_event_source *src _unused_, int fd _unused_, uint32_t revents _unused_,
                 void *userdata)
{
        listener_run(userdata);
        return 0;
}

static int on_timer(sd_event_source *src _unused_, uint64_t usec _unused_, void *userdata)
{
        listener_run(userdata);
        return 0;
}

static struct listener *listener_free(struct listener *l)
{
        struct stat st;

        if (!l)
                return NULL;
        sd_event_source_disable_unref(l->io);
        sd_event_source_disable_unref(l->timer);
        if (l->mhd)
                MHD_stop_daemon(l->mhd); /* closes the listen fd unless it was quiesced */
        closep(&l->quiesced_fd);
        /* Remove the socket file only if it is still ours (not a successor's). */
        if (l->kind == LISTENER_UNIX && l->address && lstat(l->address, &st) == 0 &&
            st.st_dev == l->dev && st.st_ino == l->ino)
                (void)unlink(l->address);
        free(l->address);
        free(l);
        return NULL;
}

/* Free the drained listeners whose last connection has closed; not from inside MHD_run(). */
static void server_reap(struct server *s)
{
        if (s->dispatch_depth > 0)
                return;
        for (struct listener **p = &s->draining; *p;) {
                struct listener *l = *p;
                const union MHD_DaemonInfo *info =
                        MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

                if (info && info->num_connections > 0) {
                        p = &l->next;
                        continue;
                }
                *p = l->next;
                log_debug("stopped listening on %s", l->address);
                listener_free(l);
        }
}

/* Stop accepting on l, let its connections finish, free it once they have. */
static void listener_drain(struct server *s, struct listener *l)
{
        l->quiesced_fd = MHD_quiesce_daemon(l->mhd);
        /* The socket file goes now: a client must not connect to a socket nobody accepts on. */
        if (l->kind == LISTENER_UNIX) {
                struct stat st;
                if (lstat(l->address, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino)
                        (void)unlink(l->address);
                l->dev = 0;
                l->ino = 0;
        }
        l->next = s->draining;
        s->draining = l;
        server_reap(s);
}

/* Hand fd (taken, also on failure) to a new libmicrohttpd daemon on the loop. */
static int listener_start(struct server *s, enum listener_kind kind, const char *address, int fd,
                          struct listener **ret)
{
        struct listener *l;
        const union MHD_DaemonInfo *info;
        int r;

        l = calloc(1, sizeof(*l));
        if (!l) {
                close(fd);
                return -ENOMEM;
        }
        *l = (struct listener){.server = s, .kind = kind, .quiesced_fd = -1};
        l->address = strdup(address);
        if (!l->address) {
                close(fd);
                free(l);
                return -ENOMEM;
        }

        l->mhd = MHD_start_daemon(
                MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, l,
                MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
                (unsigned)SERVER_CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
                (unsigned)SERVER_CONNECTION_TIMEOUT_SEC, MHD_OPTION_NOTIFY_COMPLETED,
                on_request_completed, NULL, MHD_OPTION_UNESCAPE_CALLBACK, on_unescape, NULL,
                MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_END);
        if (!l->mhd) {
                /* Whether libmicrohttpd closed the fd on failure is not documented. */
                if (fcntl(fd, F_GETFD) >= 0)
                        close(fd);
                listener_free(l);
                return -EIO;
        }

        info = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info) {
                listener_free(l);
                return -EIO;
        }
        r = sd_event_add_io(s->event, &l->io, info->epoll_fd, EPOLLIN, on_io, l);
        if (r < 0) {
                listener_free(l);
                return r;
        }
        (void)sd_event_source_set_description(l->io, "server-io");
        /* Accuracy 1 µs: libmicrohttpd's "run again now" must not wait for sd-event's 250 ms. */
        r = sd_event_add_time(s->event, &l->timer, CLOCK_MONOTONIC, USEC_INFINITY, 1, on_timer, l);
        if (r < 0) {
                listener_free(l);
                return r;
        }
        (void)sd_event_source_set_description(l->timer, "server-timer");
        listener_arm(l);
        *ret = l;
        return 0;
}

/* ---- Listeners on sockets (governor/server-socket.c makes them) ---------------------- */

static int unix_listener_new(struct server *s, const struct server_config *cfg,
                             struct listener **ret)
{
        mode_t mode = cfg->socket_mode ? cfg->socket_mode : SERVER_SOCKET_MODE;
        struct listener *l;
        dev_t dev;
        ino_t ino;
        int fd, r;

        r = server_unix_socket_open(cfg->socket_path, mode, cfg->socket_group, &fd, &dev, &ino);
        if (r < 0)
                return r;
        r = listener_start(s, LISTENER_UNIX, cfg->socket_path, fd, &l);
        if (r < 0) {
                (void)unlink(cfg->socket_path);
                return r;
        }
        l->dev = dev;
        l->ino = ino;
        log_debug("listening on %s", cfg->socket_path);
        *ret = l;
        return 0;
}

static int tcp_listener_new(struct server *s, const char *listen_address, struct listener **ret)
{
        struct listener *l;
        uint16_t port;
        int fd, r;

        r = server_tcp_socket_open(listen_address, &fd, &port);
        if (r < 0)
                return r;
        r = listener_start(s, LISTENER_TCP, listen_address, fd, &l);
        if (r < 0)
                return r;
        l->port = port;
        log_debug("listening on %s (port %u)", listen_address, l->port);
        *ret = l;
        return 0;
}

/* ---- The server ----------------------------------------------------------------------- */

int server_new(sd_event *event, const struct server_config *cfg, const struct server_handlers *h,
               struct server **ret)
{
        _cleanup_(server_freep) struct server *s = NULL;
        int r;

        if (!cfg->socket_path && !cfg->listen)
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(event);
        s->handlers = *h;
        /* Checked first: a bad address must not leave a socket file behind. */
        if (cfg->listen && !server_listen_valid(cfg->listen))
                return -EINVAL;
        if (cfg->socket_path) {
                r = unix_listener_new(s, cfg, &s->unix_listener);
                if (r < 0)
                        return r;
        }
        if (cfg->listen) {
                r = tcp_listener_new(s, cfg->listen, &s->tcp_listener);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

struct server *server_free(struct server *s)
{
        if (!s)
                return NULL;
        assert(s->dispatch_depth == 0);
        listener_free(s->unix_listener);
        listener_free(s->tcp_listener);
        while (s->draining) {
                struct listener *l = s->draining;
                s->draining = l->next;
                listener_free(l);
        }
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

static bool same_address(const struct listener *l, const char *address)
{
        if (!l || !address)
                return !l && !address;
        return strcmp(l->address, address) == 0;
}

int server_reconfigure(struct server *s, const struct server_config *cfg)
{
        struct listener *nu = NULL, *nt = NULL;
        int r;

        if (!cfg->socket_path && !cfg->listen)
                return -EINVAL;
        if (same_address(s->unix_listener, cfg->socket_path)) {
                if (s->unix_listener)
                        server_socket_set_owner(cfg->socket_path,
                                                cfg->socket_mode ? cfg->socket_mode
                                                                 : SERVER_SOCKET_MODE,
                                                cfg->socket_group);
        } else if (cfg->socket_path) {
                r = unix_listener_new(s, cfg, &nu);
                if (r < 0)
                        return r;
        }
        if (!same_address(s->tcp_listener, cfg->listen) && cfg->listen) {
                r = tcp_listener_new(s, cfg->listen, &nt);
                if (r < 0) {
                        listener_free(nu);
                        return r;
                }
        }

        /* Everything new is bound: swap, and let the old ones finish what they serve. */
        if (!same_address(s->unix_listener, cfg->socket_path)) {
                if (s->unix_listener)
                        listener_drain(s, s->unix_listener);
                s->unix_listener = nu;
        }
        if (!same_address(s->tcp_listener, cfg->listen)) {
                if (s->tcp_listener)
                        listener_drain(s, s->tcp_listener);
                s->tcp_listener = nt;
        }
        return 0;
}

uint16_t server_get_tcp_port(const struct server *s)
{
        return s->tcp_listener ? s->tcp_listener->port : 0;
}

uint64_t server_get_n_requests(const struct server *s)
{
        return s->n_requests;
}

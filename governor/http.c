/* SPDX-License-Identifier: MIT */
/*
 * HTTP under the capture and notify effects: libcurl's multi interface glued to sd-event,
 * so that profiles and webhooks travel without ever blocking the loop.
 *
 * The glue: curl tells us which sockets it wants watched (socket callback) and when it
 * wants to be woken (timer callback); we mirror that with sd-event sources and hand every
 * wake-up back to curl_multi_socket_action(). Finished transfers are collected with
 * curl_multi_info_read() after each such call, outside any curl callback, so that user
 * callbacks may freely start and cancel requests.
 */
#include <limits.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>

#include <curl/curl.h>

#include "memgov/http.h"

#define HTTP_DEFAULT_TIMEOUT_USEC       (30 * USEC_PER_SEC)
#define HTTP_DEFAULT_MAX_RESPONSE_BYTES ((uint64_t)1 << 20)

/* One socket curl asked us to watch; curl keeps the pointer with curl_multi_assign(). */
struct http_io {
        struct http_client *client;
        curl_socket_t fd;
        sd_event_source *source;
        struct http_io *prev, *next;
};

struct http_client {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        struct http_io *ios;
        struct http_request *requests;
        size_t n_running;
        bool curl_global;
};

struct http_request {
        struct http_client *client;
        CURL *easy;
        struct curl_slist *headers;
        http_done_fn cb;
        void *userdata;
        uint64_t max_bytes;
        int output_fd;
        char *body;
        size_t body_size, body_allocated;
        uint64_t received;
        bool too_large;
        int write_error; /* -errno of a failed write to output_fd, or -ENOMEM */
        char *retry_after;
        char *content_type;
        char error_text[CURL_ERROR_SIZE];
        struct http_request *prev, *next;
};

static void io_free(struct http_io *io)
{
        struct http_client *c = io->client;

        if (io->prev)
                io->prev->next = io->next;
        else
                c->ios = io->next;
        if (io->next)
                io->next->prev = io->prev;
        sd_event_source_disable_unref(io->source);
        free(io);
}

/* Hand every finished transfer to its callback, then free it. */
static void client_collect_done(struct http_client *c)
{
        CURLMsg *msg;
        int left;

        while ((msg = curl_multi_info_read(c->multi, &left))) {
                struct http_request *req;
                char *priv = NULL;

                if (msg->msg != CURLMSG_DONE)
                        continue;
                (void)curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
                req = (struct http_request *)priv;
                if (!req)
                        continue;

                CURLcode code = msg->data.result;
                struct http_result result = {
                        .curl_code = (int)code,
                        .error_text = "",
                        .body = req->body,
                        .body_size = req->body_size,
                        .bytes_received = req->received,
                        .retry_after = req->retry_after,
                        .content_type = req->content_type,
                };
                curl_off_t total = 0;

                (void)curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &result.status);
                if (curl_easy_getinfo(req->easy, CURLINFO_TOTAL_TIME_T, &total) == CURLE_OK &&
                    total > 0)
                        result.total_usec = (uint64_t)total;

                if (code != CURLE_OK) {
                        result.error_text =
                                req->error_text[0] ? req->error_text : curl_easy_strerror(code);
                        if (req->too_large || code == CURLE_FILESIZE_EXCEEDED)
                                result.error = -EFBIG;
                        else if (req->write_error < 0)
                                result.error = req->write_error;
                        else if (code == CURLE_OPERATION_TIMEDOUT)
                                result.error = -ETIMEDOUT;
                        else if (code == CURLE_COULDNT_CONNECT)
                                result.error = -ECONNREFUSED;
                        else if (code == CURLE_COULDNT_RESOLVE_HOST)
                                result.error = -EHOSTUNREACH;
                        else if (code == CURLE_UNSUPPORTED_PROTOCOL)
                                result.error = -EPROTONOSUPPORT;
                        else if (code == CURLE_OUT_OF_MEMORY)
                                result.error = -ENOMEM;
                        else
                                result.error = -EIO;
                }

                /* The body is the callback's to take; whatever it leaves is freed here. */
                req->body = NULL;
                req->cb(req, &result, req->userdata);
                free(result.body);
                (void)http_request_cancel(req);
        }
}

static int on_io(sd_event_source *s _unused_, int fd, uint32_t revents, void *userdata)
{
        struct http_client *c = userdata;
        int mask = 0, running = 0;

        if (revents & EPOLLIN)
                mask |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                mask |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                mask |= CURL_CSELECT_ERR;

        /*
         * A failure here is curl's internal state going bad, not a transfer failing (those
         * end in CURLMSG_DONE); there is nothing better to do than to carry on.
         */
        (void)curl_multi_socket_action(c->multi, fd, mask, &running);
        client_collect_done(c);
        return 0;
}

static int on_socket(CURL *easy _unused_, curl_socket_t fd, int what, void *userdata, void *socketp)
{
        struct http_client *c = userdata;
        struct http_io *io = socketp;
        uint32_t events = 0;

        if (what == CURL_POLL_REMOVE) {
                if (io)
                        io_free(io);
                return 0;
        }

        if (what & CURL_POLL_IN)
                events |= EPOLLIN;
        if (what & CURL_POLL_OUT)
                events |= EPOLLOUT;

        if (io) {
                if (events == 0)
                        return sd_event_source_set_enabled(io->source, SD_EVENT_OFF) < 0 ? -1 : 0;
                if (sd_event_source_set_io_events(io->source, events) < 0 ||
                    sd_event_source_set_enabled(io->source, SD_EVENT_ON) < 0)
                        return -1;
                return 0;
        }

        io = calloc(1, sizeof(*io));
        if (!io)
                return -1;
        *io = (struct http_io){.client = c, .fd = fd, .next = c->ios};
        if (sd_event_add_io(c->event, &io->source, fd, events, on_io, c) < 0) {
                free(io);
                return -1;
        }
        (void)sd_event_source_set_description(io->source, "http-io");
        if (c->ios)
                c->ios->prev = io;
        c->ios = io;
        if (events == 0)
                (void)sd_event_source_set_enabled(io->source, SD_EVENT_OFF);

        if (curl_multi_assign(c->multi, fd, io) != CURLM_OK) {
                io_free(io);
                return -1;
        }
        return 0;
}

static int on_timer(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata)
{
        struct http_client *c = userdata;
        int running = 0;

        (void)curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        client_collect_done(c);
        return 0;
}

static int on_curl_timer(CURLM *multi _unused_, long timeout_ms, void *userdata)
{
        struct http_client *c = userdata;
        uint64_t now = 0, when;

        if (timeout_ms < 0) {
                if (c->timer && sd_event_source_set_enabled(c->timer, SD_EVENT_OFF) < 0)
                        return -1;
                return 0;
        }

        if (sd_event_now(c->event, CLOCK_MONOTONIC, &now) < 0)
                return -1;
        /* Round up: waking a little late is harmless, waking early makes curl spin. */
        when = now + (uint64_t)timeout_ms * USEC_PER_MSEC + (timeout_ms > 0 ? 999 : 0);
        if (timeout_ms == 0)
                when = 1; /* already past: dispatch on the next iteration */

        if (c->timer) {
                if (sd_event_source_set_time(c->timer, when) < 0 ||
                    sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT) < 0)
                        return -1;
                return 0;
        }
        /* Accuracy 1 µs: the default of 250 ms would delay every transfer that much. */
        if (sd_event_add_time(c->event, &c->timer, CLOCK_MONOTONIC, when, 1, on_timer, c) < 0)
                return -1;
        (void)sd_event_source_set_description(c->timer, "http-timer");
        return 0;
}

int http_client_new(sd_event *event, struct http_client **ret)
{
        struct http_client *c;

        if (!event || !ret)
                return -EINVAL;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(event);

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                http_client_free(c);
                return -EIO;
        }
        c->curl_global = true;

        c->multi = curl_multi_init();
        if (!c->multi) {
                http_client_free(c);
                return -ENOMEM;
        }
        if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK) {
                http_client_free(c);
                return -EIO;
        }

        *ret = c;
        return 0;
}

struct http_client *http_client_free(struct http_client *c)
{
        if (!c)
                return NULL;

        while (c->requests)
                (void)http_request_cancel(c->requests);
        if (c->multi)
                (void)curl_multi_cleanup(c->multi);
        /* Sockets of cached connections that curl did not report removed. */
        while (c->ios)
                io_free(c->ios);
        sd_event_source_disable_unref(c->timer);
        sd_event_unref(c->event);
        if (c->curl_global)
                curl_global_cleanup();
        free(c);
        return NULL;
}

size_t http_client_n_running(const struct http_client *c)
{
        return c ? c->n_running : 0;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userdata)
{
        struct http_request *req = userdata;
        size_t n = size * nmemb;

        if (n > req->max_bytes || req->received > req->max_bytes - n) {
                req->too_large = true;
                return 0; /* curl aborts the transfer with CURLE_WRITE_ERROR */
        }

        if (req->output_fd > 0) {
                for (size_t done = 0; done < n;) {
                        ssize_t k = write(req->output_fd, data + done, n - done);
                        if (k < 0) {
                                if (errno == EINTR)
                                        continue;
                                req->write_error = negative_errno();
                                return 0;
                        }
                        done += (size_t)k;
                }
        } else {
                if (req->body_size + n + 1 > req->body_allocated) {
                        size_t want = MAX(req->body_allocated * 2, req->body_size + n + 1);
                        char *p;

                        want = MAX(want, (size_t)4096);
                        p = realloc(req->body, want);
                        if (!p) {
                                req->write_error = -ENOMEM;
                                return 0;
                        }
                        req->body = p;
                        req->body_allocated = want;
                }
                memcpy(req->body + req->body_size, data, n);
                req->body_size += n;
                req->body[req->body_size] = '\0';
        }
        req->received += n;
        return n;
}

/* Keep the value of header line (name: value\r\n) if it is the one called name. */
static int header_value(const char *line, size_t len, const char *name, char **slot)
{
        size_t name_len = strlen(name);
        char *v;

        if (len <= name_len || line[name_len] != ':' || strncasecmp(line, name, name_len) != 0)
                return 0;
        line += name_len + 1;
        len -= name_len + 1;
        while (len > 0 && (*line == ' ' || *line == '\t')) {
                line++;
                len--;
        }
        while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n' || line[len - 1] == ' ' ||
                           line[len - 1] == '\t'))
                len--;
        if (memchr(line, '\0', len))
                return 0;
        v = strndup(line, len);
        if (!v)
                return -ENOMEM;
        free(*slot);
        *slot = v;
        return 1;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userdata)
{
        struct http_request *req = userdata;
        size_t n = size * nmemb;

        /* A status line starts a new response (after a 100 Continue): forget the old one. */
        if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
                free(req->retry_after);
                req->retry_after = NULL;
                free(req->content_type);
                req->content_type = NULL;
                return n;
        }
        if (header_value(line, n, "Retry-After", &req->retry_after) < 0 ||
            header_value(line, n, "Content-Type", &req->content_type) < 0)
                return 0;
        return n;
}

static int easy_setup(struct http_request *req, const struct http_request_opts *o)
{
        CURL *e = req->easy;
        const char *method = o->method ? o->method : "GET";
        uint64_t timeout = o->timeout_usec ? o->timeout_usec : HTTP_DEFAULT_TIMEOUT_USEC;
        long timeout_ms = (long)MIN((timeout + 999) / USEC_PER_MSEC, (uint64_t)LONG_MAX);
        char ua[64];

        (void)snprintf(ua, sizeof(ua), "memgovd/%s", MEMGOV_VERSION);

        for (const char *const *h = o->headers; h && *h; h++) {
                struct curl_slist *l = curl_slist_append(req->headers, *h);
                if (!l)
                        return -ENOMEM;
                req->headers = l;
        }

        if (curl_easy_setopt(e, CURLOPT_URL, o->url) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_PRIVATE, req) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->error_text) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_PROXY, "") != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_USERAGENT, ua) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->max_bytes) !=
                    CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_WRITEDATA, req) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_HEADERDATA, req) != CURLE_OK)
                return -EINVAL;

        if (o->body) {
                /* The size first: COPYPOSTFIELDS copies that many bytes. */
                if (curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_size) !=
                            CURLE_OK ||
                    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, o->body) != CURLE_OK)
                        return -ENOMEM;
                /*
                 * Without this curl asks "Expect: 100-continue" for larger bodies and waits
                 * up to a second for an answer many servers never send.
                 */
                struct curl_slist *l = curl_slist_append(req->headers, "Expect:");
                if (!l)
                        return -ENOMEM;
                req->headers = l;
        }
        if (strcmp(method, "HEAD") == 0) {
                if (curl_easy_setopt(e, CURLOPT_NOBODY, 1L) != CURLE_OK)
                        return -EINVAL;
        } else if (strcmp(method, "GET") == 0) {
                if (o->body && curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "GET") != CURLE_OK)
                        return -EINVAL;
        } else if (strcmp(method, "POST") != 0 || !o->body) {
                if (curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK)
                        return -EINVAL;
        }
        if (req->headers && curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers) != CURLE_OK)
                return -EINVAL;
        return 0;
}

int http_request_start(struct http_client *c, const struct http_request_opts *opts, http_done_fn cb,
                       void *userdata, struct http_request **ret)
{
        struct http_request *req;
        int r;

        if (!c || !opts || !opts->url || !cb || opts->output_fd < 0)
                return -EINVAL;
        if (opts->method && (!opts->method[0] || strpbrk(opts->method, " \t\r\n")))
                return -EINVAL;

        req = calloc(1, sizeof(*req));
        if (!req)
                return -ENOMEM;
        *req = (struct http_request){
                .client = c,
                .cb = cb,
                .userdata = userdata,
                .output_fd = opts->output_fd,
                .max_bytes = opts->max_response_bytes ? opts->max_response_bytes
                                                      : HTTP_DEFAULT_MAX_RESPONSE_BYTES,
        };
        req->easy = curl_easy_init();
        if (!req->easy) {
                free(req);
                return -ENOMEM;
        }
        r = easy_setup(req, opts);
        if (r >= 0 && curl_multi_add_handle(c->multi, req->easy) != CURLM_OK)
                r = -EIO;
        if (r < 0) {
                curl_easy_cleanup(req->easy);
                curl_slist_free_all(req->headers);
                free(req);
                return r;
        }

        req->next = c->requests;
        if (c->requests)
                c->requests->prev = req;
        c->requests = req;
        c->n_running++;
        if (ret)
                *ret = req;
        return 0;
}

struct http_request *http_request_cancel(struct http_request *req)
{
        struct http_client *c;

        if (!req)
                return NULL;
        c = req->client;

        if (req->prev)
                req->prev->next = req->next;
        else
                c->requests = req->next;
        if (req->next)
                req->next->prev = req->prev;
        c->n_running--;

        (void)curl_multi_remove_handle(c->multi, req->easy);
        curl_easy_cleanup(req->easy);
        curl_slist_free_all(req->headers);
        free(req->body);
        free(req->retry_after);
        free(req->content_type);
        free(req);
        return NULL;
}

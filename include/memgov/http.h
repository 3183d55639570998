/* SPDX-License-Identifier: MIT */
/*
 * HTTP for the effects (capture: pprof over HTTP; notify: webhooks): libcurl's multi
 * interface driven by the daemon's sd-event loop. A transfer never blocks the loop: curl's
 * sockets become sd-event I/O sources, curl's timer one sd-event time source, and each
 * request ends in a callback on the loop.
 *
 * Every request is limited to http:// and https://, follows no redirect, verifies TLS
 * certificates and host names, ignores proxy settings from the environment, and is bounded
 * in time (timeout_usec) and size (max_response_bytes).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "memgov/macro.h"

struct http_client;
struct http_request;

struct http_request_opts {
        const char *method;         /* "GET" (NULL), "POST", "PUT", … */
        const char *url;            /* http:// or https:// only */
        const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
        const void *body;           /* request body (copied), with body_size; NULL: none */
        size_t body_size;
        uint64_t timeout_usec;       /* the whole transfer, connect included; 0: 30 s */
        uint64_t max_response_bytes; /* the request fails with -EFBIG past this; 0: 1 MiB */
        /*
         * > 0: stream the response body to this fd (borrowed, not closed, written at its
         * current offset) instead of keeping it in memory — for profiles, which can be
         * large. 0 (the default of a zeroed struct): keep the body in memory.
         */
        int output_fd;
};

/* What became of a request. Owned by the request; valid during the callback only. */
struct http_result {
        /*
         * 0: a complete HTTP response arrived (whatever its status). Otherwise -ETIMEDOUT
         * (timeout_usec passed), -EFBIG (the body exceeded max_response_bytes),
         * -ECONNREFUSED, -EHOSTUNREACH (name not resolved), -EPROTONOSUPPORT (a scheme other
         * than http/https), -errno of a failed write to output_fd, -ENOMEM, or -EIO for
         * anything else, with curl's words in error_text.
         */
        int error;
        int curl_code;            /* the CURLcode, for logs */
        const char *error_text;   /* curl's message; "" when error == 0 */
        long status;              /* HTTP status of the last response; 0 when none was received */
        const char *retry_after;  /* the Retry-After header, verbatim; NULL if absent */
        const char *content_type; /* the Content-Type header; NULL if absent */
        /*
         * The body when kept in memory: NUL-terminated (not counted in body_size). The
         * callback may take it (set body to NULL, then free() it later); otherwise it is
         * freed after the callback. NULL when streamed to output_fd or empty.
         */
        char *body;
        size_t body_size;
        uint64_t bytes_received; /* body bytes received (and written to output_fd) */
        uint64_t total_usec;     /* curl's total time for the transfer */
};

/*
 * Called once per request on the loop, when it ends for any reason except
 * http_request_cancel() and http_client_free(). The request is freed right after the
 * callback returns: do not keep its pointer, and do not cancel it from here. The
 * callback may start new requests and cancel other ones.
 */
typedef void (*http_done_fn)(struct http_request *req, struct http_result *result, void *userdata);

/*
 * A client attached to event (referenced until http_client_free()). One per loop is
 * enough; connections to the same host are reused across requests. Returns 0, or -ENOMEM,
 * -EIO (libcurl failed to initialise).
 */
int http_client_new(sd_event *event, struct http_client **ret);

/*
 * Cancel every request still running (their callbacks are not called), then free the
 * client. Must not be called from an http_done_fn. Accepts NULL, returns NULL.
 */
struct http_client *http_client_free(struct http_client *c);
DEFINE_FREE_FUNC(http_client)

/*
 * Start a request; it runs on the loop and ends in cb(…, userdata), never before this
 * function has returned. *ret (if ret is not NULL) is a handle for http_request_cancel(),
 * valid until the callback starts. Returns 0, or -EINVAL (no url, bad option), -ENOMEM,
 * -EIO (libcurl refused the transfer); no callback follows a failure.
 */
int http_request_start(struct http_client *c, const struct http_request_opts *opts, http_done_fn cb,
                       void *userdata, struct http_request **ret);

/*
 * Abort a running request and free it; its callback is not called. Accepts NULL, returns
 * NULL.
 */
struct http_request *http_request_cancel(struct http_request *req);

/* The number of requests running now (started, neither done nor cancelled). */
size_t http_client_n_running(const struct http_client *c);

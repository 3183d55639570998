/* SPDX-License-Identifier: MIT */
/*
 * A scripted HTTP/1.1 server on 127.0.0.1 for the tests of the HTTP glue and of webhook
 * delivery: it runs in a thread, answers one connection per scripted response (each with
 * "Connection: close"), records what each request carried, and exits by itself when the
 * script is done or when its deadline passes. Header-only: included by test_http.c and
 * test_notify.c.
 */
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "memgov/macro.h"

#define LS_MAX_STEPS   16
#define LS_DEADLINE_MS 20000

struct ls_response {
        int status;          /* 0: close the connection without answering */
        const char *headers; /* extra header lines, each ending in "\r\n"; may be NULL */
        const char *body;    /* may be NULL */
        size_t filler_bytes; /* then this many 'x' bytes of body */
        bool no_length;      /* no Content-Length: the body ends when the connection closes */
        unsigned delay_ms;   /* wait this long before answering */
};

struct ls_request {
        uint64_t t_ms; /* CLOCK_MONOTONIC when it was read in full */
        char method[16];
        char path[256];
        char *head; /* the header lines, raw, NUL-terminated */
        char *body;
        size_t body_size;
};

struct ls_server {
        int fd;
        uint16_t port;
        char url[64]; /* http://127.0.0.1:PORT */
        pthread_t thread;
        const struct ls_response *script;
        size_t n_script;
        pthread_mutex_t lock;
        struct ls_request requests[LS_MAX_STEPS];
        size_t n_requests; /* under lock */
        bool done;         /* under lock: the thread has finished */
};

static _unused_ uint64_t ls_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Read one request (head and Content-Length body) within the deadline; 0 or -1. */
static _unused_ int ls_read_request(int fd, uint64_t deadline_ms, struct ls_request *ret)
{
        size_t size = 0, allocated = 65536, head_len = 0, body_len = 0;
        char *buf = malloc(allocated + 1), *eoh = NULL;

        if (!buf)
                return -1;
        for (;;) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                uint64_t now = ls_now_ms();
                ssize_t k;

                if (eoh && size >= head_len + body_len)
                        break;
                if (now >= deadline_ms || poll(&p, 1, (int)(deadline_ms - now)) <= 0)
                        goto fail;
                if (size == allocated) {
                        char *n = realloc(buf, allocated * 2 + 1);
                        if (!n)
                                goto fail;
                        buf = n;
                        allocated *= 2;
                }
                k = recv(fd, buf + size, allocated - size, 0);
                if (k <= 0)
                        goto fail;
                size += (size_t)k;
                buf[size] = '\0';
                if (!eoh && (eoh = strstr(buf, "\r\n\r\n"))) {
                        const char *cl = strcasestr(buf, "\r\nContent-Length:");

                        head_len = (size_t)(eoh - buf) + 4;
                        if (cl && cl < eoh)
                                body_len = strtoul(cl + 17, NULL, 10);
                }
        }

        *ret = (struct ls_request){.t_ms = ls_now_ms()};
        (void)sscanf(buf, "%15s %255s", ret->method, ret->path);
        ret->head = strndup(buf, head_len);
        ret->body = malloc(body_len + 1);
        if (!ret->head || !ret->body)
                goto fail;
        memcpy(ret->body, buf + head_len, body_len);
        ret->body[body_len] = '\0';
        ret->body_size = body_len;
        free(buf);
        return 0;
fail:
        free(buf);
        return -1;
}

static _unused_ void ls_send_all(int fd, const char *p, size_t n)
{
        while (n > 0) {
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
                if (k <= 0)
                        return; /* the client went away (it gave up on us): fine */
                p += k;
                n -= (size_t)k;
        }
}

static _unused_ void ls_answer(int fd, const struct ls_response *r, uint64_t deadline_ms)
{
        char head[1024];
        size_t body_len = (r->body ? strlen(r->body) : 0) + r->filler_bytes;
        int n;

        if (r->delay_ms > 0) {
                /* Sleep, but notice when the client hangs up, so that the test ends soon. */
                uint64_t until = MIN(ls_now_ms() + r->delay_ms, deadline_ms);
                for (uint64_t now = ls_now_ms(); now < until; now = ls_now_ms()) {
                        struct pollfd p = {.fd = fd, .events = POLLIN};
                        char c;
                        if (poll(&p, 1, (int)(until - now)) > 0 && recv(fd, &c, 1, 0) <= 0)
                                return;
                }
        }
        if (r->status == 0)
                return;

        n = snprintf(head, sizeof(head), "HTTP/1.1 %d Scripted\r\nConnection: close\r\n%s",
                     r->status, r->headers ? r->headers : "");
        if (!r->no_length)
                n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %zu\r\n",
                              body_len);
        n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
        ls_send_all(fd, head, (size_t)n);
        if (r->body)
                ls_send_all(fd, r->body, strlen(r->body));
        if (r->filler_bytes > 0) {
                static char filler[65536];
                memset(filler, 'x', sizeof(filler));
                for (size_t left = r->filler_bytes; left > 0;) {
                        size_t k = MIN(left, sizeof(filler));
                        ls_send_all(fd, filler, k);
                        left -= k;
                }
        }
}

static _unused_ void *ls_thread(void *userdata)
{
        struct ls_server *s = userdata;
        uint64_t deadline = ls_now_ms() + LS_DEADLINE_MS;

        for (size_t i = 0; i < s->n_script; i++) {
                struct pollfd p = {.fd = s->fd, .events = POLLIN};
                struct ls_request req;
                uint64_t now = ls_now_ms();
                int fd;

                if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0)
                        break;
                fd = accept(s->fd, NULL, NULL);
                if (fd < 0)
                        break;
                if (ls_read_request(fd, deadline, &req) == 0) {
                        pthread_mutex_lock(&s->lock);
                        s->requests[s->n_requests++] = req;
                        pthread_mutex_unlock(&s->lock);
                        ls_answer(fd, &s->script[i], deadline);
                }
                close(fd);
        }
        pthread_mutex_lock(&s->lock);
        s->done = true;
        pthread_mutex_unlock(&s->lock);
        return NULL;
}

/* Listen on 127.0.0.1:0 and start answering with script (n steps); 0 or -1. */
static _unused_ int ls_start(struct ls_server *s, const struct ls_response *script, size_t n)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);

        *s = (struct ls_server){.script = script, .n_script = MIN(n, (size_t)LS_MAX_STEPS)};
        pthread_mutex_init(&s->lock, NULL);
        s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            listen(s->fd, 16) < 0 || getsockname(s->fd, (struct sockaddr *)&a, &len) < 0)
                return -1;
        s->port = ntohs(a.sin_port);
        snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%u", (unsigned)s->port);
        return pthread_create(&s->thread, NULL, ls_thread, s) == 0 ? 0 : -1;
}

static _unused_ size_t ls_n_requests(struct ls_server *s)
{
        size_t n;

        pthread_mutex_lock(&s->lock);
        n = s->n_requests;
        pthread_mutex_unlock(&s->lock);
        return n;
}

/*
 * The value of header name in a recorded request, copied into buf (size n); NULL if the
 * request lacks it.
 */
static _unused_ const char *ls_header(const struct ls_request *r, const char *name, char *buf,
                                      size_t n)
{
        size_t name_len = strlen(name);

        for (const char *line = strstr(r->head, "\r\n"); line && line[2];
             line = strstr(line + 2, "\r\n")) {
                const char *p = line + 2, *end = strstr(p, "\r\n");
                if (!end || strncasecmp(p, name, name_len) != 0 || p[name_len] != ':')
                        continue;
                p += name_len + 1;
                while (*p == ' ')
                        p++;
                snprintf(buf, n, "%.*s", (int)(end - p), p);
                return buf;
        }
        return NULL;
}

/*
 * Stop listening (a thread waiting for a connection that will never come wakes up), wait
 * for the thread and close. What it recorded stays readable until ls_free().
 */
static _unused_ void ls_stop(struct ls_server *s)
{
        (void)shutdown(s->fd, SHUT_RDWR);
        pthread_join(s->thread, NULL);
        close(s->fd);
}

static _unused_ void ls_free(struct ls_server *s)
{
        for (size_t i = 0; i < s->n_requests; i++) {
                free(s->requests[i].head);
                free(s->requests[i].body);
        }
        pthread_mutex_destroy(&s->lock);
}

/* SPDX-License-Identifier: MIT */
/*
 * bench-webhook: how long a webhook takes from the moment memgovd queues it (decide →
 * notify) to the moment the receiver has the whole request, on loopback. The path is the
 * daemon's own: notify_event() called from a timer on an sd-event loop, the body signed,
 * sent through the curl multi glue of memgov/http.h. The receiver is a minimal HTTP/1.1
 * server on another thread of this process that stamps each request's arrival with the
 * same CLOCK_MONOTONIC; so the two ends need no clock agreement.
 *
 * One event at a time (the next is queued 2 ms after the previous one settled), so that
 * queueing behind another message is not measured. Two receivers: one that keeps the
 * connection open (curl reuses it) and one that answers "Connection: close" (every
 * delivery connects anew). Also shown: queued → settled, when the loop has the 200.
 *
 *   bench-webhook [--count N] [--warmup N]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "memgov/http.h"
#include "memgov/log.h"
#include "memgov/notify.h"

#define MAX_COUNT 100000
#define GAP_USEC  (2 * USEC_PER_MSEC)

static uint64_t mono_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

/* The receiver: accepts on a loopback port, reads requests, stamps, answers 200. */
struct receiver {
        int listen_fd;
        int port;
        bool close_each;         /* answer "Connection: close" */
        _Atomic uint64_t n;      /* requests received */
        _Atomic uint64_t n_conn; /* connections accepted */
        uint64_t *arrival_usec;  /* [MAX_COUNT]: when request k was complete */
        atomic_bool stop;
        pthread_t thread;
};

/* Reads one request (headers and Content-Length body) from fd; 0, or -1 on EOF/error. */
static int read_request(int fd, char *buf, size_t size, size_t *have)
{
        for (;;) {
                char *end = memmem(buf, *have, "\r\n\r\n", 4);
                if (end) {
                        size_t head = (size_t)(end - buf) + 4, body = 0;
                        for (char *p = buf; p < end; p++)
                                if (strncasecmp(p, "\r\ncontent-length:", 17) == 0)
                                        body = strtoul(p + 17, NULL, 10);
                        if (*have >= head + body) {
                                memmove(buf, buf + head + body, *have - head - body);
                                *have -= head + body;
                                return 0;
                        }
                }
                if (*have == size)
                        return -1;
                ssize_t k = read(fd, buf + *have, size - *have);
                if (k <= 0)
                        return -1;
                *have += (size_t)k;
        }
}

static void write_all(int fd, const char *p, size_t n)
{
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k <= 0)
                        return;
                p += k;
                n -= (size_t)k;
        }
}

static void *receiver_thread(void *userdata)
{
        struct receiver *r = userdata;
        static const char ok_keep[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        static const char ok_close[] =
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        char buf[65536];

        while (!atomic_load(&r->stop)) {
                struct pollfd p = {.fd = r->listen_fd, .events = POLLIN};
                if (poll(&p, 1, 100) <= 0)
                        continue;
                int fd = accept4(r->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        continue;
                atomic_fetch_add(&r->n_conn, 1);
                size_t have = 0;
                while (read_request(fd, buf, sizeof(buf), &have) == 0) {
                        uint64_t k = atomic_load(&r->n);
                        if (k < MAX_COUNT)
                                r->arrival_usec[k] = mono_usec();
                        atomic_store(&r->n, k + 1);
                        if (r->close_each) {
                                write_all(fd, ok_close, sizeof(ok_close) - 1);
                                break;
                        }
                        write_all(fd, ok_keep, sizeof(ok_keep) - 1);
                }
                close(fd);
        }
        return NULL;
}

static int receiver_start(struct receiver *r, bool close_each)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);

        *r = (struct receiver){.close_each = close_each};
        r->arrival_usec = calloc(MAX_COUNT, sizeof(uint64_t));
        r->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (!r->arrival_usec || r->listen_fd < 0 ||
            bind(r->listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            listen(r->listen_fd, 16) < 0 ||
            getsockname(r->listen_fd, (struct sockaddr *)&a, &len) < 0)
                return -errno;
        r->port = ntohs(a.sin_port);
        return -pthread_create(&r->thread, NULL, receiver_thread, r);
}

static void receiver_stop(struct receiver *r)
{
        atomic_store(&r->stop, true);
        pthread_join(r->thread, NULL);
        close(r->listen_fd);
        free(r->arrival_usec);
}

/* The sender: one notify on one loop, one event at a time from a timer. */
struct sender {
        sd_event *event;
        struct notify *notify;
        sd_event_source *timer;
        const char *url;
        size_t count, sent;
        uint64_t *queued_usec, *settled_usec;
        int error;
};

static uint64_t settled(const struct sender *s)
{
        struct notify_endpoint_stats st;
        uint64_t sum = 0;

        if (notify_get_endpoint_stats(s->notify, 0, &st) < 0)
                return 0;
        for (size_t i = 0; i < _WEBHOOK_RESULT_MAX; i++)
                sum += st.results[i];
        return sum;
}

static int on_send(sd_event_source *src, uint64_t usec, void *userdata)
{
        struct sender *s = userdata;
        static const struct sample sample = {.current_bytes = 700 << 20,
                                             .limit_bytes = 1024 << 20,
                                             .max_bytes = 1024 << 20,
                                             .anon_bytes = 600 << 20,
                                             .file_bytes = 80 << 20,
                                             .has = SAMPLE_HAS_ANON | SAMPLE_HAS_FILE};
        static const struct forecast fc = {.known = true,
                                           .slope_bytes_per_s = 2 << 20,
                                           .eta_usec = 162 * USEC_PER_SEC,
                                           .eta_lower_usec = 120 * USEC_PER_SEC,
                                           .eta_upper_usec = 240 * USEC_PER_SEC};
        /* Alternating levels, as a service going in and out of trouble. */
        bool up = s->sent % 2 == 0;
        int r;

        (void)src;
        (void)usec;
        s->queued_usec[s->sent] = mono_usec();
        r = notify_event(s->notify, &(struct notify_event){
                                            .type = up ? EVENT_DEGRADE : EVENT_RECOVERED,
                                            .service = "bench",
                                            .cgroup = "bench.slice/bench.service",
                                            .level = up ? LEVEL_DEGRADE : LEVEL_OK,
                                            .previous_level = up ? LEVEL_OK : LEVEL_DEGRADE,
                                            .sample = &sample,
                                            .forecast = &fc,
                                    });
        if (r != 1) {
                s->error = r < 0 ? r : -EIO;
                return sd_event_exit(s->event, 1);
        }
        s->sent++;
        return 0;
}

static int run_one(bool close_each, const char *secret_path, size_t count, uint64_t *ret_arrival,
                   uint64_t *ret_settled, uint64_t *ret_failed, uint64_t *ret_connections)
{
        struct receiver rcv;
        struct sender s = {.count = count};
        struct http_client *http = NULL;
        char url[64];
        int r;

        r = receiver_start(&rcv, close_each);
        if (r < 0)
                return r;
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/memgov", rcv.port);
        struct policy_webhook wh = {
                .url = url,
                .secret_file = (char *)secret_path,
                .events_mask = EVENT_MASK(EVENT_DEGRADE) | EVENT_MASK(EVENT_RECOVERED),
                .timeout_usec = 2 * USEC_PER_SEC,
                .deadline_usec = 20 * USEC_PER_SEC,
        };
        struct policy pol = {.service = (char *)"bench",
                             .cgroup = (char *)"bench.slice/bench.service",
                             .webhooks = &wh,
                             .n_webhooks = 1};
        struct policy *pp = &pol;
        struct policy_set set = {.policies = &pp, .n_policies = 1};
        struct diag diag = {0};

        s.queued_usec = calloc(count, sizeof(uint64_t));
        s.settled_usec = calloc(count, sizeof(uint64_t));
        if (!s.queued_usec || !s.settled_usec)
                return -ENOMEM;
        if ((r = sd_event_new(&s.event)) < 0 || (r = http_client_new(s.event, &http)) < 0 ||
            (r = notify_new(s.event, http, "bench", &s.notify)) < 0 ||
            (r = notify_set_policies(s.notify, &set, &diag)) < 0)
                goto out;
        /* Accuracy 1 µs: 0 would mean sd-event's default of 250 ms between events. */
        r = sd_event_add_time(s.event, &s.timer, CLOCK_MONOTONIC, 0, 1, on_send, &s);
        if (r < 0)
                goto out;
        (void)sd_event_source_set_enabled(s.timer, SD_EVENT_ONESHOT);

        for (size_t done = 0; done < count && s.error == 0;) {
                r = sd_event_run(s.event, 100 * USEC_PER_MSEC);
                if (r < 0)
                        goto out;
                if (s.sent > done && settled(&s) > done) {
                        s.settled_usec[done++] = mono_usec();
                        if (done < count) {
                                (void)sd_event_source_set_time(s.timer, mono_usec() + GAP_USEC);
                                (void)sd_event_source_set_enabled(s.timer, SD_EVENT_ONESHOT);
                        }
                }
        }
        r = s.error;
        if (r < 0)
                goto out;
        struct notify_endpoint_stats st;
        (void)notify_get_endpoint_stats(s.notify, 0, &st);
        *ret_failed = st.attempts - st.results[WEBHOOK_DELIVERED];
        *ret_connections = atomic_load(&rcv.n_conn);
        if (atomic_load(&rcv.n) != count) {
                fprintf(stderr, "bench-webhook: the receiver got %llu requests for %zu events\n",
                        (unsigned long long)atomic_load(&rcv.n), count);
                r = -EIO;
                goto out;
        }
        for (size_t i = 0; i < count; i++) {
                ret_arrival[i] = rcv.arrival_usec[i] - s.queued_usec[i];
                ret_settled[i] = s.settled_usec[i] - s.queued_usec[i];
        }
out:
        sd_event_source_unref(s.timer);
        notify_free(s.notify);
        http_client_free(http);
        sd_event_unref(s.event);
        receiver_stop(&rcv);
        free(s.queued_usec);
        free(s.settled_usec);
        diag_clear(&diag);
        return r;
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return (x > y) - (x < y);
}

/* The q-quantile (nearest rank) of sorted v[n], in ms. */
static double q_ms(const uint64_t *v, size_t n, double q)
{
        size_t k = (size_t)(q * (double)n + 0.999999);
        if (k < 1)
                k = 1;
        if (k > n)
                k = n;
        return (double)v[k - 1] / 1000.0;
}

static void row(const char *receiver, const char *what, uint64_t *v, size_t n)
{
        qsort(v, n, sizeof(*v), cmp_u64);
        printf("| %-18s | %-19s | %5zu | %7.3f | %7.3f | %7.3f | %7.3f |\n", receiver, what, n,
               q_ms(v, n, 0.50), q_ms(v, n, 0.90), q_ms(v, n, 0.99), (double)v[n - 1] / 1000.0);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {{"count", required_argument, NULL, 'n'},
                                             {"warmup", required_argument, NULL, 'w'},
                                             {"help", no_argument, NULL, 'h'},
                                             {}};
        size_t count = 500, warmup = 10;
        char dir[] = "/tmp/bench-webhook-XXXXXX", secret[64];
        uint64_t notes[2] = {0, 0};
        int c, fd, rc = 0;

        while ((c = getopt_long(argc, argv, "n:w:h", opts, NULL)) != -1)
                switch (c) {
                case 'n':
                        count = strtoul(optarg, NULL, 10);
                        break;
                case 'w':
                        warmup = strtoul(optarg, NULL, 10);
                        break;
                default:
                        fprintf(stderr, "usage: %s [--count N] [--warmup N]\n", argv[0]);
                        return c == 'h' ? 0 : 2;
                }
        if (count < 1 || count > MAX_COUNT - warmup) {
                fprintf(stderr, "bench-webhook: --count must be 1..%zu\n", MAX_COUNT - warmup);
                return 2;
        }
        log_set_max_level(LOG_WARNING);

        /* A signed endpoint, as in production: the secret in a private file. */
        if (!mkdtemp(dir))
                return 1;
        snprintf(secret, sizeof(secret), "%s/bench.secret", dir);
        fd = open(secret, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return 1;
        write_all(fd, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", 39);
        close(fd);

        printf("webhook delivery on loopback: %zu deliveries per receiver after %zu warm-up, "
               "one at a time; times in ms\n\n",
               count, warmup);
        printf("| receiver           | from queued to      | n     | p50     | p90     | p99     | "
               "max     |\n");
        printf("|--------------------|---------------------|-------|---------|---------|---------|"
               "---------|\n");
        for (int close_each = 0; close_each <= 1 && rc == 0; close_each++) {
                size_t total = warmup + count;
                uint64_t *arr = calloc(total, sizeof(uint64_t));
                uint64_t *set = calloc(total, sizeof(uint64_t));
                uint64_t failed = 0, conns = 0;
                int r = arr && set ? run_one(close_each, secret, total, arr, set, &failed, &conns)
                                   : -ENOMEM;
                if (r < 0) {
                        fprintf(stderr, "bench-webhook: %s\n", strerror(-r));
                        rc = 1;
                } else {
                        const char *name = close_each ? "Connection: close" : "keep-alive";
                        row(name, "receiver has it", arr + warmup, count);
                        row(name, "loop has the 200", set + warmup, count);
                        notes[close_each] = conns;
                        if (failed)
                                printf("(%llu attempts of %s were not delivered)\n",
                                       (unsigned long long)failed, name);
                }
                free(arr);
                free(set);
        }
        if (rc == 0)
                printf("\nconnections the receiver accepted: keep-alive %llu, Connection: close "
                       "%llu (for %zu deliveries each)\n",
                       (unsigned long long)notes[0], (unsigned long long)notes[1], warmup + count);
        unlink(secret);
        rmdir(dir);
        return rc;
}

/* SPDX-License-Identifier: MIT */
/*
 * bench-daemon's "actuate" mode: the delay from the sample whose decision changes memory.high
 * to the write of memory.high itself (decide → govern → actuate), on a temporary tree.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "harness.h"
#include "memgov/macro.h"

#define ACTUATE_MAX_BYTES UINT64_C(209715200) /* the fixture's memory.max */
#define ACTUATE_MAX_TIMED 4096

/* The sample lines of cgroup 0 in memgovd's debug log: the start of its pipeline. */
#define SAMPLE_NEEDLE "svc-0000.service: current="

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return x < y ? -1 : x > y;
}

static double pct_ms(const uint64_t *sorted, size_t n, double p)
{
        size_t k = (size_t)ceil(p * (double)n) - 1;

        return (double)sorted[MIN(k, n - 1)] / 1e3;
}

/*
 * The bench policy with the guard made quick: a short window and budget, one change a second
 * at most, so that a leak of cgroup 0 makes memory.high go down step by step, and its end
 * (an OOM kill, usage back to 40%) makes it go up and be given back.
 */
static int write_policy(const struct bench_tree *t)
{
        char path[512];
        FILE *f;

        snprintf(path, sizeof(path), "%s/bench.json", t->pol);
        f = fopen(path, "we");
        if (!f)
                return -errno;
        fputs("{\n  \"service\": \"bench\",\n  \"cgroup\": \"bench.slice/*.service\",\n"
              "  \"sample_interval\": \"1s\",\n  \"forecast\": { \"window\": \"30s\" },\n"
              "  \"levels\": { \"hold\": \"5s\" },\n"
              "  \"memory_high\": { \"mode\": \"guard\", \"min\": \"10%\", \"budget\": \"20s\", "
              "\"min_interval\": \"1s\" }\n}\n",
              f);
        return fclose(f) == 0 ? 0 : -errno;
}

/* Read what the log pipe has; each complete sample line of cgroup 0 sets *last_sample. */
static int drain_log(struct bench_daemon *d, uint64_t now, uint64_t *last_sample)
{
        for (;;) {
                ssize_t n = read(d->log_fd, d->log + d->log_len, sizeof(d->log) - d->log_len);
                char *nl;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return 0;
                if (n <= 0)
                        return n < 0 ? -errno : -EPIPE;
                d->log_len += (size_t)n;
                while ((nl = memchr(d->log, '\n', d->log_len))) {
                        size_t len = (size_t)(nl - d->log) + 1;

                        *nl = '\0';
                        if (strstr(d->log, SAMPLE_NEEDLE))
                                *last_sample = now;
                        if (getenv("BENCH_VERBOSE") && strstr(d->log, "svc-0000"))
                                fprintf(stderr, "%s\n", d->log);
                        memmove(d->log, d->log + len, d->log_len - len);
                        d->log_len -= len;
                }
                if (d->log_len == sizeof(d->log))
                        d->log_len = 0;
                if ((size_t)n < sizeof(d->log))
                        return 0;
        }
}

int bench_actuate(const char *memgovd, const char *tmpdir, const char *fixtures, unsigned seconds)
{
        uint64_t *v = calloc(ACTUATE_MAX_TIMED, sizeof(uint64_t));
        uint64_t last_sample = 0, start, kills = 0;
        unsigned writes = 0, untimed = 0, s = 0;
        struct bench_tree t;
        struct bench_daemon d;
        char path[700], name[64];
        size_t n = 0;
        int ino = -1, r;

        if (!v)
                return -ENOMEM;
        r = bench_tree_make(tmpdir, fixtures, 10, 1000, 30, 400, &t);
        if (r >= 0)
                r = write_policy(&t);
        if (r < 0) {
                free(v);
                bench_tree_remove(&t);
                return r;
        }
        r = bench_daemon_start(memgovd, NULL, &t, "debug", true, NULL, &d);
        if (r >= 0)
                r = bench_daemon_wait_ready(&d, 60000);
        if (r >= 0 && fcntl(d.log_fd, F_SETFL, fcntl(d.log_fd, F_GETFL) | O_NONBLOCK) < 0)
                r = -errno;
        if (r >= 0) {
                ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
                snprintf(path, sizeof(path), "%s/%s/memory.high", t.cg,
                         bench_cgroup_name(0, name, sizeof(name)));
                if (ino < 0 || inotify_add_watch(ino, path, IN_MODIFY | IN_CLOSE_WRITE) < 0)
                        r = -errno;
        }

        /* cgroup 0 leaks from 40% to 99% of memory.max in 20 s, is OOM-killed, starts again */
        start = bench_now_usec();
        while (r >= 0 && s < seconds) {
                uint64_t now = bench_now_usec(), due = start + (uint64_t)s * USEC_PER_SEC;

                if (now >= due) {
                        unsigned at = s % 30;
                        uint64_t cur = ACTUATE_MAX_BYTES * (400 + MIN(at, 20u) * 590 / 20) / 1000;

                        if (at == 21)
                                kills++;
                        r = bench_write_usage(&t, 0, at >= 21 ? ACTUATE_MAX_BYTES * 4 / 10 : cur);
                        if (r >= 0 && at == 21)
                                r = bench_write_events(&t, 0, 0, kills, kills);
                        s++;
                        continue;
                }
                struct pollfd p[2] = {{.fd = d.log_fd, .events = POLLIN},
                                      {.fd = ino, .events = POLLIN}};
                if (poll(p, 2, (int)((due - now) / 1000) + 1) < 0 && errno != EINTR) {
                        r = -errno;
                        break;
                }
                now = bench_now_usec();
                /* the log first: the sample line was written before memory.high was */
                if (p[0].revents)
                        r = drain_log(&d, now, &last_sample);
                if (r >= 0 && p[1].revents) {
                        char buf[4096] __attribute__((aligned(8)));
                        ssize_t len = read(ino, buf, sizeof(buf));

                        for (ssize_t off = 0; off < len;) {
                                const struct inotify_event *e = (const void *)(buf + off);

                                /* one write(2) of memgovd: an IN_MODIFY, then IN_CLOSE_WRITE */
                                if (e->mask & IN_MODIFY) {
                                        writes++;
                                        if (last_sample && n < ACTUATE_MAX_TIMED)
                                                v[n++] = now - last_sample;
                                        else
                                                untimed++;
                                }
                                off += (ssize_t)(sizeof(*e) + e->len);
                        }
                }
        }
        if (ino >= 0)
                close(ino);
        (void)bench_daemon_stop(&d, 10000);
        bench_tree_remove(&t);
        if (r < 0) {
                free(v);
                return r;
        }

        printf("\n### Decision → memory.high written (temporary tree)\n\n");
        printf("| from | to | writes | p50 | p90 | p99 | max |\n|---|---|---:|---:|---:|---:|---:|"
               "\n");
        if (n > 0) {
                qsort(v, n, sizeof(*v), cmp_u64);
                printf("| the sample whose decision changes it (its debug line) | memory.high "
                       "modified (inotify) | %zu | %.3f ms | %.3f ms | %.3f ms | %.3f ms |\n",
                       n, pct_ms(v, n, 0.5), pct_ms(v, n, 0.9), pct_ms(v, n, 0.99),
                       (double)v[n - 1] / 1e3);
        }
        printf("\n%u s, 10 governed cgroups at 1 Hz; cgroup 0 leaks from 40%% to 99%% of "
               "memory.max in 20 s and is OOM-killed, over and over; memory.high mode guard with "
               "a 20 s budget and min_interval 1 s. From the sample to the write: forecast, "
               "decide, govern, the level's event (capture and webhook queued) and the write "
               "itself, in one pass of the loop. %u write(s) of memory.high, %u untimed.\n",
               seconds, writes, untimed);
        free(v);
        return n > 0 ? 0 : -ENODATA;
}

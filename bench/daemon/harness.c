/* SPDX-License-Identifier: MIT */
/* bench/daemon: temporary cgroup trees, memgovd as a child process, and its /proc files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "memgov/macro.h"

#define STAT_MAX 8192

static char fixture_stat[STAT_MAX];
static char fixture_pressure[512];

uint64_t bench_now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

void bench_sleep_usec(uint64_t usec)
{
        struct timespec ts = {.tv_sec = (time_t)(usec / USEC_PER_SEC),
                              .tv_nsec = (long)(usec % USEC_PER_SEC) * 1000};

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int write_path(const char *path, const char *content, bool truncate)
{
        _cleanup_close_ int fd =
                open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0644);
        size_t len = strlen(content);

        if (fd < 0)
                return -errno;
        if (pwrite(fd, content, len, 0) != (ssize_t)len)
                return -EIO;
        return 0;
}

static int read_path(const char *path, char *buf, size_t size)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        size_t len = 0;

        if (fd < 0)
                return -errno;
        /* /proc files come a page or so per read() */
        while (len < size - 1) {
                ssize_t n = read(fd, buf + len, size - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = '\0';
        return 0;
}

const char *bench_cgroup_name(unsigned k, char *buf, size_t size)
{
        snprintf(buf, size, "bench.slice/svc-%04u.service", k);
        return buf;
}

int bench_write(const struct bench_tree *t, unsigned k, const char *file, const char *content)
{
        char name[64], path[512];

        snprintf(path, sizeof(path), "%s/%s/%s", t->cg, bench_cgroup_name(k, name, sizeof(name)),
                 file);
        return write_path(path, content, false);
}

int bench_write_events(const struct bench_tree *t, unsigned k, uint64_t high, uint64_t max,
                       uint64_t oom_kill)
{
        char buf[256];

        snprintf(buf, sizeof(buf),
                 "low 0\nhigh %09" PRIu64 "\nmax %09" PRIu64 "\noom %09" PRIu64
                 "\noom_kill %09" PRIu64 "\noom_group_kill 0\n",
                 high, max, oom_kill, oom_kill);
        return bench_write(t, k, "memory.events", buf);
}

/* The fixture's memory.stat with anon and file replaced by 9-digit values. */
static void format_stat(uint64_t anon, uint64_t file, char *buf, size_t size)
{
        size_t n = 0;

        buf[0] = '\0';
        for (const char *line = fixture_stat; *line;) {
                const char *end = strchrnul(line, '\n');
                int len = (int)(end - line);

                if (strncmp(line, "anon ", 5) == 0)
                        n += (size_t)snprintf(buf + n, size - n, "anon %09" PRIu64 "\n", anon);
                else if (strncmp(line, "file ", 5) == 0)
                        n += (size_t)snprintf(buf + n, size - n, "file %09" PRIu64 "\n", file);
                else
                        n += (size_t)snprintf(buf + n, size - n, "%.*s\n", len, line);
                if (n >= size)
                        return;
                line = *end ? end + 1 : end;
        }
}

int bench_write_usage(const struct bench_tree *t, unsigned k, uint64_t current_bytes)
{
        char buf[STAT_MAX + 64];
        int r;

        format_stat(current_bytes / 4 * 3, current_bytes / 4, buf, sizeof(buf));
        r = bench_write(t, k, "memory.stat", buf);
        if (r < 0)
                return r;
        snprintf(buf, sizeof(buf), "%09" PRIu64 "\n", current_bytes);
        return bench_write(t, k, "memory.current", buf);
}

#define BENCH_MAX_BYTES UINT64_C(209715200) /* the fixture's memory.max: 200 MiB */

static int make_cgroup(struct bench_tree *t, unsigned k, unsigned usage_permille)
{
        static const struct {
                const char *name, *content;
        } plain[] = {
                {"memory.max", "209715200\n"},  {"memory.high", "max\n"},
                {"memory.low", "0\n"},          {"memory.min", "0\n"},
                {"memory.swap.current", "0\n"}, {"memory.swap.max", "max\n"},
                {"memory.oom.group", "0\n"},    {"cgroup.procs", ""},
                {"cgroup.type", "domain\n"},    {"cgroup.controllers", "memory pids\n"},
        };
        char name[64], path[512];
        int r;

        snprintf(path, sizeof(path), "%s/%s", t->cg, bench_cgroup_name(k, name, sizeof(name)));
        if (mkdir(path, 0755) < 0)
                return -errno;
        for (size_t i = 0; i < ELEMENTSOF(plain); i++) {
                r = bench_write(t, k, plain[i].name, plain[i].content);
                if (r < 0)
                        return r;
        }
        r = bench_write(t, k, "memory.pressure", fixture_pressure);
        if (r < 0)
                return r;
        r = bench_write_events(t, k, 0, 0, 0);
        if (r < 0)
                return r;
        return bench_write_usage(t, k, BENCH_MAX_BYTES / 1000 * usage_permille);
}

int bench_tree_make(const char *tmpdir, const char *fixtures, unsigned n, unsigned interval_ms,
                    unsigned window_s, unsigned usage_permille, struct bench_tree *ret)
{
        struct bench_tree t = {.n_cgroups = n};
        char path[512], buf[1024];
        int r;

        snprintf(path, sizeof(path), "%s/memory.stat", fixtures);
        r = read_path(path, fixture_stat, sizeof(fixture_stat));
        if (r < 0)
                return r;
        snprintf(path, sizeof(path), "%s/memory.pressure", fixtures);
        r = read_path(path, fixture_pressure, sizeof(fixture_pressure));
        if (r < 0)
                return r;

        snprintf(t.root, sizeof(t.root), "%s/memgov-bench-XXXXXX", tmpdir);
        if (!mkdtemp(t.root))
                return -errno;
        snprintf(t.cg, sizeof(t.cg), "%s/cg", t.root);
        snprintf(t.pol, sizeof(t.pol), "%s/pol", t.root);
        snprintf(t.state, sizeof(t.state), "%s/state", t.root);
        snprintf(t.config, sizeof(t.config), "%s/memgovd.json", t.root);
        snprintf(path, sizeof(path), "%s/bench.slice", t.cg);
        if (mkdir(t.cg, 0755) < 0 || mkdir(t.pol, 0755) < 0 || mkdir(t.state, 0755) < 0 ||
            mkdir(path, 0755) < 0)
                return -errno;
        snprintf(path, sizeof(path), "%s/cgroup.controllers", t.cg);
        r = write_path(path, "cpu io memory pids\n", true);
        if (r < 0)
                return r;
        snprintf(path, sizeof(path), "%s/bench.slice/cgroup.controllers", t.cg);
        r = write_path(path, "memory pids\n", true);
        if (r < 0)
                return r;

        /* The safety-net rescan stays out of the way; the status socket in the tree. */
        snprintf(buf, sizeof(buf), "{\"rescan_interval\": \"1h\", \"runtime_dir\": \"%s/run\"}\n",
                 t.root);
        r = write_path(t.config, buf, true);
        if (r < 0)
                return r;
        snprintf(path, sizeof(path), "%s/bench.json", t.pol);
        /*
         * The effects are configured as in life, aimed at a closed loopback port (9, discard):
         * a level change tries a profile capture and a webhook, which fail and are retried.
         */
        snprintf(buf, sizeof(buf),
                 "{\n  \"service\": \"bench\",\n  \"cgroup\": \"bench.slice/*.service\",\n"
                 "  \"sample_interval\": \"%ums\",\n  \"forecast\": { \"window\": \"%us\" },\n"
                 "  \"pprof\": { \"url\": \"http://127.0.0.1:9/debug/pprof\" },\n"
                 "  \"webhooks\": [ { \"url\": \"http://127.0.0.1:9/memgov\" } ]\n}\n",
                 interval_ms, window_s);
        r = write_path(path, buf, true);
        if (r < 0)
                return r;

        for (unsigned k = 0; k < n; k++) {
                r = make_cgroup(&t, k, usage_permille);
                if (r < 0)
                        return r;
        }
        *ret = t;
        return 0;
}

static int rm_rf(const char *path)
{
        pid_t pid = fork();
        int status;

        if (pid < 0)
                return -errno;
        if (pid == 0) {
                execlp("rm", "rm", "-rf", "--", path, (char *)NULL);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

void bench_tree_remove(struct bench_tree *t)
{
        if (t->root[0])
                (void)rm_rf(t->root);
        t->root[0] = '\0';
}

int bench_daemon_start(const char *memgovd, char *const *wrap, const struct bench_tree *t,
                       const char *log_level, bool capture_log, const char *log_path,
                       struct bench_daemon *ret)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int pipefd[2] = {-1, -1};
        struct bench_daemon d = {.pid = -1, .log_fd = -1, .notify_fd = -1};
        char *argv[64];
        size_t n = 0;

        snprintf(d.notify_path, sizeof(d.notify_path), "%s/notify", t->root);
        (void)unlink(d.notify_path);
        if (strlen(d.notify_path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, d.notify_path);
        d.notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (d.notify_fd < 0)
                return -errno;
        if (bind(d.notify_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                close(d.notify_fd);
                return -errno;
        }
        if (capture_log && pipe2(pipefd, O_CLOEXEC) < 0) {
                close(d.notify_fd);
                return -errno;
        }

        for (char *const *w = wrap; w && *w && n < 40; w++)
                argv[n++] = *w;
        argv[n++] = (char *)memgovd;
        argv[n++] = (char *)"--config";
        argv[n++] = (char *)t->config;
        argv[n++] = (char *)"--policy-dir";
        argv[n++] = (char *)t->pol;
        argv[n++] = (char *)"--cgroup-root";
        argv[n++] = (char *)t->cg;
        argv[n++] = (char *)"--state-dir";
        argv[n++] = (char *)t->state;
        argv[n++] = (char *)"--log-level";
        argv[n++] = (char *)(log_level ? log_level : "info");
        argv[n] = NULL;

        d.pid = fork();
        if (d.pid < 0)
                return -errno;
        if (d.pid == 0) {
                int fd = capture_log ? pipefd[1]
                                     : open(log_path ? log_path : "/dev/null",
                                            O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
                        _exit(127);
                fd = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (fd < 0 || dup2(fd, STDIN_FILENO) < 0 || dup2(fd, STDOUT_FILENO) < 0)
                        _exit(127);
                /*
                 * The open-file limits memgovd has under systemd (LimitNOFILE=1024:524288,
                 * systemd's default), where this shell's may be lower: memgovd keeps cgroup
                 * files open only below a quarter of the limit. Raising the hard limit
                 * needs root; without it memgovd runs with what it got (said in its log).
                 */
                struct rlimit rl = {.rlim_cur = 1024, .rlim_max = 524288};
                (void)setrlimit(RLIMIT_NOFILE, &rl);
                setenv("NOTIFY_SOCKET", d.notify_path, 1);
                unsetenv("JOURNAL_STREAM");
                unsetenv("WATCHDOG_USEC");
                execvp(argv[0], argv);
                _exit(127);
        }
        if (capture_log) {
                close(pipefd[1]);
                d.log_fd = pipefd[0];
        }
        *ret = d;
        return 0;
}

/* Take in what memgovd sent on the notify socket; returns 1 once READY=1 was seen. */
static int drain_notify(struct bench_daemon *d)
{
        char buf[4096];
        int ready = 0;

        for (;;) {
                ssize_t n = recv(d->notify_fd, buf, sizeof(buf) - 1, 0);
                if (n < 0)
                        return errno == EAGAIN ? ready : -errno;
                buf[n] = '\0';
                for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
                        if (strcmp(line, "READY=1") == 0)
                                ready = 1;
                        else if (strncmp(line, "STATUS=", 7) == 0)
                                snprintf(d->status, sizeof(d->status), "%s", line + 7);
                }
        }
}

int bench_daemon_wait_ready(struct bench_daemon *d, unsigned timeout_ms)
{
        uint64_t end = bench_now_usec() + (uint64_t)timeout_ms * USEC_PER_MSEC;

        for (;;) {
                struct pollfd p = {.fd = d->notify_fd, .events = POLLIN};
                uint64_t now = bench_now_usec();
                int r, status;

                r = drain_notify(d);
                if (r > 0) {
                        /*
                         * Stop listening: a socket nobody reads fills up, and then memgovd's
                         * sd_notify() blocks its loop. Gone, the sends fail at once.
                         */
                        close(d->notify_fd);
                        d->notify_fd = -1;
                        (void)unlink(d->notify_path);
                        return 0;
                }
                if (r < 0)
                        return r;
                if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
                        d->pid = -1;
                        return -ECHILD;
                }
                if (now >= end)
                        return -ETIMEDOUT;
                (void)poll(&p, 1, (int)MIN((end - now) / USEC_PER_MSEC + 1, 100));
        }
}

int bench_daemon_stop(struct bench_daemon *d, unsigned timeout_ms)
{
        int status = -1;

        if (d->pid > 0) {
                uint64_t end = bench_now_usec() + (uint64_t)timeout_ms * USEC_PER_MSEC;

                (void)kill(d->pid, SIGTERM);
                for (;;) {
                        pid_t p = waitpid(d->pid, &status, WNOHANG);
                        if (p == d->pid || p < 0)
                                break;
                        if (bench_now_usec() >= end) {
                                (void)kill(d->pid, SIGKILL);
                                (void)waitpid(d->pid, &status, 0);
                                break;
                        }
                        bench_sleep_usec(10 * USEC_PER_MSEC);
                }
        }
        d->pid = -1;
        if (d->log_fd >= 0)
                close(d->log_fd);
        if (d->notify_fd >= 0)
                close(d->notify_fd);
        (void)unlink(d->notify_path);
        d->log_fd = d->notify_fd = -1;
        return status;
}

int bench_proc_cpu_usec(pid_t pid, uint64_t *ret_user, uint64_t *ret_system)
{
        char path[64], buf[2048];
        unsigned long utime, stime;
        const char *p;
        long hz = sysconf(_SC_CLK_TCK);
        int r;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        r = read_path(path, buf, sizeof(buf));
        if (r < 0)
                return r;
        /* after "(comm)": state is field 3, utime 14, stime 15 */
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
                         &stime) != 2)
                return -EINVAL;
        *ret_user = (uint64_t)utime * USEC_PER_SEC / (uint64_t)hz;
        *ret_system = (uint64_t)stime * USEC_PER_SEC / (uint64_t)hz;
        return 0;
}

static uint64_t field_kib(const char *buf, const char *key)
{
        const char *p = strstr(buf, key);
        unsigned long long v = 0;

        if (p && sscanf(p + strlen(key), " %llu", &v) == 1)
                return v;
        return 0;
}

int bench_proc_mem(pid_t pid, struct bench_mem *ret)
{
        char path[64];
        char *buf = malloc(1 << 20);
        struct bench_mem m = {};
        int r;

        if (!buf)
                return -ENOMEM;
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        r = read_path(path, buf, 1 << 20);
        if (r >= 0) {
                m.rss_kib = field_kib(buf, "\nVmRSS:");
                m.rss_anon_kib = field_kib(buf, "\nRssAnon:");
                m.rss_file_kib = field_kib(buf, "\nRssFile:");
                snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
                r = read_path(path, buf, 1 << 20);
        }
        if (r >= 0) {
                m.pss_kib = field_kib(buf, "\nPss:");
                m.anon_kib = field_kib(buf, "\nAnonymous:");
                snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
                r = read_path(path, buf, 1 << 20);
        }
        if (r >= 0) {
                const char *h = strstr(buf, "[heap]");
                if (h)
                        m.heap_kib = field_kib(h, "\nRss:");
        }
        free(buf);
        if (r < 0)
                return r;
        *ret = m;
        return 0;
}

int bench_proc_fds(pid_t pid, unsigned *ret)
{
        char path[64];
        unsigned n = 0;
        DIR *dir;

        snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
        dir = opendir(path);
        if (!dir)
                return -errno;
        for (struct dirent *de; (de = readdir(dir));)
                n += de->d_name[0] != '.';
        closedir(dir);
        *ret = n;
        return 0;
}

int bench_log_wait(struct bench_daemon *d, const char *needle, uint64_t timeout_usec,
                   uint64_t *ret_usec)
{
        return bench_log_wait_line(d, needle, timeout_usec, ret_usec, NULL, 0);
}

int bench_log_wait_line(struct bench_daemon *d, const char *needle, uint64_t timeout_usec,
                        uint64_t *ret_usec, char *line, size_t size)
{
        uint64_t end = bench_now_usec() + timeout_usec;

        for (;;) {
                char *nl;

                /* whole lines first */
                while ((nl = memchr(d->log, '\n', d->log_len))) {
                        size_t len = (size_t)(nl - d->log) + 1;
                        bool hit;

                        *nl = '\0';
                        hit = strstr(d->log, needle) != NULL;
                        if (hit && line && size > 0)
                                snprintf(line, size, "%s", d->log);
                        memmove(d->log, d->log + len, d->log_len - len);
                        d->log_len -= len;
                        if (hit) {
                                if (ret_usec)
                                        *ret_usec = d->last_read_usec;
                                return 1;
                        }
                }
                if (d->log_len == sizeof(d->log)) /* a monster line: drop it */
                        d->log_len = 0;

                uint64_t now = bench_now_usec();
                if (now >= end)
                        return 0;
                struct pollfd p = {.fd = d->log_fd, .events = POLLIN};
                int r = poll(&p, 1, (int)MIN((end - now) / USEC_PER_MSEC + 1, 1000));
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r <= 0)
                        continue;
                ssize_t n = read(d->log_fd, d->log + d->log_len, sizeof(d->log) - d->log_len);
                d->last_read_usec = bench_now_usec();
                if (n == 0)
                        return -EPIPE;
                if (n < 0 && errno != EINTR && errno != EAGAIN)
                        return -errno;
                if (n > 0)
                        d->log_len += (size_t)n;
        }
}

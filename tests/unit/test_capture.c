/* SPDX-License-Identifier: MIT */
/*
 * Capture: the pure bookkeeping (cooldowns, hourly cap, pairing, placeholders), then real
 * captures on a real sd-event loop from the leaky example service (built Go binary,
 * /debug/pprof on 127.0.0.1): a heap-leak pair whose top suspect must be the leaking
 * function, a hanging endpoint, an oversized response, a collector past its deadline, and
 * the free-space floor. The real tests skip when the leaky binary was not built.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <openssl/evp.h>

#include "memgov/capture.h"
#include "memgov/cgfs.h"
#include "memgov/log.h"
#include "memgov/macro.h"

#define T0 (UINT64_C(1000) * USEC_PER_SEC)

/* ---- pure bookkeeping --------------------------------------------------------------- */

static void test_capture_limiter_cooldown_and_hourly_cap(void **state _unused_)
{
        struct capture_limiter l = {};
        struct policy_pprof p = {.cooldown_usec = 60 * USEC_PER_SEC, .max_per_hour = 3};
        unsigned heap = 1u << PPROF_HEAP, gr = 1u << PPROF_GOROUTINE;

        assert_int_equal(capture_limiter_allow(&l, &p, heap | gr, T0), heap | gr);
        capture_limiter_record(&l, heap, T0);
        /* heap is cooling down, goroutine is not */
        assert_int_equal(capture_limiter_allow(&l, &p, heap | gr, T0 + 59 * USEC_PER_SEC), gr);
        assert_int_equal(capture_limiter_allow(&l, &p, heap | gr, T0 + 60 * USEC_PER_SEC),
                         heap | gr);

        capture_limiter_record(&l, gr, T0 + 10 * USEC_PER_SEC);
        capture_limiter_record(&l, heap | gr, T0 + 20 * 60 * USEC_PER_SEC);
        assert_int_equal(capture_limiter_last_hour(&l, T0 + 20 * 60 * USEC_PER_SEC), 3);
        /* Three captures in the last hour: nothing more until the first is an hour old. */
        assert_int_equal(capture_limiter_allow(&l, &p, heap | gr, T0 + 30 * 60 * USEC_PER_SEC), 0);
        assert_int_equal(capture_limiter_allow(&l, &p, heap | gr, T0 + USEC_PER_HOUR), heap | gr);
        assert_int_equal(capture_limiter_last_hour(&l, T0 + USEC_PER_HOUR), 2);

        /* No cooldown and no cap: always. */
        p = (struct policy_pprof){};
        for (int i = 0; i < 1000; i++)
                capture_limiter_record(&l, heap, T0);
        assert_int_equal(capture_limiter_allow(&l, &p, heap, T0), heap);
        assert_int_equal(capture_limiter_last_hour(&l, T0), CAPTURE_HOUR_SLOTS);
}

static void test_capture_pair_roles(void **state _unused_)
{
        struct capture_pair p = {};

        /* Danger appears: the first capture is the base, later ones are current. */
        assert_int_equal(capture_pair_role(&p, LEVEL_WARN), CAPTURE_ROLE_BASE);
        assert_int_equal(capture_pair_record(&p, CAPTURE_ROLE_BASE, LEVEL_WARN, "/d/a", 1), 0);
        assert_int_equal(capture_pair_role(&p, LEVEL_WARN), CAPTURE_ROLE_CURRENT);
        assert_int_equal(capture_pair_role(&p, LEVEL_CRITICAL), CAPTURE_ROLE_CURRENT);
        assert_int_equal(capture_pair_record(&p, CAPTURE_ROLE_CURRENT, LEVEL_CRITICAL, "/d/b", 2),
                         0);
        assert_int_equal(capture_pair_record(&p, CAPTURE_ROLE_CURRENT, LEVEL_CRITICAL, "/d/c", 3),
                         0);
        assert_string_equal(p.base_dir, "/d/a");
        assert_string_equal(p.current_dir, "/d/c");

        /* Recovered: the episode is forgotten. */
        capture_pair_recovered(&p);
        assert_null(p.base_dir);
        assert_null(p.current_dir);

        /* A healthy baseline is always a base and survives a recovery. */
        assert_int_equal(capture_pair_role(&p, LEVEL_OK), CAPTURE_ROLE_BASE);
        assert_int_equal(capture_pair_record(&p, CAPTURE_ROLE_BASE, LEVEL_OK, "/d/base", 4), 0);
        assert_int_equal(capture_pair_role(&p, LEVEL_OK), CAPTURE_ROLE_BASE);
        assert_int_equal(capture_pair_role(&p, LEVEL_DEGRADE), CAPTURE_ROLE_CURRENT);
        assert_int_equal(capture_pair_record(&p, CAPTURE_ROLE_CURRENT, LEVEL_DEGRADE, "/d/x", 5),
                         0);
        capture_pair_recovered(&p);
        assert_string_equal(p.base_dir, "/d/base");
        assert_null(p.current_dir);
        capture_pair_clear(&p);
        assert_null(p.base_dir);
        assert_string_equal(capture_role_to_string(CAPTURE_ROLE_CURRENT), "current");
}

static void test_capture_expand_argv(void **state _unused_)
{
        static const pid_t pids[] = {42, 43, 44};
        const struct capture_placeholders ph = {
                .pid = 43,
                .pids = pids,
                .n_pids = 3,
                .cgroup = "/sys/fs/cgroup/system.slice/x.service",
                .dir = "/var/lib/memgov/dumps/x/.d.tmp",
                .service = "x",
        };
        static const struct {
                const char *argv[6];
                const char *expect; /* arguments joined by '|', or NULL for -EINVAL */
        } table[] = {
                {{"gcore", "-o", "{dir}/core", "{pid}"},
                 "gcore|-o|/var/lib/memgov/dumps/x/.d.tmp/core|43"},
                {{"ps", "-p", "{pids}"}, "ps|-p|42|43|44"},
                {{"ps", "--pid={pids}"}, "ps|--pid=42,43,44"},
                {{"tool", "{service}:{cgroup}"}, "tool|x:/sys/fs/cgroup/system.slice/x.service"},
                {{"echo", "{unknown}", "{", "}{pid", "{{pid}}"}, "echo|{unknown}|{|}{pid|{43}"},
                {{"a{pid}b{pid}c"}, "a43b43c"},
                {{NULL}, NULL},
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                char **out = NULL;
                char joined[512] = "";
                int r = capture_expand_argv((char *const *)table[i].argv, &ph, &out);

                if (!table[i].expect) {
                        assert_int_equal(r, -EINVAL);
                        continue;
                }
                assert_int_equal(r, 0);
                for (char **a = out; *a; a++) {
                        if (a != out)
                                strcat(joined, "|");
                        strcat(joined, *a);
                }
                if (strcmp(joined, table[i].expect) != 0) {
                        print_error("row %zu: got \"%s\", expected \"%s\"\n", i, joined,
                                    table[i].expect);
                        fail();
                }
                strv_free(out);
        }

        /* A placeholder with nothing to stand for it, and an argument over the cap. */
        {
                const struct capture_placeholders none = {.service = "x"};
                char *argv1[] = {(char *)"gcore", (char *)"{pid}", NULL};
                char *argv2[] = {(char *)"ls", (char *)"{pids}", NULL};
                char *argv3[] = {(char *)"ls", (char *)"{cgroup}", NULL};
                char *big = malloc(5000);
                char *argv4[] = {(char *)"x", big, NULL};
                char **out = NULL;

                assert_non_null(big);
                memset(big, 'a', 4999);
                big[4999] = '\0';
                assert_int_equal(capture_expand_argv(argv1, &none, &out), -EINVAL);
                assert_int_equal(capture_expand_argv(argv2, &none, &out), -EINVAL);
                assert_int_equal(capture_expand_argv(argv3, &none, &out), -EINVAL);
                assert_int_equal(capture_expand_argv(argv4, &ph, &out), -EINVAL);
                assert_null(out);
                free(big);
        }
}

/* ---- real captures ------------------------------------------------------------------ */

struct world {
        char dir[64];
        char *state;
        char *cgroup; /* a fake cgroup directory: cgroup.procs, memory.stat */
        int cgroup_fd, proc_fd;
        sd_event *event;
        struct http_client *http;
        struct dump_store *store;
        pid_t leaky;
        uint16_t port;
        char url[64];
};

/* What the callback saw, copied out (the result is valid during the callback only). */
struct outcome {
        sd_event *event; /* borrowed */
        bool done;
        int error;
        char *dir;
        size_t n_files, n_failed;
        bool paired;
        char *top_suspect;
        char *top_heap_growth;
        char *top_goroutine_growth;
        uint64_t duration_usec;
        uint64_t done_usec;
};

static void outcome_clear(struct outcome *o)
{
        free(o->dir);
        free(o->top_suspect);
        free(o->top_heap_growth);
        free(o->top_goroutine_growth);
        *o = (struct outcome){.event = o->event};
}

static void on_done(struct capture *c _unused_, const struct capture_result *r, void *userdata)
{
        struct outcome *o = userdata;

        o->done = true;
        o->error = r->error;
        o->dir = r->dir ? strdup(r->dir) : NULL;
        o->n_files = r->n_files;
        o->n_failed = r->n_failed;
        o->paired = r->paired;
        o->duration_usec = r->duration_usec;
        if (r->n_suspects > 0)
                o->top_suspect = strdup(r->suspects[0]->function);
        if (r->summary && r->summary->heap_growth && r->summary->heap_growth->n_items > 0)
                o->top_heap_growth = strdup(r->summary->heap_growth->items[0].function);
        if (r->summary && r->summary->goroutine_growth && r->summary->goroutine_growth->n_items > 0)
                o->top_goroutine_growth = strdup(r->summary->goroutine_growth->items[0].function);
        (void)sd_event_now(o->event, CLOCK_MONOTONIC, &o->done_usec);
}

static int on_give_up(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata)
{
        bool *gave_up = userdata;

        *gave_up = true;
        return 0;
}

/* Run the loop until the capture is done (at most 60 s: a hung loop fails the test). */
static void run_until_done(struct world *w, struct outcome *o)
{
        sd_event_source *guard = NULL;
        bool gave_up = false;

        assert_int_equal(sd_event_add_time_relative(w->event, &guard, CLOCK_MONOTONIC,
                                                    60 * USEC_PER_SEC, 0, on_give_up, &gave_up),
                         0);
        while (!o->done && !gave_up)
                assert_true(sd_event_run(w->event, UINT64_MAX) >= 0);
        sd_event_source_disable_unref(guard);
        assert_false(gave_up);
}

static uint16_t free_port(void)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
        close(fd);
        return ntohs(a.sin_port);
}

static bool port_answers(uint16_t port)
{
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons(port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool ok;

        assert_true(fd >= 0);
        ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(fd);
        return ok;
}

static char *leaky_path(void)
{
        const char *dir = getenv("MEMGOV_BINARY_DIR");
        char *p;

        assert_true(asprintf(&p, "%s/examples/leaky/leaky", dir ? dir : MEMGOV_BINARY_DIR) > 0);
        return p;
}

/* Start the leaky service in mode on a free port and wait until it listens. */
static void start_leaky(struct world *w, const char *mode, const char *rate)
{
        _cleanup_free_ char *path = leaky_path();
        char listen[32];

        if (access(path, X_OK) < 0)
                skip(); /* not built: no Go toolchain */
        w->port = free_port();
        snprintf(listen, sizeof(listen), "127.0.0.1:%u", w->port);
        snprintf(w->url, sizeof(w->url), "http://127.0.0.1:%u/debug/pprof", w->port);
        w->leaky = fork();
        assert_true(w->leaky >= 0);
        if (w->leaky == 0) {
                int null = open("/dev/null", O_WRONLY);
                dup2(null, STDERR_FILENO);
                execl(path, path, "--mode", mode, "--rate", rate, "--listen", listen, (char *)NULL);
                _exit(127);
        }
        for (int i = 0; i < 200 && !port_answers(w->port); i++)
                usleep(50 * 1000);
        assert_true(port_answers(w->port));

        /* The fake cgroup holds the service's pid, so the built-ins read its real /proc. */
        {
                _cleanup_free_ char *procs = NULL;
                assert_true(asprintf(&procs, "%d\n", (int)w->leaky) > 0);
                assert_int_equal(cgfs_write_create_at(w->cgroup_fd, "cgroup.procs", procs), 0);
        }
}

static int setup(void **state)
{
        struct world *w = calloc(1, sizeof(*w));

        assert_non_null(w);
        strcpy(w->dir, "/tmp/test-capture-XXXXXX");
        assert_non_null(mkdtemp(w->dir));
        assert_true(asprintf(&w->state, "%s/state", w->dir) > 0);
        assert_true(asprintf(&w->cgroup, "%s/cgroup", w->dir) > 0);
        assert_int_equal(mkdir(w->cgroup, 0755), 0);
        w->cgroup_fd = open(w->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(w->cgroup_fd >= 0);
        assert_int_equal(cgfs_write_create_at(w->cgroup_fd, "cgroup.procs", ""), 0);
        assert_int_equal(
                cgfs_write_create_at(w->cgroup_fd, "memory.stat", "anon 1048576\nfile 4096\n"), 0);
        w->proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(w->proc_fd >= 0);
        assert_int_equal(sd_event_new(&w->event), 0);
        assert_int_equal(http_client_new(w->event, &w->http), 0);
        assert_int_equal(dump_store_open(w->state, NULL, &w->store), 0);
        *state = w;
        return 0;
}

static int teardown(void **state)
{
        struct world *w = *state;
        char cmd[128];

        if (w->leaky > 0) {
                kill(w->leaky, SIGKILL);
                waitpid(w->leaky, NULL, 0);
        }
        dump_store_free(w->store);
        http_client_free(w->http);
        sd_event_unref(w->event);
        close(w->cgroup_fd);
        close(w->proc_fd);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", w->dir);
        assert_int_equal(system(cmd), 0);
        free(w->state);
        free(w->cgroup);
        free(w);
        return 0;
}

static char *read_file(const char *dir, const char *name, size_t *ret_len)
{
        _cleanup_free_ char *p = NULL;
        char *buf;
        FILE *f;
        long n;

        assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
        f = fopen(p, "re");
        if (!f) {
                print_error("%s is missing\n", p);
                fail();
        }
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        n = ftell(f);
        rewind(f);
        buf = malloc((size_t)n + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
        buf[n] = '\0';
        fclose(f);
        if (ret_len)
                *ret_len = (size_t)n;
        return buf;
}

static void assert_gzip(const char *dir, const char *name)
{
        size_t n;
        _cleanup_free_ char *b = read_file(dir, name, &n);

        assert_true(n > 2);
        assert_int_equal((unsigned char)b[0], 0x1f);
        assert_int_equal((unsigned char)b[1], 0x8b);
}

static struct json_object *manifest(const char *dir)
{
        _cleanup_free_ char *text = read_file(dir, "manifest.json", NULL);
        struct json_object *m = json_tokener_parse(text);

        assert_non_null(m);
        return m;
}

static struct json_object *jget(struct json_object *o, const char *key)
{
        struct json_object *v = NULL;

        if (!json_object_object_get_ex(o, key, &v)) {
                print_error("no \"%s\" in %s\n", key, json_object_to_json_string(o));
                fail();
        }
        return v;
}

/* The manifest entry of name, or NULL. */
static struct json_object *mfile(struct json_object *m, const char *name)
{
        struct json_object *files = jget(m, "files");

        for (size_t i = 0; i < json_object_array_length(files); i++) {
                struct json_object *e = json_object_array_get_idx(files, i);
                if (strcmp(json_object_get_string(jget(e, "name")), name) == 0)
                        return e;
        }
        return NULL;
}

/* Every listed file has the listed size and sha256. */
static void assert_manifest_sums(const char *dir)
{
        struct json_object *m = manifest(dir), *files = jget(m, "files");

        assert_true(json_object_array_length(files) > 0);
        for (size_t i = 0; i < json_object_array_length(files); i++) {
                struct json_object *e = json_object_array_get_idx(files, i);
                size_t n;
                _cleanup_free_ char *b =
                        read_file(dir, json_object_get_string(jget(e, "name")), &n);
                unsigned char md[32];
                unsigned len = 0;
                char hex[65];

                assert_int_equal(EVP_Digest(b, n, md, &len, EVP_sha256(), NULL), 1);
                for (unsigned k = 0; k < len; k++)
                        snprintf(hex + 2 * k, 3, "%02x", md[k]);
                assert_string_equal(json_object_get_string(jget(e, "sha256")), hex);
                assert_int_equal(json_object_get_uint64(jget(e, "size")), n);
        }
        json_object_put(m);
}

static void capture_now(struct world *w, struct capture_request *req, struct outcome *o)
{
        struct capture *c = NULL;

        o->event = w->event;
        assert_int_equal(capture_start(w->event, w->http, w->store, req, on_done, o, &c), 0);
        assert_non_null(c);
        /* Never from within capture_start(). */
        assert_false(o->done);
        run_until_done(w, o);
}

static void test_capture_leaky_heap_pair(void **state)
{
        struct world *w = *state;
        struct policy_pprof pprof = {.timeout_usec = 10 * USEC_PER_SEC, .max_bytes = 16 << 20};
        struct capture_request req = {
                .service = "leaky",
                .event = "warn",
                .realtime_usec = (uint64_t)time(NULL) * USEC_PER_SEC,
                .pprof = &pprof,
                .kinds_mask = 1u << PPROF_HEAP | 1u << PPROF_GOROUTINE | 1u << PPROF_ALLOCS,
                .builtin = true,
                .cgroup_fd = w->cgroup_fd,
                .proc_fd = w->proc_fd,
        };
        struct outcome base = {}, cur = {};
        struct json_object *m, *s, *v;
        char name[32];

        start_leaky(w, "heap", "8MiB");
        pprof.url = w->url;

        capture_now(w, &req, &base);
        assert_int_equal(base.error, 0);
        assert_int_equal(base.n_failed, 0);
        assert_false(base.paired);
        assert_null(base.top_suspect);
        print_message("base capture: %zu files in %" PRIu64 " ms\n", base.n_files,
                      base.duration_usec / USEC_PER_MSEC);

        /* About 16 MiB more leaked. */
        sleep(2);
        req.event = "critical";
        req.realtime_usec = (uint64_t)time(NULL) * USEC_PER_SEC;
        req.base_dir = base.dir;
        capture_now(w, &req, &cur);
        assert_int_equal(cur.error, 0);
        assert_int_equal(cur.n_failed, 0);
        assert_true(cur.paired);
        assert_string_equal(cur.top_heap_growth, "main.leakIntoGlobalMap");
        assert_string_equal(cur.top_suspect, "main.leakIntoGlobalMap");
        print_message("current capture: %zu files in %" PRIu64 " ms\n", cur.n_files,
                      cur.duration_usec / USEC_PER_MSEC);

        /* The files, as served and as listed. */
        assert_gzip(cur.dir, "heap.pb.gz");
        assert_gzip(cur.dir, "allocs.pb.gz");
        assert_gzip(cur.dir, "goroutine.pb.gz");
        assert_gzip(base.dir, "heap.pb.gz");
        {
                _cleanup_free_ char *t = read_file(cur.dir, "heap.txt", NULL);
                _cleanup_free_ char *g = read_file(cur.dir, "goroutine.txt", NULL);
                _cleanup_free_ char *st = read_file(cur.dir, "memory.stat", NULL);
                assert_non_null(strstr(t, "heap profile: "));
                assert_non_null(strstr(g, "goroutine profile: total "));
                assert_string_equal(st, "anon 1048576\nfile 4096\n");
        }
        snprintf(name, sizeof(name), "smaps_rollup.%d", (int)w->leaky);
        free(read_file(cur.dir, name, NULL));
        snprintf(name, sizeof(name), "status.%d", (int)w->leaky);
        {
                _cleanup_free_ char *st = read_file(cur.dir, name, NULL);
                assert_non_null(strstr(st, "Name:\tleaky"));
        }
        assert_manifest_sums(base.dir);
        assert_manifest_sums(cur.dir);

        m = manifest(cur.dir);
        assert_string_equal(json_object_get_string(jget(m, "event")), "critical");
        assert_string_equal(json_object_get_string(jget(mfile(m, "heap.pb.gz"), "kind")),
                            "pprof-heap");
        assert_string_equal(json_object_get_string(jget(mfile(m, "goroutine.txt"), "kind")),
                            "pprof-goroutine-text");
        assert_non_null(mfile(m, "suspects.json"));
        assert_int_equal(json_object_array_length(jget(m, "errors")), 0);
        json_object_put(m);

        /* suspects.json names the base and the leak, with file and line. */
        {
                _cleanup_free_ char *text = read_file(cur.dir, "suspects.json", NULL);
                s = json_tokener_parse(text);
        }
        assert_non_null(s);
        assert_string_equal(json_object_get_string(jget(s, "base")), base.dir);
        v = json_object_array_get_idx(jget(jget(s, "heap"), "growth"), 0);
        assert_string_equal(json_object_get_string(jget(v, "function")), "main.leakIntoGlobalMap");
        assert_string_equal(json_object_get_string(jget(v, "file")),
                            "memgov.example/leaky/leak.go");
        assert_true(json_object_get_int64(jget(v, "growth")) > 8 << 20);
        print_message("top suspect: %s\n",
                      json_object_get_string(json_object_array_get_idx(jget(s, "suspects"), 0)));
        json_object_put(s);

        outcome_clear(&base);
        outcome_clear(&cur);
}

/* Goroutine-leak mode: the goroutines that grew are parked in main.stuckWorker. */
static void test_capture_leaky_goroutine_pair(void **state)
{
        struct world *w = *state;
        struct policy_pprof pprof = {};
        struct capture_request req = {
                .service = "leaky",
                .event = "warn",
                .realtime_usec = T0,
                .pprof = &pprof,
                .kinds_mask = 1u << PPROF_GOROUTINE,
                .cgroup_fd = -1,
                .proc_fd = -1,
        };
        struct outcome base = {}, cur = {};

        start_leaky(w, "goroutine", "20");
        pprof.url = w->url;
        capture_now(w, &req, &base);
        assert_int_equal(base.error, 0);
        assert_false(base.paired);

        sleep(2);
        req.event = "degrade";
        req.realtime_usec = T0 + 2 * USEC_PER_SEC;
        req.base_dir = base.dir;
        capture_now(w, &req, &cur);
        assert_int_equal(cur.error, 0);
        assert_int_equal(cur.n_failed, 0);
        assert_true(cur.paired);
        assert_string_equal(cur.top_goroutine_growth, "main.stuckWorker");
        assert_string_equal(cur.top_suspect, "main.stuckWorker");
        assert_gzip(cur.dir, "goroutine.pb.gz");
        assert_manifest_sums(cur.dir);
        outcome_clear(&base);
        outcome_clear(&cur);
}

/* The kinds taken only when asked for: all served as gzip'ed protobuf, as go tool pprof
 * wants them; the CPU profile after cpu_seconds of sampling. */
static void test_capture_other_kinds(void **state)
{
        struct world *w = *state;
        struct policy_pprof pprof = {.cpu_seconds = 1};
        struct capture_request req = {
                .service = "leaky",
                .event = "manual",
                .realtime_usec = T0,
                .pprof = &pprof,
                .kinds_mask = 1u << PPROF_THREADCREATE | 1u << PPROF_BLOCK | 1u << PPROF_MUTEX |
                              1u << PPROF_PROFILE,
                .cgroup_fd = -1,
                .proc_fd = -1,
        };
        struct outcome o = {};
        struct json_object *m;

        start_leaky(w, "sawtooth", "1MiB");
        pprof.url = w->url;
        capture_now(w, &req, &o);
        assert_int_equal(o.error, 0);
        assert_int_equal(o.n_failed, 0);
        assert_int_equal(o.n_files, 4);
        assert_gzip(o.dir, "threadcreate.pb.gz");
        assert_gzip(o.dir, "block.pb.gz");
        assert_gzip(o.dir, "mutex.pb.gz");
        assert_gzip(o.dir, "profile.pb.gz");
        m = manifest(o.dir);
        assert_string_equal(json_object_get_string(jget(mfile(m, "profile.pb.gz"), "kind")),
                            "pprof-cpu");
        /* No text form, so nothing to analyse. */
        assert_null(mfile(m, "suspects.json"));
        json_object_put(m);
        assert_manifest_sums(o.dir);
        outcome_clear(&o);
}

/* A server that accepts connections (the kernel does) and never answers. */
static int hanging_server(uint16_t *ret_port)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(listen(fd, 16), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
        *ret_port = ntohs(a.sin_port);
        return fd;
}

struct probe {
        const struct outcome *o;
        bool fired;
        bool capture_was_running;
};

static int on_probe(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata)
{
        struct probe *p = userdata;

        p->fired = true;
        p->capture_was_running = !p->o->done;
        return 0;
}

static void test_capture_hanging_endpoint_times_out(void **state)
{
        struct world *w = *state;
        uint16_t port;
        int fd = hanging_server(&port);
        char url[64];
        struct policy_pprof pprof = {.url = url, .timeout_usec = 1 * USEC_PER_SEC};
        struct capture_request req = {
                .service = "stuck",
                .event = "warn",
                .realtime_usec = T0,
                .pprof = &pprof,
                .kinds_mask = 1u << PPROF_HEAP | 1u << PPROF_GOROUTINE,
                .cgroup_fd = -1,
                .proc_fd = -1,
        };
        struct outcome o = {};
        struct probe probe = {.o = &o};
        sd_event_source *timer = NULL;
        struct json_object *m, *errors;

        snprintf(url, sizeof(url), "http://127.0.0.1:%u/debug/pprof/", port);
        /* While the request hangs, the loop goes on serving other sources. */
        assert_int_equal(sd_event_add_time_relative(w->event, &timer, CLOCK_MONOTONIC,
                                                    100 * USEC_PER_MSEC, 0, on_probe, &probe),
                         0);
        capture_now(w, &req, &o);
        assert_true(probe.fired);
        assert_true(probe.capture_was_running);

        assert_int_equal(o.error, 0);
        /* heap.txt timed out; the three other requests were not even tried. */
        assert_int_equal(o.n_failed, 4);
        assert_int_equal(o.n_files, 0);
        m = manifest(o.dir);
        errors = jget(m, "errors");
        assert_int_equal(json_object_array_length(errors), 4);
        assert_string_equal(
                json_object_get_string(jget(json_object_array_get_idx(errors, 0), "what")),
                "heap.txt");
        assert_string_equal(
                json_object_get_string(jget(json_object_array_get_idx(errors, 0), "error")),
                "timed out after 1s");
        assert_non_null(
                strstr(json_object_get_string(jget(json_object_array_get_idx(errors, 1), "error")),
                       "skipped: "));
        json_object_put(m);
        sd_event_source_disable_unref(timer);
        close(fd);
        outcome_clear(&o);
}

static void test_capture_oversized_response_is_cut(void **state)
{
        struct world *w = *state;
        struct policy_pprof pprof = {.max_bytes = 1024};
        struct capture_request req = {
                .service = "leaky",
                .event = "manual",
                .realtime_usec = T0,
                .pprof = &pprof,
                .kinds_mask = 1u << PPROF_GOROUTINE,
                .cgroup_fd = -1,
                .proc_fd = -1,
        };
        struct outcome o = {};
        struct json_object *m, *e, *files, *errors;

        start_leaky(w, "idle", "1MiB");
        pprof.url = w->url;
        capture_now(w, &req, &o);
        assert_int_equal(o.error, 0);

        /*
         * Both goroutine profiles of the idle service are a few KiB: each was refused at
         * the cap, nothing past it reached the disk, and the manifest says why.
         */
        assert_int_equal(o.n_failed, 2);
        m = manifest(o.dir);
        files = jget(m, "files");
        for (size_t i = 0; i < json_object_array_length(files); i++) {
                e = json_object_array_get_idx(files, i);
                assert_true(json_object_get_uint64(jget(e, "size")) <= 1024);
        }
        assert_null(mfile(m, "goroutine.txt"));
        errors = jget(m, "errors");
        assert_int_equal(json_object_array_length(errors), 2);
        e = json_object_array_get_idx(errors, 0);
        assert_string_equal(json_object_get_string(jget(e, "what")), "goroutine.txt");
        assert_string_equal(json_object_get_string(jget(e, "error")),
                            "cut at the size cap of 1024 bytes");
        json_object_put(m);
        outcome_clear(&o);
}

static void test_capture_collectors(void **state)
{
        struct world *w = *state;
        char *sleep_argv[] = {(char *)"sleep", (char *)"30", NULL};
        char *echo_argv[] = {(char *)"echo", (char *)"{service}", (char *)"{pid}", (char *)"{dir}",
                             NULL};
        char *missing_argv[] = {(char *)"no-such-program-memgov", NULL};
        const struct policy_collector collectors[] = {
                {.argv = sleep_argv, .timeout_usec = 300 * USEC_PER_MSEC},
                {.argv = echo_argv, .per_process = true, .timeout_usec = 10 * USEC_PER_SEC},
                {.argv = missing_argv},
        };
        struct capture_request req = {
                .service = "svc",
                .event = "critical",
                .realtime_usec = T0,
                .collectors = collectors,
                .n_collectors = ELEMENTSOF(collectors),
                .cgroup_fd = w->cgroup_fd,
                .cgroup_path = w->cgroup,
                .proc_fd = w->proc_fd,
        };
        struct outcome o = {};
        struct json_object *m, *e, *errors;
        _cleanup_free_ char *procs = NULL, *out = NULL, *expect = NULL, *out_name = NULL;
        const char *slash;
        size_t n;

        assert_true(asprintf(&procs, "%d\n", (int)getpid()) > 0);
        assert_int_equal(cgfs_write_create_at(w->cgroup_fd, "cgroup.procs", procs), 0);

        capture_now(w, &req, &o);
        assert_int_equal(o.error, 0);
        assert_int_equal(o.n_failed, 2);

        m = manifest(o.dir);
        /* sleep 30 was killed at 300 ms: its output is partial and says why. */
        e = mfile(m, "collector0-sleep.stdout.partial");
        assert_non_null(e);
        assert_string_equal(json_object_get_string(jget(e, "error")),
                            "killed at its deadline of 300ms");
        /* echo ran once per pid with the placeholders filled in; {dir} was the temporary
         * directory of the dump being written. */
        assert_true(asprintf(&out_name, "collector1-echo.%d.stdout", (int)getpid()) > 0);
        assert_non_null(mfile(m, out_name));
        out = read_file(o.dir, out_name, &n);
        slash = strrchr(o.dir, '/');
        assert_true(asprintf(&expect, "svc %d %.*s/.%s.tmp\n", (int)getpid(), (int)(slash - o.dir),
                             o.dir, slash + 1) > 0);
        assert_string_equal(out, expect);
        errors = jget(m, "errors");
        assert_int_equal(json_object_array_length(errors), 2);
        json_object_put(m);
        assert_manifest_sums(o.dir);

        /* Nothing left running or unreaped. */
        errno = 0;
        assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
        assert_int_equal(errno, ECHILD);
        outcome_clear(&o);
}

static int tiny_disk(int fd _unused_, struct statvfs *ret, void *userdata _unused_)
{
        *ret = (struct statvfs){.f_frsize = 4096, .f_blocks = 1 << 20, .f_bavail = 1 << 10};
        return 0;
}

static void test_capture_refused_below_floor(void **state)
{
        struct world *w = *state;
        struct policy_pprof pprof = {.url = (char *)"http://127.0.0.1:1/debug/pprof"};
        struct capture_request req = {
                .service = "svc",
                .event = "warn",
                .realtime_usec = T0,
                .pprof = &pprof,
                .kinds_mask = 1u << PPROF_HEAP,
                .cgroup_fd = -1,
                .proc_fd = -1,
        };
        struct outcome o = {.event = w->event};
        struct capture *c = NULL;
        char **names = NULL;

        dump_store_set_statvfs(w->store, tiny_disk, NULL);
        assert_int_equal(capture_start(w->event, w->http, w->store, &req, on_done, &o, &c),
                         -ENOSPC);
        assert_null(c);
        assert_int_equal(sd_event_run(w->event, 0), 0);
        assert_false(o.done);
        assert_int_equal(dump_store_list(w->store, "svc", &names), 0);
        strv_free(names);
}

/* A capture cancelled mid-way leaves no dump, no child and no callback. */
static void test_capture_cancel(void **state)
{
        struct world *w = *state;
        char *sleep_argv[] = {(char *)"sleep", (char *)"30", NULL};
        const struct policy_collector collectors[] = {{.argv = sleep_argv}};
        struct capture_request req = {
                .service = "svc",
                .event = "warn",
                .realtime_usec = T0,
                .collectors = collectors,
                .n_collectors = 1,
                .cgroup_fd = -1,
                .proc_fd = -1,
        };
        struct outcome o = {.event = w->event};
        struct capture *c = NULL;
        _cleanup_free_ char *tmp = NULL;
        char **names = NULL;

        assert_int_equal(capture_start(w->event, w->http, w->store, &req, on_done, &o, &c), 0);
        tmp = strdup(capture_dump_dir(c));
        assert_int_equal(access(tmp, F_OK), 0);
        assert_true(sd_event_run(w->event, 10 * USEC_PER_MSEC) >= 0);
        c = capture_cancel(c);
        assert_false(o.done);
        assert_int_equal(access(tmp, F_OK), -1);
        assert_int_equal(dump_store_list(w->store, "svc", &names), 0);
        strv_free(names);
        errno = 0;
        assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
        assert_int_equal(errno, ECHILD);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_capture_limiter_cooldown_and_hourly_cap),
                cmocka_unit_test(test_capture_pair_roles),
                cmocka_unit_test(test_capture_expand_argv),
                cmocka_unit_test_setup_teardown(test_capture_leaky_heap_pair, setup, teardown),
                cmocka_unit_test_setup_teardown(test_capture_leaky_goroutine_pair, setup, teardown),
                cmocka_unit_test_setup_teardown(test_capture_other_kinds, setup, teardown),
                cmocka_unit_test_setup_teardown(test_capture_hanging_endpoint_times_out, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_capture_oversized_response_is_cut, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_capture_collectors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_capture_refused_below_floor, setup, teardown),
                cmocka_unit_test_setup_teardown(test_capture_cancel, setup, teardown),
        };

        log_set_max_level(LOG_ERR);
        return cmocka_run_group_tests(tests, NULL, NULL);
}

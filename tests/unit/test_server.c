/* SPDX-License-Identifier: MIT */
/*
 * Export: the HTTP server on a real sd-event loop, with fake handlers in place of the
 * daemon. A client thread (libcurl, blocking) or a memgovctl child process asks what a
 * scraper or an operator would ask; the loop runs in the test's own thread, as in memgovd.
 * Asserted: statuses, content types and bodies as the client sees them, which route may
 * be used over which listener, socket files, and a reload that moves the listeners while
 * its own answer is still on its way. Longer than most test files: the fake daemon, the
 * client thread and the memgovctl runner are the harness every test here shares.
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "memgov/metrics.h"
#include "memgov/server.h"
#include "memgov/status.h"

/* ---- Fake daemon ---------------------------------------------------------------------- */

struct fake {
        struct server *server; /* for the reload handler that reconfigures */
        int metrics_result;
        int dump_result;
        int reload_result;
        const char *reply; /* the handlers' message; NULL: none */
        int n_metrics, n_status, n_dump, n_reload;
        char last_service[64];
        struct server_config reconfigure; /* applied by reload when socket_path or listen set */
        int reconfigure_result;
};

static int fake_metrics(void *userdata, FILE *out)
{
        struct fake *f = userdata;
        struct promtext p;

        f->n_metrics++;
        if (f->metrics_result < 0)
                return f->metrics_result;
        promtext_init(&p, out);
        metrics_family(&p, METRIC_LEVEL);
        promtext_sample(&p,
                        PROMTEXT_LABELS({"service", "checkout"}, {"cgroup", "checkout.service"}),
                        LEVEL_WARN);
        metrics_family(&p, METRIC_MEMORY_CURRENT_BYTES);
        promtext_sample_u64(
                &p, PROMTEXT_LABELS({"service", "checkout"}, {"cgroup", "checkout.service"}),
                851443712);
        return promtext_finish(&p);
}

static int fake_status(void *userdata, FILE *out)
{
        struct fake *f = userdata;
        struct status_daemon d = {
                .version = "9.9.9",
                .pid = 77,
                .uptime_usec = 65 * USEC_PER_SEC,
                .cgroup_root = "/sys/fs/cgroup",
                .policy_dir = "/etc/memgov/policies.d",
                .state_dir = "/var/lib/memgov",
                .n_policies = 1,
        };
        struct status_instance i;

        f->n_status++;
        status_instance_init(&i);
        i.service = "checkout";
        i.cgroup = "system.slice/checkout.service";
        i.level = LEVEL_DEGRADE;
        i.n_samples = 12;
        i.last_sample_age_usec = 0;
        i.current_bytes = 851443712;
        i.limit_bytes = 1073741824;
        i.max_bytes = 1073741824;
        i.forecast_known = true;
        i.eta_usec = 150 * USEC_PER_SEC;
        i.last_event = (struct status_event){.event = EVENT_DEGRADE, .age_usec = 5 * USEC_PER_SEC};
        return status_write_json(out, &d, &i, 1);
}

static int fake_dump(void *userdata, const char *service, char **ret_msg)
{
        struct fake *f = userdata;

        f->n_dump++;
        snprintf(f->last_service, sizeof(f->last_service), "%s", service);
        if (f->reply)
                *ret_msg = strdup(f->reply);
        return f->dump_result;
}

static int fake_reload(void *userdata, char **ret_msg)
{
        struct fake *f = userdata;

        f->n_reload++;
        if (f->reconfigure.socket_path || f->reconfigure.listen)
                f->reconfigure_result = server_reconfigure(f->server, &f->reconfigure);
        if (f->reply)
                *ret_msg = strdup(f->reply);
        return f->reload_result;
}

static const struct server_handlers all_handlers = {
        .metrics = fake_metrics,
        .status = fake_status,
        .dump = fake_dump,
        .reload = fake_reload,
};

/* ---- Fixture -------------------------------------------------------------------------- */

struct fixture {
        char dir[64];
        char socket[128];
        sd_event *event;
        struct fake fake;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        strcpy(f->dir, "/tmp/memgov-server-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        /* run/ does not exist yet: the server creates the socket's directory. */
        snprintf(f->socket, sizeof(f->socket), "%s/run/memgovd.sock", f->dir);
        assert_int_equal(sd_event_new(&f->event), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        char path[256];

        sd_event_unref(f->event);
        snprintf(path, sizeof(path), "%s/run", f->dir);
        (void)unlink(f->socket);
        (void)rmdir(path);
        (void)rmdir(f->dir);
        free(f);
        return 0;
}

static struct server *start(struct fixture *f, const struct server_config *cfg,
                            const struct server_handlers *h)
{
        struct server_handlers handlers = *h;
        struct server *s = NULL;

        handlers.userdata = &f->fake;
        assert_int_equal(server_new(f->event, cfg, &handlers, &s), 0);
        f->fake.server = s;
        return s;
}

static uint64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- Client thread -------------------------------------------------------------------- */

struct call {
        const char *method;
        const char *socket; /* Unix socket path, or NULL for TCP */
        uint16_t port;      /* with socket NULL */
        const char *host;   /* with socket NULL; default 127.0.0.1 */
        const char *path;
        size_t body_bytes; /* a body of that many 'x' */
        bool expect;       /* send "Expect: 100-continue": the body waits for the server */
        /* Results. */
        int curl_code;
        long status;
        char *content_type;
        char *allow;
        char *body;
        size_t body_size;
};

static void call_clear(struct call *c)
{
        free(c->content_type);
        free(c->allow);
        free(c->body);
}

static size_t on_body(char *data, size_t size, size_t n, void *userdata)
{
        struct call *c = userdata;
        char *b = realloc(c->body, c->body_size + size * n + 1);

        if (!b)
                return 0;
        memcpy(b + c->body_size, data, size * n);
        c->body_size += size * n;
        b[c->body_size] = '\0';
        c->body = b;
        return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *userdata)
{
        struct call *c = userdata;
        size_t len = size * n;

        if (len > 7 && strncasecmp(data, "Allow: ", 7) == 0)
                c->allow = strndup(data + 7, strcspn(data + 7, "\r\n"));
        return len;
}

static void call_perform(struct call *c)
{
        CURL *e = curl_easy_init();
        char url[256];
        struct curl_slist *headers = NULL;
        char *body = NULL;
        char *ct = NULL;

        if (!e) {
                c->curl_code = -1;
                return;
        }
        if (c->socket) {
                snprintf(url, sizeof(url), "http://localhost%s", c->path);
                curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, c->socket);
        } else
                snprintf(url, sizeof(url), "http://%s:%u%s", c->host ? c->host : "127.0.0.1",
                         c->port, c->path);
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT, 15L);
        curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
        curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
        if (strcmp(c->method, "HEAD") == 0)
                curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        else if (strcmp(c->method, "POST") == 0) {
                body = malloc(c->body_bytes + 1);
                memset(body, 'x', c->body_bytes);
                curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)c->body_bytes);
        } else if (strcmp(c->method, "GET") != 0)
                curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c->method);
        if (c->expect) {
                headers = curl_slist_append(NULL, "Expect: 100-continue");
                curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
        }
        c->curl_code = (int)curl_easy_perform(e);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &c->status);
        if (curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
                c->content_type = strdup(ct);
        curl_easy_cleanup(e);
        curl_slist_free_all(headers);
        free(body);
}

struct client {
        struct call *calls;
        size_t n;
        atomic_bool done;
};

static void *client_thread(void *userdata)
{
        struct client *cl = userdata;

        for (size_t i = 0; i < cl->n; i++)
                call_perform(&cl->calls[i]);
        atomic_store(&cl->done, true);
        return NULL;
}

/* Make the calls one after another from a thread while the loop serves them here. */
static void run_calls(struct fixture *f, struct call *calls, size_t n)
{
        struct client cl = {.calls = calls, .n = n};
        uint64_t deadline = now_ms() + 30000;
        pthread_t t;

        atomic_init(&cl.done, false);
        assert_int_equal(pthread_create(&t, NULL, client_thread, &cl), 0);
        while (!atomic_load(&cl.done) && now_ms() < deadline)
                assert_true(sd_event_run(f->event, 20 * USEC_PER_MSEC) >= 0);
        assert_true(atomic_load(&cl.done));
        assert_int_equal(pthread_join(t, NULL), 0);
}

static void run_call(struct fixture *f, struct call *c)
{
        run_calls(f, c, 1);
}

/* The {"ok":…} answer of a call: asserts its shape, returns its text (static until next). */
static const char *answer_text(const struct call *c, bool want_ok)
{
        static char *text;
        bool ok;

        free(text);
        text = NULL;
        assert_non_null(c->content_type);
        assert_string_equal(c->content_type, "application/json");
        assert_non_null(c->body);
        assert_int_equal(status_parse_message(c->body, c->body_size, &ok, &text), 0);
        assert_true(ok == want_ok);
        return text;
}

/* ---- Tests ---------------------------------------------------------------------------- */

static void test_server_unix_socket_serves_metrics_and_status(void **state)
{
        struct fixture *f = *state;
        _cleanup_(server_freep) struct server *s =
                start(f, &(struct server_config){.socket_path = f->socket}, &all_handlers);
        struct call calls[] = {
                {.method = "GET", .socket = f->socket, .path = "/metrics"},
                {.method = "GET", .socket = f->socket, .path = "/v1/status"},
                {.method = "HEAD", .socket = f->socket, .path = "/metrics"},
        };
        _cleanup_(status_doc_freep) struct status_doc *doc = NULL;
        struct stat st;

        assert_int_equal(stat(f->socket, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0660);
        assert_int_equal(server_get_tcp_port(s), 0);

        run_calls(f, calls, ELEMENTSOF(calls));

        assert_int_equal(calls[0].curl_code, CURLE_OK);
        assert_int_equal(calls[0].status, 200);
        assert_string_equal(calls[0].content_type, "text/plain; version=0.0.4; charset=utf-8");
        assert_string_equal(
                calls[0].body,
                "# HELP memgov_level Level: 0 ok, 1 warn, 2 degrade, 3 critical.\n"
                "# TYPE memgov_level gauge\n"
                "memgov_level{service=\"checkout\",cgroup=\"checkout.service\"} 1\n"
                "# HELP memgov_memory_current_bytes memory.current of the cgroup at the last "
                "sample.\n"
                "# TYPE memgov_memory_current_bytes gauge\n"
                "memgov_memory_current_bytes{service=\"checkout\",cgroup=\"checkout.service\"} "
                "851443712\n");

        assert_int_equal(calls[1].status, 200);
        assert_string_equal(calls[1].content_type, "application/json");
        assert_int_equal(status_parse_json(calls[1].body, calls[1].body_size, &doc, NULL), 0);
        assert_int_equal(doc->n_instances, 1);
        assert_string_equal(doc->instances[0].service, "checkout");
        assert_int_equal(doc->instances[0].level, LEVEL_DEGRADE);
        assert_int_equal(doc->daemon.pid, 77);

        /* HEAD: the headers of GET, no body. */
        assert_int_equal(calls[2].status, 200);
        assert_string_equal(calls[2].content_type, "text/plain; version=0.0.4; charset=utf-8");
        assert_int_equal(calls[2].body_size, 0);

        assert_int_equal(f->fake.n_metrics, 2);
        assert_int_equal(f->fake.n_status, 1);
        assert_int_equal(server_get_n_requests(s), 3);
        for (size_t i = 0; i < ELEMENTSOF(calls); i++)
                call_clear(&calls[i]);

        /* Stopping removes the socket file. */
        s = server_free(s);
        assert_int_equal(lstat(f->socket, &st), -1);
        assert_int_equal(errno, ENOENT);
}

static void test_server_tcp_serves_reads_and_refuses_control(void **state)
{
        struct fixture *f = *state;
        _cleanup_(server_freep) struct server *s =
                start(f, &(struct server_config){.socket_path = f->socket, .listen = "127.0.0.1:0"},
                      &all_handlers);
        uint16_t port = server_get_tcp_port(s);
        struct call calls[] = {
                {.method = "GET", .port = port, .path = "/metrics"},
                {.method = "GET", .port = port, .path = "/v1/status"},
                {.method = "POST", .port = port, .path = "/v1/reload"},
                {.method = "POST", .port = port, .path = "/v1/dump/checkout"},
        };

        assert_true(port > 0);
        run_calls(f, calls, ELEMENTSOF(calls));
        assert_int_equal(calls[0].status, 200);
        assert_string_equal(calls[0].content_type, "text/plain; version=0.0.4; charset=utf-8");
        assert_non_null(strstr(calls[0].body, "memgov_memory_current_bytes{"));
        assert_int_equal(calls[1].status, 200);
        for (size_t i = 2; i < 4; i++) {
                assert_int_equal(calls[i].status, 403);
                assert_non_null(strstr(answer_text(&calls[i], false), "Unix socket only"));
        }
        /* Refused before any handler ran. */
        assert_int_equal(f->fake.n_reload, 0);
        assert_int_equal(f->fake.n_dump, 0);
        for (size_t i = 0; i < ELEMENTSOF(calls); i++)
                call_clear(&calls[i]);
}

static void test_server_post_routes_map_handler_results(void **state)
{
        struct fixture *f = *state;
        _cleanup_(server_freep) struct server *s =
                start(f, &(struct server_config){.socket_path = f->socket}, &all_handlers);
        static const struct {
                const char *path;
                int result;
                const char *reply;
                long status;
                const char *text;
        } rows[] = {
                {"/v1/dump/checkout", 0, "capturing into /var/lib/memgov/dumps/checkout", 202,
                 "capturing into /var/lib/memgov/dumps/checkout"},
                {"/v1/dump/checkout", 0, NULL, 202, "done"},
                {"/v1/dump/nosuch", -ENOENT, "no policy has service nosuch", 404,
                 "no policy has service nosuch"},
                {"/v1/dump/checkout", -EBUSY, NULL, 409, "Device or resource busy"},
                {"/v1/dump/checkout", -EAGAIN, "at most 20 captures an hour", 429,
                 "at most 20 captures an hour"},
                {"/v1/dump/checkout", -EIO, NULL, 500, "Input/output error"},
                {"/v1/reload", 0, "3 policies, 1 new", 200, "3 policies, 1 new"},
                {"/v1/reload", -EINVAL, "a.json: .levels: unknown key", 422,
                 "a.json: .levels: unknown key"},
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                struct call c = {.method = "POST", .socket = f->socket, .path = rows[i].path};
                bool dump = strncmp(rows[i].path, "/v1/dump/", 9) == 0;

                f->fake.dump_result = f->fake.reload_result = rows[i].result;
                f->fake.reply = rows[i].reply;
                run_call(f, &c);
                if (c.status != rows[i].status) {
                        print_error("row %zu: status %ld, want %ld\n", i, c.status, rows[i].status);
                        fail();
                }
                assert_string_equal(answer_text(&c, rows[i].status < 300), rows[i].text);
                if (dump)
                        assert_string_equal(f->fake.last_service, rows[i].path + 9);
                call_clear(&c);
        }
        assert_int_equal(f->fake.n_dump, 6);
        assert_int_equal(f->fake.n_reload, 2);
}

static void test_server_bad_requests(void **state)
{
        struct fixture *f = *state;
        _cleanup_(server_freep) struct server *s =
                start(f, &(struct server_config){.socket_path = f->socket}, &all_handlers);
        struct {
                struct call c;
                long status;
                const char *allow;
                const char *text;
        } rows[] = {
                {{.method = "GET", .path = "/"}, 404, NULL, "no such endpoint"},
                {{.method = "GET", .path = "/metrics/"}, 404, NULL, "no such endpoint"},
                {{.method = "GET", .path = "/v2/status"}, 404, NULL, "no such endpoint"},
                {{.method = "POST", .path = "/metrics"}, 405, "GET, HEAD", "GET and HEAD"},
                {{.method = "DELETE", .path = "/v1/status"}, 405, "GET, HEAD", "GET and HEAD"},
                {{.method = "GET", .path = "/v1/reload"}, 405, "POST", "answers POST"},
                {{.method = "GET", .path = "/v1/dump/checkout"}, 405, "POST", "answers POST"},
                {{.method = "POST", .path = "/v1/dump/"}, 400, NULL, "expected /v1/dump/SERVICE"},
                {{.method = "POST", .path = "/v1/dump/.."}, 400, NULL, "expected /v1/dump/SERVICE"},
                {{.method = "POST", .path = "/v1/dump/a/b"},
                 400,
                 NULL,
                 "expected /v1/dump/SERVICE"},
                {{.method = "POST", .path = "/v1/dump/a%2Fb"},
                 400,
                 NULL,
                 "expected /v1/dump/SERVICE"},
                {{.method = "POST", .path = "/v1/dump/a%00b"},
                 400,
                 NULL,
                 "expected /v1/dump/SERVICE"},
                /* Refused from its Content-Length, before the body is sent. */
                {{.method = "POST",
                  .path = "/v1/reload",
                  .body_bytes = SERVER_MAX_BODY_BYTES + 1,
                  .expect = true},
                 413,
                 NULL,
                 "too large"},
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                struct call *c = &rows[i].c;

                c->socket = f->socket;
                run_call(f, c);
                if (c->curl_code != CURLE_OK || c->status != rows[i].status) {
                        print_error("row %zu (%s %s): curl %d, status %ld, want %ld\n", i,
                                    c->method, c->path, c->curl_code, c->status, rows[i].status);
                        fail();
                }
                assert_non_null(strstr(answer_text(c, false), rows[i].text));
                if (rows[i].allow) {
                        assert_non_null(c->allow);
                        assert_string_equal(c->allow, rows[i].allow);
                }
                call_clear(c);
        }
        assert_int_equal(f->fake.n_dump, 0);
        assert_int_equal(f->fake.n_reload, 0);

        /* A body within the limit is fine (and ignored). */
        struct call ok = {
                .method = "POST", .socket = f->socket, .path = "/v1/reload", .body_bytes = 1000};
        run_call(f, &ok);
        assert_int_equal(ok.status, 200);
        assert_int_equal(f->fake.n_reload, 1);
        call_clear(&ok);
}

static void test_server_stalled_client_does_not_hold_up_others(void **state)
{
        struct fixture *f = *state;
        _cleanup_(server_freep) struct server *s =
                start(f, &(struct server_config){.socket_path = f->socket}, &all_handlers);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        static const char partial[] = "GET /metrics HTTP/1.1\r\nHost: loc";
        struct call c = {.method = "GET", .socket = f->socket, .path = "/v1/status"};
        int fd;

        /* Half a request, then silence: the loop must go on serving. */
        strcpy(sa.sun_path, f->socket);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(write(fd, partial, strlen(partial)), (ssize_t)strlen(partial));
        for (int i = 0; i < 5; i++)
                assert_true(sd_event_run(f->event, 10 * USEC_PER_MSEC) >= 0);

        run_call(f, &c);
        assert_int_equal(c.status, 200);
        assert_int_equal(f->fake.n_status, 1);
        assert_int_equal(f->fake.n_metrics, 0);
        call_clear(&c);
        close(fd);
}

static void test_server_handler_failures(void **state)
{
        struct fixture *f = *state;
        _cleanup_(server_freep) struct server *s = start(
                f, &(struct server_config){.socket_path = f->socket},
                &(struct server_handlers){.metrics = fake_metrics}); /* no status, dump, reload */
        struct call calls[] = {
                {.method = "GET", .socket = f->socket, .path = "/metrics"},
                {.method = "GET", .socket = f->socket, .path = "/v1/status"},
                {.method = "POST", .socket = f->socket, .path = "/v1/dump/checkout"},
                {.method = "POST", .socket = f->socket, .path = "/v1/reload"},
        };

        f->fake.metrics_result = -EIO;
        run_calls(f, calls, ELEMENTSOF(calls));
        assert_int_equal(calls[0].status, 500);
        assert_string_equal(answer_text(&calls[0], false), "Input/output error");
        for (size_t i = 1; i < ELEMENTSOF(calls); i++) {
                assert_int_equal(calls[i].status, 501);
                assert_non_null(strstr(answer_text(&calls[i], false), "this memgovd"));
        }
        for (size_t i = 0; i < ELEMENTSOF(calls); i++)
                call_clear(&calls[i]);
}

static void test_server_socket_path_cases(void **state)
{
        struct fixture *f = *state;
        const struct server_handlers h = {.metrics = fake_metrics};
        struct server_config cfg = {.socket_path = f->socket};
        struct server *s = NULL, *s2 = NULL;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        char path[256];
        int fd;

        /* A stale socket (its owner died) is replaced. */
        snprintf(path, sizeof(path), "%s/run", f->dir);
        assert_int_equal(mkdir(path, 0755), 0);
        strcpy(sa.sun_path, f->socket);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        close(fd);
        assert_int_equal(server_new(f->event, &cfg, &h, &s), 0);

        /* A live one is not taken over. */
        assert_int_equal(server_new(f->event, &cfg, &h, &s2), -EADDRINUSE);
        assert_null(s2);
        s = server_free(s);

        /* A file that is not a socket is never removed. */
        fd = open(f->socket, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(server_new(f->event, &cfg, &h, &s), -EEXIST);
        assert_int_equal(access(f->socket, F_OK), 0);
        assert_int_equal(unlink(f->socket), 0);

        /* Mode as configured, not as the umask says. */
        cfg.socket_mode = 0600;
        assert_int_equal(server_new(f->event, &cfg, &h, &s), 0);
        struct stat st;
        assert_int_equal(stat(f->socket, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        s = server_free(s);

        /* Too long for sockaddr_un; bad listen addresses; nothing to listen on. */
        char long_path[200];
        memset(long_path, 'a', sizeof(long_path) - 1);
        long_path[0] = '/';
        long_path[sizeof(long_path) - 1] = '\0';
        assert_int_equal(
                server_new(f->event, &(struct server_config){.socket_path = long_path}, &h, &s),
                -ENAMETOOLONG);
        static const char *const bad_listen[] = {
                "localhost:9464", "127.0.0.1", "127.0.0.1:", "127.0.0.1:99999",
                "[::1:9464",      "::1:9464",  ":9464",      "1.2.3.4:94x",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_listen); i++) {
                cfg = (struct server_config){.socket_path = f->socket, .listen = bad_listen[i]};
                if (server_new(f->event, &cfg, &h, &s) != -EINVAL) {
                        print_error("listen \"%s\" was accepted\n", bad_listen[i]);
                        fail();
                }
                /* And no socket file was left behind. */
                assert_int_equal(access(f->socket, F_OK), -1);
        }
        assert_int_equal(server_new(f->event, &(struct server_config){0}, &h, &s), -EINVAL);
        assert_null(s);
}

static void test_server_reload_moves_listeners_and_still_answers(void **state)
{
        struct fixture *f = *state;
        _cleanup_(server_freep) struct server *s =
                start(f, &(struct server_config){.socket_path = f->socket, .listen = "127.0.0.1:0"},
                      &all_handlers);
        uint16_t old_port = server_get_tcp_port(s), new_port;
        char new_socket[160];
        struct stat st;

        snprintf(new_socket, sizeof(new_socket), "%s/run/other.sock", f->dir);
        /* The reload asks for another socket and another TCP address. */
        f->fake.reconfigure =
                (struct server_config){.socket_path = new_socket, .listen = "127.0.0.2:0"};
        f->fake.reply = "reloaded";
        struct call reload = {.method = "POST", .socket = f->socket, .path = "/v1/reload"};
        run_call(f, &reload);

        /* Its answer came back over the old socket, which drained rather than dropped it. */
        assert_int_equal(reload.curl_code, CURLE_OK);
        assert_int_equal(reload.status, 200);
        assert_string_equal(answer_text(&reload, true), "reloaded");
        assert_int_equal(f->fake.reconfigure_result, 0);
        call_clear(&reload);

        new_port = server_get_tcp_port(s);
        assert_true(new_port > 0);
        assert_int_equal(lstat(f->socket, &st), -1);
        assert_int_equal(stat(new_socket, &st), 0);

        struct call after[] = {
                {.method = "GET", .socket = new_socket, .path = "/metrics"},
                {.method = "GET", .host = "127.0.0.2", .port = new_port, .path = "/metrics"},
                {.method = "GET", .port = old_port, .path = "/metrics"},
                {.method = "GET", .socket = f->socket, .path = "/metrics"},
        };
        run_calls(f, after, ELEMENTSOF(after));
        assert_int_equal(after[0].status, 200);
        assert_int_equal(after[1].status, 200);
        assert_int_equal(after[2].curl_code, CURLE_COULDNT_CONNECT);
        assert_int_equal(after[3].curl_code, CURLE_COULDNT_CONNECT);
        for (size_t i = 0; i < ELEMENTSOF(after); i++)
                call_clear(&after[i]);

        /* A reload whose new address cannot be bound keeps the old listener. */
        f->fake.reconfigure =
                (struct server_config){.socket_path = new_socket, .listen = "192.0.2.1:1"};
        struct call failed = {.method = "POST", .socket = new_socket, .path = "/v1/reload"};
        run_call(f, &failed);
        assert_int_equal(failed.status, 200);
        assert_int_equal(f->fake.reconfigure_result, -EADDRNOTAVAIL);
        assert_int_equal(server_get_tcp_port(s), new_port);
        call_clear(&failed);

        s = server_free(s);
        assert_int_equal(lstat(new_socket, &st), -1);
}

/* ---- memgovctl against the server ----------------------------------------------------- */

struct ctl_run {
        int status; /* exit status */
        char out[8192];
        char err[4096];
};

static void read_all(int fd, char *buf, size_t size)
{
        size_t n = 0;
        ssize_t k;

        while (n + 1 < size && (k = read(fd, buf + n, size - 1 - n)) > 0)
                n += (size_t)k;
        buf[n] = '\0';
}

/* Run memgovctl ARGS... while the loop serves; skip the test if it is not built. */
static void run_ctl(struct fixture *f, struct ctl_run *ret, const char *const *args)
{
        char bin[512];
        const char *argv[16] = {"memgovctl"};
        int out[2], err[2], status;
        uint64_t deadline = now_ms() + 30000;
        pid_t pid;
        size_t n = 1;

        snprintf(bin, sizeof(bin), "%s/memgovctl", MEMGOV_BINARY_DIR);
        if (access(bin, X_OK) < 0)
                skip();
        for (; args[n - 1] && n < ELEMENTSOF(argv) - 1; n++)
                argv[n] = args[n - 1];
        argv[n] = NULL;
        assert_int_equal(pipe2(out, O_CLOEXEC), 0);
        assert_int_equal(pipe2(err, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                dup2(out[1], STDOUT_FILENO);
                dup2(err[1], STDERR_FILENO);
                execv(bin, (char *const *)argv);
                _exit(127);
        }
        close(out[1]);
        close(err[1]);
        for (;;) {
                pid_t w = waitpid(pid, &status, WNOHANG);
                assert_true(w >= 0);
                if (w == pid)
                        break;
                assert_true(now_ms() < deadline);
                assert_true(sd_event_run(f->event, 20 * USEC_PER_MSEC) >= 0);
        }
        read_all(out[0], ret->out, sizeof(ret->out));
        read_all(err[0], ret->err, sizeof(ret->err));
        close(out[0]);
        close(err[0]);
        ret->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void test_server_memgovctl_status_dump_reload(void **state)
{
        struct fixture *f = *state;
        _cleanup_(server_freep) struct server *s =
                start(f, &(struct server_config){.socket_path = f->socket}, &all_handlers);
        struct ctl_run r;

        run_ctl(f, &r, (const char *const[]){"status", "--socket", f->socket, NULL});
        assert_int_equal(r.status, 0);
        assert_string_equal(r.out, "memgovd 9.9.9 (pid 77), up 1m05s, 1 policy, 1 cgroup\n"
                                   "\n"
                                   "SERVICE   CGROUP                         USAGE/LIMIT      "
                                   "ETA    LEVEL    MEMORY.HIGH  LAST EVENT      LAST WEBHOOK\n"
                                   "checkout  system.slice/checkout.service  812.0M/1.0G 79%  "
                                   "2m30s  degrade  max          degrade 5s ago  -\n");

        /* --json: the document as the daemon wrote it. */
        run_ctl(f, &r, (const char *const[]){"status", "--json", "--socket", f->socket, NULL});
        assert_int_equal(r.status, 0);
        assert_true(strncmp(r.out, "{\"schema\":1,", 12) == 0);

        f->fake.reply = "capturing checkout";
        run_ctl(f, &r, (const char *const[]){"dump", "checkout", "--socket", f->socket, NULL});
        assert_int_equal(r.status, 0);
        assert_string_equal(r.out, "capturing checkout\n");
        assert_string_equal(f->fake.last_service, "checkout");

        f->fake.dump_result = -ENOENT;
        f->fake.reply = "no policy has service nosuch";
        run_ctl(f, &r, (const char *const[]){"dump", "nosuch", "--socket", f->socket, NULL});
        assert_int_equal(r.status, 1);
        assert_string_equal(r.err, "memgovctl dump: no policy has service nosuch\n");

        f->fake.reload_result = -EINVAL;
        f->fake.reply = "a.json: .levels: unknown key \"wran\"";
        run_ctl(f, &r, (const char *const[]){"reload", "--socket", f->socket, NULL});
        assert_int_equal(r.status, 1);
        assert_string_equal(r.err, "memgovctl reload: a.json: .levels: unknown key \"wran\"\n");
}

static void test_server_memgovctl_without_daemon(void **state)
{
        struct fixture *f = *state;
        struct ctl_run r;
        char path[256];

        /* No socket at all. */
        run_ctl(f, &r, (const char *const[]){"status", "--socket", f->socket, NULL});
        assert_int_equal(r.status, 1);
        char want[512];
        snprintf(want, sizeof(want),
                 "memgovctl status: memgovd is not running (no socket at %s); start it with "
                 "systemctl start memgovd\n",
                 f->socket);
        assert_string_equal(r.err, want);

        /* A socket nobody listens on (a memgovd that died). */
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(path, sizeof(path), "%s/run", f->dir);
        assert_int_equal(mkdir(path, 0755), 0);
        strcpy(sa.sun_path, f->socket);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        close(fd);
        run_ctl(f, &r, (const char *const[]){"reload", "--socket", f->socket, NULL});
        assert_int_equal(r.status, 1);
        snprintf(want, sizeof(want),
                 "memgovctl reload: memgovd is not running (nothing accepts connections on %s); "
                 "start it with systemctl start memgovd\n",
                 f->socket);
        assert_string_equal(r.err, want);

        /* Usage errors. */
        run_ctl(f, &r, (const char *const[]){"dump", NULL});
        assert_int_equal(r.status, 2);
        run_ctl(f, &r, (const char *const[]){"status", "extra", NULL});
        assert_int_equal(r.status, 2);
}

static int group_setup(void **state _unused_)
{
        return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int group_teardown(void **state _unused_)
{
        curl_global_cleanup();
        return 0;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_server_unix_socket_serves_metrics_and_status,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_server_tcp_serves_reads_and_refuses_control,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_server_post_routes_map_handler_results, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_server_bad_requests, setup, teardown),
                cmocka_unit_test_setup_teardown(test_server_stalled_client_does_not_hold_up_others,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_server_handler_failures, setup, teardown),
                cmocka_unit_test_setup_teardown(test_server_socket_path_cases, setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_server_reload_moves_listeners_and_still_answers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_server_memgovctl_status_dump_reload, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_server_memgovctl_without_daemon, setup,
                                                teardown),
        };

        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/* SPDX-License-Identifier: MIT */
/*
 * The HTTP glue against a real server on loopback, driven by a real sd-event loop: what
 * the server receives, what the callback reports, and that a slow or oversized answer
 * neither blocks the loop nor grows without bound.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "memgov/http.h"
#include "loopback-server.h"

struct outcome {
        int n_done;
        int order; /* the value of n_done when this one finished (1-based) */
        int error;
        long status;
        char *retry_after;
        char *content_type;
        char *body;
        size_t body_size;
        uint64_t bytes_received;
        bool had_body;
};

struct fixture {
        sd_event *event;
        struct http_client *client;
        int n_done; /* shared by every outcome of a test */
};

static void outcome_clear(struct outcome *o)
{
        free(o->retry_after);
        free(o->content_type);
        free(o->body);
        *o = (struct outcome){0};
}

struct pending {
        struct fixture *f;
        struct outcome *o;
};

static void on_done(struct http_request *req _unused_, struct http_result *r, void *userdata)
{
        struct pending *p = userdata;
        struct outcome *o = p->o;

        o->order = ++p->f->n_done;
        o->n_done++;
        o->error = r->error;
        o->status = r->status;
        o->retry_after = r->retry_after ? strdup(r->retry_after) : NULL;
        o->content_type = r->content_type ? strdup(r->content_type) : NULL;
        o->had_body = r->body != NULL;
        o->body = TAKE_PTR(r->body);
        o->body_size = r->body_size;
        o->bytes_received = r->bytes_received;
}

/* Run the loop until n callbacks have run in this test, within 15 s; 0 or -ETIMEDOUT. */
static int run_until(struct fixture *f, int n)
{
        uint64_t deadline = ls_now_ms() + 15000;

        while (f->n_done < n) {
                if (ls_now_ms() >= deadline)
                        return -ETIMEDOUT;
                if (sd_event_run(f->event, 100 * USEC_PER_MSEC) < 0)
                        return -EIO;
        }
        return 0;
}

/* Run the loop until the server has seen n requests, within 15 s; 0 or -ETIMEDOUT. */
static int run_until_received(struct fixture *f, struct ls_server *s, size_t n)
{
        uint64_t deadline = ls_now_ms() + 15000;

        while (ls_n_requests(s) < n) {
                if (ls_now_ms() >= deadline)
                        return -ETIMEDOUT;
                if (sd_event_run(f->event, 20 * USEC_PER_MSEC) < 0)
                        return -EIO;
        }
        return 0;
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        assert_int_equal(sd_event_new(&f->event), 0);
        assert_int_equal(http_client_new(f->event, &f->client), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        http_client_free(f->client);
        sd_event_unref(f->event);
        free(f);
        return 0;
}

static void start(struct fixture *f, const struct http_request_opts *opts, struct pending *p,
                  struct outcome *o, struct http_request **ret)
{
        *p = (struct pending){.f = f, .o = o};
        assert_int_equal(http_request_start(f->client, opts, on_done, p, ret), 0);
}

static void test_http_get_returns_status_headers_and_body(void **state)
{
        struct fixture *f = *state;
        static const struct ls_response script[] = {
                {.status = 200, .headers = "Content-Type: text/plain\r\n", .body = "hello"},
        };
        const char *headers[] = {"X-Probe: 42", NULL};
        struct ls_server s;
        struct outcome o = {0};
        struct pending p;
        char url[128], buf[128];

        assert_int_equal(ls_start(&s, script, ELEMENTSOF(script)), 0);
        snprintf(url, sizeof(url), "%s/debug/pprof/heap", s.url);
        start(f, &(struct http_request_opts){.url = url, .headers = headers}, &p, &o, NULL);
        assert_int_equal(http_client_n_running(f->client), 1);
        assert_int_equal(run_until(f, 1), 0);

        assert_int_equal(o.error, 0);
        assert_int_equal(o.status, 200);
        assert_string_equal(o.content_type, "text/plain");
        assert_null(o.retry_after);
        assert_int_equal(o.body_size, 5);
        assert_string_equal(o.body, "hello");
        assert_int_equal(http_client_n_running(f->client), 0);

        ls_stop(&s);
        assert_int_equal(s.n_requests, 1);
        assert_string_equal(s.requests[0].method, "GET");
        assert_string_equal(s.requests[0].path, "/debug/pprof/heap");
        assert_string_equal(ls_header(&s.requests[0], "X-Probe", buf, sizeof(buf)), "42");
        assert_non_null(ls_header(&s.requests[0], "User-Agent", buf, sizeof(buf)));
        assert_true(strncmp(buf, "memgovd/", 8) == 0);
        outcome_clear(&o);
        ls_free(&s);
}

static void test_http_post_sends_body_without_expect(void **state)
{
        struct fixture *f = *state;
        static const struct ls_response script[] = {{.status = 204}};
        const char *headers[] = {"Content-Type: application/cloudevents+json", NULL};
        char body[4096], buf[128];
        struct ls_server s;
        struct outcome o = {0};
        struct pending p;

        /* Large enough that curl would otherwise ask for 100-continue. */
        memset(body, 'a', sizeof(body));
        body[0] = '{';
        body[sizeof(body) - 1] = '}';
        assert_int_equal(ls_start(&s, script, ELEMENTSOF(script)), 0);
        start(f,
              &(struct http_request_opts){.method = "POST",
                                          .url = s.url,
                                          .headers = headers,
                                          .body = body,
                                          .body_size = sizeof(body)},
              &p, &o, NULL);
        assert_int_equal(run_until(f, 1), 0);
        assert_int_equal(o.error, 0);
        assert_int_equal(o.status, 204);
        assert_int_equal(o.body_size, 0);

        ls_stop(&s);
        assert_int_equal(s.n_requests, 1);
        assert_string_equal(s.requests[0].method, "POST");
        assert_int_equal(s.requests[0].body_size, sizeof(body));
        assert_memory_equal(s.requests[0].body, body, sizeof(body));
        assert_string_equal(ls_header(&s.requests[0], "Content-Type", buf, sizeof(buf)),
                            "application/cloudevents+json");
        assert_null(ls_header(&s.requests[0], "Expect", buf, sizeof(buf)));
        outcome_clear(&o);
        ls_free(&s);
}

static void test_http_error_status_is_not_a_transport_error(void **state)
{
        struct fixture *f = *state;
        static const struct ls_response script[] = {
                {.status = 503, .headers = "Retry-After: 7\r\n", .body = "busy"},
        };
        struct ls_server s;
        struct outcome o = {0};
        struct pending p;

        assert_int_equal(ls_start(&s, script, ELEMENTSOF(script)), 0);
        start(f, &(struct http_request_opts){.url = s.url}, &p, &o, NULL);
        assert_int_equal(run_until(f, 1), 0);
        assert_int_equal(o.error, 0);
        assert_int_equal(o.status, 503);
        assert_string_equal(o.retry_after, "7");
        assert_string_equal(o.body, "busy");
        ls_stop(&s);
        outcome_clear(&o);
        ls_free(&s);
}

static void test_http_slow_answer_times_out_without_blocking_the_loop(void **state)
{
        struct fixture *f = *state;
        static const struct ls_response slow_script[] = {{.status = 200, .delay_ms = 5000}};
        static const struct ls_response fast_script[] = {{.status = 200}};
        struct ls_server slow, fast;
        struct outcome o_slow = {0}, o_fast = {0};
        struct pending p_slow, p_fast;

        assert_int_equal(ls_start(&slow, slow_script, 1), 0);
        assert_int_equal(ls_start(&fast, fast_script, 1), 0);
        start(f, &(struct http_request_opts){.url = slow.url, .timeout_usec = 2 * USEC_PER_SEC},
              &p_slow, &o_slow, NULL);
        start(f, &(struct http_request_opts){.url = fast.url}, &p_fast, &o_fast, NULL);
        assert_int_equal(run_until(f, 2), 0);

        /* The fast one was served while the slow one was still waiting. */
        assert_int_equal(o_fast.order, 1);
        assert_int_equal(o_fast.error, 0);
        assert_int_equal(o_fast.status, 200);
        assert_int_equal(o_slow.order, 2);
        assert_int_equal(o_slow.error, -ETIMEDOUT);
        assert_int_equal(o_slow.status, 0);
        ls_stop(&slow);
        ls_stop(&fast);
        outcome_clear(&o_slow);
        outcome_clear(&o_fast);
        ls_free(&slow);
        ls_free(&fast);
}

static void test_http_body_beyond_cap_fails_efbig(void **state)
{
        struct fixture *f = *state;
        /* Announced too large, and too large only once streamed (no Content-Length). */
        static const struct ls_response script[] = {
                {.status = 200, .filler_bytes = 4 << 20},
                {.status = 200, .filler_bytes = 4 << 20, .no_length = true},
        };
        struct ls_server s;
        struct outcome o[2] = {0};
        struct pending p[2];

        assert_int_equal(ls_start(&s, script, ELEMENTSOF(script)), 0);
        for (size_t i = 0; i < 2; i++) {
                start(f, &(struct http_request_opts){.url = s.url, .max_response_bytes = 65536},
                      &p[i], &o[i], NULL);
                assert_int_equal(run_until(f, (int)i + 1), 0);
                assert_int_equal(o[i].error, -EFBIG);
                assert_true(o[i].bytes_received <= 65536);
                assert_true(o[i].body_size <= 65536);
        }
        ls_stop(&s);
        outcome_clear(&o[0]);
        outcome_clear(&o[1]);
        ls_free(&s);
}

static void test_http_body_streams_to_fd(void **state)
{
        struct fixture *f = *state;
        static const struct ls_response script[] = {
                {.status = 200, .body = "head-", .filler_bytes = 300000, .no_length = true},
        };
        char path[] = "/tmp/memgov-test-http-XXXXXX";
        struct ls_server s;
        struct outcome o = {0};
        struct pending p;
        struct stat st;
        char first[6] = {0};
        int fd = mkstemp(path);

        assert_true(fd > 0);
        assert_int_equal(ls_start(&s, script, ELEMENTSOF(script)), 0);
        start(f,
              &(struct http_request_opts){
                      .url = s.url, .output_fd = fd, .max_response_bytes = 1 << 20},
              &p, &o, NULL);
        assert_int_equal(run_until(f, 1), 0);
        assert_int_equal(o.error, 0);
        assert_int_equal(o.status, 200);
        assert_false(o.had_body);
        assert_int_equal(o.bytes_received, 300005);
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal(st.st_size, 300005);
        assert_int_equal(pread(fd, first, 5, 0), 5);
        assert_string_equal(first, "head-");
        close(fd);
        unlink(path);
        ls_stop(&s);
        outcome_clear(&o);
        ls_free(&s);
}

static void test_http_redirect_is_not_followed(void **state)
{
        struct fixture *f = *state;
        static const struct ls_response script[] = {
                {.status = 302, .headers = "Location: http://127.0.0.1:1/elsewhere\r\n"},
        };
        struct ls_server s;
        struct outcome o = {0};
        struct pending p;

        assert_int_equal(ls_start(&s, script, ELEMENTSOF(script)), 0);
        start(f, &(struct http_request_opts){.url = s.url}, &p, &o, NULL);
        assert_int_equal(run_until(f, 1), 0);
        assert_int_equal(o.error, 0);
        assert_int_equal(o.status, 302);
        ls_stop(&s);
        assert_int_equal(s.n_requests, 1);
        outcome_clear(&o);
        ls_free(&s);
}

static void test_http_other_schemes_are_refused(void **state)
{
        struct fixture *f = *state;
        const char *urls[] = {"file:///etc/passwd", "ftp://127.0.0.1/", "gopher://127.0.0.1/"};
        struct outcome o[ELEMENTSOF(urls)] = {0};
        struct pending p[ELEMENTSOF(urls)];

        for (size_t i = 0; i < ELEMENTSOF(urls); i++)
                start(f, &(struct http_request_opts){.url = urls[i]}, &p[i], &o[i], NULL);
        assert_int_equal(run_until(f, (int)ELEMENTSOF(urls)), 0);
        for (size_t i = 0; i < ELEMENTSOF(urls); i++) {
                assert_int_equal(o[i].error, -EPROTONOSUPPORT);
                assert_false(o[i].had_body);
                outcome_clear(&o[i]);
        }
}

static void test_http_connection_refused(void **state)
{
        struct fixture *f = *state;
        struct ls_server s;
        struct outcome o = {0};
        struct pending p;
        char url[64];

        /* A port that was free a moment ago: listen, learn it, stop listening. */
        assert_int_equal(ls_start(&s, NULL, 0), 0);
        ls_stop(&s);
        snprintf(url, sizeof(url), "%s", s.url);
        start(f, &(struct http_request_opts){.url = url}, &p, &o, NULL);
        assert_int_equal(run_until(f, 1), 0);
        assert_int_equal(o.error, -ECONNREFUSED);
        assert_int_equal(o.status, 0);
        outcome_clear(&o);
        ls_free(&s);
}

static void test_http_cancel_runs_no_callback(void **state)
{
        struct fixture *f = *state;
        static const struct ls_response script[] = {{.status = 200, .delay_ms = 3000}};
        struct ls_server s;
        struct outcome o = {0};
        struct pending p;
        struct http_request *req = NULL;

        assert_int_equal(ls_start(&s, script, 1), 0);
        start(f, &(struct http_request_opts){.url = s.url}, &p, &o, &req);
        /* Let it connect and send, then give up on it. */
        assert_int_equal(run_until_received(f, &s, 1), 0);
        assert_null(http_request_cancel(req));
        assert_int_equal(http_client_n_running(f->client), 0);
        for (int i = 0; i < 5; i++)
                assert_true(sd_event_run(f->event, 20 * USEC_PER_MSEC) >= 0);
        assert_int_equal(o.n_done, 0);
        ls_stop(&s);
        ls_free(&s);
}

static void test_http_client_free_with_requests_running(void **state)
{
        struct fixture *f = *state;
        static const struct ls_response script[] = {
                {.status = 200, .delay_ms = 3000},
                {.status = 200, .delay_ms = 3000},
        };
        struct ls_server s;
        struct outcome o[2] = {0};
        struct pending p[2];

        assert_int_equal(ls_start(&s, script, 2), 0);
        start(f, &(struct http_request_opts){.url = s.url}, &p[0], &o[0], NULL);
        start(f, &(struct http_request_opts){.url = s.url}, &p[1], &o[1], NULL);
        assert_int_equal(run_until_received(f, &s, 1), 0);
        f->client = http_client_free(f->client);
        assert_int_equal(o[0].n_done + o[1].n_done, 0);
        ls_stop(&s);
        ls_free(&s);
}

static void test_http_start_rejects_bad_options(void **state)
{
        struct fixture *f = *state;
        struct pending p = {.f = f};

        assert_int_equal(
                http_request_start(f->client, &(struct http_request_opts){0}, on_done, &p, NULL),
                -EINVAL);
        assert_int_equal(
                http_request_start(f->client,
                                   &(struct http_request_opts){.url = "http://127.0.0.1/",
                                                               .method = "GET /x HTTP/1.1\r\n"},
                                   on_done, &p, NULL),
                -EINVAL);
        assert_int_equal(http_client_n_running(f->client), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_http_get_returns_status_headers_and_body,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_http_post_sends_body_without_expect, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_http_error_status_is_not_a_transport_error,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_http_slow_answer_times_out_without_blocking_the_loop, setup, teardown),
                cmocka_unit_test_setup_teardown(test_http_body_beyond_cap_fails_efbig, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_http_body_streams_to_fd, setup, teardown),
                cmocka_unit_test_setup_teardown(test_http_redirect_is_not_followed, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_http_other_schemes_are_refused, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_http_connection_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_http_cancel_runs_no_callback, setup, teardown),
                cmocka_unit_test_setup_teardown(test_http_client_free_with_requests_running, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_http_start_rejects_bad_options, setup,
                                                teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Webhook delivery end to end on loopback: a real sd-event loop, the real HTTP glue and a
 * scripted receiver. What the receiver gets (headers, a signature that verifies with the
 * secret, the same webhook-id on every retry), what the counters say after 200, 500, 410,
 * Retry-After and a receiver too slow for the deadline, and the secret file checks.
 */
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "memgov/notify.h"
#include "loopback-server.h"

#define MiB    ((uint64_t)1 << 20)
#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

struct fixture {
        char dir[64];
        char secret_path[128];
        sd_event *event;
        struct http_client *http;
        struct notify *notify;
        struct policy_webhook webhooks[2];
        struct policy policies[2];
        struct policy *policy_ptrs[2];
        struct policy_set set;
};

static void write_file(const char *path, const char *content, mode_t mode)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/memgov-test-notify-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->secret_path, sizeof(f->secret_path), "%s/svc.secret", f->dir);
        write_file(f->secret_path, SECRET "\n", 0600);
        assert_int_equal(sd_event_new(&f->event), 0);
        assert_int_equal(http_client_new(f->event, &f->http), 0);
        assert_int_equal(notify_new(f->event, f->http, "testhost", &f->notify), 0);
        *state = f;
        return 0;
}

static int remove_one(const char *path, const struct stat *st _unused_, int flag _unused_,
                      struct FTW *ftw _unused_)
{
        return remove(path);
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        notify_free(f->notify);
        http_client_free(f->http);
        sd_event_unref(f->event);
        /* Only what this test made, in its own mkdtemp directory. */
        (void)nftw(f->dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

/*
 * Policy i of the fixture: service, one webhook to url with secret (NULL: unsigned),
 * wanting events, with an attempt timeout and a deadline. n policies make the set.
 */
static void configure(struct fixture *f, size_t i, const char *service, const char *url,
                      const char *secret, unsigned events, uint64_t timeout_usec,
                      uint64_t deadline_usec)
{
        f->webhooks[i] = (struct policy_webhook){
                .url = (char *)url,
                .secret_file = (char *)secret,
                .events_mask = events,
                .timeout_usec = timeout_usec,
                .deadline_usec = deadline_usec,
        };
        f->policies[i] = (struct policy){
                .service = (char *)service,
                .cgroup = (char *)"svc.slice",
                .webhooks = &f->webhooks[i],
                .n_webhooks = 1,
        };
        f->policy_ptrs[i] = &f->policies[i];
}

static int apply(struct fixture *f, size_t n, struct diag *diag)
{
        f->set = (struct policy_set){.policies = f->policy_ptrs, .n_policies = n};
        return notify_set_policies(f->notify, &f->set, diag);
}

#define ALL_LEVEL_EVENTS                                                                           \
        (EVENT_MASK(EVENT_WARN) | EVENT_MASK(EVENT_DEGRADE) | EVENT_MASK(EVENT_CRITICAL) |         \
         EVENT_MASK(EVENT_RECOVERED))

static struct notify_endpoint_stats stats_of(struct fixture *f, const char *url)
{
        struct notify_endpoint_stats s = {0};

        for (size_t i = 0; i < notify_get_n_endpoints(f->notify); i++) {
                assert_int_equal(notify_get_endpoint_stats(f->notify, i, &s), 0);
                if (strcmp(s.url, url) == 0)
                        return s;
        }
        fail_msg("no endpoint %s", url);
        return s;
}

static uint64_t finished(struct fixture *f, const char *url)
{
        struct notify_endpoint_stats s = stats_of(f, url);
        uint64_t sum = 0;

        for (size_t i = 0; i < _WEBHOOK_RESULT_MAX; i++)
                sum += s.results[i];
        return sum;
}

/* Run the loop until endpoint url has finished n messages, within 15 s. */
static int run_until_finished(struct fixture *f, const char *url, uint64_t n)
{
        uint64_t deadline = ls_now_ms() + 15000;

        while (finished(f, url) < n) {
                if (ls_now_ms() >= deadline)
                        return -ETIMEDOUT;
                if (sd_event_run(f->event, 50 * USEC_PER_MSEC) < 0)
                        return -EIO;
        }
        return 0;
}

static int send_event(struct fixture *f, const char *service, enum event type, enum level level)
{
        struct sample s = {
                .current_bytes = 700 * MiB,
                .limit_bytes = 1024 * MiB,
                .max_bytes = 1024 * MiB,
                .high_bytes = 900 * MiB,
                .anon_bytes = 600 * MiB,
                .file_bytes = 80 * MiB,
                .has = SAMPLE_HAS_ANON | SAMPLE_HAS_FILE | SAMPLE_HAS_HIGH,
        };
        struct forecast fc = {
                .known = true,
                .slope_bytes_per_s = 2 * MiB,
                .eta_usec = 162 * USEC_PER_SEC,
                .eta_lower_usec = 120 * USEC_PER_SEC,
                .eta_upper_usec = 240 * USEC_PER_SEC,
        };

        return notify_event(f->notify, &(struct notify_event){
                                               .type = type,
                                               .service = service,
                                               .cgroup = "svc.slice",
                                               .level = level,
                                               .previous_level = LEVEL_WARN,
                                               .sample = &s,
                                               .forecast = &fc,
                                       });
}

/* Check one recorded request as a receiver would, and return its webhook-id (static). */
static const char *verify_delivery(const struct ls_request *r, const char *type)
{
        static char id[128];
        char ts[64], sig[256], ct[128];
        uint8_t *key = NULL;
        size_t key_size = 0;
        char *want = NULL;
        struct json_object *o, *v;
        long long t;

        assert_string_equal(r->method, "POST");
        assert_non_null(ls_header(r, "Content-Type", ct, sizeof(ct)));
        assert_string_equal(ct, "application/cloudevents+json");
        assert_non_null(ls_header(r, "webhook-id", id, sizeof(id)));
        assert_non_null(ls_header(r, "webhook-timestamp", ts, sizeof(ts)));
        assert_non_null(ls_header(r, "webhook-signature", sig, sizeof(sig)));

        /* The timestamp is unix seconds of now (a receiver's tolerance is minutes). */
        t = atoll(ts);
        assert_true(llabs(t - (long long)time(NULL)) < 60);

        /* The signature verifies with the secret, over exactly the bytes received. */
        assert_int_equal(webhook_key_from_secret(SECRET, strlen(SECRET), &key, &key_size), 0);
        assert_int_equal(webhook_sign(key, key_size, id, (uint64_t)t, r->body, r->body_size, &want),
                         0);
        assert_string_equal(sig, want);
        free(want);
        free(key);

        o = json_tokener_parse(r->body);
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "id", &v));
        assert_string_equal(json_object_get_string(v), id); /* webhook-id is the event's id */
        assert_true(json_object_object_get_ex(o, "type", &v));
        assert_string_equal(json_object_get_string(v), type);
        assert_true(json_object_object_get_ex(o, "source", &v));
        assert_string_equal(json_object_get_string(v), "memgovd/testhost/svc");
        json_object_put(o);
        return id;
}

static void test_notify_delivers_signed_cloudevent(void **state)
{
        struct fixture *f = *state;
        static const struct ls_response script[] = {{.status = 200}};
        struct ls_server s;
        struct json_object *o, *data, *v, *mem, *advice;

        assert_int_equal(ls_start(&s, script, ELEMENTSOF(script)), 0);
        configure(f, 0, "svc", s.url, f->secret_path, ALL_LEVEL_EVENTS, 2 * USEC_PER_SEC,
                  20 * USEC_PER_SEC);
        assert_int_equal(apply(f, 1, NULL), 0);
        assert_int_equal(send_event(f, "svc", EVENT_DEGRADE, LEVEL_DEGRADE), 1);
        assert_int_equal(run_until_finished(f, s.url, 1), 0);

        struct notify_endpoint_stats st = stats_of(f, s.url);
        assert_int_equal(st.results[WEBHOOK_DELIVERED], 1);
        assert_int_equal(st.attempts, 1);
        assert_int_equal(st.queued, 0);
        assert_string_equal(st.service, "svc");

        ls_stop(&s);
        assert_int_equal(s.n_requests, 1);
        (void)verify_delivery(&s.requests[0], "io.memgov.degrade");

        o = json_tokener_parse(s.requests[0].body);
        assert_true(json_object_object_get_ex(o, "data", &data));
        assert_true(json_object_object_get_ex(data, "memory", &mem));
        assert_true(json_object_object_get_ex(mem, "current_bytes", &v));
        assert_int_equal(json_object_get_uint64(v), 700 * MiB);
        assert_true(json_object_object_get_ex(data, "advice", &advice));
        /* base = memory.high 900 MiB, reserve = current - anon = 100 MiB */
        assert_true(json_object_object_get_ex(advice, "gomemlimit_bytes", &v));
        assert_int_equal(json_object_get_uint64(v), 800 * MiB);
        assert_true(json_object_object_get_ex(advice, "drop_caches", &v));
        assert_true(json_object_get_boolean(v));
        json_object_put(o);
        ls_free(&s);
}

static void test_notify_retries_500_with_the_same_id(void **state)
{
        struct fixture *f = *state;
        static const struct ls_response script[] = {{.status = 500}, {.status = 204}};
        struct ls_server s;
        char first[128];

        assert_int_equal(ls_start(&s, script, ELEMENTSOF(script)), 0);
        configure(f, 0, "svc", s.url, f->secret_path, ALL_LEVEL_EVENTS, 2 * USEC_PER_SEC,
                  20 * USEC_PER_SEC);
        assert_int_equal(apply(f, 1, NULL), 0);
        assert_int_equal(send_event(f, "svc", EVENT_CRITICAL, LEVEL_CRITICAL), 1);
        assert_int_equal(run_until_finished(f, s.url, 1), 0);

        struct notify_endpoint_stats st = stats_of(f, s.url);
        assert_int_equal(st.results[WEBHOOK_DELIVERED], 1);
        assert_int_equal(st.results[WEBHOOK_FAILED], 0);
        assert_int_equal(st.attempts, 2);

        ls_stop(&s);
        assert_int_equal(s.n_requests, 2);
        snprintf(first, sizeof(first), "%s", verify_delivery(&s.requests[0], "io.memgov.critical"));
        assert_string_equal(verify_delivery(&s.requests[1], "io.memgov.critical"), first);
        assert_int_equal(s.requests[0].body_size, s.requests[1].body_size);
        assert_memory_equal(s.requests[0].body, s.requests[1].body, s.requests[0].body_size);
        ls_free(&s);
}

static void test_notify_410_disables_until_reload(void **state)
{
        struct fixture *f = *state;
        static const struct ls_response script[] = {{.status = 410}, {.status = 200}};
        struct ls_server s;

        assert_int_equal(ls_start(&s, script, ELEMENTSOF(script)), 0);
        configure(f, 0, "svc", s.url, f->secret_path, ALL_LEVEL_EVENTS, 2 * USEC_PER_SEC,
                  20 * USEC_PER_SEC);
        assert_int_equal(apply(f, 1, NULL), 0);
        assert_int_equal(send_event(f, "svc", EVENT_WARN, LEVEL_WARN), 1);
        assert_int_equal(run_until_finished(f, s.url, 1), 0);
        assert_true(stats_of(f, s.url).disabled);
        assert_int_equal(stats_of(f, s.url).results[WEBHOOK_DISABLED], 1);

        /* Nothing more goes to it... */
        assert_int_equal(send_event(f, "svc", EVENT_CRITICAL, LEVEL_CRITICAL), 0);
        assert_int_equal(stats_of(f, s.url).results[WEBHOOK_DISABLED], 2);
        for (int i = 0; i < 5; i++)
                assert_true(sd_event_run(f->event, 20 * USEC_PER_MSEC) >= 0);
        assert_int_equal(ls_n_requests(&s), 1);

        /* ...until the policies are loaded again; the counters stay. */
        assert_int_equal(apply(f, 1, NULL), 0);
        assert_false(stats_of(f, s.url).disabled);
        assert_int_equal(send_event(f, "svc", EVENT_RECOVERED, LEVEL_OK), 1);
        assert_int_equal(run_until_finished(f, s.url, 3), 0);
        assert_int_equal(stats_of(f, s.url).results[WEBHOOK_DELIVERED], 1);
        assert_int_equal(stats_of(f, s.url).results[WEBHOOK_DISABLED], 2);
        ls_stop(&s);
        assert_int_equal(s.n_requests, 2);
        (void)verify_delivery(&s.requests[1], "io.memgov.recovered");
        ls_free(&s);
}

/* What the delivery callback saw, copied (the strings are borrowed for the call only). */
struct seen_delivery {
        size_t n;
        char cgroup[64], url[64], service[16];
        enum event event;
        enum webhook_result result;
        long http_status;
        unsigned attempts;
};

static void on_delivery(const struct notify_delivery *dl, void *userdata)
{
        struct seen_delivery *seen = userdata;

        seen->n++;
        snprintf(seen->cgroup, sizeof(seen->cgroup), "%s", dl->cgroup);
        snprintf(seen->url, sizeof(seen->url), "%s", dl->url);
        snprintf(seen->service, sizeof(seen->service), "%s", dl->service);
        assert_non_null(dl->id);
        assert_true(strncmp(dl->id, "msg_", 4) == 0);
        seen->event = dl->event;
        seen->result = dl->result;
        seen->http_status = dl->http_status;
        seen->attempts = dl->attempts;
}

/*
 * The callback hears the final outcome of each message, not its queueing nor its retries:
 * delivered after a 500 and a 204 (2 attempts), failed on a 400, disabled on a 410, and
 * disabled at once for what is queued to a disabled endpoint (no attempt).
 */
static void test_notify_delivery_callback_reports_outcomes(void **state)
{
        struct fixture *f = *state;
        static const struct ls_response script[] = {
                {.status = 500}, {.status = 204}, {.status = 400}, {.status = 410}};
        struct seen_delivery seen = {0};
        struct ls_server s;

        assert_int_equal(ls_start(&s, script, ELEMENTSOF(script)), 0);
        configure(f, 0, "svc", s.url, f->secret_path, ALL_LEVEL_EVENTS, 2 * USEC_PER_SEC,
                  20 * USEC_PER_SEC);
        assert_int_equal(apply(f, 1, NULL), 0);
        notify_set_delivery_callback(f->notify, on_delivery, &seen);

        assert_int_equal(send_event(f, "svc", EVENT_CRITICAL, LEVEL_CRITICAL), 1);
        assert_int_equal(seen.n, 0); /* queued is no outcome */
        assert_int_equal(run_until_finished(f, s.url, 1), 0);
        assert_int_equal(seen.n, 1); /* the 500 was retried, not reported */
        assert_string_equal(seen.service, "svc");
        assert_string_equal(seen.cgroup, "svc.slice");
        assert_string_equal(seen.url, s.url);
        assert_int_equal(seen.event, EVENT_CRITICAL);
        assert_int_equal(seen.result, WEBHOOK_DELIVERED);
        assert_int_equal(seen.http_status, 204);
        assert_int_equal(seen.attempts, 2);

        assert_int_equal(send_event(f, "svc", EVENT_WARN, LEVEL_WARN), 1);
        assert_int_equal(run_until_finished(f, s.url, 2), 0);
        assert_int_equal(seen.n, 2);
        assert_int_equal(seen.event, EVENT_WARN);
        assert_int_equal(seen.result, WEBHOOK_FAILED);
        assert_int_equal(seen.http_status, 400);
        assert_int_equal(seen.attempts, 1);

        assert_int_equal(send_event(f, "svc", EVENT_DEGRADE, LEVEL_DEGRADE), 1);
        assert_int_equal(run_until_finished(f, s.url, 3), 0);
        assert_int_equal(seen.n, 3);
        assert_int_equal(seen.event, EVENT_DEGRADE);
        assert_int_equal(seen.result, WEBHOOK_DISABLED);
        assert_int_equal(seen.http_status, 410);
        assert_int_equal(seen.attempts, 1);

        assert_int_equal(send_event(f, "svc", EVENT_RECOVERED, LEVEL_OK), 0);
        assert_int_equal(seen.n, 4);
        assert_int_equal(seen.event, EVENT_RECOVERED);
        assert_int_equal(seen.result, WEBHOOK_DISABLED);
        assert_int_equal(seen.http_status, 0);
        assert_int_equal(seen.attempts, 0);

        /* Unset: outcomes are counted as before, nobody is called. */
        notify_set_delivery_callback(f->notify, NULL, NULL);
        assert_int_equal(send_event(f, "svc", EVENT_WARN, LEVEL_WARN), 0);
        assert_int_equal(seen.n, 4);
        assert_int_equal(stats_of(f, s.url).results[WEBHOOK_DISABLED], 3);
        ls_stop(&s);
        assert_int_equal(s.n_requests, 4);
        ls_free(&s);
}

static void test_notify_slow_receiver_gives_up_at_deadline_others_unaffected(void **state)
{
        struct fixture *f = *state;
        static const struct ls_response slow_script[LS_MAX_STEPS] = {
                {.status = 200, .delay_ms = 10000}, {.status = 200, .delay_ms = 10000},
                {.status = 200, .delay_ms = 10000}, {.status = 200, .delay_ms = 10000},
                {.status = 200, .delay_ms = 10000}, {.status = 200, .delay_ms = 10000},
                {.status = 200, .delay_ms = 10000}, {.status = 200, .delay_ms = 10000},
                {.status = 200, .delay_ms = 10000}, {.status = 200, .delay_ms = 10000},
                {.status = 200, .delay_ms = 10000}, {.status = 200, .delay_ms = 10000},
                {.status = 200, .delay_ms = 10000}, {.status = 200, .delay_ms = 10000},
                {.status = 200, .delay_ms = 10000}, {.status = 200, .delay_ms = 10000},
        };
        static const struct ls_response fast_script[] = {{.status = 200}};
        struct ls_server slow, fast;

        assert_int_equal(ls_start(&slow, slow_script, ELEMENTSOF(slow_script)), 0);
        assert_int_equal(ls_start(&fast, fast_script, ELEMENTSOF(fast_script)), 0);
        configure(f, 0, "svc", slow.url, f->secret_path, ALL_LEVEL_EVENTS, 300 * USEC_PER_MSEC,
                  1500 * USEC_PER_MSEC);
        configure(f, 1, "other", fast.url, NULL, ALL_LEVEL_EVENTS, 2 * USEC_PER_SEC,
                  20 * USEC_PER_SEC);
        assert_int_equal(apply(f, 2, NULL), 0);
        assert_int_equal(notify_get_n_endpoints(f->notify), 2);

        assert_int_equal(send_event(f, "svc", EVENT_DEGRADE, LEVEL_DEGRADE), 1);
        assert_int_equal(send_event(f, "other", EVENT_DEGRADE, LEVEL_DEGRADE), 1);
        /* The other service's receiver is served while the slow one still hangs. */
        assert_int_equal(run_until_finished(f, fast.url, 1), 0);
        assert_int_equal(stats_of(f, fast.url).results[WEBHOOK_DELIVERED], 1);
        assert_int_equal(finished(f, slow.url), 0);

        assert_int_equal(run_until_finished(f, slow.url, 1), 0);
        struct notify_endpoint_stats st = stats_of(f, slow.url);
        assert_int_equal(st.results[WEBHOOK_FAILED], 1);
        assert_int_equal(st.results[WEBHOOK_DELIVERED], 0);
        assert_true(st.attempts >= 2); /* timed out, retried, ran out of deadline */
        assert_int_equal(st.queued, 0);
        ls_stop(&slow);
        ls_stop(&fast);
        assert_int_equal(slow.n_requests, st.attempts);
        ls_free(&slow);
        ls_free(&fast);
}

static void test_notify_honours_retry_after(void **state)
{
        struct fixture *f = *state;
        static const struct ls_response script[] = {
                {.status = 503, .headers = "Retry-After: 1\r\n"},
                {.status = 200},
        };
        struct ls_server s;

        assert_int_equal(ls_start(&s, script, ELEMENTSOF(script)), 0);
        configure(f, 0, "svc", s.url, f->secret_path, ALL_LEVEL_EVENTS, 2 * USEC_PER_SEC,
                  20 * USEC_PER_SEC);
        assert_int_equal(apply(f, 1, NULL), 0);
        assert_int_equal(send_event(f, "svc", EVENT_WARN, LEVEL_WARN), 1);
        assert_int_equal(run_until_finished(f, s.url, 1), 0);
        assert_int_equal(stats_of(f, s.url).results[WEBHOOK_DELIVERED], 1);
        ls_stop(&s);
        assert_int_equal(s.n_requests, 2);
        /* Not before the second the receiver asked for (jitter alone would be < 250 ms). */
        assert_true(s.requests[1].t_ms - s.requests[0].t_ms >= 950);
        ls_free(&s);
}

static void test_notify_retry_after_beyond_deadline_gives_up(void **state)
{
        struct fixture *f = *state;
        static const struct ls_response script[] = {
                {.status = 429, .headers = "Retry-After: 60\r\n"},
        };
        struct ls_server s;

        assert_int_equal(ls_start(&s, script, ELEMENTSOF(script)), 0);
        configure(f, 0, "svc", s.url, f->secret_path, ALL_LEVEL_EVENTS, 2 * USEC_PER_SEC,
                  5 * USEC_PER_SEC);
        assert_int_equal(apply(f, 1, NULL), 0);
        assert_int_equal(send_event(f, "svc", EVENT_WARN, LEVEL_WARN), 1);
        assert_int_equal(run_until_finished(f, s.url, 1), 0);
        assert_int_equal(stats_of(f, s.url).results[WEBHOOK_FAILED], 1);
        assert_int_equal(stats_of(f, s.url).attempts, 1);
        ls_stop(&s);
        ls_free(&s);
}

static void test_notify_client_error_is_not_retried(void **state)
{
        struct fixture *f = *state;
        static const struct ls_response script[] = {{.status = 401}, {.status = 200}};
        struct ls_server s;

        assert_int_equal(ls_start(&s, script, ELEMENTSOF(script)), 0);
        configure(f, 0, "svc", s.url, f->secret_path, ALL_LEVEL_EVENTS, 2 * USEC_PER_SEC,
                  20 * USEC_PER_SEC);
        assert_int_equal(apply(f, 1, NULL), 0);
        assert_int_equal(send_event(f, "svc", EVENT_WARN, LEVEL_WARN), 1);
        assert_int_equal(run_until_finished(f, s.url, 1), 0);
        assert_int_equal(stats_of(f, s.url).results[WEBHOOK_FAILED], 1);
        assert_int_equal(stats_of(f, s.url).attempts, 1);
        ls_stop(&s);
        assert_int_equal(s.n_requests, 1);
        ls_free(&s);
}

static void test_notify_unsigned_loopback_endpoint(void **state)
{
        struct fixture *f = *state;
        static const struct ls_response script[] = {{.status = 200}};
        struct ls_server s;
        char buf[256];

        assert_int_equal(ls_start(&s, script, ELEMENTSOF(script)), 0);
        configure(f, 0, "svc", s.url, NULL, EVENT_MASK(EVENT_OOM_KILL), 2 * USEC_PER_SEC,
                  20 * USEC_PER_SEC);
        assert_int_equal(apply(f, 1, NULL), 0);
        /* Not subscribed: nothing queued. Another service: nothing either. */
        assert_int_equal(send_event(f, "svc", EVENT_WARN, LEVEL_WARN), 0);
        assert_int_equal(send_event(f, "nobody", EVENT_OOM_KILL, LEVEL_CRITICAL), 0);
        assert_int_equal(send_event(f, "svc", EVENT_OOM_KILL, LEVEL_CRITICAL), 1);
        assert_int_equal(run_until_finished(f, s.url, 1), 0);
        ls_stop(&s);
        assert_int_equal(s.n_requests, 1);
        assert_non_null(ls_header(&s.requests[0], "webhook-id", buf, sizeof(buf)));
        assert_non_null(ls_header(&s.requests[0], "webhook-timestamp", buf, sizeof(buf)));
        assert_null(ls_header(&s.requests[0], "webhook-signature", buf, sizeof(buf)));
        assert_non_null(strstr(s.requests[0].body, "\"type\":\"io.memgov.oom_kill\""));
        ls_free(&s);
}

static void test_notify_free_with_a_request_in_flight(void **state)
{
        struct fixture *f = *state;
        static const struct ls_response script[] = {{.status = 200, .delay_ms = 3000}};
        struct ls_server s;
        uint64_t deadline = ls_now_ms() + 15000;

        assert_int_equal(ls_start(&s, script, ELEMENTSOF(script)), 0);
        configure(f, 0, "svc", s.url, f->secret_path, ALL_LEVEL_EVENTS, 5 * USEC_PER_SEC,
                  20 * USEC_PER_SEC);
        assert_int_equal(apply(f, 1, NULL), 0);
        assert_int_equal(send_event(f, "svc", EVENT_WARN, LEVEL_WARN), 1);
        assert_int_equal(send_event(f, "svc", EVENT_OOM_KILL, LEVEL_WARN), 0); /* not wanted */
        while (ls_n_requests(&s) < 1 && ls_now_ms() < deadline)
                assert_true(sd_event_run(f->event, 20 * USEC_PER_MSEC) >= 0);
        assert_int_equal(ls_n_requests(&s), 1);
        assert_int_equal(http_client_n_running(f->http), 1);
        f->notify = notify_free(f->notify);
        assert_int_equal(http_client_n_running(f->http), 0);
        ls_stop(&s);
        ls_free(&s);
}

static bool diag_has(const struct diag *d, const char *needle)
{
        for (size_t i = 0; i < d->n_lines; i++)
                if (strstr(d->lines[i], needle))
                        return true;
        return false;
}

static void test_notify_load_secret_checks(void **state)
{
        struct fixture *f = *state;
        char open_path[128], link_ok[128], link_away[128], empty[128], missing[128], fix[512],
                away_dir[64] = "/tmp/memgov-test-notify-away-XXXXXX", away[128];
        struct diag d = {0};
        uint8_t *key = NULL;
        size_t size = 0;

        snprintf(open_path, sizeof(open_path), "%s/open.secret", f->dir);
        snprintf(link_ok, sizeof(link_ok), "%s/link.secret", f->dir);
        snprintf(link_away, sizeof(link_away), "%s/away.secret", f->dir);
        snprintf(empty, sizeof(empty), "%s/empty.secret", f->dir);
        snprintf(missing, sizeof(missing), "%s/missing.secret", f->dir);
        assert_non_null(mkdtemp(away_dir));
        snprintf(away, sizeof(away), "%s/x.secret", away_dir);
        write_file(open_path, SECRET, 0644);
        write_file(empty, "\n", 0600);
        write_file(away, SECRET, 0600);
        assert_int_equal(symlink("svc.secret", link_ok), 0);
        assert_int_equal(symlink(away, link_away), 0);

        /* The good one, directly and through a symlink within its directory. */
        assert_int_equal(notify_load_secret(f->secret_path, &d, &key, &size), 0);
        assert_int_equal(size, 24);
        free(key);
        assert_int_equal(notify_load_secret(link_ok, &d, &key, &size), 0);
        assert_int_equal(size, 24);
        free(key);
        assert_int_equal(d.n_lines, 0);

        assert_int_equal(notify_load_secret(open_path, &d, &key, &size), -EPERM);
        snprintf(fix, sizeof(fix),
                 "%s: readable by group or others (mode 0644); make it "
                 "private: chmod 600 %s",
                 open_path, open_path);
        assert_true(diag_has(&d, fix));
        assert_int_equal(notify_load_secret(link_away, &d, &key, &size), -EPERM);
        assert_true(diag_has(&d, "a symlink out of its directory"));
        assert_int_equal(notify_load_secret(empty, &d, &key, &size), -EINVAL);
        assert_true(diag_has(&d, "not a usable webhook secret"));
        assert_int_equal(notify_load_secret(missing, &d, &key, &size), -ENOENT);
        assert_int_equal(notify_load_secret(f->dir, &d, &key, &size), -EINVAL); /* a directory */
        diag_clear(&d);

        /* One bad endpoint is left out, the others are configured. */
        configure(f, 0, "svc", "http://127.0.0.1:9/a", open_path, ALL_LEVEL_EVENTS, 0, 0);
        configure(f, 1, "other", "http://127.0.0.1:9/b", f->secret_path, ALL_LEVEL_EVENTS, 0, 0);
        assert_int_equal(apply(f, 2, &d), -EINVAL);
        assert_int_equal(d.n_lines, 1);
        assert_int_equal(notify_get_n_endpoints(f->notify), 1);
        assert_string_equal(stats_of(f, "http://127.0.0.1:9/b").service, "other");
        diag_clear(&d);

        unlink(away);
        rmdir(away_dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_notify_delivers_signed_cloudevent, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_notify_retries_500_with_the_same_id, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_notify_410_disables_until_reload, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_notify_delivery_callback_reports_outcomes,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_notify_slow_receiver_gives_up_at_deadline_others_unaffected, setup,
                        teardown),
                cmocka_unit_test_setup_teardown(test_notify_honours_retry_after, setup, teardown),
                cmocka_unit_test_setup_teardown(test_notify_retry_after_beyond_deadline_gives_up,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_notify_client_error_is_not_retried, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_notify_unsigned_loopback_endpoint, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_notify_free_with_a_request_in_flight, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_notify_load_secret_checks, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}

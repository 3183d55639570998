/* SPDX-License-Identifier: MIT */
/*
 * The pure half of webhooks: signature bytes against the Standard Webhooks test vector,
 * the CloudEvents body a receiver parses, the advice figures, and the delivery schedule
 * (retries, backoff, deadline, Retry-After, 410, supersession, the bounded queue) on a
 * fake clock with a seeded generator.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "memgov/webhook.h"

#define MiB ((uint64_t)1 << 20)
#define SEC USEC_PER_SEC

/* ---- keys and signatures ---- */

static void test_webhook_sign_standard_webhooks_vector(void **state _unused_)
{
        const char secret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n";
        const char payload[] = "{\"test\": 2432232314}";
        _cleanup_free_ uint8_t *key = NULL;
        _cleanup_free_ char *sig = NULL;
        size_t key_size = 0;

        assert_int_equal(webhook_key_from_secret(secret, strlen(secret), &key, &key_size), 0);
        assert_int_equal(key_size, 24);
        assert_int_equal(webhook_sign(key, key_size, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                                      payload, strlen(payload), &sig),
                         0);
        assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

static void test_webhook_sign_depends_on_every_part(void **state _unused_)
{
        const uint8_t key[] = "hunter2";
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL;

        /* python3: base64(hmac.new(b"hunter2", b"msg_1.1700000000.{}", sha256)) */
        assert_int_equal(webhook_sign(key, 7, "msg_1", 1700000000, "{}", 2, &a), 0);
        assert_string_equal(a, "v1,TjNeh/c6AE7+v8faziuuuJ4gkWPRX2wRtWVnnmeKojc=");
        assert_int_equal(webhook_sign(key, 7, "msg_2", 1700000000, "{}", 2, &b), 0);
        assert_int_equal(webhook_sign(key, 7, "msg_1", 1700000001, "{}", 2, &c), 0);
        assert_int_equal(webhook_sign(key, 7, "msg_1", 1700000000, "{ }", 3, &d), 0);
        assert_string_not_equal(a, b);
        assert_string_not_equal(a, c);
        assert_string_not_equal(a, d);
}

static void test_webhook_key_from_secret_forms(void **state _unused_)
{
        static const struct {
                const char *content;
                int ret;
                const char *key; /* expected bytes when ret == 0 */
        } table[] = {
                {"hunter2\n", 0, "hunter2"},
                {"  hunter2\r\n", 0, "hunter2"},
                {"whsec_aHVudGVyMg==\n", 0, "hunter2"},
                {"whsec_aHVudGVyMjE=", 0, "hunter21"},
                {"whsec_aHVudGVyMjEy", 0, "hunter212"},
                {"", -EINVAL, NULL},
                {" \n\n", -EINVAL, NULL},
                {"whsec_", -EINVAL, NULL},
                {"whsec_!!!!", -EINVAL, NULL},
                {"whsec_aHVudGVyMg", -EINVAL, NULL}, /* padding missing */
                {"whsec_aHVu=GVy", -EINVAL, NULL},   /* padding inside */
                {"whsec_aHVudGVy Mg==", -EINVAL, NULL},
                {"whsec_a===", -EINVAL, NULL},
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                uint8_t *key = (uint8_t *)"untouched";
                size_t size = 12345;
                int r = webhook_key_from_secret(table[i].content, strlen(table[i].content), &key,
                                                &size);

                print_message("case %zu: %s\n", i, table[i].content);
                assert_int_equal(r, table[i].ret);
                if (r < 0) {
                        assert_int_equal(size, 12345);
                        continue;
                }
                assert_int_equal(size, strlen(table[i].key));
                assert_memory_equal(key, table[i].key, size);
                free(key);
        }
}

/* ---- the event body ---- */

static struct json_object *get(struct json_object *o, const char *path)
{
        char buf[128], *save = NULL;

        snprintf(buf, sizeof(buf), "%s", path);
        for (char *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save)) {
                struct json_object *v = NULL;
                if (!json_object_object_get_ex(o, k, &v)) {
                        print_message("missing %s in %s\n", k, path);
                        fail();
                }
                o = v;
        }
        return o;
}

static const char *get_string(struct json_object *o, const char *path)
{
        struct json_object *v = get(o, path);

        assert_true(json_object_is_type(v, json_type_string));
        return json_object_get_string(v);
}

static void test_webhook_format_time_rfc3339_utc(void **state _unused_)
{
        char buf[32];

        assert_string_equal(webhook_format_time(1614265330123456, buf, sizeof(buf)),
                            "2021-02-25T15:02:10.123Z");
        assert_string_equal(webhook_format_time(0, buf, sizeof(buf)), "1970-01-01T00:00:00.000Z");
}

static void test_webhook_event_to_json_cloudevent(void **state _unused_)
{
        const char *profiles[] = {"/var/lib/memgov/dumps/checkout/x/heap.pb.gz"};
        const char *suspects[] = {"main.leak 312 MiB", "bytes.growSlice 40 MiB"};
        struct webhook_event ev = {
                .type = EVENT_DEGRADE,
                .service = "checkout-api",
                .cgroup = "system.slice/checkout.service",
                .time_realtime_usec = 1614265330123456,
                .level = LEVEL_DEGRADE,
                .previous_level = LEVEL_WARN,
                .memory = {.current_bytes = 900 * MiB,
                           .limit_bytes = 1024 * MiB,
                           .high_bytes = CGROUP_LIMIT_MAX,
                           .max_bytes = 1024 * MiB,
                           .has_anon = true,
                           .anon_bytes = 800 * MiB},
                .forecast = {.known = true,
                             .eta_usec = 95500000,
                             .eta_lower_usec = 60 * SEC,
                             .eta_upper_usec = USEC_INFINITY,
                             .slope_bytes_per_s = 1310720.75},
                .profiles = profiles,
                .n_profiles = 1,
                .suspects = suspects,
                .n_suspects = 2,
        };
        _cleanup_free_ char *json = NULL;
        struct json_object *o, *d;

        webhook_advice_compute(&ev.memory, ev.level, &ev.advice);
        assert_int_equal(webhook_event_to_json(&ev, "node-7", "msg_abc", &json), 0);
        assert_null(strchr(json, '\n'));
        assert_null(strstr(json, "\\/")); /* cgroup paths read as they are */

        o = json_tokener_parse(json);
        assert_non_null(o);
        assert_string_equal(get_string(o, "specversion"), "1.0");
        assert_string_equal(get_string(o, "type"), "io.memgov.degrade");
        assert_string_equal(get_string(o, "source"), "memgovd/node-7/checkout-api");
        assert_string_equal(get_string(o, "subject"), "system.slice/checkout.service");
        assert_string_equal(get_string(o, "id"), "msg_abc");
        assert_string_equal(get_string(o, "time"), "2021-02-25T15:02:10.123Z");
        assert_string_equal(get_string(o, "datacontenttype"), "application/json");

        d = get(o, "data");
        assert_string_equal(get_string(d, "service"), "checkout-api");
        assert_string_equal(get_string(d, "cgroup"), "system.slice/checkout.service");
        assert_string_equal(get_string(d, "level"), "degrade");
        assert_string_equal(get_string(d, "previous_level"), "warn");
        assert_int_equal(json_object_get_uint64(get(d, "memory.current_bytes")), 900 * MiB);
        assert_int_equal(json_object_get_uint64(get(d, "memory.limit_bytes")), 1024 * MiB);
        assert_true(json_object_is_type(get(d, "memory.high_bytes"), json_type_null));
        assert_int_equal(json_object_get_uint64(get(d, "memory.max_bytes")), 1024 * MiB);
        assert_int_equal(json_object_get_uint64(get(d, "memory.anon_bytes")), 800 * MiB);
        assert_true(json_object_is_type(get(d, "memory.file_bytes"), json_type_null));
        assert_true(json_object_get_double(get(d, "forecast.eta_s")) == 95.5);
        assert_true(json_object_get_double(get(d, "forecast.eta_lower_s")) == 60.0);
        assert_true(json_object_is_type(get(d, "forecast.eta_upper_s"), json_type_null));
        assert_true(json_object_get_double(get(d, "forecast.slope_bytes_per_s")) == 1310720.8);
        /* limit 1 GiB, reserve current - anon = 100 MiB */
        assert_int_equal(json_object_get_uint64(get(d, "advice.gomemlimit_bytes")), 924 * MiB);
        assert_true(json_object_get_double(get(d, "advice.shed_fraction")) == 0.25);
        assert_true(json_object_get_boolean(get(d, "advice.drop_caches")));
        assert_int_equal(json_object_array_length(get(d, "profiles")), 1);
        assert_string_equal(
                json_object_get_string(json_object_array_get_idx(get(d, "profiles"), 0)),
                profiles[0]);
        assert_int_equal(json_object_array_length(get(d, "suspects")), 2);
        json_object_put(o);
}

static void test_webhook_event_to_json_without_forecast_or_profiles(void **state _unused_)
{
        struct webhook_event ev = {
                .type = EVENT_RECOVERED,
                .service = "svc",
                .cgroup = "svc.slice",
                .level = LEVEL_OK,
                .previous_level = LEVEL_CRITICAL,
                .memory = {.current_bytes = 1,
                           .limit_bytes = 2,
                           .high_bytes = 2,
                           .max_bytes = CGROUP_LIMIT_MAX},
        };
        _cleanup_free_ char *json = NULL;
        struct json_object *o, *d, *v = NULL;

        webhook_advice_compute(&ev.memory, ev.level, &ev.advice);
        assert_int_equal(webhook_event_to_json(&ev, "h", "msg_1", &json), 0);
        o = json_tokener_parse(json);
        assert_non_null(o);
        assert_string_equal(get_string(o, "type"), "io.memgov.recovered");
        d = get(o, "data");
        assert_string_equal(get_string(d, "level"), "ok");
        assert_string_equal(get_string(d, "previous_level"), "critical");
        assert_true(json_object_is_type(get(d, "forecast"), json_type_null));
        assert_true(json_object_is_type(get(d, "memory.max_bytes"), json_type_null));
        assert_int_equal(json_object_get_uint64(get(d, "advice.gomemlimit_bytes")), 0);
        assert_true(json_object_get_double(get(d, "advice.shed_fraction")) == 0);
        assert_false(json_object_get_boolean(get(d, "advice.drop_caches")));
        assert_false(json_object_object_get_ex(d, "profiles", &v));
        assert_false(json_object_object_get_ex(d, "suspects", &v));
        json_object_put(o);

        ev.type = _EVENT_INVALID;
        assert_int_equal(webhook_event_to_json(&ev, "h", "msg_1", &json), -EINVAL);
}

/* ---- advice ---- */

static void test_webhook_advice_compute_table(void **state _unused_)
{
        static const struct {
                const char *name;
                struct webhook_memory m;
                enum level level;
                struct webhook_advice want;
        } table[] = {
                {"high below the limit is the base; reserve current-anon",
                 {.current_bytes = 700 * MiB,
                  .limit_bytes = 1000 * MiB,
                  .high_bytes = 800 * MiB,
                  .max_bytes = 1000 * MiB,
                  .has_anon = true,
                  .anon_bytes = 600 * MiB},
                 LEVEL_WARN,
                 {700 * MiB, 0, false}},
                {"high max: the limit is the base",
                 {.current_bytes = 700 * MiB,
                  .limit_bytes = 1000 * MiB,
                  .high_bytes = CGROUP_LIMIT_MAX,
                  .has_anon = true,
                  .anon_bytes = 600 * MiB},
                 LEVEL_DEGRADE,
                 {900 * MiB, 0.25, true}},
                {"all anon: the 5% floor",
                 {.current_bytes = 900 * MiB,
                  .limit_bytes = 1000 * MiB,
                  .high_bytes = CGROUP_LIMIT_MAX,
                  .has_anon = true,
                  .anon_bytes = 900 * MiB},
                 LEVEL_CRITICAL,
                 {950 * MiB, 0.5, true}},
                {"cache-heavy: the reserve is capped at half",
                 {.current_bytes = 950 * MiB,
                  .limit_bytes = 1000 * MiB,
                  .high_bytes = CGROUP_LIMIT_MAX,
                  .has_anon = true,
                  .anon_bytes = 50 * MiB},
                 LEVEL_DEGRADE,
                 {500 * MiB, 0.25, true}},
                {"anon unknown, file known",
                 {.current_bytes = 900 * MiB,
                  .limit_bytes = 1000 * MiB,
                  .high_bytes = CGROUP_LIMIT_MAX,
                  .has_file = true,
                  .file_bytes = 200 * MiB},
                 LEVEL_WARN,
                 {800 * MiB, 0, false}},
                {"nothing known: 10%",
                 {.current_bytes = 900 * MiB,
                  .limit_bytes = 1000 * MiB,
                  .high_bytes = CGROUP_LIMIT_MAX},
                 LEVEL_WARN,
                 {900 * MiB, 0, false}},
                {"high above the limit does not count",
                 {.current_bytes = 100 * MiB,
                  .limit_bytes = 1000 * MiB,
                  .high_bytes = 2000 * MiB,
                  .has_anon = true,
                  .anon_bytes = 100 * MiB},
                 LEVEL_WARN,
                 {950 * MiB, 0, false}},
                {"recovered: nothing to apply",
                 {.current_bytes = 100 * MiB,
                  .limit_bytes = 1000 * MiB,
                  .high_bytes = CGROUP_LIMIT_MAX,
                  .has_anon = true,
                  .anon_bytes = 100 * MiB},
                 LEVEL_OK,
                 {0, 0, false}},
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                struct webhook_advice a;

                print_message("case %zu: %s\n", i, table[i].name);
                webhook_advice_compute(&table[i].m, table[i].level, &a);
                assert_int_equal(a.gomemlimit_bytes, table[i].want.gomemlimit_bytes);
                assert_true(a.shed_fraction == table[i].want.shed_fraction);
                assert_int_equal(a.drop_caches, table[i].want.drop_caches);
        }
}

/* ---- Retry-After ---- */

static void test_webhook_parse_retry_after_forms(void **state _unused_)
{
        /* Wed, 21 Oct 2015 07:28:00 GMT */
        const uint64_t date = UINT64_C(1445412480) * SEC;
        uint64_t d = 77;

        assert_int_equal(webhook_parse_retry_after("120", 0, &d), 0);
        assert_int_equal(d, 120 * SEC);
        assert_int_equal(webhook_parse_retry_after(" 0 ", 0, &d), 0);
        assert_int_equal(d, 0);
        assert_int_equal(
                webhook_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", date - 30 * SEC, &d), 0);
        assert_int_equal(d, 30 * SEC);
        assert_int_equal(
                webhook_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", date + 30 * SEC, &d), 0);
        assert_int_equal(d, 0);

        d = 77;
        const char *bad[] = {"",
                             "soon",
                             "-1",
                             "1.5",
                             "12abc",
                             "99999999999999999999999",
                             "Wed, 21 Oct 2015 07:28:00 PST",
                             "Wed, 21 Foo 2015 07:28:00 GMT",
                             "Wed, 21 Oct 2015 07:28:00 GMT trailing"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                print_message("bad: '%s'\n", bad[i]);
                assert_int_equal(webhook_parse_retry_after(bad[i], date, &d), -EINVAL);
        }
        assert_int_equal(d, 77);
}

/* ---- scheduling on a fake clock ---- */

static struct webhook_message *msg(const char *id, const char *instance, enum event type)
{
        struct webhook_message *m = NULL;

        assert_int_equal(
                webhook_message_new(strdup(id), strdup(instance), type, strdup("{}"), 2, &m), 0);
        return m;
}

static const struct webhook_queue_params params = {
        .timeout_usec = 2 * SEC,
        .deadline_usec = 20 * SEC,
        .backoff_base_usec = 250 * USEC_PER_MSEC,
        .backoff_max_usec = 8 * SEC,
        .capacity = 4,
};

static int complete(struct webhook_queue *q, struct webhook_message *m, int error, long status,
                    uint64_t now, struct webhook_rng *rng, enum webhook_result *r)
{
        struct webhook_attempt a = {.error = error, .status = status};

        return webhook_queue_complete(q, m, &a, now, rng, r);
}

static void test_webhook_queue_delivers_on_2xx(void **state _unused_)
{
        struct webhook_queue q;
        struct webhook_rng rng = {1};
        struct webhook_message *m;
        enum webhook_result r = _WEBHOOK_RESULT_INVALID;

        webhook_queue_init(&q, &params);
        assert_int_equal(webhook_queue_push(&q, msg("msg_1", "a", EVENT_WARN), 1000), 0);
        assert_int_equal(webhook_queue_next_wakeup(&q), 1000);
        m = webhook_queue_next(&q, 1000);
        assert_non_null(m);
        assert_string_equal(m->id, "msg_1");
        assert_int_equal(webhook_queue_attempt_timeout(&q, m, 1000), 2 * SEC);
        assert_null(webhook_queue_next(&q, 1000)); /* one in flight at a time */
        assert_int_equal(complete(&q, m, 0, 202, 2000, &rng, &r), 1);
        assert_int_equal(r, WEBHOOK_DELIVERED);
        assert_int_equal(q.counters[WEBHOOK_DELIVERED], 1);
        assert_int_equal(q.n_messages, 0);
        assert_int_equal(q.attempts, 1);
        assert_int_equal(webhook_queue_next_wakeup(&q), USEC_INFINITY);
        webhook_queue_clear(&q);
}

static void test_webhook_queue_retries_5xx_with_full_jitter(void **state _unused_)
{
        struct webhook_queue q;
        struct webhook_rng rng = {42}, shadow = {42};
        struct webhook_message *m;
        uint64_t now = 0, cap = params.backoff_base_usec;
        enum webhook_result r;

        webhook_queue_init(&q, &params);
        assert_int_equal(webhook_queue_push(&q, msg("msg_1", "a", EVENT_DEGRADE), now), 0);
        for (unsigned attempt = 1; attempt <= 4; attempt++) {
                uint64_t want;

                m = webhook_queue_next(&q, now);
                assert_non_null(m);
                assert_int_equal(m->attempts, attempt);
                assert_int_equal(complete(&q, m, 0, 503, now, &rng, &r), 0);
                /* Uniform in [0, base * 2^(attempt-1)], drawn from the generator. */
                want = now + webhook_rng_next(&shadow) % (cap + 1);
                assert_int_equal(m->next_attempt_usec, want);
                assert_true(m->next_attempt_usec <= now + cap);
                assert_int_equal(webhook_queue_next_wakeup(&q), want);
                if (want > now)
                        assert_null(webhook_queue_next(&q, want - 1));
                now = want;
                cap *= 2;
        }
        m = webhook_queue_next(&q, now);
        assert_non_null(m);
        assert_int_equal(complete(&q, m, 0, 200, now, &rng, &r), 1);
        assert_int_equal(r, WEBHOOK_DELIVERED);
        assert_int_equal(q.attempts, 5);
        webhook_queue_clear(&q);
}

static void test_webhook_queue_gives_up_at_the_deadline(void **state _unused_)
{
        struct webhook_queue q;
        struct webhook_rng rng = {7};
        uint64_t now = 5 * SEC, last_attempt = 0;
        enum webhook_result r = _WEBHOOK_RESULT_INVALID;
        unsigned attempts = 0;

        webhook_queue_init(&q, &params);
        assert_int_equal(webhook_queue_push(&q, msg("msg_1", "a", EVENT_CRITICAL), now), 0);
        for (int guard = 0; guard < 1000; guard++) {
                struct webhook_message *m = webhook_queue_next(&q, now);

                assert_non_null(m);
                attempts++;
                last_attempt = now;
                /* The attempt may not run past the deadline. */
                assert_true(now + webhook_queue_attempt_timeout(&q, m, now) <= 25 * SEC);
                now += webhook_queue_attempt_timeout(&q, m, now); /* each one times out */
                if (complete(&q, m, -ETIMEDOUT, 0, now, &rng, &r) == 1)
                        break;
                now = webhook_queue_next_wakeup(&q);
        }
        assert_int_equal(r, WEBHOOK_FAILED);
        assert_true(attempts >= 3);
        assert_true(last_attempt < 25 * SEC);
        assert_true(now <= 25 * SEC);
        assert_int_equal(q.counters[WEBHOOK_FAILED], 1);
        assert_int_equal(q.n_messages, 0);
        webhook_queue_clear(&q);
}

static void test_webhook_queue_honours_retry_after(void **state _unused_)
{
        struct webhook_queue q;
        struct webhook_rng rng = {7};
        struct webhook_message *m;
        struct webhook_attempt a = {
                .status = 429, .has_retry_after = true, .retry_after_usec = 3 * SEC};
        enum webhook_result r;

        webhook_queue_init(&q, &params);
        assert_int_equal(webhook_queue_push(&q, msg("msg_1", "a", EVENT_WARN), 0), 0);
        m = webhook_queue_next(&q, 0);
        assert_int_equal(webhook_queue_complete(&q, m, &a, SEC, &rng, &r), 0);
        assert_int_equal(m->next_attempt_usec, 4 * SEC);

        /* Asked to wait beyond the deadline (20 s after queueing): give up now. */
        m = webhook_queue_next(&q, 4 * SEC);
        assert_non_null(m);
        a.status = 503;
        a.retry_after_usec = 16 * SEC;
        assert_int_equal(webhook_queue_complete(&q, m, &a, 5 * SEC, &rng, &r), 1);
        assert_int_equal(r, WEBHOOK_FAILED);
        assert_int_equal(q.attempts, 2);
        webhook_queue_clear(&q);
}

/* A receiver asking for an absurd wait is given up on, not retried at once (the sum wrapped). */
static void test_webhook_queue_huge_retry_after_gives_up(void **state _unused_)
{
        struct webhook_queue q;
        struct webhook_rng rng = {7};
        struct webhook_message *m;
        struct webhook_attempt a = {.status = 503, .has_retry_after = true};
        enum webhook_result r = _WEBHOOK_RESULT_INVALID;
        uint64_t now = 1000 * SEC;

        assert_int_equal(webhook_parse_retry_after("18446744073709", 0, &a.retry_after_usec), 0);
        webhook_queue_init(&q, &params);
        assert_int_equal(webhook_queue_push(&q, msg("msg_1", "a", EVENT_CRITICAL), now), 0);
        m = webhook_queue_next(&q, now);
        assert_non_null(m);
        assert_int_equal(webhook_queue_complete(&q, m, &a, now, &rng, &r), 1);
        assert_int_equal(r, WEBHOOK_FAILED);
        assert_int_equal(q.n_messages, 0);
        assert_null(webhook_queue_next(&q, now));
        assert_int_equal(q.attempts, 1);
        webhook_queue_clear(&q);
}

static void test_webhook_queue_status_classes(void **state _unused_)
{
        static const struct {
                int error;
                long status;
                int finished;
                enum webhook_result result;
        } table[] = {
                {0, 200, 1, WEBHOOK_DELIVERED},
                {0, 204, 1, WEBHOOK_DELIVERED},
                {-EFBIG, 200, 1, WEBHOOK_DELIVERED}, /* answered, then the body was cut off */
                {0, 400, 1, WEBHOOK_FAILED},
                {0, 401, 1, WEBHOOK_FAILED},
                {0, 404, 1, WEBHOOK_FAILED},
                {0, 302, 1, WEBHOOK_FAILED},
                {0, 408, 0, 0},
                {0, 429, 0, 0},
                {0, 500, 0, 0},
                {0, 503, 0, 0},
                {-ETIMEDOUT, 0, 0, 0},
                {-ECONNREFUSED, 0, 0, 0},
                {-EIO, 0, 0, 0},
                {-EPROTONOSUPPORT, 0, 1, WEBHOOK_FAILED},
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                struct webhook_queue q;
                struct webhook_rng rng = {i};
                struct webhook_message *m;
                enum webhook_result r = _WEBHOOK_RESULT_INVALID;

                print_message("case %zu: error %d status %ld\n", i, table[i].error,
                              table[i].status);
                webhook_queue_init(&q, &params);
                assert_int_equal(webhook_queue_push(&q, msg("msg_1", "a", EVENT_WARN), 0), 0);
                m = webhook_queue_next(&q, 0);
                assert_int_equal(complete(&q, m, table[i].error, table[i].status, SEC, &rng, &r),
                                 table[i].finished);
                if (table[i].finished) {
                        assert_int_equal(r, table[i].result);
                        assert_int_equal(q.counters[table[i].result], 1);
                        assert_int_equal(q.n_messages, 0);
                } else {
                        assert_int_equal(q.n_messages, 1);
                        assert_true(m->next_attempt_usec >= SEC);
                }
                webhook_queue_clear(&q);
        }
}

static void test_webhook_queue_410_disables_the_endpoint(void **state _unused_)
{
        struct webhook_queue q;
        struct webhook_rng rng = {7};
        struct webhook_message *m;
        enum webhook_result r;

        webhook_queue_init(&q, &params);
        assert_int_equal(webhook_queue_push(&q, msg("msg_1", "a", EVENT_WARN), 0), 0);
        assert_int_equal(webhook_queue_push(&q, msg("msg_2", "b", EVENT_WARN), 0), 0);
        assert_int_equal(webhook_queue_push(&q, msg("msg_3", "a", EVENT_OOM_KILL), 0), 0);
        m = webhook_queue_next(&q, 0);
        assert_string_equal(m->id, "msg_1");
        assert_int_equal(complete(&q, m, 0, 410, SEC, &rng, &r), 1);
        assert_int_equal(r, WEBHOOK_DISABLED);
        assert_true(q.disabled);
        assert_int_equal(q.n_messages, 0);
        assert_int_equal(q.counters[WEBHOOK_DISABLED], 3);
        assert_null(webhook_queue_next(&q, 2 * SEC));
        assert_int_equal(webhook_queue_push(&q, msg("msg_4", "a", EVENT_CRITICAL), 2 * SEC),
                         -ESHUTDOWN);
        assert_int_equal(q.counters[WEBHOOK_DISABLED], 4);
        assert_int_equal(q.counters[WEBHOOK_DELIVERED] + q.counters[WEBHOOK_FAILED], 0);
        webhook_queue_clear(&q);
}

static void test_webhook_queue_supersedes_stale_level_events(void **state _unused_)
{
        struct webhook_queue q;
        struct webhook_rng rng = {7};
        struct webhook_message *m;
        enum webhook_result r;

        webhook_queue_init(&q, &params);
        /* warn(a) goes out and fails; degrade(a) and an oom_kill(a) arrive meanwhile. */
        assert_int_equal(webhook_queue_push(&q, msg("msg_1", "a", EVENT_WARN), 0), 0);
        m = webhook_queue_next(&q, 0);
        assert_string_equal(m->id, "msg_1");
        assert_int_equal(webhook_queue_push(&q, msg("msg_2", "a", EVENT_DEGRADE), 10), 0);
        assert_int_equal(webhook_queue_push(&q, msg("msg_3", "a", EVENT_OOM_KILL), 20), 0);
        assert_int_equal(webhook_queue_push(&q, msg("msg_4", "b", EVENT_WARN), 30), 0);
        assert_true(m->superseded);
        assert_int_equal(complete(&q, m, 0, 500, 40, &rng, &r), 1);
        assert_int_equal(r, WEBHOOK_SUPERSEDED); /* not retried */

        /* recovered(a) arrives while degrade(a) still waits: no degrade after recovered. */
        assert_int_equal(webhook_queue_push(&q, msg("msg_5", "a", EVENT_RECOVERED), 50), 0);
        assert_int_equal(q.counters[WEBHOOK_SUPERSEDED], 2);
        assert_int_equal(q.n_messages, 3);

        static const char *const order[] = {"msg_3", "msg_4", "msg_5"};
        for (size_t i = 0; i < ELEMENTSOF(order); i++) {
                m = webhook_queue_next(&q, 100);
                assert_non_null(m);
                assert_string_equal(m->id, order[i]);
                assert_int_equal(complete(&q, m, 0, 200, 100, &rng, &r), 1);
        }
        assert_int_equal(q.counters[WEBHOOK_DELIVERED], 3);
        webhook_queue_clear(&q);
}

static void test_webhook_queue_superseded_in_flight_still_counts_if_delivered(void **state _unused_)
{
        struct webhook_queue q;
        struct webhook_rng rng = {7};
        struct webhook_message *m;
        enum webhook_result r;

        webhook_queue_init(&q, &params);
        assert_int_equal(webhook_queue_push(&q, msg("msg_1", "a", EVENT_WARN), 0), 0);
        m = webhook_queue_next(&q, 0);
        assert_int_equal(webhook_queue_push(&q, msg("msg_2", "a", EVENT_CRITICAL), 10), 0);
        assert_int_equal(complete(&q, m, 0, 200, 40, &rng, &r), 1);
        assert_int_equal(r, WEBHOOK_DELIVERED);
        m = webhook_queue_next(&q, 50);
        assert_string_equal(m->id, "msg_2");
        webhook_queue_clear(&q);
}

static void test_webhook_queue_full_drops_oldest_non_critical(void **state _unused_)
{
        struct webhook_queue q;
        struct webhook_message *m;

        webhook_queue_init(&q, &params); /* capacity 4 */
        assert_int_equal(webhook_queue_push(&q, msg("c1", "a", EVENT_CRITICAL), 0), 0);
        assert_int_equal(webhook_queue_push(&q, msg("p1", "a", EVENT_PROFILE_CAPTURED), 1), 0);
        assert_int_equal(webhook_queue_push(&q, msg("w2", "b", EVENT_WARN), 2), 0);
        assert_int_equal(webhook_queue_push(&q, msg("c3", "c", EVENT_CRITICAL), 3), 0);
        assert_int_equal(webhook_queue_push(&q, msg("o1", "a", EVENT_OOM_KILL), 4), 0);
        assert_int_equal(q.counters[WEBHOOK_DROPPED], 1);
        assert_int_equal(q.n_messages, 4);
        assert_string_equal(q.messages[0]->id, "c1");
        assert_string_equal(q.messages[1]->id, "w2"); /* p1 went */

        assert_int_equal(webhook_queue_push(&q, msg("c4", "d", EVENT_CRITICAL), 5), 0);
        assert_int_equal(webhook_queue_push(&q, msg("c5", "e", EVENT_CRITICAL), 6), 0);
        assert_int_equal(q.counters[WEBHOOK_DROPPED], 3);
        assert_string_equal(q.messages[0]->id, "c1");
        assert_string_equal(q.messages[1]->id, "c3");

        /* All critical, the oldest waiting one goes — never the one in flight. */
        m = webhook_queue_next(&q, 10);
        assert_string_equal(m->id, "c1");
        assert_int_equal(webhook_queue_push(&q, msg("c6", "f", EVENT_CRITICAL), 11), 0);
        assert_int_equal(q.counters[WEBHOOK_DROPPED], 4);
        assert_string_equal(q.messages[0]->id, "c1");
        assert_string_equal(q.messages[1]->id, "c4");
        webhook_queue_clear(&q);
}

static void test_webhook_queue_expires_waiting_messages(void **state _unused_)
{
        struct webhook_queue q;
        struct webhook_rng rng = {7};
        struct webhook_message *m;
        enum webhook_result r;

        webhook_queue_init(&q, &params);
        assert_int_equal(webhook_queue_push(&q, msg("msg_1", "a", EVENT_WARN), 0), 0);
        assert_int_equal(webhook_queue_push(&q, msg("msg_2", "b", EVENT_WARN), SEC), 0);
        m = webhook_queue_next(&q, SEC);
        /* While msg_1 is in flight only msg_2's deadline wakes the queue. */
        assert_int_equal(webhook_queue_next_wakeup(&q), 21 * SEC);
        assert_int_equal(webhook_queue_attempt_timeout(&q, m, 19 * SEC + SEC / 2), SEC / 2);
        assert_int_equal(complete(&q, m, -ETIMEDOUT, 0, 20 * SEC, &rng, &r), 1);
        assert_int_equal(r, WEBHOOK_FAILED);
        assert_null(webhook_queue_next(&q, 21 * SEC));
        assert_int_equal(q.counters[WEBHOOK_FAILED], 2);
        assert_int_equal(q.n_messages, 0);
        webhook_queue_clear(&q);
}

static void test_webhook_result_names(void **state _unused_)
{
        assert_string_equal(webhook_result_to_string(WEBHOOK_DELIVERED), "delivered");
        assert_string_equal(webhook_result_to_string(WEBHOOK_FAILED), "failed");
        assert_string_equal(webhook_result_to_string(WEBHOOK_DROPPED), "dropped");
        assert_string_equal(webhook_result_to_string(WEBHOOK_SUPERSEDED), "superseded");
        assert_string_equal(webhook_result_to_string(WEBHOOK_DISABLED), "disabled");
        assert_null(webhook_result_to_string(_WEBHOOK_RESULT_MAX));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_webhook_sign_standard_webhooks_vector),
                cmocka_unit_test(test_webhook_sign_depends_on_every_part),
                cmocka_unit_test(test_webhook_key_from_secret_forms),
                cmocka_unit_test(test_webhook_format_time_rfc3339_utc),
                cmocka_unit_test(test_webhook_event_to_json_cloudevent),
                cmocka_unit_test(test_webhook_event_to_json_without_forecast_or_profiles),
                cmocka_unit_test(test_webhook_advice_compute_table),
                cmocka_unit_test(test_webhook_parse_retry_after_forms),
                cmocka_unit_test(test_webhook_queue_delivers_on_2xx),
                cmocka_unit_test(test_webhook_queue_retries_5xx_with_full_jitter),
                cmocka_unit_test(test_webhook_queue_gives_up_at_the_deadline),
                cmocka_unit_test(test_webhook_queue_honours_retry_after),
                cmocka_unit_test(test_webhook_queue_huge_retry_after_gives_up),
                cmocka_unit_test(test_webhook_queue_status_classes),
                cmocka_unit_test(test_webhook_queue_410_disables_the_endpoint),
                cmocka_unit_test(test_webhook_queue_supersedes_stale_level_events),
                cmocka_unit_test(test_webhook_queue_superseded_in_flight_still_counts_if_delivered),
                cmocka_unit_test(test_webhook_queue_full_drops_oldest_non_critical),
                cmocka_unit_test(test_webhook_queue_expires_waiting_messages),
                cmocka_unit_test(test_webhook_result_names),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}

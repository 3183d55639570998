/* SPDX-License-Identifier: MIT */
/*
 * The pure half of the notify stage: webhook bodies, signatures, advice and the delivery
 * schedule of each endpoint. Everything here takes the clock and the randomness as
 * arguments, so the unit tests replay retries and deadlines on a fake clock.
 */
#include <assert.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "memgov/webhook.h"

/* ---- Keys and signatures ---- */

static bool is_ascii_space(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_base64_char(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '+' || c == '/';
}

/* Strict standard base64 with padding, as Go's base64.StdEncoding reads it. */
static int base64_decode(const char *s, size_t n, uint8_t **ret, size_t *ret_size)
{
        size_t pad = 0;
        uint8_t *out;
        int k;

        if (n == 0 || n % 4 != 0 || n > INT32_MAX)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '=' && i >= n - 2) {
                        pad++;
                        continue;
                }
                if (pad > 0 || !is_base64_char(s[i]))
                        return -EINVAL;
        }
        out = malloc(n / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        k = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
        if (k < 0 || (size_t)k < pad) {
                free(out);
                return -EINVAL;
        }
        *ret = out;
        *ret_size = (size_t)k - pad; /* EVP_DecodeBlock counts the padding as zero bytes */
        return 0;
}

int webhook_key_from_secret(const void *content, size_t size, uint8_t **ret_key, size_t *ret_size)
{
        const char *s = content;
        uint8_t *key;

        if (!content || !ret_key || !ret_size)
                return -EINVAL;
        while (size > 0 && is_ascii_space(s[0])) {
                s++;
                size--;
        }
        while (size > 0 && is_ascii_space(s[size - 1]))
                size--;
        if (size == 0)
                return -EINVAL;

        if (size >= 6 && memcmp(s, "whsec_", 6) == 0)
                return base64_decode(s + 6, size - 6, ret_key, ret_size);

        key = malloc(size);
        if (!key)
                return -ENOMEM;
        memcpy(key, s, size);
        *ret_key = key;
        *ret_size = size;
        return 0;
}

int webhook_sign(const uint8_t *key, size_t key_size, const char *id, uint64_t timestamp_s,
                 const void *body, size_t body_size, char **ret)
{
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned mac_size = 0;
        char prefix[512];
        char *msg, *out;
        size_t prefix_size;
        int n;

        if (!key || key_size == 0 || key_size > INT32_MAX || !id || (!body && body_size) || !ret)
                return -EINVAL;
        n = snprintf(prefix, sizeof(prefix), "%s.%llu.", id, (unsigned long long)timestamp_s);
        if (n < 0 || (size_t)n >= sizeof(prefix))
                return -EINVAL;
        prefix_size = (size_t)n;

        msg = malloc(prefix_size + body_size + 1);
        if (!msg)
                return -ENOMEM;
        memcpy(msg, prefix, prefix_size);
        if (body_size)
                memcpy(msg + prefix_size, body, body_size);
        if (!HMAC(EVP_sha256(), key, (int)key_size, (const unsigned char *)msg,
                  prefix_size + body_size, mac, &mac_size)) {
                free(msg);
                return -ENOMEM;
        }
        free(msg);

        out = malloc(3 + (mac_size + 2) / 3 * 4 + 1);
        if (!out)
                return -ENOMEM;
        memcpy(out, "v1,", 3);
        (void)EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)mac_size);
        *ret = out;
        return 0;
}

/* ---- Advice ---- */

void webhook_advice_compute(const struct webhook_memory *m, enum level level,
                            struct webhook_advice *ret)
{
        static const double shed[_LEVEL_MAX] = {
                [LEVEL_OK] = 0,
                [LEVEL_WARN] = 0,
                [LEVEL_DEGRADE] = 0.25,
                [LEVEL_CRITICAL] = 0.5,
        };
        struct webhook_advice a = {0};
        uint64_t base, reserve;

        if (level <= LEVEL_OK || level >= _LEVEL_MAX) {
                *ret = a;
                return;
        }
        a.shed_fraction = shed[level];
        a.drop_caches = level >= LEVEL_DEGRADE;

        base = m->limit_bytes;
        if (m->high_bytes != CGROUP_LIMIT_MAX && m->high_bytes > 0 && m->high_bytes < base)
                base = m->high_bytes;
        if (base != CGROUP_LIMIT_MAX && base > 0) {
                /*
                 * The runtime's limit counts its own heap only; what else the cgroup holds
                 * (page cache, kernel memory, C allocations) must fit beside it. Page cache
                 * is reclaimable, so the reserve is capped: telling a cache-heavy service to
                 * collect garbage all the time would not help it.
                 */
                if (m->has_anon)
                        reserve = m->current_bytes > m->anon_bytes
                                          ? m->current_bytes - m->anon_bytes
                                          : 0;
                else if (m->has_file)
                        reserve = m->file_bytes;
                else
                        reserve = base / 10;
                reserve = MAX(reserve, base / 20);
                reserve = MIN(reserve, base / 2);
                a.gomemlimit_bytes = base - reserve;
        }
        *ret = a;
}

/* ---- The event body ---- */

char *webhook_format_time(uint64_t realtime_usec, char *buf, size_t size)
{
        time_t t = (time_t)(realtime_usec / USEC_PER_SEC);
        unsigned ms = (unsigned)(realtime_usec % USEC_PER_SEC / USEC_PER_MSEC);
        struct tm tm;

        if (!gmtime_r(&t, &tm)) {
                (void)snprintf(buf, size, "1970-01-01T00:00:00.000Z");
                return buf;
        }
        (void)snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
                       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
        return buf;
}

/* Builds a json-c tree, remembering whether any allocation failed. */
struct json_builder {
        bool oom;
};

static void add(struct json_builder *b, struct json_object *o, const char *key,
                struct json_object *v)
{
        if (!o || !v || json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                b->oom = true;
        }
}

static void add_null(struct json_builder *b, struct json_object *o, const char *key)
{
        if (!o || json_object_object_add(o, key, NULL) < 0)
                b->oom = true;
}

static void add_string(struct json_builder *b, struct json_object *o, const char *key,
                       const char *s)
{
        if (s)
                add(b, o, key, json_object_new_string(s));
        else
                add_null(b, o, key);
}

static void add_bytes(struct json_builder *b, struct json_object *o, const char *key, uint64_t v)
{
        if (v == CGROUP_LIMIT_MAX)
                add_null(b, o, key);
        else
                add(b, o, key, json_object_new_uint64(v));
}

/* A number with at most `decimals` decimals and no trailing zeros: 12.5, 0.25, 3. */
static void add_number(struct json_builder *b, struct json_object *o, const char *key, double v,
                       int decimals)
{
        char s[64];
        size_t n;

        if (v != v || v > 1e300 || v < -1e300) {
                add_null(b, o, key);
                return;
        }
        (void)snprintf(s, sizeof(s), "%.*f", decimals, v);
        n = strlen(s);
        if (strchr(s, '.')) {
                while (n > 0 && s[n - 1] == '0')
                        s[--n] = '\0';
                if (n > 0 && s[n - 1] == '.')
                        s[--n] = '\0';
        }
        if (strcmp(s, "-0") == 0)
                strcpy(s, "0");
        add(b, o, key, json_object_new_double_s(v, s));
}

static void add_seconds(struct json_builder *b, struct json_object *o, const char *key,
                        uint64_t usec)
{
        if (usec == USEC_INFINITY)
                add_null(b, o, key);
        else
                add_number(b, o, key, (double)usec / (double)USEC_PER_SEC, 3);
}

static void add_strings(struct json_builder *b, struct json_object *o, const char *key,
                        const char *const *v, size_t n)
{
        struct json_object *a = json_object_new_array();

        for (size_t i = 0; a && i < n; i++) {
                struct json_object *s = json_object_new_string(v[i] ? v[i] : "");
                if (!s || json_object_array_add(a, s) < 0) {
                        json_object_put(s);
                        b->oom = true;
                }
        }
        add(b, o, key, a);
}

static struct json_object *event_data(struct json_builder *b, const struct webhook_event *ev)
{
        struct json_object *d = json_object_new_object(), *m, *f, *a;
        const struct webhook_memory *mem = &ev->memory;

        add_string(b, d, "service", ev->service);
        add_string(b, d, "cgroup", ev->cgroup);
        add_string(b, d, "level", level_to_string(ev->level));
        add_string(b, d, "previous_level", level_to_string(ev->previous_level));

        m = json_object_new_object();
        add_bytes(b, m, "current_bytes", mem->current_bytes);
        add_bytes(b, m, "limit_bytes", mem->limit_bytes);
        add_bytes(b, m, "high_bytes", mem->high_bytes);
        add_bytes(b, m, "max_bytes", mem->max_bytes);
        add_bytes(b, m, "anon_bytes", mem->has_anon ? mem->anon_bytes : CGROUP_LIMIT_MAX);
        add_bytes(b, m, "file_bytes", mem->has_file ? mem->file_bytes : CGROUP_LIMIT_MAX);
        add(b, d, "memory", m);

        if (ev->forecast.known) {
                f = json_object_new_object();
                add_seconds(b, f, "eta_s", ev->forecast.eta_usec);
                add_seconds(b, f, "eta_lower_s", ev->forecast.eta_lower_usec);
                add_seconds(b, f, "eta_upper_s", ev->forecast.eta_upper_usec);
                add_number(b, f, "slope_bytes_per_s", ev->forecast.slope_bytes_per_s, 1);
                add(b, d, "forecast", f);
        } else
                add_null(b, d, "forecast");

        a = json_object_new_object();
        add(b, a, "gomemlimit_bytes", json_object_new_uint64(ev->advice.gomemlimit_bytes));
        add_number(b, a, "shed_fraction", ev->advice.shed_fraction, 3);
        add(b, a, "drop_caches", json_object_new_boolean(ev->advice.drop_caches));
        add(b, d, "advice", a);

        if (ev->n_profiles > 0)
                add_strings(b, d, "profiles", ev->profiles, ev->n_profiles);
        if (ev->n_suspects > 0)
                add_strings(b, d, "suspects", ev->suspects, ev->n_suspects);
        return d;
}

int webhook_event_to_json(const struct webhook_event *ev, const char *host, const char *id,
                          char **ret)
{
        struct json_builder b = {0};
        struct json_object *o;
        const char *name = ev ? event_to_string(ev->type) : NULL, *s;
        char type[64], source[512], when[32];
        char *out;

        if (!name || !ev->service || !ev->cgroup || !host || !id || !ret)
                return -EINVAL;
        (void)snprintf(type, sizeof(type), "io.memgov.%s", name);
        (void)snprintf(source, sizeof(source), "memgovd/%s/%s", host, ev->service);

        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        add_string(&b, o, "specversion", "1.0");
        add_string(&b, o, "type", type);
        add_string(&b, o, "source", source);
        add_string(&b, o, "subject", ev->cgroup);
        add_string(&b, o, "id", id);
        add_string(&b, o, "time", webhook_format_time(ev->time_realtime_usec, when, sizeof(when)));
        add_string(&b, o, "datacontenttype", "application/json");
        add(&b, o, "data", event_data(&b, ev));

        s = b.oom ? NULL
                  : json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE);
        out = s ? strdup(s) : NULL;
        json_object_put(o);
        if (!out)
                return -ENOMEM;
        *ret = out;
        return 0;
}

/* ---- Retry-After ---- */

static int parse_http_date(const char *s, int64_t *ret_s)
{
        static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        char wday[4], mon[4], zone[4];
        int day, year, hh, mm, ss, consumed = 0;
        struct tm tm = {0};
        time_t t;

        /* IMF-fixdate, the one form senders must use (RFC 9110 §5.6.7). */
        if (sscanf(s, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d %3[A-Z]%n", wday, &day, mon,
                   &year, &hh, &mm, &ss, zone, &consumed) != 8 ||
            s[consumed] != '\0' || strcmp(zone, "GMT") != 0)
                return -EINVAL;
        tm.tm_mon = -1;
        for (int i = 0; i < 12; i++)
                if (strcmp(mon, months[i]) == 0)
                        tm.tm_mon = i;
        if (tm.tm_mon < 0 || day < 1 || day > 31 || year < 1970 || hh > 23 || mm > 59 || ss > 60 ||
            hh < 0 || mm < 0 || ss < 0)
                return -EINVAL;
        tm.tm_mday = day;
        tm.tm_year = year - 1900;
        tm.tm_hour = hh;
        tm.tm_min = mm;
        tm.tm_sec = ss;
        t = timegm(&tm);
        if (t == (time_t)-1)
                return -EINVAL;
        *ret_s = (int64_t)t;
        return 0;
}

int webhook_parse_retry_after(const char *value, uint64_t now_realtime_usec, uint64_t *ret_usec)
{
        int64_t when;

        if (!value || !ret_usec)
                return -EINVAL;
        while (*value == ' ' || *value == '\t')
                value++;
        if (*value >= '0' && *value <= '9') {
                uint64_t v = 0;
                const char *p = value;

                for (; *p >= '0' && *p <= '9'; p++) {
                        if (v > (UINT64_MAX / USEC_PER_SEC - 9) / 10)
                                return -EINVAL;
                        v = v * 10 + (uint64_t)(*p - '0');
                }
                while (*p == ' ' || *p == '\t')
                        p++;
                if (*p != '\0')
                        return -EINVAL;
                *ret_usec = v * USEC_PER_SEC;
                return 0;
        }
        if (parse_http_date(value, &when) < 0)
                return -EINVAL;
        if (when < 0 || (uint64_t)when * USEC_PER_SEC <= now_realtime_usec)
                *ret_usec = 0;
        else
                *ret_usec = (uint64_t)when * USEC_PER_SEC - now_realtime_usec;
        return 0;
}

/* ---- Scheduling ---- */

uint64_t webhook_rng_next(struct webhook_rng *rng)
{
        uint64_t z = (rng->state += UINT64_C(0x9e3779b97f4a7c15));

        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

static const char *const result_names[_WEBHOOK_RESULT_MAX] = {
        [WEBHOOK_DELIVERED] = "delivered", [WEBHOOK_FAILED] = "failed",
        [WEBHOOK_DROPPED] = "dropped",     [WEBHOOK_SUPERSEDED] = "superseded",
        [WEBHOOK_DISABLED] = "disabled",
};

const char *webhook_result_to_string(enum webhook_result r)
{
        if (r < 0 || r >= _WEBHOOK_RESULT_MAX)
                return NULL;
        return result_names[r];
}

int webhook_message_new(char *id, char *instance, enum event type, char *body, size_t body_size,
                        struct webhook_message **ret)
{
        struct webhook_message *m = NULL;

        if (id && instance && body)
                m = calloc(1, sizeof(*m));
        if (!m) {
                free(id);
                free(instance);
                free(body);
                return -ENOMEM;
        }
        *m = (struct webhook_message){
                .id = id,
                .instance = instance,
                .type = type,
                .body = body,
                .body_size = body_size,
        };
        *ret = m;
        return 0;
}

struct webhook_message *webhook_message_free(struct webhook_message *m)
{
        if (!m)
                return NULL;
        free(m->id);
        free(m->instance);
        free(m->body);
        free(m);
        return NULL;
}

void webhook_queue_set_params(struct webhook_queue *q, const struct webhook_queue_params *params)
{
        q->params = *params;
        if (q->params.timeout_usec == 0)
                q->params.timeout_usec = 2 * USEC_PER_SEC;
        if (q->params.deadline_usec == 0)
                q->params.deadline_usec = 20 * USEC_PER_SEC;
        if (q->params.backoff_base_usec == 0)
                q->params.backoff_base_usec = WEBHOOK_BACKOFF_BASE_USEC;
        if (q->params.backoff_max_usec == 0)
                q->params.backoff_max_usec = WEBHOOK_BACKOFF_MAX_USEC;
        if (q->params.capacity == 0)
                q->params.capacity = WEBHOOK_QUEUE_CAPACITY;
        q->params.capacity = MAX(q->params.capacity, (size_t)2);
}

void webhook_queue_init(struct webhook_queue *q, const struct webhook_queue_params *params)
{
        *q = (struct webhook_queue){0};
        webhook_queue_set_params(q, params);
}

void webhook_queue_clear(struct webhook_queue *q)
{
        for (size_t i = 0; i < q->n_messages; i++)
                webhook_message_free(q->messages[i]);
        free(q->messages);
        q->messages = NULL;
        q->n_messages = 0;
}

static bool is_level_event(enum event e)
{
        return e == EVENT_WARN || e == EVENT_DEGRADE || e == EVENT_CRITICAL || e == EVENT_RECOVERED;
}

/* Remove the message at index i, count it under r, free it. */
static void queue_finish(struct webhook_queue *q, size_t i, enum webhook_result r)
{
        webhook_message_free(q->messages[i]);
        memmove(q->messages + i, q->messages + i + 1,
                (q->n_messages - i - 1) * sizeof(*q->messages));
        q->n_messages--;
        q->counters[r]++;
}

static size_t queue_index(const struct webhook_queue *q, const struct webhook_message *m)
{
        for (size_t i = 0; i < q->n_messages; i++)
                if (q->messages[i] == m)
                        return i;
        return SIZE_MAX;
}

int webhook_queue_push(struct webhook_queue *q, struct webhook_message *m, uint64_t now_usec)
{
        struct webhook_message **a;

        if (q->disabled) {
                webhook_message_free(m);
                q->counters[WEBHOOK_DISABLED]++;
                return -ESHUTDOWN;
        }

        if (is_level_event(m->type))
                for (size_t i = q->n_messages; i-- > 0;) {
                        struct webhook_message *old = q->messages[i];

                        if (!is_level_event(old->type) || strcmp(old->instance, m->instance) != 0)
                                continue;
                        if (old->in_flight)
                                old->superseded = true;
                        else
                                queue_finish(q, i, WEBHOOK_SUPERSEDED);
                }

        if (q->n_messages >= q->params.capacity) {
                size_t victim = SIZE_MAX;

                for (size_t i = 0; i < q->n_messages && victim == SIZE_MAX; i++)
                        if (!q->messages[i]->in_flight && q->messages[i]->type != EVENT_CRITICAL)
                                victim = i;
                for (size_t i = 0; i < q->n_messages && victim == SIZE_MAX; i++)
                        if (!q->messages[i]->in_flight)
                                victim = i;
                if (victim != SIZE_MAX)
                        queue_finish(q, victim, WEBHOOK_DROPPED);
        }

        a = realloc(q->messages, (q->n_messages + 1) * sizeof(*q->messages));
        if (!a) {
                webhook_message_free(m);
                q->counters[WEBHOOK_DROPPED]++;
                return -ENOMEM;
        }
        q->messages = a;
        m->queued_usec = now_usec;
        m->next_attempt_usec = now_usec;
        m->deadline_usec = now_usec + q->params.deadline_usec;
        m->attempts = 0;
        m->in_flight = false;
        m->superseded = false;
        q->messages[q->n_messages++] = m;
        return 0;
}

struct webhook_message *webhook_queue_next(struct webhook_queue *q, uint64_t now_usec)
{
        struct webhook_message *due = NULL;
        bool busy = false;

        /* A message past its deadline is worth nothing: the OOM it warned of has come. */
        for (size_t i = q->n_messages; i-- > 0;) {
                struct webhook_message *m = q->messages[i];

                if (m->in_flight)
                        busy = true;
                else if (m->deadline_usec <= now_usec)
                        queue_finish(q, i, WEBHOOK_FAILED);
        }
        if (busy || q->disabled)
                return NULL;

        for (size_t i = 0; i < q->n_messages && !due; i++)
                if (q->messages[i]->next_attempt_usec <= now_usec)
                        due = q->messages[i];
        if (!due)
                return NULL;
        due->in_flight = true;
        due->attempts++;
        q->attempts++;
        return due;
}

uint64_t webhook_queue_attempt_timeout(const struct webhook_queue *q,
                                       const struct webhook_message *m, uint64_t now_usec)
{
        uint64_t left = m->deadline_usec > now_usec ? m->deadline_usec - now_usec : 0;

        return MAX(MIN(q->params.timeout_usec, left), USEC_PER_MSEC);
}

static bool is_retriable(const struct webhook_attempt *a)
{
        if (a->status == 0)
                /* No answer. A URL scheme we refuse or a bad option stays bad. */
                return a->error != -EPROTONOSUPPORT && a->error != -EINVAL;
        if (a->status == 408 || a->status == 429)
                return true;
        return a->status >= 500 || a->status < 300;
}

static uint64_t backoff(const struct webhook_queue *q, unsigned attempts, struct webhook_rng *rng)
{
        uint64_t cap = q->params.backoff_base_usec;

        for (unsigned i = 1; i < attempts && cap < q->params.backoff_max_usec; i++)
                cap *= 2;
        cap = MIN(cap, q->params.backoff_max_usec);
        /* Full jitter: receivers that failed together do not all come back together. */
        return webhook_rng_next(rng) % (cap + 1);
}

int webhook_queue_complete(struct webhook_queue *q, struct webhook_message *m,
                           const struct webhook_attempt *a, uint64_t now_usec,
                           struct webhook_rng *rng, enum webhook_result *ret_result)
{
        size_t i = queue_index(q, m);
        enum webhook_result r;
        uint64_t next;

        assert(i != SIZE_MAX);
        assert(m->in_flight);
        m->in_flight = false;

        /* An answer counts even if its body then broke off: the receiver has the event. */
        if (a->status >= 200 && a->status < 300)
                r = WEBHOOK_DELIVERED;
        else if (a->status == 410) {
                q->disabled = true;
                for (size_t j = q->n_messages; j-- > 0;)
                        if (q->messages[j] != m)
                                queue_finish(q, j, WEBHOOK_DISABLED);
                i = queue_index(q, m);
                r = WEBHOOK_DISABLED;
        } else if (m->superseded)
                r = WEBHOOK_SUPERSEDED;
        else if (!is_retriable(a))
                r = WEBHOOK_FAILED;
        else {
                if (a->has_retry_after)
                        next = now_usec + a->retry_after_usec;
                else
                        next = now_usec + backoff(q, m->attempts, rng);
                if (next >= m->deadline_usec)
                        r = WEBHOOK_FAILED;
                else {
                        m->next_attempt_usec = next;
                        return 0;
                }
        }

        queue_finish(q, i, r);
        if (ret_result)
                *ret_result = r;
        return 1;
}

uint64_t webhook_queue_next_wakeup(const struct webhook_queue *q)
{
        uint64_t t = USEC_INFINITY;
        bool busy = false;

        for (size_t i = 0; i < q->n_messages; i++)
                busy = busy || q->messages[i]->in_flight;
        for (size_t i = 0; i < q->n_messages; i++) {
                const struct webhook_message *m = q->messages[i];

                if (m->in_flight)
                        continue;
                t = MIN(t, m->deadline_usec);
                if (!busy && !q->disabled)
                        t = MIN(t, m->next_attempt_usec);
        }
        return t;
}

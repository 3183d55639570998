/* SPDX-License-Identifier: MIT */
/*
 * The pure half of the notify stage, what to send: the CloudEvents body, its Standard
 * Webhooks signature, the advice, and the reading of Retry-After. The schedule (when to
 * send) is governor/webhook-queue.c.
 */
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

/* SPDX-License-Identifier: MIT */
/*
 * The notify effect (decide → notify): puts events in the queues of the endpoints that want
 * them, and runs each queue on the loop — one attempt in flight per endpoint, signed at the
 * moment it is sent, settled by the pure schedule in governor/webhook.c.
 */
#include <limits.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "memgov/log.h"
#include "memgov/notify.h"

struct notify_endpoint {
        struct notify *notify;
        char *service;
        char *url;
        uint8_t *key; /* NULL: unsigned (loopback only, the policy checks) */
        size_t key_size;
        unsigned events_mask;
        struct webhook_queue queue;
        sd_event_source *timer;
        struct http_request *request; /* the attempt in flight */
        struct webhook_message *in_flight;
};

struct notify {
        sd_event *event;
        struct http_client *http;
        char *host;
        struct notify_endpoint **endpoints;
        size_t n_endpoints;
        struct webhook_rng rng;
        uint64_t id_nonce;
        uint64_t id_counter;
        notify_delivery_fn on_delivery;
        void *on_delivery_userdata;
};

static uint64_t now_monotonic(const struct notify *n)
{
        uint64_t t = 0;

        (void)sd_event_now(n->event, CLOCK_MONOTONIC, &t);
        return t;
}

static uint64_t now_realtime(void)
{
        struct timespec ts;

        (void)clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

static struct notify_endpoint *endpoint_free(struct notify_endpoint *ep)
{
        if (!ep)
                return NULL;
        /* Cancelled before the queue goes: the message in flight belongs to the queue. */
        (void)http_request_cancel(ep->request);
        webhook_queue_clear(&ep->queue);
        sd_event_source_disable_unref(ep->timer);
        free(ep->service);
        free(ep->url);
        if (ep->key)
                memset(ep->key, 0, ep->key_size);
        free(ep->key);
        free(ep);
        return NULL;
}

static void endpoint_kick(struct notify_endpoint *ep);

static int on_timer(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata)
{
        endpoint_kick(userdata);
        return 0;
}

/* Arm the endpoint's timer for the queue's next need, or switch it off. */
static void endpoint_arm(struct notify_endpoint *ep)
{
        uint64_t when = webhook_queue_next_wakeup(&ep->queue);
        int r;

        if (when == USEC_INFINITY) {
                if (ep->timer)
                        (void)sd_event_source_set_enabled(ep->timer, SD_EVENT_OFF);
                return;
        }
        if (ep->timer) {
                r = sd_event_source_set_time(ep->timer, when);
                if (r >= 0)
                        r = sd_event_source_set_enabled(ep->timer, SD_EVENT_ONESHOT);
        } else {
                r = sd_event_add_time(ep->notify->event, &ep->timer, CLOCK_MONOTONIC, when,
                                      USEC_PER_MSEC, on_timer, ep);
                if (r >= 0)
                        (void)sd_event_source_set_description(ep->timer, "notify-retry");
        }
        if (r < 0)
                log_error_errno(r, "webhook %s: cannot arm the retry timer: %m", ep->url);
}

static void report(struct notify_endpoint *ep, const char *cgroup, const char *id, enum event event,
                   enum webhook_result result, long http_status, unsigned attempts)
{
        struct notify *n = ep->notify;

        if (!n->on_delivery)
                return;
        n->on_delivery(
                &(struct notify_delivery){
                        .service = ep->service,
                        .cgroup = cgroup,
                        .url = ep->url,
                        .id = id,
                        .event = event,
                        .result = result,
                        .http_status = http_status,
                        .attempts = attempts,
                },
                n->on_delivery_userdata);
}

static void endpoint_settled(struct notify_endpoint *ep, struct webhook_message *m,
                             const struct webhook_attempt *a, const char *error_text)
{
        enum webhook_result result = _WEBHOOK_RESULT_INVALID;
        _cleanup_free_ char *id = strdup(m->id);
        _cleanup_free_ char *cgroup = strdup(m->instance ?: "");
        enum event type = m->type;
        const char *event = event_to_string(m->type);
        unsigned attempts = m->attempts;
        char what[128];
        int done;

        if (a->status > 0 && a->has_retry_after)
                (void)snprintf(what, sizeof(what), "HTTP %ld, Retry-After %llu s", a->status,
                               (unsigned long long)(a->retry_after_usec / USEC_PER_SEC));
        else if (a->status > 0)
                (void)snprintf(what, sizeof(what), "HTTP %ld", a->status);
        else
                (void)snprintf(what, sizeof(what), "%s",
                               error_text && error_text[0] ? error_text : strerror(-a->error));

        ep->in_flight = NULL;
        done = webhook_queue_complete(&ep->queue, m, a, now_monotonic(ep->notify), &ep->notify->rng,
                                      &result);
        if (!done) {
                log_debug("webhook %s: %s %s, attempt %u: %s; retrying", ep->url, event,
                          id ? id : "?", attempts, what);
                return;
        }
        switch (result) {
        case WEBHOOK_DELIVERED:
                log_debug("webhook %s: %s %s delivered (%s, attempt %u)", ep->url, event,
                          id ? id : "?", what, attempts);
                break;
        case WEBHOOK_DISABLED:
                log_struct(LOG_WARNING,
                           LOG_FIELDS({"MEMGOV_SERVICE", ep->service}, {"MEMGOV_WEBHOOK", ep->url}),
                           "webhook %s answered 410 Gone: disabled until the next reload", ep->url);
                break;
        case WEBHOOK_SUPERSEDED:
                log_debug("webhook %s: %s %s superseded by a newer event (%s)", ep->url, event,
                          id ? id : "?", what);
                break;
        default:
                log_struct(LOG_WARNING,
                           LOG_FIELDS({"MEMGOV_SERVICE", ep->service}, {"MEMGOV_WEBHOOK", ep->url}),
                           "webhook %s: %s %s not delivered after %u attempt(s): %s", ep->url,
                           event, id ? id : "?", attempts, what);
                break;
        }
        /* Last: the callback may queue events on this endpoint. */
        if (id && cgroup)
                report(ep, cgroup, id, type, result, a->status > 0 ? a->status : 0, attempts);
}

static void on_http_done(struct http_request *req _unused_, struct http_result *result,
                         void *userdata)
{
        struct notify_endpoint *ep = userdata;
        struct webhook_attempt a = {.error = result->error, .status = result->status};
        uint64_t delay;

        ep->request = NULL;
        if (result->retry_after &&
            webhook_parse_retry_after(result->retry_after, now_realtime(), &delay) >= 0) {
                a.has_retry_after = true;
                a.retry_after_usec = delay;
        }
        endpoint_settled(ep, ep->in_flight, &a, result->error_text);
        endpoint_kick(ep);
}

/* Start one attempt at m. Returns 0, or -errno when the request could not even start. */
static int endpoint_send(struct notify_endpoint *ep, struct webhook_message *m, uint64_t now)
{
        uint64_t ts = now_realtime() / USEC_PER_SEC;
        _cleanup_free_ char *sig = NULL, *h_id = NULL, *h_ts = NULL, *h_sig = NULL;
        const char *headers[5] = {"Content-Type: application/cloudevents+json"};
        size_t n_headers = 1;
        int r;

        if (asprintf(&h_id, "webhook-id: %s", m->id) < 0 ||
            asprintf(&h_ts, "webhook-timestamp: %llu", (unsigned long long)ts) < 0) {
                h_id = h_ts = NULL;
                return -ENOMEM;
        }
        headers[n_headers++] = h_id;
        headers[n_headers++] = h_ts;
        if (ep->key) {
                r = webhook_sign(ep->key, ep->key_size, m->id, ts, m->body, m->body_size, &sig);
                if (r < 0)
                        return r;
                if (asprintf(&h_sig, "webhook-signature: %s", sig) < 0) {
                        h_sig = NULL;
                        return -ENOMEM;
                }
                headers[n_headers++] = h_sig;
        }
        headers[n_headers] = NULL;

        return http_request_start(
                ep->notify->http,
                &(struct http_request_opts){
                        .method = "POST",
                        .url = ep->url,
                        .headers = headers,
                        .body = m->body,
                        .body_size = m->body_size,
                        .timeout_usec = webhook_queue_attempt_timeout(&ep->queue, m, now),
                        .max_response_bytes = NOTIFY_MAX_RESPONSE_BYTES,
                },
                on_http_done, ep, &ep->request);
}

/* Send what is due, give up on what is stale, and sleep until the queue next needs us. */
static void endpoint_kick(struct notify_endpoint *ep)
{
        for (;;) {
                uint64_t now = now_monotonic(ep->notify);
                struct webhook_message *m = webhook_queue_next(&ep->queue, now);
                int r;

                if (!m)
                        break;
                ep->in_flight = m;
                r = endpoint_send(ep, m, now);
                if (r >= 0)
                        break;
                /*
                 * Settled like a failed attempt: retried later or given up on. The timer
                 * takes it from here, even when the retry is due at once.
                 */
                endpoint_settled(ep, m, &(struct webhook_attempt){.error = r},
                                 "cannot start the request");
                break;
        }
        endpoint_arm(ep);
}

int notify_new(sd_event *event, struct http_client *http, const char *host, struct notify **ret)
{
        char hostname[HOST_NAME_MAX + 1] = "localhost";
        struct notify *n;
        uint64_t seed[2] = {0, 0};

        if (!event || !http || !ret)
                return -EINVAL;
        if (!host) {
                if (gethostname(hostname, sizeof(hostname)) < 0 || !hostname[0])
                        (void)snprintf(hostname, sizeof(hostname), "localhost");
                hostname[sizeof(hostname) - 1] = '\0';
                host = hostname;
        }
        /* Ids must not repeat across restarts; jitter must differ between daemons. */
        if (getrandom(seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
                seed[0] = now_realtime() ^ ((uint64_t)getpid() << 32);
                seed[1] = seed[0] * UINT64_C(0x9e3779b97f4a7c15);
        }

        n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        n->host = strdup(host);
        if (!n->host) {
                free(n);
                return -ENOMEM;
        }
        n->event = sd_event_ref(event);
        n->http = http;
        n->rng.state = seed[0];
        n->id_nonce = seed[1];
        *ret = n;
        return 0;
}

struct notify *notify_free(struct notify *n)
{
        if (!n)
                return NULL;
        for (size_t i = 0; i < n->n_endpoints; i++)
                endpoint_free(n->endpoints[i]);
        free(n->endpoints);
        free(n->host);
        sd_event_unref(n->event);
        free(n);
        return NULL;
}

static struct notify_endpoint *find_endpoint(struct notify_endpoint **v, size_t n,
                                             const char *service, const char *url)
{
        for (size_t i = 0; i < n; i++)
                if (v[i] && strcmp(v[i]->service, service) == 0 && strcmp(v[i]->url, url) == 0)
                        return v[i];
        return NULL;
}

/* One endpoint as the new policies describe it, before it replaces the running ones. */
struct endpoint_spec {
        const char *service;
        const struct policy_webhook *webhook;
        uint8_t *key;
        size_t key_size;
        struct notify_endpoint *old;   /* the running endpoint it takes over, or NULL */
        struct notify_endpoint *fresh; /* else a new one */
};

static void specs_free(struct endpoint_spec *specs, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (specs[i].key)
                        memset(specs[i].key, 0, specs[i].key_size);
                free(specs[i].key);
                endpoint_free(specs[i].fresh);
        }
        free(specs);
}

static bool spec_exists(const struct endpoint_spec *specs, size_t n, const char *service,
                        const char *url)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(specs[i].service, service) == 0 &&
                    strcmp(specs[i].webhook->url, url) == 0)
                        return true;
        return false;
}

int notify_set_policies(struct notify *n, const struct policy_set *set, struct diag *diag)
{
        struct endpoint_spec *specs = NULL;
        struct notify_endpoint **next = NULL;
        size_t n_specs = 0, total = 0;
        int ret = 0;

        for (size_t i = 0; set && i < set->n_policies; i++)
                total += set->policies[i]->n_webhooks;
        if (total > 0) {
                specs = calloc(total, sizeof(*specs));
                next = calloc(total, sizeof(*next));
                if (!specs || !next) {
                        free(specs);
                        free(next);
                        return -ENOMEM;
                }
        }

        /*
         * First everything that can fail (secrets, allocations), then the switch, which
         * cannot: on -ENOMEM the running endpoints stay as they were.
         */
        for (size_t i = 0; set && i < set->n_policies; i++) {
                const struct policy *p = set->policies[i];

                for (size_t j = 0; j < p->n_webhooks; j++) {
                        const struct policy_webhook *w = &p->webhooks[j];
                        struct endpoint_spec *sp = &specs[n_specs];
                        int r;

                        if (!p->service || !w->url ||
                            spec_exists(specs, n_specs, p->service, w->url))
                                continue; /* the same URL twice: one endpoint */
                        *sp = (struct endpoint_spec){.service = p->service, .webhook = w};
                        if (w->secret_file) {
                                r = notify_load_secret(w->secret_file, diag, &sp->key,
                                                       &sp->key_size);
                                if (r == -ENOMEM) {
                                        specs_free(specs, n_specs);
                                        free(next);
                                        return r;
                                }
                                if (r < 0) {
                                        ret = -EINVAL;
                                        continue;
                                }
                        }
                        n_specs++;
                        sp->old = find_endpoint(n->endpoints, n->n_endpoints, p->service, w->url);
                        if (sp->old)
                                continue;
                        sp->fresh = calloc(1, sizeof(*sp->fresh));
                        if (sp->fresh) {
                                sp->fresh->notify = n;
                                sp->fresh->service = strdup(p->service);
                                sp->fresh->url = strdup(w->url);
                                webhook_queue_init(&sp->fresh->queue,
                                                   &(struct webhook_queue_params){0});
                        }
                        if (!sp->fresh || !sp->fresh->service || !sp->fresh->url) {
                                specs_free(specs, n_specs);
                                free(next);
                                return -ENOMEM;
                        }
                }
        }

        for (size_t i = 0; i < n_specs; i++) {
                struct endpoint_spec *sp = &specs[i];
                struct notify_endpoint *ep = sp->old ? sp->old : TAKE_PTR(sp->fresh);

                if (sp->old) {
                        /* Taken over: its queue and counters stay, a 410 is forgotten. */
                        for (size_t k = 0; k < n->n_endpoints; k++)
                                if (n->endpoints[k] == ep)
                                        n->endpoints[k] = NULL;
                        if (ep->key)
                                memset(ep->key, 0, ep->key_size);
                        free(ep->key);
                        ep->queue.disabled = false;
                }
                webhook_queue_set_params(&ep->queue,
                                         &(struct webhook_queue_params){
                                                 .timeout_usec = sp->webhook->timeout_usec,
                                                 .deadline_usec = sp->webhook->deadline_usec,
                                         });
                ep->key = TAKE_PTR(sp->key);
                ep->key_size = sp->key_size;
                ep->events_mask = sp->webhook->events_mask;
                next[i] = ep;
        }
        specs_free(specs, n_specs);

        for (size_t i = 0; i < n->n_endpoints; i++)
                if (n->endpoints[i]) {
                        if (n->endpoints[i]->queue.n_messages > 0)
                                log_info("webhook %s of %s: no longer configured, %zu "
                                         "undelivered message(s) dropped",
                                         n->endpoints[i]->url, n->endpoints[i]->service,
                                         n->endpoints[i]->queue.n_messages);
                        endpoint_free(n->endpoints[i]);
                }
        free(n->endpoints);
        n->endpoints = next;
        n->n_endpoints = n_specs;
        for (size_t i = 0; i < n->n_endpoints; i++)
                endpoint_kick(n->endpoints[i]);
        return ret;
}

static void webhook_memory_from_sample(const struct sample *s, struct webhook_memory *ret)
{
        *ret = (struct webhook_memory){
                .current_bytes = s->current_bytes,
                .limit_bytes = s->limit_bytes,
                .high_bytes = (s->has & SAMPLE_HAS_HIGH) ? s->high_bytes : CGROUP_LIMIT_MAX,
                .max_bytes = s->max_bytes,
                .has_anon = s->has & SAMPLE_HAS_ANON,
                .anon_bytes = s->anon_bytes,
                .has_file = s->has & SAMPLE_HAS_FILE,
                .file_bytes = s->file_bytes,
        };
}

int notify_event(struct notify *n, const struct notify_event *ev)
{
        struct webhook_event wev;
        _cleanup_free_ char *body = NULL;
        char id[64];
        uint64_t now;
        int r, queued = 0;

        if (!n || !ev || !ev->service || !ev->cgroup || !event_to_string(ev->type))
                return -EINVAL;

        wev = (struct webhook_event){
                .type = ev->type,
                .service = ev->service,
                .cgroup = ev->cgroup,
                .time_realtime_usec = now_realtime(),
                .level = ev->level,
                .previous_level = ev->previous_level,
                .memory = {.limit_bytes = CGROUP_LIMIT_MAX,
                           .high_bytes = CGROUP_LIMIT_MAX,
                           .max_bytes = CGROUP_LIMIT_MAX},
                .profiles = ev->profiles,
                .n_profiles = ev->n_profiles,
                .suspects = ev->suspects,
                .n_suspects = ev->n_suspects,
        };
        if (ev->sample)
                webhook_memory_from_sample(ev->sample, &wev.memory);
        if (ev->forecast && ev->forecast->known)
                wev.forecast = (struct webhook_forecast){
                        .known = true,
                        .eta_usec = ev->forecast->eta_usec,
                        .eta_lower_usec = ev->forecast->eta_lower_usec,
                        .eta_upper_usec = ev->forecast->eta_upper_usec,
                        .slope_bytes_per_s = ev->forecast->slope_bytes_per_s,
                };
        webhook_advice_compute(&wev.memory, ev->level, &wev.advice);

        (void)snprintf(id, sizeof(id), "msg_%016llx%08llx", (unsigned long long)n->id_nonce,
                       (unsigned long long)++n->id_counter);
        r = webhook_event_to_json(&wev, n->host, id, &body);
        if (r < 0)
                return r;

        now = now_monotonic(n);
        for (size_t i = 0; i < n->n_endpoints; i++) {
                struct notify_endpoint *ep = n->endpoints[i];
                struct webhook_message *m = NULL;

                if (strcmp(ep->service, ev->service) != 0 ||
                    !(ep->events_mask & EVENT_MASK(ev->type)))
                        continue;
                r = webhook_message_new(strdup(id), strdup(ev->cgroup), ev->type, strdup(body),
                                        strlen(body), &m);
                if (r < 0)
                        return r;
                r = webhook_queue_push(&ep->queue, m, now);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        log_debug("webhook %s is disabled (410 Gone): %s %s not sent", ep->url,
                                  event_to_string(ev->type), id);
                        report(ep, ev->cgroup, id, ev->type, WEBHOOK_DISABLED, 0, 0);
                        continue;
                }
                queued++;
                endpoint_kick(ep);
        }
        return queued;
}

void notify_set_delivery_callback(struct notify *n, notify_delivery_fn cb, void *userdata)
{
        if (!n)
                return;
        n->on_delivery = cb;
        n->on_delivery_userdata = userdata;
}

size_t notify_get_n_endpoints(const struct notify *n)
{
        return n ? n->n_endpoints : 0;
}

int notify_get_endpoint_stats(const struct notify *n, size_t i, struct notify_endpoint_stats *ret)
{
        const struct notify_endpoint *ep;

        if (!n || i >= n->n_endpoints)
                return -ENOENT;
        ep = n->endpoints[i];
        *ret = (struct notify_endpoint_stats){
                .service = ep->service,
                .url = ep->url,
                .attempts = ep->queue.attempts,
                .queued = ep->queue.n_messages,
                .disabled = ep->queue.disabled,
        };
        memcpy(ret->results, ep->queue.counters, sizeof(ret->results));
        return 0;
}

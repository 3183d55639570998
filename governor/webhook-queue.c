/* SPDX-License-Identifier: MIT */
/*
 * The pure half of the notify stage, when to send: each endpoint's queue of messages, the
 * retries with backoff and jitter inside a deadline, Retry-After, 410 Gone, supersession
 * of stale level events and the bound on the queue. Clock and randomness are arguments;
 * governor/notify.c runs it on the loop, the unit tests on a fake clock.
 */
#include <assert.h>
#include <string.h>

#include "memgov/webhook.h"

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
                        /* saturate: "Retry-After: 18446744073709" must not wrap to now */
                        next = now_usec + MIN(a->retry_after_usec, USEC_INFINITY - now_usec);
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

/* SPDX-License-Identifier: MIT */
/*
 * Notify stage under fuzzing: what a webhook receiver answers — its status code, transport
 * errors and Retry-After header (webhook_parse_retry_after()) — fed to one endpoint's
 * queue (webhook_queue_*), whatever the order. The input is a script, one command a line:
 *
 *   P TYPE INSTANCE        queue an event (TYPE an event number, INSTANCE a small number)
 *   A STATUS ERROR [VALUE] the attempt due now ends with HTTP STATUS (0: none), ERROR
 *                          (0, 1 timeout, 2 refused, 3 bad scheme), and the Retry-After
 *                          header VALUE verbatim when given
 *   T MS                   the clock moves on
 *   R VALUE                parse a Retry-After value alone
 *   Q TIMEOUT_MS DEADLINE_MS CAPACITY   new endpoint parameters (a reload)
 *
 * The receiver is outside our control: no answer may make the queue retry in the past or
 * after the deadline, lose count of a message, grow past its bound or crash.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "fuzz.h"
#include "memgov/macro.h"
#include "memgov/webhook.h"

/* A fixed wall clock for HTTP-dates: 2024-05-01T12:00:00Z. */
#define NOW_REALTIME_USEC (UINT64_C(1714564800) * USEC_PER_SEC)

struct run {
        struct webhook_queue q;
        struct webhook_rng rng;
        uint64_t now;
        uint64_t pushed;
        size_t max_capacity; /* the largest capacity set: a smaller one drops nothing at once */
        unsigned serial;
};

static uint64_t total_finished(const struct webhook_queue *q)
{
        uint64_t n = 0;

        for (size_t r = 0; r < _WEBHOOK_RESULT_MAX; r++)
                n += q->counters[r];
        return n;
}

static void check_queue(const struct run *run)
{
        const struct webhook_queue *q = &run->q;
        size_t in_flight = 0;

        fuzz_check(q->n_messages <= MAX(q->params.capacity, run->max_capacity));
        fuzz_check(total_finished(q) + q->n_messages == run->pushed);
        for (size_t i = 0; i < q->n_messages; i++) {
                const struct webhook_message *m = q->messages[i];

                in_flight += m->in_flight;
                fuzz_check(m->next_attempt_usec >= m->queued_usec);
                fuzz_check(m->next_attempt_usec < m->deadline_usec);
        }
        fuzz_check(in_flight <= 1);
        if (q->disabled)
                fuzz_check(q->n_messages == 0);
}

/* Parse a Retry-After value; it must come out as its digits say, or be refused untouched. */
static int retry_after(const char *value, uint64_t *ret)
{
        uint64_t v = UINT64_C(0x5a5a5a5a5a5a5a5a);
        int r = webhook_parse_retry_after(value, NOW_REALTIME_USEC, &v);
        const char *p = value;
        uint64_t digits = 0;
        bool only_digits;

        fuzz_check(r == 0 || r == -EINVAL);
        if (r < 0) {
                fuzz_check(v == UINT64_C(0x5a5a5a5a5a5a5a5a));
                return r;
        }
        p += strspn(p, " \t");
        only_digits = *p >= '0' && *p <= '9';
        for (; only_digits && *p >= '0' && *p <= '9'; p++)
                digits = digits * 10 + (uint64_t)(*p - '0');
        if (only_digits)
                fuzz_check(v == digits * USEC_PER_SEC);
        else /* an HTTP-date: at most 10000 years from now */
                fuzz_check(v < UINT64_C(10000) * 366 * 86400 * USEC_PER_SEC);
        *ret = v;
        return 0;
}

static void push(struct run *run, const char *args)
{
        unsigned type = 0, instance = 0;
        char id[32], inst[32];
        struct webhook_message *m;
        int r;

        if (sscanf(args, "%u %u", &type, &instance) < 1)
                return;
        (void)snprintf(id, sizeof(id), "msg_%u", run->serial++);
        (void)snprintf(inst, sizeof(inst), "i%u", instance % 4);
        r = webhook_message_new(strdup(id), strdup(inst), (enum event)(type % _EVENT_MAX),
                                strdup("{}"), 2, &m);
        fuzz_check(r == 0);
        run->pushed++;
        r = webhook_queue_push(&run->q, m, run->now);
        fuzz_check(r == 0 || r == -ESHUTDOWN);
        fuzz_check(r == 0 || run->q.disabled);
}

static void attempt(struct run *run, const char *args)
{
        static const int errors[] = {0, -ETIMEDOUT, -ECONNREFUSED, -EPROTONOSUPPORT};
        struct webhook_attempt a = {};
        struct webhook_message *m;
        enum webhook_result result = _WEBHOOK_RESULT_INVALID;
        long status = 0;
        unsigned err = 0;
        int consumed = 0, r;

        if (sscanf(args, "%ld %u%n", &status, &err, &consumed) < 2)
                return;
        a.status = status;
        a.error = errors[err % ELEMENTSOF(errors)];
        if (args[consumed] == ' ' && retry_after(args + consumed + 1, &a.retry_after_usec) == 0)
                a.has_retry_after = true;

        m = webhook_queue_next(&run->q, run->now);
        check_queue(run);
        if (!m)
                return;
        fuzz_check(m->in_flight && m->next_attempt_usec <= run->now);
        uint64_t t = webhook_queue_attempt_timeout(&run->q, m, run->now);
        fuzz_check(t >= USEC_PER_MSEC && t <= MAX(run->q.params.timeout_usec, USEC_PER_MSEC));

        bool was_superseded = m->superseded;
        r = webhook_queue_complete(&run->q, m, &a, run->now, &run->rng, &result);
        fuzz_check(r == 0 || r == 1);
        if (r == 0) {
                /* a retry: never in the past, never at or after the deadline */
                fuzz_check(!m->in_flight && !was_superseded);
                fuzz_check(m->next_attempt_usec >= run->now);
                fuzz_check(m->next_attempt_usec < m->deadline_usec);
                if (a.has_retry_after)
                        fuzz_check(m->next_attempt_usec - run->now == a.retry_after_usec);
        } else if (status >= 200 && status < 300)
                fuzz_check(result == WEBHOOK_DELIVERED);
        else if (status == 410)
                fuzz_check(result == WEBHOOK_DISABLED && run->q.disabled);
        else
                fuzz_check(result == WEBHOOK_FAILED || result == WEBHOOK_SUPERSEDED);
        check_queue(run);
}

static void params(struct run *run, const char *args)
{
        unsigned timeout_ms = 0, deadline_ms = 0, capacity = 0;

        if (sscanf(args, "%u %u %u", &timeout_ms, &deadline_ms, &capacity) < 3)
                return;
        /* what a valid policy can say: see policies/README.md */
        struct webhook_queue_params p = {
                .timeout_usec = (timeout_ms % 600000) * USEC_PER_MSEC,
                .deadline_usec = (deadline_ms % 3600000) * USEC_PER_MSEC,
                .capacity = capacity % 64,
        };

        webhook_queue_set_params(&run->q, &p);
        run->max_capacity = MAX(run->max_capacity, run->q.params.capacity);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *s = fuzz_strndup(data, size);
        struct run run = {.now = 1000 * USEC_PER_SEC, .rng = {.state = 42}};
        char *save = NULL;
        unsigned steps = 0;

        webhook_queue_init(&run.q, &(struct webhook_queue_params){.capacity = 4});
        run.max_capacity = run.q.params.capacity;
        for (char *line = strtok_r(s, "\n", &save); line && steps < 1000;
             line = strtok_r(NULL, "\n", &save), steps++) {
                unsigned long ms;
                uint64_t v;

                if (line[0] == '\0' || line[1] != ' ')
                        continue;
                switch (line[0]) {
                case 'P':
                        push(&run, line + 2);
                        break;
                case 'A':
                        attempt(&run, line + 2);
                        break;
                case 'T':
                        if (sscanf(line + 2, "%lu", &ms) == 1)
                                run.now += (ms % 86400000) * USEC_PER_MSEC;
                        break;
                case 'R':
                        (void)retry_after(line + 2, &v);
                        break;
                case 'Q':
                        params(&run, line + 2);
                        break;
                default:
                        break;
                }
                check_queue(&run);
        }
        (void)webhook_queue_next_wakeup(&run.q);
        webhook_queue_clear(&run.q);
        return 0;
}

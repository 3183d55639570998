/* SPDX-License-Identifier: MIT */
/*
 * The notify effect (decide → notify): graded, signed webhooks to the endpoints that
 * policies name, delivered on the daemon's loop without ever blocking it. Each endpoint
 * has its own bounded queue and at most one request in flight; what to send and when is
 * decided by the pure schedule in memgov/webhook.h, the HTTP goes through memgov/http.h.
 * The wire contract (CloudEvents body, Standard Webhooks headers, retries) is
 * docs/webhooks.md.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "memgov/diag.h"
#include "memgov/forecast.h"
#include "memgov/http.h"
#include "memgov/level.h"
#include "memgov/macro.h"
#include "memgov/policy.h"
#include "memgov/sample.h"
#include "memgov/webhook.h"

struct notify;

/* Largest secret file read (a whsec_ key is ~50 bytes). */
#define NOTIFY_SECRET_MAX_BYTES 4096
/* Receivers' answers are read up to this and thrown away. */
#define NOTIFY_MAX_RESPONSE_BYTES (64 * 1024)

/*
 * A notifier on event, sending through http (borrowed: it must outlive the notifier).
 * host names the machine in each event's source ("memgovd/<host>/<service>"); NULL: the
 * kernel's host name. No endpoint is configured yet: see notify_set_policies(). Returns 0,
 * -EINVAL, -ENOMEM.
 */
int notify_new(sd_event *event, struct http_client *http, const char *host, struct notify **ret);

/*
 * Cancel the requests in flight, drop what is queued (undelivered), free. Accepts NULL,
 * returns NULL.
 */
struct notify *notify_free(struct notify *n);
DEFINE_FREE_FUNC(notify)

/*
 * Configure the endpoints of every policy's webhooks (at start and after each reload).
 * An endpoint with the same service and URL as before keeps its queue and counters and
 * takes the new settings; a disabled one (410 Gone) is enabled again. Endpoints no longer
 * named are dropped with what they held. Each secret file is read now (see
 * notify_load_secret()); an endpoint whose secret cannot be used is left out, its problem
 * added to diag, and the others are configured all the same. Returns 0, -EINVAL when some
 * endpoint was left out (the problems are in diag), or -ENOMEM.
 */
int notify_set_policies(struct notify *n, const struct policy_set *set, struct diag *diag);

/*
 * Read the HMAC key from a secret file (webhook_key_from_secret() on its content). The
 * file must be a regular file readable by its owner only (mode & 077 == 0) and, if it is a
 * symlink, must resolve within its own directory (as mounted secrets do). Problems go to
 * diag as "FILE: message" with the fix, e.g. "FILE: readable by group or others (mode
 * 0644); make it private: chmod 600 FILE". Returns 0 with *ret_key (malloc'ed, the caller
 * frees) and *ret_size, or -EPERM (mode, symlink), -EINVAL (not a regular file, empty,
 * bad whsec_ base64, too large), -errno of open/read, -ENOMEM.
 */
int notify_load_secret(const char *path, struct diag *diag, uint8_t **ret_key, size_t *ret_size);

/* What happened, as decide and the daemon know it; everything is borrowed. */
struct notify_event {
        enum event type;
        const char *service; /* the policy's service: selects its endpoints */
        const char *cgroup;  /* the instance, relative to the cgroup root */
        enum level level;    /* the instance's level after the event */
        enum level previous_level;
        const struct sample *sample; /* the sample that raised it (memory figures); NULL: none */
        const struct forecast *forecast; /* as of that sample; NULL: none */
        const char *const *profiles;     /* paths of captured files, or NULL */
        size_t n_profiles;
        const char *const *suspects; /* top leak suspects, or NULL */
        size_t n_suspects;
};

/*
 * Queue ev for every endpoint of ev->service that subscribed to ev->type: one body (with
 * the advice of webhook_advice_compute(), the wall-clock time of now and a new id) signed
 * per attempt. Sending starts on the loop; nothing here waits. Returns the number of
 * endpoints it was queued for (0: none wants it), -EINVAL (bad event), -ENOMEM.
 */
int notify_event(struct notify *n, const struct notify_event *ev);

/*
 * What finally became of one message at one endpoint, as notify knows it: a 2xx answer
 * (delivered), a deadline or an answer that retrying cannot change (failed), 410 Gone or
 * an endpoint that was disabled already when it was queued (disabled), or replaced while in
 * flight by a newer level event of the same cgroup (superseded). Everything is borrowed for
 * the callback's duration. Messages dropped from a full queue, superseded while waiting or
 * expired before their first attempt are counted (notify_get_endpoint_stats()) but not
 * reported one by one.
 */
struct notify_delivery {
        const char *service; /* the endpoint's service */
        const char *cgroup;  /* the instance the event was about */
        const char *url;     /* the endpoint */
        const char *id;      /* the webhook-id */
        enum event event;
        enum webhook_result result;
        long http_status;  /* of the last attempt; 0 when no answer came (or none was made) */
        unsigned attempts; /* HTTP attempts made for this message */
};

typedef void (*notify_delivery_fn)(const struct notify_delivery *dl, void *userdata);

/*
 * Call cb (NULL: nobody) on the loop with each outcome above. cb must not free the
 * notifier or change its policies; it may queue new events.
 */
void notify_set_delivery_callback(struct notify *n, notify_delivery_fn cb, void *userdata);

/* Counters of one endpoint, for metrics and status. The strings are the notifier's. */
struct notify_endpoint_stats {
        const char *service;
        const char *url;
        uint64_t results[_WEBHOOK_RESULT_MAX]; /* memgov_webhook_deliveries_total{result=} */
        uint64_t attempts;                     /* HTTP requests started, retries included */
        size_t queued;                         /* messages waiting or in flight now */
        bool disabled; /* answered 410 Gone; enabled again by the next notify_set_policies() */
};

size_t notify_get_n_endpoints(const struct notify *n);

/* The stats of endpoint i (0 ≤ i < notify_get_n_endpoints()); -ENOENT past the end. */
int notify_get_endpoint_stats(const struct notify *n, size_t i, struct notify_endpoint_stats *ret);

/* SPDX-License-Identifier: MIT */
/*
 * memgovd's export stage: the HTTP server (governor/server.c) on the daemon's loop, and
 * its handlers filled from the daemon's state — /metrics in Prometheus text, /v1/status,
 * on-demand dumps, reloads. Handlers run on the loop between samples: they read the
 * instances as they are, without locks, and never block.
 */
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon-internal.h"
#include "memgov/daemon.h"
#include "memgov/log.h"
#include "memgov/metrics.h"
#include "memgov/promtext.h"
#include "memgov/server.h"
#include "memgov/status.h"

/* The group that may use the socket (systemd/memgov.conf makes it); else the daemon's. */
#define DAEMON_SOCKET_GROUP "memgov"

#define SC(i)                                                                                      \
        {"service", (i)->policy->service},                                                         \
        {                                                                                          \
                "cgroup", (i)->relpath                                                             \
        }

static uint64_t loop_now(const struct daemon *d)
{
        uint64_t now = 0;

        (void)sd_event_now(d->event, CLOCK_MONOTONIC, &now);
        return now;
}

/* One gauge or counter per instance that has a sample, from get(); skipped when absent. */
typedef bool (*instance_value_fn)(const struct instance *i, uint64_t *ret);

static void write_per_instance_u64(struct promtext *p, const struct daemon *d, enum metric_id id,
                                   instance_value_fn get)
{
        metrics_family(p, id);
        for (size_t k = 0; k < d->n_instances; k++) {
                const struct instance *i = d->instances[k];
                uint64_t v;
                if (get(i, &v))
                        promtext_sample_u64(p, PROMTEXT_LABELS(SC(i)), v);
        }
}

static bool get_current(const struct instance *i, uint64_t *ret)
{
        *ret = i->last.current_bytes;
        return i->has_last;
}

static bool get_anon(const struct instance *i, uint64_t *ret)
{
        *ret = i->last.anon_bytes;
        return i->has_last && (i->last.has & SAMPLE_HAS_ANON);
}

static bool get_file(const struct instance *i, uint64_t *ret)
{
        *ret = i->last.file_bytes;
        return i->has_last && (i->last.has & SAMPLE_HAS_FILE);
}

static bool get_max(const struct instance *i, uint64_t *ret)
{
        *ret = i->last.max_bytes;
        return i->has_last && i->last.max_bytes != CGROUP_LIMIT_MAX;
}

static bool get_high(const struct instance *i, uint64_t *ret)
{
        *ret = i->last.high_bytes;
        return i->has_last && (i->last.has & SAMPLE_HAS_HIGH) &&
               i->last.high_bytes != CGROUP_LIMIT_MAX;
}

static bool get_limit(const struct instance *i, uint64_t *ret)
{
        *ret = i->last.limit_bytes;
        return i->has_last;
}

static bool get_level(const struct instance *i, uint64_t *ret)
{
        *ret = (uint64_t)i->level;
        return true;
}

static bool get_samples(const struct instance *i, uint64_t *ret)
{
        *ret = i->n_samples;
        return true;
}

/* An ETA in seconds, when the forecast sees an OOM coming. */
static void write_eta(struct promtext *p, const struct daemon *d, enum metric_id id, size_t which)
{
        metrics_family(p, id);
        for (size_t k = 0; k < d->n_instances; k++) {
                const struct instance *i = d->instances[k];
                const struct forecast *f = &i->last_forecast;
                if (!i->has_forecast || !f->known)
                        continue;
                uint64_t eta = which == 0   ? f->eta_usec
                               : which == 1 ? f->eta_lower_usec
                                            : f->eta_upper_usec;
                if (eta != USEC_INFINITY)
                        promtext_sample(p, PROMTEXT_LABELS(SC(i)), (double)eta / USEC_PER_SEC);
        }
}

static void write_pressure(struct promtext *p, const struct daemon *d, bool full)
{
        metrics_family(p, full ? METRIC_PRESSURE_FULL_SECONDS_TOTAL
                               : METRIC_PRESSURE_SOME_SECONDS_TOTAL);
        for (size_t k = 0; k < d->n_instances; k++) {
                const struct instance *i = d->instances[k];
                unsigned has = full ? SAMPLE_HAS_PSI_FULL : SAMPLE_HAS_PSI_SOME;
                if (!i->has_last || !(i->last.has & has))
                        continue;
                uint64_t usec =
                        full ? i->last.pressure.full.total_usec : i->last.pressure.some.total_usec;
                promtext_sample(p, PROMTEXT_LABELS(SC(i)), (double)usec / USEC_PER_SEC);
        }
}

/* The kernel's avg10 of memory.pressure, as a ratio: the sample has it as percent. */
static void write_pressure_avg10(struct promtext *p, const struct daemon *d, bool full)
{
        metrics_family(p,
                       full ? METRIC_PRESSURE_FULL_AVG10_RATIO : METRIC_PRESSURE_SOME_AVG10_RATIO);
        for (size_t k = 0; k < d->n_instances; k++) {
                const struct instance *i = d->instances[k];
                unsigned has =
                        SAMPLE_HAS_PSI_AVG | (full ? SAMPLE_HAS_PSI_FULL : SAMPLE_HAS_PSI_SOME);
                if (!i->has_last || (i->last.has & has) != has)
                        continue;
                double pct =
                        full ? i->last.pressure.full.avg10_pct : i->last.pressure.some.avg10_pct;
                promtext_sample(p, PROMTEXT_LABELS(SC(i)), pct / 100.0);
        }
}

/*
 * The runtime figures the service's page gave at the last poll, one family at a time; an
 * instance whose figures went stale (signals_evaluate()) shows none rather than old ones.
 */
static const struct runtime_figures *fresh_runtime(const struct instance *i, uint64_t now)
{
        struct signals_verdict v;

        if (!i->runtime)
                return NULL;
        const struct signals_state *st = signals_poller_state(i->runtime);
        if (!st->has_last)
                return NULL;
        signals_evaluate(st, &i->policy->runtime, now, &v);
        return v.fresh ? &st->last : NULL;
}

static void write_runtime(struct promtext *p, const struct daemon *d, uint64_t now)
{
        static const struct {
                enum metric_id id;
                unsigned has;
                size_t offset;
        } fig[] = {
                {METRIC_RUNTIME_GOROUTINES, RUNTIME_HAS_GOROUTINES,
                 offsetof(struct runtime_figures, goroutines)},
                {METRIC_RUNTIME_HEAP_INUSE_BYTES, RUNTIME_HAS_HEAP_INUSE,
                 offsetof(struct runtime_figures, heap_inuse_bytes)},
                {METRIC_RUNTIME_HEAP_ALLOC_BYTES, RUNTIME_HAS_HEAP_ALLOC,
                 offsetof(struct runtime_figures, heap_alloc_bytes)},
                {METRIC_RUNTIME_SYS_BYTES, RUNTIME_HAS_SYS,
                 offsetof(struct runtime_figures, sys_bytes)},
                {METRIC_RUNTIME_GC_CYCLES_TOTAL, RUNTIME_HAS_NUM_GC,
                 offsetof(struct runtime_figures, num_gc)},
        };

        for (size_t j = 0; j < ELEMENTSOF(fig); j++) {
                metrics_family(p, fig[j].id);
                for (size_t k = 0; k < d->n_instances; k++) {
                        const struct instance *i = d->instances[k];
                        const struct runtime_figures *f = fresh_runtime(i, now);
                        uint64_t v;
                        if (!f || !(f->has & fig[j].has))
                                continue;
                        memcpy(&v, (const char *)f + fig[j].offset, sizeof(v));
                        promtext_sample_u64(p, PROMTEXT_LABELS(SC(i)), v);
                }
        }
        metrics_family(p, METRIC_RUNTIME_POLLS_TOTAL);
        for (size_t k = 0; k < d->n_instances; k++) {
                const struct instance *i = d->instances[k];
                if (!i->runtime)
                        continue;
                promtext_sample_u64(p, PROMTEXT_LABELS(SC(i), {"result", "ok"}),
                                    signals_poller_n_ok(i->runtime));
                promtext_sample_u64(p, PROMTEXT_LABELS(SC(i), {"result", "failed"}),
                                    signals_poller_n_failed(i->runtime));
        }
}

static void write_memory_events(struct promtext *p, const struct daemon *d)
{
        metrics_family(p, METRIC_MEMORY_EVENTS_TOTAL);
        for (size_t k = 0; k < d->n_instances; k++) {
                const struct instance *i = d->instances[k];
                const struct memory_events *e = &i->last.events;
                if (!i->has_last || !(i->last.has & SAMPLE_HAS_EVENTS))
                        continue;
                const struct {
                        const char *name;
                        uint64_t value;
                } ev[] = {
                        {"low", e->low},           {"high", e->high},
                        {"max", e->max},           {"oom", e->oom},
                        {"oom_kill", e->oom_kill}, {"oom_group_kill", e->oom_group_kill},
                };
                for (size_t j = 0; j < ELEMENTSOF(ev); j++)
                        promtext_sample_u64(p, PROMTEXT_LABELS(SC(i), {"event", ev[j].name}),
                                            ev[j].value);
        }
}

static void write_events(struct promtext *p, const struct daemon *d)
{
        metrics_family(p, METRIC_EVENTS_TOTAL);
        for (size_t k = 0; k < d->n_instances; k++) {
                const struct instance *i = d->instances[k];
                /* Every event, zeros included: rate() needs the series before the first. */
                for (int e = EVENT_WARN; e < _EVENT_MAX; e++)
                        promtext_sample_u64(
                                p,
                                PROMTEXT_LABELS(SC(i), {"event", event_to_string((enum event)e)}),
                                i->n_events[e]);
        }
}

static void write_webhook_deliveries(struct promtext *p, const struct daemon *d)
{
        metrics_family(p, METRIC_WEBHOOK_DELIVERIES_TOTAL);
        if (!d->notify)
                return;
        size_t n = notify_get_n_endpoints(d->notify);
        for (size_t k = 0; k < n; k++) {
                struct notify_endpoint_stats st, other;
                bool seen = false;
                if (notify_get_endpoint_stats(d->notify, k, &st) < 0)
                        continue;
                /* One series per service: the endpoints of a service are summed. */
                for (size_t j = 0; j < k && !seen; j++)
                        seen = notify_get_endpoint_stats(d->notify, j, &other) == 0 &&
                               strcmp(other.service, st.service) == 0;
                if (seen)
                        continue;
                uint64_t sum[_WEBHOOK_RESULT_MAX];
                memcpy(sum, st.results, sizeof(sum));
                for (size_t j = k + 1; j < n; j++)
                        if (notify_get_endpoint_stats(d->notify, j, &other) == 0 &&
                            strcmp(other.service, st.service) == 0)
                                for (size_t r = 0; r < _WEBHOOK_RESULT_MAX; r++)
                                        sum[r] += other.results[r];
                for (int r = 0; r < _WEBHOOK_RESULT_MAX; r++)
                        promtext_sample_u64(
                                p,
                                PROMTEXT_LABELS({"service", st.service},
                                                {"result",
                                                 webhook_result_to_string((enum webhook_result)r)}),
                                sum[r]);
        }
}

static int handle_metrics(void *userdata, FILE *out)
{
        struct daemon *d = userdata;
        struct promtext p;

        promtext_init(&p, out);
        metrics_family(&p, METRIC_BUILD_INFO);
        promtext_sample_u64(&p, PROMTEXT_LABELS({"version", MEMGOV_VERSION}), 1);
        metrics_family(&p, METRIC_INSTANCES);
        promtext_sample_u64(&p, NULL, d->n_instances);
        metrics_family(&p, METRIC_POLICIES);
        promtext_sample_u64(&p, NULL, d->policies->n_policies);
        metrics_family(&p, METRIC_RELOADS_TOTAL);
        promtext_sample_u64(&p, PROMTEXT_LABELS({"result", "ok"}), d->n_reloads);
        promtext_sample_u64(&p, PROMTEXT_LABELS({"result", "failed"}), d->n_reload_failures);

        write_per_instance_u64(&p, d, METRIC_MEMORY_CURRENT_BYTES, get_current);
        write_per_instance_u64(&p, d, METRIC_MEMORY_ANON_BYTES, get_anon);
        write_per_instance_u64(&p, d, METRIC_MEMORY_FILE_BYTES, get_file);
        write_per_instance_u64(&p, d, METRIC_MEMORY_MAX_BYTES, get_max);
        write_per_instance_u64(&p, d, METRIC_MEMORY_HIGH_BYTES, get_high);
        write_per_instance_u64(&p, d, METRIC_MEMORY_LIMIT_BYTES, get_limit);
        write_memory_events(&p, d);
        write_pressure(&p, d, false);
        write_pressure(&p, d, true);
        write_pressure_avg10(&p, d, false);
        write_pressure_avg10(&p, d, true);
        write_eta(&p, d, METRIC_FORECAST_ETA_SECONDS, 0);
        write_eta(&p, d, METRIC_FORECAST_ETA_LOWER_SECONDS, 1);
        write_eta(&p, d, METRIC_FORECAST_ETA_UPPER_SECONDS, 2);
        metrics_family(&p, METRIC_FORECAST_SLOPE_BYTES_PER_SECOND);
        for (size_t k = 0; k < d->n_instances; k++) {
                const struct instance *i = d->instances[k];
                if (i->has_forecast && i->last_forecast.known)
                        promtext_sample(&p, PROMTEXT_LABELS(SC(i)),
                                        i->last_forecast.slope_bytes_per_s);
        }
        write_per_instance_u64(&p, d, METRIC_LEVEL, get_level);
        write_per_instance_u64(&p, d, METRIC_SAMPLES_TOTAL, get_samples);
        write_events(&p, d);
        daemon_write_capture_metrics(d, &p);
        write_runtime(&p, d, loop_now(d));
        write_webhook_deliveries(&p, d);
        return promtext_finish(&p);
}

static void fill_status_instance(const struct daemon *d, const struct instance *i, uint64_t now,
                                 struct status_instance *v)
{
        status_instance_init(v);
        v->service = i->policy->service;
        v->cgroup = i->relpath;
        v->level = i->level;
        v->level_age_usec = now >= i->level_since_usec ? now - i->level_since_usec : 0;
        v->n_samples = i->n_samples;
        if (i->has_last) {
                const struct sample *s = &i->last;
                v->last_sample_age_usec = now >= s->t_usec ? now - s->t_usec : 0;
                v->current_bytes = s->current_bytes;
                if (s->has & SAMPLE_HAS_ANON)
                        v->anon_bytes = s->anon_bytes;
                if (s->has & SAMPLE_HAS_FILE)
                        v->file_bytes = s->file_bytes;
                v->max_bytes = s->max_bytes;
                if (s->has & SAMPLE_HAS_HIGH)
                        v->high_bytes = s->high_bytes;
                v->limit_bytes = s->limit_bytes;
        }
        if (i->has_forecast) {
                const struct forecast *f = &i->last_forecast;
                if (f->psi_source != FORECAST_PSI_NONE) {
                        v->psi_some_avg10 = f->psi_some_avg10_pct;
                        v->psi_full_avg10 = f->psi_full_avg10_pct;
                }
                v->forecast_known = f->known;
                if (f->known) {
                        v->eta_usec = f->eta_usec;
                        v->eta_lower_usec = f->eta_lower_usec;
                        v->eta_upper_usec = f->eta_upper_usec;
                        v->slope_bytes_per_sec = f->slope_bytes_per_s;
                }
        }
        v->memory_high_mode = memory_high_mode_to_string(i->policy->memory_high.mode);
        if (i->govern.touched)
                v->memory_high_set_bytes = i->govern.applied_bytes;
        if (i->last_event != _EVENT_INVALID)
                v->last_event = (struct status_event){
                        .event = i->last_event,
                        .age_usec = now >= i->last_event_usec ? now - i->last_event_usec : 0,
                };
        if (i->last_delivery_event != _EVENT_INVALID)
                v->last_delivery = (struct status_delivery){
                        .event = i->last_delivery_event,
                        .endpoint = i->last_delivery_endpoint,
                        .result = webhook_result_to_string(i->last_delivery_result),
                        .http_status = i->last_delivery_http_status,
                        .attempts = i->last_delivery_attempts,
                        .age_usec = now >= i->last_delivery_usec ? now - i->last_delivery_usec : 0,
                };
        daemon_fill_capture_status(d, i, now, v);
}

static int handle_status(void *userdata, FILE *out)
{
        struct daemon *d = userdata;
        uint64_t now = loop_now(d);

        struct status_daemon sd = {
                .version = MEMGOV_VERSION,
                .pid = getpid(),
                .uptime_usec = now >= d->start_usec ? now - d->start_usec : STATUS_NONE,
                .dry_run = d->dry_run,
                .cgroup_root = d->cgfs->cgroup_path,
                .policy_dir = d->config.policy_dir,
                .state_dir = d->config.state_dir,
                .n_policies = d->policies->n_policies,
                .n_reloads = d->n_reloads,
        };
        _cleanup_free_ struct status_instance *v =
                calloc(MAX(d->n_instances, (size_t)1), sizeof(struct status_instance));
        if (!v)
                return -ENOMEM;
        for (size_t k = 0; k < d->n_instances; k++)
                fill_status_instance(d, d->instances[k], now, &v[k]);
        return status_write_json(out, &sd, v, d->n_instances);
}

static int handle_reload(void *userdata, char **ret_msg)
{
        struct daemon *d = userdata;
        struct diag diag = {};
        char *msg = NULL;
        int r;

        r = daemon_reload_diag(d, &diag);
        if (r >= 0) {
                if (asprintf(&msg, "reloaded: %zu polic%s, %zu cgroup%s governed",
                             d->policies->n_policies, d->policies->n_policies == 1 ? "y" : "ies",
                             d->n_instances, d->n_instances == 1 ? "" : "s") < 0)
                        msg = NULL;
        } else {
                /* The problems, one per line, as check-policy prints them. */
                size_t size = 0;
                FILE *f = open_memstream(&msg, &size);
                if (f) {
                        fprintf(f, "not reloaded, still running the previous %zu polic%s",
                                d->policies->n_policies,
                                d->policies->n_policies == 1 ? "y" : "ies");
                        if (diag.n_lines > 0)
                                fputc(':', f);
                        for (size_t k = 0; k < diag.n_lines; k++)
                                fprintf(f, "\n%s", diag.lines[k]);
                        if (fclose(f) != 0) {
                                free(msg);
                                msg = NULL;
                        }
                }
                if (r != -ENOMEM)
                        r = -EINVAL;
        }
        diag_clear(&diag);
        *ret_msg = msg;
        return r < 0 ? r : 0;
}

static void server_config_for(const struct daemon *d, char **ret_socket, struct server_config *ret)
{
        *ret_socket = NULL;
        if (d->config.runtime_dir &&
            asprintf(ret_socket, "%s/%s", d->config.runtime_dir, SERVER_SOCKET_NAME) < 0)
                *ret_socket = NULL;
        *ret = (struct server_config){
                .socket_path = *ret_socket,
                .socket_group = DAEMON_SOCKET_GROUP,
                .listen = d->config.listen,
        };
}

static const char *server_error_hint(int r)
{
        switch (r) {
        case -EADDRINUSE:
                return "another memgovd is running (or the TCP port is taken)";
        case -EEXIST:
                return "a file that is not a socket is in the way";
        case -EINVAL:
                return "the config's \"listen\" is not IP:PORT";
        default:
                return NULL;
        }
}

int daemon_server_start(struct daemon *d)
{
        _cleanup_free_ char *socket = NULL;
        struct server_config cfg;

        server_config_for(d, &socket, &cfg);
        if (!cfg.socket_path && !cfg.listen)
                return 0;
        struct server_handlers h = {
                .metrics = handle_metrics,
                .status = handle_status,
                .dump = daemon_handle_dump,
                .reload = handle_reload,
                .userdata = d,
        };
        int r = server_new(d->event, &cfg, &h, &d->server);
        if (r < 0) {
                const char *hint = server_error_hint(r);
                return log_error_errno(r, "cannot listen on %s%s%s (%m)%s%s", cfg.socket_path ?: "",
                                       cfg.socket_path && cfg.listen ? " and " : "",
                                       cfg.listen ?: "", hint ? ": " : "", hint ?: "");
        }
        log_info("serving /metrics and the status API on %s%s%s", cfg.socket_path ?: "",
                 cfg.socket_path && cfg.listen ? " and " : "", cfg.listen ?: "");
        return 0;
}

void daemon_server_reconfigure(struct daemon *d)
{
        _cleanup_free_ char *socket = NULL;
        struct server_config cfg;

        server_config_for(d, &socket, &cfg);
        if (!d->server) {
                if (d->started)
                        (void)daemon_server_start(d);
                return;
        }
        int r = server_reconfigure(d->server, &cfg);
        if (r < 0) {
                const char *hint = server_error_hint(r);
                log_error_errno(r,
                                "reload: cannot listen on %s%s%s (%m)%s%s; the previous "
                                "listeners stay",
                                cfg.socket_path ?: "", cfg.socket_path && cfg.listen ? " and " : "",
                                cfg.listen ?: "", hint ? ": " : "", hint ?: "");
        }
}

/* SPDX-License-Identifier: MIT */
/*
 * record: the decision log of an instance and the incident bundle written when the kernel
 * OOM-kills (or the level reaches critical) — the trace, the decisions, the captures and
 * the HTML report, in one dump.
 */
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memgov/incident.h"
#include "memgov/report.h"
#include "memgov/trace.h"

const char *incident_action_to_string(enum incident_action a)
{
        static const char *const names[_INCIDENT_ACTION_MAX] = {
                [INCIDENT_LEVEL] = "level",       [INCIDENT_MEMORY_HIGH] = "memory_high",
                [INCIDENT_CAPTURE] = "capture",   [INCIDENT_WEBHOOK] = "webhook",
                [INCIDENT_OOM_KILL] = "oom_kill",
        };
        if (a < 0 || a >= _INCIDENT_ACTION_MAX)
                return NULL;
        return names[a];
}

/* ---- the log ------------------------------------------------------------------------ */

void incident_suspects_free(struct incident_suspect *s, size_t n)
{
        for (size_t i = 0; s && i < n; i++) {
                free(s[i].function);
                free(s[i].file);
        }
        free(s);
}

static void event_done(struct incident_event *e)
{
        free(e->reason);
        free(e->event);
        free(e->detail);
        incident_suspects_free(e->suspects, e->n_suspects);
        *e = (struct incident_event){};
}

int incident_log_init(struct incident_log *l, size_t cap)
{
        cap = cap ? cap : INCIDENT_LOG_DEFAULT_CAP;
        struct incident_event *events = calloc(cap, sizeof(*events));
        if (!events)
                return -ENOMEM;
        *l = (struct incident_log){.events = events, .cap = cap};
        return 0;
}

void incident_log_clear(struct incident_log *l)
{
        for (size_t k = 0; k < l->len; k++)
                event_done(&l->events[(l->head + k) % l->cap]);
        free(l->events);
        *l = (struct incident_log){};
}

/* strdup() that keeps NULL; false when out of memory. */
static bool dup_or_null(const char *s, char **ret)
{
        *ret = s ? strdup(s) : NULL;
        return !s || *ret;
}

static int copy_event(const struct incident_event *ev, struct incident_event *ret)
{
        struct incident_event c = *ev;
        size_t n = MIN(ev->n_suspects, (size_t)INCIDENT_SUSPECTS_MAX);

        c.reason = c.event = c.detail = NULL;
        c.suspects = NULL;
        c.n_suspects = 0;
        if (!dup_or_null(ev->reason, &c.reason) || !dup_or_null(ev->event, &c.event) ||
            !dup_or_null(ev->detail, &c.detail))
                goto fail;
        if (n > 0 && ev->suspects) {
                c.suspects = calloc(n, sizeof(*c.suspects));
                if (!c.suspects)
                        goto fail;
                for (size_t i = 0; i < n; i++, c.n_suspects++) {
                        c.suspects[i] = ev->suspects[i];
                        c.suspects[i].function = c.suspects[i].file = NULL;
                        if (!dup_or_null(ev->suspects[i].function ?: "", &c.suspects[i].function) ||
                            !dup_or_null(ev->suspects[i].file ?: "", &c.suspects[i].file)) {
                                c.n_suspects++;
                                goto fail;
                        }
                }
        }
        *ret = c;
        return 0;
fail:
        event_done(&c);
        return -ENOMEM;
}

int incident_log_add(struct incident_log *l, const struct incident_event *ev)
{
        struct incident_event c;
        int r;

        if (!l->events) {
                r = incident_log_init(l, 0);
                if (r < 0)
                        return r;
        }
        r = copy_event(ev, &c);
        if (r < 0)
                return r;
        if (l->len == l->cap) {
                event_done(&l->events[l->head]);
                l->events[l->head] = c;
                l->head = (l->head + 1) % l->cap;
                l->n_dropped++;
        } else
                l->events[(l->head + l->len++) % l->cap] = c;
        return 0;
}

size_t incident_log_size(const struct incident_log *l)
{
        return l ? l->len : 0;
}

const struct incident_event *incident_log_get(const struct incident_log *l, size_t k)
{
        if (!l || k >= l->len)
                return NULL;
        return &l->events[(l->head + k) % l->cap];
}

int incident_log_level(struct incident_log *l, uint64_t t_usec, enum level previous_level,
                       enum level level, const char *reason, uint64_t eta_usec)
{
        return incident_log_add(l, &(struct incident_event){
                                           .action = INCIDENT_LEVEL,
                                           .t_usec = t_usec,
                                           .level = level,
                                           .previous_level = previous_level,
                                           .reason = (char *)reason,
                                           .eta_usec = eta_usec,
                                   });
}

int incident_log_memory_high(struct incident_log *l, uint64_t t_usec, enum level level,
                             uint64_t high_bytes, const char *cause, const char *words)
{
        return incident_log_add(l, &(struct incident_event){
                                           .action = INCIDENT_MEMORY_HIGH,
                                           .t_usec = t_usec,
                                           .level = level,
                                           .previous_level = level,
                                           .reason = (char *)cause,
                                           .detail = (char *)words,
                                           .eta_usec = USEC_INFINITY,
                                           .bytes = high_bytes,
                                   });
}

int incident_log_capture(struct incident_log *l, uint64_t t_usec, enum level level,
                         const char *event, const char *role, const char *dir, bool failed,
                         const struct suspect *const *suspects, size_t n_suspects, bool paired)
{
        struct incident_suspect s[INCIDENT_SUSPECTS_MAX];
        size_t n = 0;

        for (size_t i = 0; suspects && i < n_suspects && n < ELEMENTSOF(s); i++) {
                const struct suspect *x = suspects[i];
                if (!x)
                        continue;
                /* Borrowed: incident_log_add() copies the strings. */
                s[n++] = (struct incident_suspect){
                        .kind = x->kind,
                        .function = x->function,
                        .file = x->file,
                        .line = x->line,
                        .current = x->current,
                        .growth = x->growth,
                        .paired = paired,
                };
        }
        return incident_log_add(l, &(struct incident_event){
                                           .action = INCIDENT_CAPTURE,
                                           .t_usec = t_usec,
                                           .level = level,
                                           .previous_level = level,
                                           .reason = (char *)role,
                                           .event = (char *)event,
                                           .detail = (char *)dir,
                                           .eta_usec = USEC_INFINITY,
                                           .failed = failed,
                                           .suspects = n > 0 ? s : NULL,
                                           .n_suspects = n,
                                   });
}

int incident_log_webhook(struct incident_log *l, uint64_t t_usec, enum level level,
                         const char *event, const char *endpoint, const char *outcome, bool failed)
{
        return incident_log_add(l, &(struct incident_event){
                                           .action = INCIDENT_WEBHOOK,
                                           .t_usec = t_usec,
                                           .level = level,
                                           .previous_level = level,
                                           .reason = (char *)outcome,
                                           .event = (char *)event,
                                           .detail = (char *)endpoint,
                                           .eta_usec = USEC_INFINITY,
                                           .failed = failed,
                                   });
}

int incident_log_oom_kill(struct incident_log *l, uint64_t t_usec, enum level level,
                          uint64_t n_killed)
{
        return incident_log_add(l, &(struct incident_event){
                                           .action = INCIDENT_OOM_KILL,
                                           .t_usec = t_usec,
                                           .level = level,
                                           .previous_level = level,
                                           .eta_usec = USEC_INFINITY,
                                           .bytes = n_killed,
                                   });
}

bool incident_lead(const struct incident_log *l, uint64_t oom_usec, enum level lvl,
                   uint64_t *ret_usec)
{
        size_t n = incident_log_size(l), start = SIZE_MAX;

        if (lvl <= LEVEL_OK || lvl >= _LEVEL_MAX)
                return false;
        /* The episode: the last rise from ok not after the kill, with no return to ok since. */
        for (size_t k = 0; k < n; k++) {
                const struct incident_event *e = incident_log_get(l, k);
                if (e->t_usec > oom_usec)
                        break;
                if (e->action != INCIDENT_LEVEL)
                        continue;
                if (e->previous_level == LEVEL_OK && e->level > LEVEL_OK)
                        start = k;
                else if (e->level == LEVEL_OK)
                        start = SIZE_MAX;
        }
        for (size_t k = start; k < n; k++) {
                const struct incident_event *e = incident_log_get(l, k);
                if (e->t_usec > oom_usec)
                        break;
                if (e->action == INCIDENT_LEVEL && e->level >= lvl && e->previous_level < lvl) {
                        *ret_usec = oom_usec - e->t_usec;
                        return true;
                }
        }
        return false;
}

const struct incident_event *incident_log_suspects(const struct incident_log *l)
{
        const struct incident_event *unpaired = NULL;

        for (size_t k = incident_log_size(l); k > 0; k--) {
                const struct incident_event *e = incident_log_get(l, k - 1);
                if (e->action != INCIDENT_CAPTURE || e->n_suspects == 0)
                        continue;
                if (e->suspects[0].paired)
                        return e;
                if (!unpaired)
                        unpaired = e;
        }
        return unpaired;
}

/* ---- suspects.json ------------------------------------------------------------------ */

static uint64_t json_u64(struct json_object *o, const char *key)
{
        struct json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return 0;
        int64_t x = json_object_get_int64(v);
        return x > 0 ? (uint64_t)x : 0;
}

/* Append up to max - *n suspects of one list (a JSON array) to s. */
static int take_list(struct json_object *list, enum suspect_kind kind, bool paired,
                     struct incident_suspect *s, size_t *n, size_t max)
{
        size_t len =
                json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;

        for (size_t i = 0; i < len && *n < max; i++) {
                struct json_object *o = json_object_array_get_idx(list, i), *fn, *file, *growth;
                if (!json_object_is_type(o, json_type_object) ||
                    !json_object_object_get_ex(o, "function", &fn) ||
                    !json_object_is_type(fn, json_type_string))
                        return -EINVAL;
                struct incident_suspect x = {
                        .kind = kind,
                        .line = (uint32_t)MIN(json_u64(o, "line"), (uint64_t)UINT32_MAX),
                        .current = json_u64(o, "current"),
                        .paired = paired,
                };
                x.growth = (int64_t)MIN(x.current, (uint64_t)INT64_MAX);
                if (paired && json_object_object_get_ex(o, "growth", &growth) &&
                    json_object_is_type(growth, json_type_int))
                        x.growth = json_object_get_int64(growth);
                x.function = strdup(json_object_get_string(fn));
                x.file = strdup(json_object_object_get_ex(o, "file", &file) &&
                                                json_object_is_type(file, json_type_string)
                                        ? json_object_get_string(file)
                                        : "");
                if (!x.function || !x.file) {
                        free(x.function);
                        free(x.file);
                        return -ENOMEM;
                }
                s[(*n)++] = x;
        }
        return 0;
}

/* One kind's section: the list to report and how much the whole profile grew. */
static struct json_object *kind_list(struct json_object *sec, const char *top_key, bool *ret_paired,
                                     double *ret_growth)
{
        struct json_object *v, *list = NULL;

        *ret_paired = false;
        *ret_growth = -1.0;
        if (!json_object_is_type(sec, json_type_object))
                return NULL;
        if (json_object_object_get_ex(sec, "growth", &v) &&
            json_object_is_type(v, json_type_array)) {
                list = v;
                *ret_paired = true;
                uint64_t cur = json_u64(sec, "current_total"), base = json_u64(sec, "base_total");
                *ret_growth = cur <= base ? 0.0 : (double)(cur - base) / (double)(base ? base : 1);
        } else if (json_object_object_get_ex(sec, top_key, &v))
                list = v;
        return list;
}

int incident_suspects_parse_json(const char *buf, size_t len, struct incident_suspect **ret,
                                 size_t *ret_n)
{
        struct json_tokener *tok = json_tokener_new();
        struct json_object *root, *heap = NULL, *gor = NULL, *version;
        int r;

        if (!tok)
                return -ENOMEM;
        if (len > (size_t)INT32_MAX) {
                json_tokener_free(tok);
                return -EINVAL;
        }
        root = json_tokener_parse_ex(tok, buf, (int)len);
        bool complete = json_tokener_get_error(tok) == json_tokener_success &&
                        json_tokener_get_parse_end(tok) == len;
        json_tokener_free(tok);
        if (!root || !complete || !json_object_is_type(root, json_type_object) ||
            !json_object_object_get_ex(root, "version", &version) ||
            json_object_get_int(version) != 1) {
                json_object_put(root);
                return -EINVAL;
        }
        (void)json_object_object_get_ex(root, "heap", &heap);
        (void)json_object_object_get_ex(root, "goroutine", &gor);

        bool heap_paired, gor_paired;
        double heap_growth, gor_growth;
        struct json_object *hl = kind_list(heap, "top", &heap_paired, &heap_growth);
        struct json_object *gl = kind_list(gor, "clusters", &gor_paired, &gor_growth);

        struct incident_suspect *s = calloc(INCIDENT_SUSPECTS_MAX, sizeof(*s));
        size_t n = 0;
        if (!s) {
                json_object_put(root);
                return -ENOMEM;
        }
        /* The kind that grew more relative to its base first, as pprof_summarize() orders. */
        bool gor_first = gor_paired && (!heap_paired || gor_growth > heap_growth);
        if (gor_first) {
                r = take_list(gl, SUSPECT_GOROUTINE, gor_paired, s, &n, INCIDENT_SUSPECTS_MAX);
                if (r >= 0)
                        r = take_list(hl, SUSPECT_HEAP, heap_paired, s, &n, INCIDENT_SUSPECTS_MAX);
        } else {
                r = take_list(hl, SUSPECT_HEAP, heap_paired, s, &n, INCIDENT_SUSPECTS_MAX);
                if (r >= 0)
                        r = take_list(gl, SUSPECT_GOROUTINE, gor_paired, s, &n,
                                      INCIDENT_SUSPECTS_MAX);
        }
        json_object_put(root);
        if (r < 0) {
                incident_suspects_free(s, n);
                return r;
        }
        if (n == 0) {
                free(s);
                s = NULL;
        }
        *ret = s;
        *ret_n = n;
        return 0;
}

/* ---- the bundle's text files -------------------------------------------------------- */

const struct sample *incident_samples_get(const struct incident_samples *s, size_t k)
{
        if (!s || !s->base || k >= s->len || s->cap == 0)
                return NULL;
        return &s->base[(s->head + k) % s->cap];
}

int incident_write_trace(FILE *f, const struct incident_samples *s)
{
        const struct sample *first = incident_samples_get(s, 0);
        int r = trace_write_header(f);

        for (size_t k = 0; r >= 0 && first && k < s->len; k++)
                r = trace_write_row(f, first->t_usec, incident_samples_get(s, k));
        if (r >= 0 && (fflush(f) != 0 || ferror(f)))
                r = -EIO;
        return r < 0 ? -EIO : 0;
}

/* Seconds relative to t0, millisecond precision, as a number that prints what it says. */
static struct json_object *json_rel_seconds(uint64_t t_usec, uint64_t t0_usec)
{
        double v = t_usec >= t0_usec ? (double)(t_usec - t0_usec) / 1e6
                                     : -((double)(t0_usec - t_usec) / 1e6);
        char buf[64];

        snprintf(buf, sizeof(buf), "%.3f", v);
        size_t n = strlen(buf);
        while (n > 2 && buf[n - 1] == '0' && buf[n - 2] != '.')
                buf[--n] = '\0';
        return json_object_new_double_s(v, buf);
}

static int add(struct json_object *o, const char *key, struct json_object *v)
{
        if (!v)
                return -ENOMEM;
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int add_string(struct json_object *o, const char *key, const char *s)
{
        return s ? add(o, key, json_object_new_string(s)) : 0;
}

static struct json_object *suspects_json(const struct incident_suspect *s, size_t n)
{
        struct json_object *a = json_object_new_array();

        for (size_t i = 0; a && i < n; i++) {
                struct json_object *o = json_object_new_object();
                int r = o ? 0 : -ENOMEM;
                r = r ?: add_string(o, "kind", suspect_kind_to_string(s[i].kind));
                r = r ?: add_string(o, "function", s[i].function);
                r = r ?: add_string(o, "file", s[i].file);
                r = r ?: add(o, "line", json_object_new_int64(s[i].line));
                r = r ?: add(o, "current", json_object_new_uint64(s[i].current));
                r = r ?: add(o, "growth", json_object_new_int64(s[i].growth));
                r = r ?: add(o, "paired", json_object_new_boolean(s[i].paired));
                if (r < 0 || json_object_array_add(a, o) < 0) {
                        json_object_put(o);
                        json_object_put(a);
                        return NULL;
                }
        }
        return a;
}

static struct json_object *event_json(const struct incident_event *e, uint64_t t0_usec)
{
        struct json_object *o = json_object_new_object();
        int r = o ? 0 : -ENOMEM;

        r = r ?: add(o, "t_s", json_rel_seconds(e->t_usec, t0_usec));
        r = r ?: add_string(o, "action", incident_action_to_string(e->action));
        r = r ?: add_string(o, "level", level_to_string(e->level));
        switch (e->action) {
        case INCIDENT_LEVEL:
                r = r ?: add_string(o, "from", level_to_string(e->previous_level));
                r = r ?: add_string(o, "reason", e->reason);
                if (e->eta_usec != USEC_INFINITY)
                        r = r ?: add(o, "eta_s", json_rel_seconds(e->eta_usec, 0));
                break;
        case INCIDENT_MEMORY_HIGH:
                r = r
                            ?: add(o, "bytes",
                                   e->bytes == CGROUP_LIMIT_MAX ? json_object_new_string("max")
                                                                : json_object_new_uint64(e->bytes));
                r = r ?: add_string(o, "reason", e->reason);
                r = r ?: add_string(o, "detail", e->detail);
                break;
        case INCIDENT_CAPTURE:
                r = r ?: add_string(o, "event", e->event);
                r = r ?: add_string(o, "reason", e->reason);
                r = r ?: add_string(o, "dir", e->detail);
                r = r ?: add(o, "failed", json_object_new_boolean(e->failed));
                r = r ?: add(o, "suspects", suspects_json(e->suspects, e->n_suspects));
                break;
        case INCIDENT_WEBHOOK:
                r = r ?: add_string(o, "event", e->event);
                r = r ?: add_string(o, "reason", e->reason);
                r = r ?: add_string(o, "detail", e->detail);
                r = r ?: add(o, "failed", json_object_new_boolean(e->failed));
                break;
        case INCIDENT_OOM_KILL:
                r = r ?: add(o, "count", json_object_new_uint64(e->bytes));
                break;
        default:
                break;
        }
        if (r < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

static int print_json(FILE *f, struct json_object *o)
{
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return -ENOMEM;
        return fputs(s, f) < 0 || fputc('\n', f) < 0 ? -EIO : 0;
}

int incident_write_decisions(FILE *f, const struct incident_log *l, uint64_t t0_usec)
{
        for (size_t k = 0; k < incident_log_size(l); k++) {
                struct json_object *o = event_json(incident_log_get(l, k), t0_usec);
                if (!o)
                        return -ENOMEM;
                int r = print_json(f, o);
                json_object_put(o);
                if (r < 0)
                        return r;
        }
        return fflush(f) != 0 || ferror(f) ? -EIO : 0;
}

int incident_write_captures(FILE *f, const struct incident_log *l, uint64_t t0_usec)
{
        struct json_object *root = json_object_new_object(), *a = json_object_new_array();
        int r = root && a ? 0 : -ENOMEM;

        for (size_t k = 0; r >= 0 && k < incident_log_size(l); k++) {
                const struct incident_event *e = incident_log_get(l, k);
                if (e->action != INCIDENT_CAPTURE)
                        continue;
                struct json_object *o = json_object_new_object();
                _cleanup_free_ char *sj = NULL;
                if (e->detail && asprintf(&sj, "%s/suspects.json", e->detail) < 0)
                        sj = NULL;
                r = o ? 0 : -ENOMEM;
                r = r ?: add(o, "t_s", json_rel_seconds(e->t_usec, t0_usec));
                r = r ?: add_string(o, "event", e->event);
                r = r ?: add_string(o, "role", e->reason);
                r = r ?: add_string(o, "level", level_to_string(e->level));
                r = r ?: add_string(o, "dir", e->detail);
                r = r ?: add_string(o, "suspects_json", sj);
                r = r ?: add(o, "failed", json_object_new_boolean(e->failed));
                r = r ?: add(o, "suspects", suspects_json(e->suspects, e->n_suspects));
                if (r < 0 || json_object_array_add(a, o) < 0) {
                        json_object_put(o);
                        r = -ENOMEM;
                }
        }
        if (r >= 0) {
                r = add(root, "captures", a);
                a = NULL;
        }
        if (r >= 0) {
                const char *s = json_object_to_json_string_ext(
                        root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                      JSON_C_TO_STRING_NOSLASHESCAPE);
                r = !s ? -ENOMEM : fputs(s, f) < 0 || fputc('\n', f) < 0 ? -EIO : 0;
        }
        json_object_put(a);
        json_object_put(root);
        if (r >= 0 && (fflush(f) != 0 || ferror(f)))
                r = -EIO;
        return r;
}

/* ---- the bundle --------------------------------------------------------------------- */

/* Format one file into memory with fn, then write it into the dump atomically. */
static int write_member(struct dump *d, const char *name, const char *kind,
                        int (*fn)(FILE *f, const void *userdata), const void *userdata)
{
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        int r;

        if (!f)
                return -ENOMEM;
        r = fn(f, userdata);
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0)
                return r;
        return dump_write_file(d, name, kind, buf, size);
}

struct bundle {
        const struct incident_request *req;
        uint64_t t0_usec;
};

static int do_trace(FILE *f, const void *userdata)
{
        const struct bundle *b = userdata;
        return incident_write_trace(f, &b->req->samples);
}

static int do_decisions(FILE *f, const void *userdata)
{
        const struct bundle *b = userdata;
        return incident_write_decisions(f, b->req->log, b->t0_usec);
}

static int do_captures(FILE *f, const void *userdata)
{
        const struct bundle *b = userdata;
        return incident_write_captures(f, b->req->log, b->t0_usec);
}

static int do_report(FILE *f, const void *userdata)
{
        const struct bundle *b = userdata;
        const struct incident_request *q = b->req;
        static const char *const files[] = {"trace.csv", "decisions.jsonl", "captures.json",
                                            "manifest.json"};

        return report_write_html(f, &(struct report_input){
                                            .service = q->service,
                                            .cgroup = q->cgroup,
                                            .event = event_to_string(q->event),
                                            .t_usec = q->t_usec,
                                            .realtime_usec = q->realtime_usec,
                                            .samples = q->samples,
                                            .log = q->log,
                                            .policy = q->policy,
                                            .files = files,
                                            .n_files = ELEMENTSOF(files),
                                            .generator = q->generator,
                                    });
}

int incident_write(struct dump_store *store, const struct incident_request *req, char **ret_dir)
{
        const char *event = event_to_string(req->event);
        _cleanup_(dump_freep) struct dump *d = NULL;
        char name[DUMPS_EVENT_MAX];
        int r;

        if (!store || !req->service || !event)
                return -EINVAL;
        /*
         * "incident-oom_kill": the capture that the same event starts is "…-oom_kill", and
         * an operator looking for the profiles should not open the bundle by mistake.
         */
        snprintf(name, sizeof(name), "incident-%s", event);
        const struct sample *first = incident_samples_get(&req->samples, 0);
        struct bundle b = {
                .req = req,
                .t0_usec = first ? first->t_usec : req->t_usec,
        };

        /*
         * What may be written, generously: a trace row is under 200 bytes, the chart about
         * 60 bytes per sample and series, a log event under 2 KiB with its suspects.
         */
        uint64_t reserve = ((uint64_t)req->samples.len * 512) +
                           ((uint64_t)incident_log_size(req->log) * 6144) + ((uint64_t)256 << 10);
        r = dump_begin(store, req->service, name, req->realtime_usec, reserve, &d);
        if (r < 0)
                return r;

        r = write_member(d, "trace.csv", "trace-csv", do_trace, &b);
        if (r >= 0)
                r = write_member(d, "decisions.jsonl", "decisions", do_decisions, &b);
        if (r >= 0)
                r = write_member(d, "captures.json", "captures", do_captures, &b);
        if (r >= 0)
                r = write_member(d, "report.html", "report-html", do_report, &b);
        if (r >= 0)
                r = dump_commit(d, req->realtime_usec);
        if (r < 0)
                return r;
        if (ret_dir) {
                *ret_dir = strdup(dump_path(d));
                if (!*ret_dir)
                        return -ENOMEM;
        }
        return 0;
}

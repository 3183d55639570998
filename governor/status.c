/* SPDX-License-Identifier: MIT */
/*
 * Export: the status document of GET /v1/status — written by the daemon, read back and
 * shown as a table by memgovctl status. docs/status-api.md describes the schema.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include <json-c/json.h>

#include "memgov/promtext.h"
#include "memgov/status.h"
#include "memgov/utf8.h"

void status_instance_init(struct status_instance *i)
{
        *i = (struct status_instance){
                .level = LEVEL_OK,
                .level_age_usec = STATUS_NONE,
                .last_sample_age_usec = STATUS_NONE,
                .current_bytes = STATUS_NONE,
                .anon_bytes = STATUS_NONE,
                .file_bytes = STATUS_NONE,
                .max_bytes = STATUS_NONE,
                .high_bytes = STATUS_NONE,
                .limit_bytes = STATUS_NONE,
                .psi_some_avg10 = NAN,
                .psi_full_avg10 = NAN,
                .eta_usec = STATUS_NONE,
                .eta_lower_usec = STATUS_NONE,
                .eta_upper_usec = STATUS_NONE,
                .slope_bytes_per_sec = NAN,
                .memory_high_set_bytes = STATUS_NONE,
                .last_event = {.event = _EVENT_INVALID, .age_usec = STATUS_NONE},
                .last_capture = {.age_usec = STATUS_NONE},
                .last_delivery = {.event = _EVENT_INVALID,
                                  .attempts = STATUS_NONE,
                                  .age_usec = STATUS_NONE},
        };
}

/* ---- Writing -------------------------------------------------------------------------- */

/* A JSON string: quotes, backslashes and control characters escaped, invalid UTF-8 as U+FFFD. */
static void put_string(FILE *out, const char *s)
{
        if (!s) {
                fputs("null", out);
                return;
        }
        fputc('"', out);
        for (const unsigned char *c = (const unsigned char *)s; *c;) {
                size_t n = utf8_valid_len(c);

                if (n == 0) {
                        fputs(UTF8_REPLACEMENT, out);
                        c++;
                        continue;
                }
                if (*c == '"' || *c == '\\')
                        fprintf(out, "\\%c", *c);
                else if (*c == '\n')
                        fputs("\\n", out);
                else if (*c == '\t')
                        fputs("\\t", out);
                else if (*c < 0x20 || *c == 0x7f)
                        fprintf(out, "\\u%04x", *c);
                else
                        fwrite(c, 1, n, out);
                c += n;
        }
        fputc('"', out);
}

static void put_u64(FILE *out, uint64_t v)
{
        if (v == STATUS_NONE)
                fputs("null", out);
        else
                fprintf(out, "%" PRIu64, v);
}

/* Microseconds as seconds with millisecond resolution, exactly (no float on the way). */
static void put_seconds(FILE *out, uint64_t usec)
{
        if (usec == STATUS_NONE)
                fputs("null", out);
        else
                fprintf(out, "%" PRIu64 ".%03u", usec / USEC_PER_SEC,
                        (unsigned)(usec % USEC_PER_SEC / USEC_PER_MSEC));
}

static void put_double(FILE *out, double v)
{
        char buf[32];

        if (!isfinite(v))
                fputs("null", out);
        else
                fputs(promtext_format_double(v, buf), out);
}

/* ,"key": */
static void put_key(FILE *out, const char *key, bool first)
{
        fprintf(out, "%s\"%s\":", first ? "" : ",", key);
}

static void put_instance(FILE *out, const struct status_instance *i)
{
        put_key(out, "service", true);
        put_string(out, i->service);
        put_key(out, "cgroup", false);
        put_string(out, i->cgroup);
        put_key(out, "level", false);
        put_string(out, level_to_string(i->level));
        put_key(out, "level_age_s", false);
        put_seconds(out, i->level_age_usec);
        put_key(out, "samples", false);
        put_u64(out, i->n_samples);
        put_key(out, "last_sample_age_s", false);
        put_seconds(out, i->last_sample_age_usec);

        fputs(",\"memory\":{", out);
        put_key(out, "current_bytes", true);
        put_u64(out, i->current_bytes);
        put_key(out, "anon_bytes", false);
        put_u64(out, i->anon_bytes);
        put_key(out, "file_bytes", false);
        put_u64(out, i->file_bytes);
        put_key(out, "max_bytes", false);
        put_u64(out, i->max_bytes);
        put_key(out, "high_bytes", false);
        put_u64(out, i->high_bytes);
        put_key(out, "limit_bytes", false);
        put_u64(out, i->limit_bytes);
        fputs("},\"pressure\":{", out);
        put_key(out, "some_avg10", true);
        put_double(out, i->psi_some_avg10);
        put_key(out, "full_avg10", false);
        put_double(out, i->psi_full_avg10);

        fputs("},\"forecast\":{", out);
        put_key(out, "known", true);
        fputs(i->forecast_known ? "true" : "false", out);
        put_key(out, "eta_s", false);
        put_seconds(out, i->eta_usec);
        put_key(out, "eta_lower_s", false);
        put_seconds(out, i->eta_lower_usec);
        put_key(out, "eta_upper_s", false);
        put_seconds(out, i->eta_upper_usec);
        put_key(out, "slope_bytes_per_s", false);
        put_double(out, i->slope_bytes_per_sec);

        fputs("},\"memory_high\":{", out);
        put_key(out, "mode", true);
        put_string(out, i->memory_high_mode);
        put_key(out, "set_bytes", false);
        put_u64(out, i->memory_high_set_bytes);
        fputs("}", out);

        put_key(out, "last_event", false);
        if (!event_to_string(i->last_event.event))
                fputs("null", out);
        else {
                fputs("{", out);
                put_key(out, "event", true);
                put_string(out, event_to_string(i->last_event.event));
                put_key(out, "age_s", false);
                put_seconds(out, i->last_event.age_usec);
                fputs("}", out);
        }

        put_key(out, "last_capture", false);
        if (!i->last_capture.kind)
                fputs("null", out);
        else {
                fputs("{", out);
                put_key(out, "kind", true);
                put_string(out, i->last_capture.kind);
                put_key(out, "result", false);
                put_string(out, i->last_capture.result);
                put_key(out, "path", false);
                put_string(out, i->last_capture.path);
                put_key(out, "age_s", false);
                put_seconds(out, i->last_capture.age_usec);
                fputs("}", out);
        }

        put_key(out, "last_delivery", false);
        if (!event_to_string(i->last_delivery.event))
                fputs("null", out);
        else {
                fputs("{", out);
                put_key(out, "event", true);
                put_string(out, event_to_string(i->last_delivery.event));
                put_key(out, "endpoint", false);
                put_string(out, i->last_delivery.endpoint);
                put_key(out, "result", false);
                put_string(out, i->last_delivery.result);
                put_key(out, "http_status", false);
                fprintf(out, "%ld", i->last_delivery.http_status);
                put_key(out, "attempts", false);
                put_u64(out, i->last_delivery.attempts);
                put_key(out, "age_s", false);
                put_seconds(out, i->last_delivery.age_usec);
                fputs("}", out);
        }
}

int status_write_json(FILE *out, const struct status_daemon *d, const struct status_instance *v,
                      size_t n)
{
        for (size_t k = 0; k < n; k++)
                if (!v[k].service || !v[k].cgroup || !level_to_string(v[k].level))
                        return -EINVAL;

        fprintf(out, "{\"schema\":%d,\"daemon\":{", STATUS_SCHEMA);
        put_key(out, "version", true);
        put_string(out, d->version);
        put_key(out, "pid", false);
        fprintf(out, "%ld", (long)d->pid);
        put_key(out, "uptime_s", false);
        put_seconds(out, d->uptime_usec);
        put_key(out, "dry_run", false);
        fputs(d->dry_run ? "true" : "false", out);
        put_key(out, "cgroup_root", false);
        put_string(out, d->cgroup_root);
        put_key(out, "policy_dir", false);
        put_string(out, d->policy_dir);
        put_key(out, "state_dir", false);
        put_string(out, d->state_dir);
        put_key(out, "policies", false);
        put_u64(out, d->n_policies);
        put_key(out, "reloads", false);
        put_u64(out, d->n_reloads);
        fputs("},\"instances\":[", out);
        for (size_t k = 0; k < n; k++) {
                fputs(k ? ",{" : "{", out);
                put_instance(out, &v[k]);
                fputs("}", out);
        }
        fputs("]}\n", out);
        return fflush(out) != 0 || ferror(out) ? -EIO : 0;
}

int status_write_message(FILE *out, bool ok, const char *text)
{
        fprintf(out, "{\"ok\":%s,\"%s\":", ok ? "true" : "false", ok ? "message" : "error");
        put_string(out, text ? text : "");
        fputs("}\n", out);
        return fflush(out) != 0 || ferror(out) ? -EIO : 0;
}

/* ---- Reading -------------------------------------------------------------------------- */

struct reader {
        char *error; /* the first problem, "PATH: message" */
        bool oom;
};

static _printf_(3, 4) void problem(struct reader *r, const char *path, const char *fmt, ...)
{
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        if (r->error || r->oom)
                return;
        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        if (!msg || asprintf(&r->error, "%s: %s", path, msg) < 0) {
                r->error = NULL;
                r->oom = true;
        }
}

/* The member key of o, NULL when absent or JSON null. */
static struct json_object *member(struct json_object *o, const char *key)
{
        struct json_object *v = NULL;

        if (!o || !json_object_object_get_ex(o, key, &v))
                return NULL;
        return v;
}

static void read_u64(struct reader *r, struct json_object *o, const char *path, const char *key,
                     uint64_t *ret)
{
        struct json_object *v = member(o, key);

        *ret = STATUS_NONE;
        if (!v)
                return;
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0) {
                problem(r, path, "%s: expected a non-negative integer or null", key);
                return;
        }
        *ret = json_object_get_uint64(v);
}

static void read_seconds(struct reader *r, struct json_object *o, const char *path, const char *key,
                         uint64_t *ret)
{
        struct json_object *v = member(o, key);
        double s;

        *ret = STATUS_NONE;
        if (!v)
                return;
        if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) {
                problem(r, path, "%s: expected a number of seconds or null", key);
                return;
        }
        s = json_object_get_double(v);
        if (!(s >= 0) || s >= 1e12) {
                problem(r, path, "%s: expected seconds between 0 and 1e12", key);
                return;
        }
        *ret = (uint64_t)llround(s * (double)USEC_PER_SEC);
}

static void read_double(struct reader *r, struct json_object *o, const char *path, const char *key,
                        double *ret)
{
        struct json_object *v = member(o, key);

        *ret = NAN;
        if (!v)
                return;
        if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) {
                problem(r, path, "%s: expected a number or null", key);
                return;
        }
        *ret = json_object_get_double(v);
}

static void read_bool(struct reader *r, struct json_object *o, const char *path, const char *key,
                      bool *ret)
{
        struct json_object *v = member(o, key);

        *ret = false;
        if (!v)
                return;
        if (!json_object_is_type(v, json_type_boolean)) {
                problem(r, path, "%s: expected true or false", key);
                return;
        }
        *ret = json_object_get_boolean(v);
}

/* A string copied into *ret (NULL when absent or null); required ones must be there. */
static void read_string(struct reader *r, struct json_object *o, const char *path, const char *key,
                        bool required, const char **ret)
{
        struct json_object *v = member(o, key);
        char *s;

        *ret = NULL;
        if (!v) {
                if (required)
                        problem(r, path, "%s: missing", key);
                return;
        }
        if (!json_object_is_type(v, json_type_string)) {
                problem(r, path, "%s: expected a string", key);
                return;
        }
        s = strdup(json_object_get_string(v));
        if (!s)
                r->oom = true;
        *ret = s;
}

/* An object member that may be null: returns it, or NULL (with a problem if not an object). */
static struct json_object *read_object(struct reader *r, struct json_object *o, const char *path,
                                       const char *key)
{
        struct json_object *v = member(o, key);

        if (v && !json_object_is_type(v, json_type_object)) {
                problem(r, path, "%s: expected an object or null", key);
                return NULL;
        }
        return v;
}

static enum event read_event(struct reader *r, struct json_object *o, const char *path)
{
        const char *name = NULL;
        enum event e;

        read_string(r, o, path, "event", false, &name);
        /* An event this memgovctl does not know (a newer daemon) reads as none. */
        e = event_from_string(name);
        free((char *)name);
        return e;
}

static void read_instance(struct reader *r, struct json_object *o, size_t k,
                          struct status_instance *i)
{
        struct json_object *m;
        const char *level = NULL;
        char path[64];

        status_instance_init(i);
        (void)snprintf(path, sizeof(path), ".instances[%zu]", k);
        if (!json_object_is_type(o, json_type_object)) {
                problem(r, path, "expected an object");
                return;
        }
        read_string(r, o, path, "service", true, &i->service);
        read_string(r, o, path, "cgroup", true, &i->cgroup);
        read_string(r, o, path, "level", true, &level);
        if (level && (i->level = level_from_string(level)) < 0) {
                problem(r, path, "level: unknown level \"%s\"", level);
                i->level = LEVEL_OK;
        }
        free((char *)level);
        read_seconds(r, o, path, "level_age_s", &i->level_age_usec);
        read_u64(r, o, path, "samples", &i->n_samples);
        if (i->n_samples == STATUS_NONE)
                i->n_samples = 0;
        read_seconds(r, o, path, "last_sample_age_s", &i->last_sample_age_usec);

        m = read_object(r, o, path, "memory");
        read_u64(r, m, path, "current_bytes", &i->current_bytes);
        read_u64(r, m, path, "anon_bytes", &i->anon_bytes);
        read_u64(r, m, path, "file_bytes", &i->file_bytes);
        read_u64(r, m, path, "max_bytes", &i->max_bytes);
        read_u64(r, m, path, "high_bytes", &i->high_bytes);
        read_u64(r, m, path, "limit_bytes", &i->limit_bytes);
        m = read_object(r, o, path, "pressure");
        read_double(r, m, path, "some_avg10", &i->psi_some_avg10);
        read_double(r, m, path, "full_avg10", &i->psi_full_avg10);
        m = read_object(r, o, path, "forecast");
        read_bool(r, m, path, "known", &i->forecast_known);
        read_seconds(r, m, path, "eta_s", &i->eta_usec);
        read_seconds(r, m, path, "eta_lower_s", &i->eta_lower_usec);
        read_seconds(r, m, path, "eta_upper_s", &i->eta_upper_usec);
        read_double(r, m, path, "slope_bytes_per_s", &i->slope_bytes_per_sec);
        m = read_object(r, o, path, "memory_high");
        read_string(r, m, path, "mode", false, &i->memory_high_mode);
        read_u64(r, m, path, "set_bytes", &i->memory_high_set_bytes);

        m = read_object(r, o, path, "last_event");
        if (m) {
                i->last_event.event = read_event(r, m, path);
                read_seconds(r, m, path, "age_s", &i->last_event.age_usec);
        }
        m = read_object(r, o, path, "last_capture");
        if (m) {
                read_string(r, m, path, "kind", true, &i->last_capture.kind);
                read_string(r, m, path, "result", false, &i->last_capture.result);
                read_string(r, m, path, "path", false, &i->last_capture.path);
                read_seconds(r, m, path, "age_s", &i->last_capture.age_usec);
        }
        m = read_object(r, o, path, "last_delivery");
        if (m) {
                uint64_t st;

                i->last_delivery.event = read_event(r, m, path);
                read_string(r, m, path, "endpoint", false, &i->last_delivery.endpoint);
                read_string(r, m, path, "result", false, &i->last_delivery.result);
                read_u64(r, m, path, "attempts", &i->last_delivery.attempts);
                read_u64(r, m, path, "http_status", &st);
                i->last_delivery.http_status = st == STATUS_NONE || st > 999 ? 0 : (long)st;
                read_seconds(r, m, path, "age_s", &i->last_delivery.age_usec);
        }
}

static inline void json_object_putp(struct json_object **o)
{
        if (*o)
                json_object_put(*o);
}

int status_parse_json(const char *buf, size_t len, struct status_doc **ret, char **ret_error)
{
        _cleanup_(json_object_putp) struct json_object *root = NULL;
        _cleanup_(status_doc_freep) struct status_doc *doc = NULL;
        struct json_tokener *tok;
        struct json_object *d, *list, *v;
        struct reader r = {0};
        enum json_tokener_error jerr;

        if (len > INT32_MAX)
                return -EINVAL;
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, buf, (int)len);
        jerr = json_tokener_get_error(tok);
        json_tokener_free(tok);
        if (!root || jerr != json_tokener_success) {
                problem(&r, "status", "not JSON (%s)",
                        jerr == json_tokener_continue ? "the document is cut short"
                                                      : json_tokener_error_desc(jerr));
                goto fail;
        }
        if (!json_object_is_type(root, json_type_object) ||
            !json_object_object_get_ex(root, "schema", &v) ||
            !json_object_is_type(v, json_type_int)) {
                problem(&r, "status", "not a memgov status document (no \"schema\")");
                goto fail;
        }
        if (json_object_get_int64(v) != STATUS_SCHEMA) {
                problem(&r, ".schema", "version %" PRId64 " is not the %d this memgovctl reads",
                        json_object_get_int64(v), STATUS_SCHEMA);
                goto fail;
        }

        doc = calloc(1, sizeof(*doc));
        if (!doc)
                return -ENOMEM;
        doc->schema = STATUS_SCHEMA;
        doc->daemon.uptime_usec = STATUS_NONE;

        d = read_object(&r, root, ".", "daemon");
        read_string(&r, d, ".daemon", "version", false, &doc->daemon.version);
        if ((v = member(d, "pid")) && json_object_is_type(v, json_type_int))
                doc->daemon.pid = (pid_t)json_object_get_int(v);
        read_seconds(&r, d, ".daemon", "uptime_s", &doc->daemon.uptime_usec);
        read_bool(&r, d, ".daemon", "dry_run", &doc->daemon.dry_run);
        read_string(&r, d, ".daemon", "cgroup_root", false, &doc->daemon.cgroup_root);
        read_string(&r, d, ".daemon", "policy_dir", false, &doc->daemon.policy_dir);
        read_string(&r, d, ".daemon", "state_dir", false, &doc->daemon.state_dir);
        read_u64(&r, d, ".daemon", "policies", &doc->daemon.n_policies);
        read_u64(&r, d, ".daemon", "reloads", &doc->daemon.n_reloads);

        list = member(root, "instances");
        if (!list || !json_object_is_type(list, json_type_array)) {
                problem(&r, ".", "instances: expected an array");
                goto fail;
        }
        size_t n = json_object_array_length(list);
        if (n > 0) {
                doc->instances = calloc(n, sizeof(*doc->instances));
                if (!doc->instances)
                        return -ENOMEM;
        }
        for (size_t k = 0; k < n && !r.error && !r.oom; k++) {
                read_instance(&r, json_object_array_get_idx(list, k), k, &doc->instances[k]);
                doc->n_instances = k + 1;
        }
        if (r.error || r.oom)
                goto fail;

        *ret = TAKE_PTR(doc);
        return 0;

fail:
        if (r.oom) {
                free(r.error);
                return -ENOMEM;
        }
        if (ret_error)
                *ret_error = r.error;
        else
                free(r.error);
        return -EINVAL;
}

int status_parse_message(const char *buf, size_t len, bool *ret_ok, char **ret_text)
{
        _cleanup_(json_object_putp) struct json_object *root = NULL;
        struct json_object *ok, *text;
        struct json_tokener *tok;
        char *t;

        if (len > INT32_MAX)
                return -EINVAL;
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, buf, (int)len);
        if (json_tokener_get_error(tok) != json_tokener_success) {
                json_object_put(root);
                root = NULL;
        }
        json_tokener_free(tok);
        if (!root || !json_object_is_type(root, json_type_object) ||
            !json_object_object_get_ex(root, "ok", &ok) ||
            !json_object_is_type(ok, json_type_boolean))
                return -EINVAL;
        text = member(root, json_object_get_boolean(ok) ? "message" : "error");
        t = strdup(text && json_object_is_type(text, json_type_string)
                           ? json_object_get_string(text)
                           : "");
        if (!t)
                return -ENOMEM;
        *ret_ok = json_object_get_boolean(ok);
        *ret_text = t;
        return 0;
}

static void instance_clear(struct status_instance *i)
{
        free((char *)i->service);
        free((char *)i->cgroup);
        free((char *)i->memory_high_mode);
        free((char *)i->last_capture.kind);
        free((char *)i->last_capture.result);
        free((char *)i->last_capture.path);
        free((char *)i->last_delivery.endpoint);
        free((char *)i->last_delivery.result);
}

struct status_doc *status_doc_free(struct status_doc *doc)
{
        if (!doc)
                return NULL;
        for (size_t k = 0; k < doc->n_instances; k++)
                instance_clear(&doc->instances[k]);
        free(doc->instances);
        free((char *)doc->daemon.version);
        free((char *)doc->daemon.cgroup_root);
        free((char *)doc->daemon.policy_dir);
        free((char *)doc->daemon.state_dir);
        free(doc);
        return NULL;
}

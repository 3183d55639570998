/* SPDX-License-Identifier: MIT */
/*
 * memgovctl replay: run memgovd's own forecast → decide → govern over a recorded trace
 * (offline, nothing executed) and report what the daemon would have done, against the
 * trace's OOM.
 */
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "memgov/ctl.h"
#include "memgov/diag.h"
#include "memgov/policy.h"
#include "memgov/replay.h"
#include "memgov/trace.h"

static void help(FILE *f)
{
        fprintf(f,
                "Usage: memgovctl replay --policy FILE [--json] TRACE.csv\n\n"
                "Runs memgovd's forecast and level decisions over a trace recorded by\n"
                "'memgovctl record', with the trace's timestamps as the clock, and reports\n"
                "what the daemon would have done: every level transition with its reason and\n"
                "ETA, every memory.high change the policy's memory_high mode would have made\n"
                "(\"max\", JSON null, when the limit is removed), and a summary against the\n"
                "trace's OOM (the first row where ev_oom_kill grows, else the first where\n"
                "current >= max). Nothing is executed.\n\n"
                "A level counts as entered when the level rises to it or above it; a false\n"
                "alarm is an entry that no OOM followed within the policy's forecast horizon.\n\n"
                "Options:\n"
                "  --policy FILE   the policy (levels, hold, forecast, memory_high)\n"
                "  --json          one JSON object on stdout (the documented contract)\n"
                "  -h, --help      this text\n\n"
                "Example:\n"
                "  memgovctl replay --policy /etc/memgov/policies.d/checkout.json \\\n"
                "          --json checkout.csv\n");
}

/* Seconds with millisecond precision, as a JSON number that keeps what it prints. */
static struct json_object *json_seconds(uint64_t usec)
{
        char buf[64];

        snprintf(buf, sizeof(buf), "%.3f", (double)usec / 1e6);
        /* "610.000" → "610.0", "845.500" → "845.5": shortest form, one decimal at least. */
        size_t n = strlen(buf);
        while (n > 0 && buf[n - 1] == '0' && buf[n - 2] != '.')
                buf[--n] = '\0';
        return json_object_new_double_s((double)usec / 1e6, buf);
}

static struct json_object *json_seconds_or_null(bool has, uint64_t usec)
{
        return has && usec != USEC_INFINITY ? json_seconds(usec) : NULL;
}

static int add(struct json_object *o, const char *key, struct json_object *v)
{
        /* NULL is JSON null here; json-c stores it as such. */
        return json_object_object_add(o, key, v) < 0 ? -ENOMEM : 0;
}

static int print_json(const char *name, const struct replay_result *r)
{
        struct json_object *o = json_object_new_object(), *first = json_object_new_object(),
                           *lead = json_object_new_object(),
                           *false_alarms = json_object_new_object(),
                           *transitions = json_object_new_array(),
                           *memory_high = json_object_new_array();
        int ret = -ENOMEM;

        if (!o || !first || !lead || !false_alarms || !transitions || !memory_high) {
                json_object_put(first);
                json_object_put(lead);
                json_object_put(false_alarms);
                json_object_put(transitions);
                json_object_put(memory_high);
                goto out;
        }

        for (int l = LEVEL_WARN; l < _LEVEL_MAX; l++) {
                uint64_t lead_usec = 0;
                bool has_lead = replay_lead(r, (enum level)l, &lead_usec);

                add(first, level_to_string((enum level)l),
                    json_seconds_or_null(r->has_first[l], r->first_usec[l]));
                add(lead, level_to_string((enum level)l),
                    json_seconds_or_null(has_lead, lead_usec));
                add(false_alarms, level_to_string((enum level)l),
                    json_object_new_int64(r->false_alarms[l]));
        }
        for (size_t i = 0; i < r->n_transitions; i++) {
                const struct replay_transition *t = &r->transitions[i];
                struct json_object *j = json_object_new_object();

                if (!j) {
                        json_object_put(first);
                        json_object_put(lead);
                        json_object_put(false_alarms);
                        json_object_put(transitions);
                        json_object_put(memory_high);
                        goto out;
                }
                add(j, "t_s", json_seconds(t->t_usec));
                add(j, "from", json_object_new_string(level_to_string(t->from)));
                add(j, "to", json_object_new_string(level_to_string(t->to)));
                add(j, "eta_s", json_seconds_or_null(true, t->eta_usec));
                add(j, "reason",
                    json_object_new_string(t->reason_name ?: decide_reason_to_string(t->reason)));
                json_object_array_add(transitions, j);
        }
        for (size_t i = 0; i < r->n_memory_high; i++) {
                const struct replay_memory_high *m = &r->memory_high[i];
                struct json_object *j = json_object_new_object();

                if (!j) {
                        json_object_put(first);
                        json_object_put(lead);
                        json_object_put(false_alarms);
                        json_object_put(transitions);
                        json_object_put(memory_high);
                        goto out;
                }
                add(j, "t_s", json_seconds(m->t_usec));
                /* "max" (no memory.high) is null: a number would have to be 2^64 − 1 */
                add(j, "bytes",
                    m->high_bytes == CGROUP_LIMIT_MAX
                            ? NULL
                            : json_object_new_int64(
                                      (int64_t)MIN(m->high_bytes, (uint64_t)INT64_MAX)));
                add(j, "cause", json_object_new_string(govern_cause_to_string(m->cause)));
                json_object_array_add(memory_high, j);
        }

        add(o, "trace", json_object_new_string(name));
        add(o, "samples", json_object_new_int64((int64_t)r->n_samples));
        add(o, "duration_s", json_seconds(r->duration_usec));
        add(o, "oom_at_s", json_seconds_or_null(r->has_oom, r->oom_usec));
        add(o, "first", first);
        add(o, "lead_s", lead);
        add(o, "false_alarms", false_alarms);
        add(o, "transitions", transitions);
        add(o, "memory_high", memory_high);

        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        if (!s)
                goto out;
        if (printf("%s\n", s) < 0 || fflush(stdout) != 0)
                ret = -EIO;
        else
                ret = 0;
out:
        json_object_put(o);
        return ret;
}

static void format_seconds(char *buf, size_t size, bool has, uint64_t usec)
{
        if (!has || usec == USEC_INFINITY)
                snprintf(buf, size, "-");
        else
                snprintf(buf, size, "%.1f", (double)usec / 1e6);
}

static int print_human(const char *name, const struct replay_result *r)
{
        char a[32], b[32], c[32];

        format_seconds(a, sizeof(a), r->has_oom, r->oom_usec);
        printf("%s: %zu samples over %.1f s, OOM at %s\n\n", name, r->n_samples,
               (double)r->duration_usec / 1e6, r->has_oom ? a : "none");

        if (r->n_transitions == 0)
                printf("No level changes: the level stayed ok.\n\n");
        else {
                printf("%10s  %-8s    %-8s  %-12s  %9s  %9s  %6s\n", "t_s", "from", "to", "reason",
                       "eta_s", "eta_low_s", "usage");
                for (size_t i = 0; i < r->n_transitions; i++) {
                        const struct replay_transition *t = &r->transitions[i];

                        format_seconds(a, sizeof(a), true, t->t_usec);
                        format_seconds(b, sizeof(b), true, t->eta_usec);
                        format_seconds(c, sizeof(c), true, t->eta_lower_usec);
                        printf("%10s  %-8s -> %-8s  %-12s  %9s  %9s  %5.1f%%\n", a,
                               level_to_string(t->from), level_to_string(t->to),
                               t->reason_name ?: decide_reason_to_string(t->reason), b, c,
                               t->usage_permille / 10.0);
                }
                printf("\n");
        }

        if (r->n_memory_high > 0) {
                printf("%10s  %14s  %s\n", "t_s", "memory.high", "cause");
                for (size_t i = 0; i < r->n_memory_high; i++) {
                        const struct replay_memory_high *m = &r->memory_high[i];

                        format_seconds(a, sizeof(a), true, m->t_usec);
                        if (m->high_bytes == CGROUP_LIMIT_MAX)
                                snprintf(b, sizeof(b), "max");
                        else
                                snprintf(b, sizeof(b), "%" PRIu64, m->high_bytes);
                        printf("%10s  %14s  %s\n", a, b, govern_cause_to_string(m->cause));
                }
                printf("\n");
        }

        printf("%-9s  %9s  %9s  %12s\n", "level", "first_s", "lead_s", "false_alarms");
        for (int l = LEVEL_WARN; l < _LEVEL_MAX; l++) {
                uint64_t lead = 0;
                bool has_lead = replay_lead(r, (enum level)l, &lead);

                format_seconds(a, sizeof(a), r->has_first[l], r->first_usec[l]);
                format_seconds(b, sizeof(b), has_lead, lead);
                printf("%-9s  %9s  %9s  %12u\n", level_to_string((enum level)l), a, b,
                       r->false_alarms[l]);
        }
        return fflush(stdout) == 0 ? 0 : -EIO;
}

int ctl_replay(int argc, char *argv[])
{
        enum { ARG_POLICY = 0x100, ARG_JSON };
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},
                {"policy", required_argument, NULL, ARG_POLICY},
                {"json", no_argument, NULL, ARG_JSON},
                {},
        };
        const char *policy_path = NULL;
        bool json = false;
        int opt, r;

        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (opt) {
                case 'h':
                        help(stdout);
                        return 0;
                case ARG_POLICY:
                        policy_path = optarg;
                        break;
                case ARG_JSON:
                        json = true;
                        break;
                default:
                        fprintf(stderr, "See 'memgovctl replay --help'.\n");
                        return 2;
                }
        }
        _cleanup_(policy_freep) struct policy *p = NULL;
        _cleanup_(trace_freep) struct trace *t = NULL;
        r = ctl_load_policy_and_trace(&(struct ctl_inputs){.command = "replay",
                                                           .argc = argc,
                                                           .argv = argv,
                                                           .optind = optind,
                                                           .policy_path = policy_path,
                                                           .help = help},
                                      &p, &t);
        if (r != 0)
                return r;
        const char *trace_path = argv[optind];

        struct replay_result res;
        r = replay_run(p, t, &res);
        if (r < 0) {
                fprintf(stderr, "memgovctl replay: %s\n", strerror(-r));
                return 1;
        }

        _cleanup_free_ char *copy = strdup(trace_path);
        const char *name = copy ? basename(copy) : trace_path;
        r = json ? print_json(name, &res) : print_human(name, &res);
        replay_result_clear(&res);
        if (r < 0) {
                fprintf(stderr, "memgovctl replay: cannot write the report: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}

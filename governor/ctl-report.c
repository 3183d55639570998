/* SPDX-License-Identifier: MIT */
/*
 * memgovctl report: replay a trace (memgovd's own forecast → decide, as `memgovctl replay`
 * runs it) and draw what it decided as the incident report, offline.
 */
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memgov/ctl.h"
#include "memgov/diag.h"
#include "memgov/incident.h"
#include "memgov/policy.h"
#include "memgov/replay.h"
#include "memgov/report.h"
#include "memgov/trace.h"

#define SUSPECTS_MAX_FILE_BYTES ((size_t)16 << 20)

static void help(FILE *f)
{
        fprintf(f,
                "Usage: memgovctl report --policy FILE [-o REPORT.html] [--suspects FILE]\n"
                "                        [--service NAME] TRACE.csv\n\n"
                "Replays a trace as 'memgovctl replay' does (memgovd's forecast and level\n"
                "decisions, the trace's timestamps as the clock) and writes the incident report\n"
                "memgovd puts in its bundles: one self-contained HTML page with the memory chart,\n"
                "the level bands, a marker per level change and the OOM kill, the lead times and\n"
                "the suspects table. Nothing is executed.\n\n"
                "Options:\n"
                "  --policy FILE     the policy (levels, hold, forecast window and horizon)\n"
                "  -o, --output FILE where the HTML goes (default: standard output)\n"
                "  --suspects FILE   a capture's suspects.json for the suspects table\n"
                "  --service NAME    the service named in the report (default: the policy's)\n"
                "  -h, --help        this text\n\n"
                "Example:\n"
                "  memgovctl report --policy checkout.json -o report.html \\\n"
                "          --suspects /var/lib/memgov/dumps/checkout/20240501T123456Z-critical/"
                "suspects.json \\\n"
                "          checkout.csv\n");
}

static int read_small_file(const char *path, char **ret, size_t *ret_size)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;

        if (fd < 0 || fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if ((uint64_t)st.st_size > SUSPECTS_MAX_FILE_BYTES)
                return -EFBIG;
        _cleanup_free_ char *buf = malloc((size_t)st.st_size + 1);
        size_t n = 0;
        if (!buf)
                return -ENOMEM;
        while (n < (size_t)st.st_size) {
                ssize_t k = read(fd, buf + n, (size_t)st.st_size - n);
                if (k < 0)
                        return negative_errno();
                if (k == 0)
                        break;
                n += (size_t)k;
        }
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

/* The replay's verdict as a decision log: every transition, and the trace's OOM kill. */
static int log_from_replay(const struct trace *t, const struct replay_result *res,
                           struct incident_log *l)
{
        ssize_t oom = trace_oom_index(t);
        bool oom_logged = oom < 0;
        enum level level = LEVEL_OK;
        int r;

        r = incident_log_init(l, res->n_transitions + 2);
        if (r < 0)
                return r;
        for (size_t i = 0; i <= res->n_transitions; i++) {
                const struct replay_transition *tr =
                        i < res->n_transitions ? &res->transitions[i] : NULL;
                if (!oom_logged && (!tr || tr->t_usec > res->oom_usec)) {
                        const struct sample *s = &t->samples[oom];
                        uint64_t killed = 1;
                        if (oom > 0 && (s->has & SAMPLE_HAS_EVENTS) &&
                            s->events.oom_kill > t->samples[oom - 1].events.oom_kill)
                                killed = s->events.oom_kill - t->samples[oom - 1].events.oom_kill;
                        r = incident_log_oom_kill(l, res->oom_usec, level, killed);
                        if (r < 0)
                                return r;
                        oom_logged = true;
                }
                if (!tr)
                        break;
                r = incident_log_level(l, tr->t_usec, tr->from, tr->to,
                                       decide_reason_to_string(tr->reason), tr->eta_lower_usec);
                if (r < 0)
                        return r;
                level = tr->to;
        }
        return 0;
}

int ctl_report(int argc, char *argv[])
{
        enum { ARG_POLICY = 0x100, ARG_SUSPECTS, ARG_SERVICE };
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},
                {"policy", required_argument, NULL, ARG_POLICY},
                {"output", required_argument, NULL, 'o'},
                {"suspects", required_argument, NULL, ARG_SUSPECTS},
                {"service", required_argument, NULL, ARG_SERVICE},
                {},
        };
        const char *policy_path = NULL, *output = NULL, *suspects_path = NULL, *service = NULL;
        int opt, r;

        while ((opt = getopt_long(argc, argv, "ho:", options, NULL)) >= 0) {
                switch (opt) {
                case 'h':
                        help(stdout);
                        return 0;
                case ARG_POLICY:
                        policy_path = optarg;
                        break;
                case 'o':
                        output = optarg;
                        break;
                case ARG_SUSPECTS:
                        suspects_path = optarg;
                        break;
                case ARG_SERVICE:
                        service = optarg;
                        break;
                default:
                        fprintf(stderr, "See 'memgovctl report --help'.\n");
                        return 2;
                }
        }
        _cleanup_(policy_freep) struct policy *p = NULL;
        _cleanup_(trace_freep) struct trace *t = NULL;
        r = ctl_load_policy_and_trace(&(struct ctl_inputs){.command = "report",
                                                           .argc = argc,
                                                           .argv = argv,
                                                           .optind = optind,
                                                           .policy_path = policy_path,
                                                           .help = help},
                                      &p, &t);
        if (r != 0)
                return r;
        const char *trace_path = argv[optind];

        struct incident_suspect *sus = NULL;
        size_t n_sus = 0;
        if (suspects_path) {
                _cleanup_free_ char *buf = NULL;
                size_t size = 0;
                r = read_small_file(suspects_path, &buf, &size);
                if (r >= 0)
                        r = incident_suspects_parse_json(buf, size, &sus, &n_sus);
                if (r < 0) {
                        fprintf(stderr, "%s: %s\n", suspects_path,
                                r == -EINVAL ? "not a suspects.json (version 1) as memgov writes it"
                                             : strerror(-r));
                        return 1;
                }
        }

        struct replay_result res;
        struct incident_log log = {};
        r = replay_run(p, t, &res);
        if (r >= 0) {
                r = log_from_replay(t, &res, &log);
                if (r < 0)
                        replay_result_clear(&res);
        }
        if (r < 0) {
                fprintf(stderr, "memgovctl report: %s\n", strerror(-r));
                incident_log_clear(&log);
                incident_suspects_free(sus, n_sus);
                return 1;
        }

        _cleanup_free_ char *copy = strdup(trace_path), *title = NULL;
        const char *name = copy ? basename(copy) : trace_path;
        if (asprintf(&title, "memgov report: %s", name) < 0)
                title = NULL;
        struct report_input in = {
                .title = title,
                .service = service ?: p->service,
                .cgroup = p->cgroup,
                .event = res.has_oom ? "oom_kill" : NULL,
                .t_usec = res.oom_usec,
                .samples = {t->samples, t->n_samples, 0, t->n_samples},
                .log = &log,
                .policy = p,
                .suspects = sus,
                .n_suspects = n_sus,
                .suspects_source = suspects_path,
                .generator = "memgovctl report " MEMGOV_VERSION,
        };

        FILE *f = output && strcmp(output, "-") != 0 ? fopen(output, "we") : stdout;
        if (!f)
                fprintf(stderr, "%s: cannot write: %m\n", output);
        else {
                r = report_write_html(f, &in);
                if (f != stdout && fclose(f) != 0 && r >= 0)
                        r = -EIO;
                if (r < 0)
                        fprintf(stderr, "memgovctl report: cannot write the report: %s\n",
                                strerror(-r));
        }
        replay_result_clear(&res);
        incident_log_clear(&log);
        incident_suspects_free(sus, n_sus);
        return f && r >= 0 ? 0 : 1;
}

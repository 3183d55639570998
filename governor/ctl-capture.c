/* SPDX-License-Identifier: MIT */
/*
 * memgovctl capture: one capture by hand, without the daemon (capture effect, offline):
 * the pprof profiles of a URL into a dump of the store, with suspects.json diffed against
 * a base dump when one is given. The same code as memgovd's captures.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "memgov/capture.h"
#include "memgov/ctl.h"
#include "memgov/log.h"
#include "memgov/parse.h"

#define CTL_CAPTURE_STATE_DIR MEMGOV_LOCALSTATEDIR "/lib/memgov"

static void help(FILE *f)
{
        fprintf(f, "Usage: memgovctl capture --url URL --service NAME [OPTIONS...]\n\n"
                   "Fetches the Go pprof profiles of URL (the /debug/pprof base) into a new dump\n"
                   "STATE/dumps/NAME/<UTC time>-EVENT/ with a manifest, exactly as memgovd does,\n"
                   "and prints the dump directory on the first line. With --base (an earlier\n"
                   "dump), the profiles are diffed and the sites that grew are printed, biggest\n"
                   "first; suspects.json in the dump has the details.\n\n"
                   "Options:\n"
                   "  --url URL           the pprof base, e.g. http://127.0.0.1:6060/debug/pprof\n"
                   "  --service NAME      names the dump directory\n"
                   "  --state-dir DIR     default " CTL_CAPTURE_STATE_DIR "\n"
                   "  --kinds LIST        heap,goroutine,allocs (default), threadcreate, block,\n"
                   "                      mutex, profile (CPU, --cpu-seconds long)\n"
                   "  --base DIR          a dump to diff against\n"
                   "  --event NAME        the dump's event name, default manual\n"
                   "  --timeout DURATION  per request, default 10s\n"
                   "  --max-bytes SIZE    per response, default 64M\n"
                   "  --cpu-seconds N     default 10\n\n"
                   "Exit status: 0 when every profile was captured, 1 otherwise (what failed is\n"
                   "said on stderr and in the manifest's errors).\n\n"
                   "Example:\n"
                   "  base=$(memgovctl capture --url http://127.0.0.1:6060/debug/pprof \\\n"
                   "          --service checkout --state-dir /tmp/m | head -1)\n"
                   "  memgovctl capture --url http://127.0.0.1:6060/debug/pprof \\\n"
                   "          --service checkout --state-dir /tmp/m --base \"$base\"\n");
}

struct ctl_outcome {
        bool done;
        int error;
        size_t n_failed;
};

static void on_done(struct capture *c _unused_, const struct capture_result *r, void *userdata)
{
        struct ctl_outcome *o = userdata;

        o->done = true;
        o->error = r->error;
        o->n_failed = r->n_failed;
        if (r->error < 0)
                return;
        printf("%s\n", r->dir);
        for (size_t i = 0; i < r->n_files; i++)
                printf("  %-28s %10" PRIu64 " bytes%s%s\n", r->files[i].name, r->files[i].size,
                       r->files[i].complete ? "" : "  (incomplete: ",
                       r->files[i].complete ? "" : r->files[i].error);
        if (r->paired) {
                printf("suspects (growth since the base):\n");
                if (r->n_suspects == 0)
                        printf("  none: nothing grew\n");
                for (size_t i = 0; i < r->n_suspects; i++) {
                        _cleanup_free_ char *line = suspect_format(r->suspects[i], true);
                        printf("  %s\n", line ? line : r->suspects[i]->function);
                }
        } else if (r->summary) {
                const struct suspect_list *lists[] = {r->summary->heap_top,
                                                      r->summary->goroutine_top};
                printf("largest sites (no base to diff against):\n");
                for (size_t k = 0; k < ELEMENTSOF(lists); k++)
                        for (size_t i = 0; lists[k] && i < MIN(lists[k]->n_items, (size_t)3); i++) {
                                _cleanup_free_ char *line =
                                        suspect_format(&lists[k]->items[i], false);
                                printf("  %s\n", line ? line : lists[k]->items[i].function);
                        }
        }
        fflush(stdout);
}

static unsigned parse_kinds(const char *list)
{
        _cleanup_free_ char *copy = strdup(list);
        unsigned mask = 0;
        char *save = NULL;

        if (!copy)
                return 0;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                enum pprof_kind k = pprof_kind_from_string(t);
                if (k < 0) {
                        fprintf(stderr, "memgovctl capture: --kinds: unknown kind '%s'\n", t);
                        return 0;
                }
                mask |= 1u << k;
        }
        return mask;
}

int ctl_capture(int argc, char *argv[])
{
        enum {
                OPT_URL = 256,
                OPT_SERVICE,
                OPT_STATE,
                OPT_KINDS,
                OPT_BASE,
                OPT_EVENT,
                OPT_TIMEOUT,
                OPT_MAX,
                OPT_CPU
        };
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},
                {"url", required_argument, NULL, OPT_URL},
                {"service", required_argument, NULL, OPT_SERVICE},
                {"state-dir", required_argument, NULL, OPT_STATE},
                {"kinds", required_argument, NULL, OPT_KINDS},
                {"base", required_argument, NULL, OPT_BASE},
                {"event", required_argument, NULL, OPT_EVENT},
                {"timeout", required_argument, NULL, OPT_TIMEOUT},
                {"max-bytes", required_argument, NULL, OPT_MAX},
                {"cpu-seconds", required_argument, NULL, OPT_CPU},
                {},
        };
        const char *service = NULL, *state_dir = CTL_CAPTURE_STATE_DIR, *base = NULL,
                   *event = "manual";
        struct policy_pprof pprof = {.timeout_usec = CAPTURE_DEFAULT_TIMEOUT_USEC,
                                     .max_bytes = CAPTURE_DEFAULT_MAX_BYTES,
                                     .cpu_seconds = CAPTURE_DEFAULT_CPU_SECONDS};
        unsigned kinds = 1u << PPROF_HEAP | 1u << PPROF_GOROUTINE | 1u << PPROF_ALLOCS;
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(http_client_freep) struct http_client *http = NULL;
        _cleanup_(dump_store_freep) struct dump_store *store = NULL;
        struct ctl_outcome o = {};
        struct capture_request req;
        struct timespec now;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help(stdout);
                        return 0;
                case OPT_URL:
                        pprof.url = optarg;
                        break;
                case OPT_SERVICE:
                        service = optarg;
                        break;
                case OPT_STATE:
                        state_dir = optarg;
                        break;
                case OPT_KINDS:
                        kinds = parse_kinds(optarg);
                        if (!kinds)
                                return 2;
                        break;
                case OPT_BASE:
                        base = optarg;
                        break;
                case OPT_EVENT:
                        event = optarg;
                        break;
                case OPT_TIMEOUT:
                        if (parse_duration(optarg, &pprof.timeout_usec) < 0 ||
                            pprof.timeout_usec == 0) {
                                fprintf(stderr,
                                        "memgovctl capture: --timeout: expected a duration such "
                                        "as 10s, got '%s'\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case OPT_MAX:
                        if (parse_size(optarg, 0, &pprof.max_bytes) < 0 || pprof.max_bytes == 0) {
                                fprintf(stderr,
                                        "memgovctl capture: --max-bytes: expected a size such as "
                                        "64M, got '%s'\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case OPT_CPU:
                        if (parse_u64(optarg, &pprof.cpu_seconds) < 0 || pprof.cpu_seconds == 0 ||
                            pprof.cpu_seconds > 3600) {
                                fprintf(stderr,
                                        "memgovctl capture: --cpu-seconds: expected 1 to 3600, "
                                        "got '%s'\n",
                                        optarg);
                                return 2;
                        }
                        break;
                default:
                        help(stderr);
                        return 2;
                }
        }
        if (optind < argc || !pprof.url || !service) {
                fprintf(stderr, "memgovctl capture: --url and --service are required%s\n",
                        optind < argc ? ", and nothing else" : "");
                return 2;
        }
        if (strncmp(pprof.url, "http://", 7) != 0 && strncmp(pprof.url, "https://", 8) != 0) {
                fprintf(stderr, "memgovctl capture: --url: only http:// and https://, got '%s'\n",
                        pprof.url);
                return 2;
        }

        r = sd_event_new(&e);
        if (r >= 0)
                r = http_client_new(e, &http);
        if (r < 0) {
                fprintf(stderr, "memgovctl capture: cannot set up: %s\n", strerror(-r));
                return 1;
        }
        r = dump_store_open(state_dir, NULL, &store);
        if (r < 0)
                return 1; /* said by the store */

        clock_gettime(CLOCK_REALTIME, &now);
        req = (struct capture_request){
                .service = service,
                .event = event,
                .realtime_usec = (uint64_t)now.tv_sec * USEC_PER_SEC,
                .pprof = &pprof,
                .kinds_mask = kinds,
                .cgroup_fd = -1,
                .proc_fd = -1,
                .base_dir = base,
        };
        r = capture_start(e, http, store, &req, on_done, &o, NULL);
        if (r == -EINVAL) {
                fprintf(stderr, "memgovctl capture: --service or --event: letters, digits, "
                                "'_', '-' (and '.' in a service) only\n");
                return 2;
        }
        if (r < 0) {
                if (r != -ENOSPC)
                        fprintf(stderr, "memgovctl capture: %s\n", strerror(-r));
                return 1;
        }
        while (!o.done) {
                r = sd_event_run(e, UINT64_MAX);
                if (r < 0) {
                        fprintf(stderr, "memgovctl capture: event loop: %s\n", strerror(-r));
                        return 1;
                }
        }
        if (o.error < 0) {
                fprintf(stderr, "memgovctl capture: the dump could not be completed: %s\n",
                        strerror(-o.error));
                return 1;
        }
        if (o.n_failed > 0) {
                fprintf(stderr, "memgovctl capture: %zu part%s failed; see manifest.json\n",
                        o.n_failed, o.n_failed == 1 ? "" : "s");
                return 1;
        }
        return 0;
}

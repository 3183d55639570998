/* SPDX-License-Identifier: MIT */
/*
 * bench-forecast: score memgov's forecast → decide and the peer rules on the same corpus
 * (seeded synthetic traces with ground truth, plus the real traces in tests/traces/real)
 * and print the table; --update-doc writes it into docs/benchmarks.md.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"
#include "memgov/decide.h"
#include "memgov/diag.h"
#include "memgov/forecast.h"
#include "memgov/policy.h"
#include "memgov/replay.h"
#include "memgov/trace.h"

#ifndef MEMGOV_SOURCE_DIR
#define MEMGOV_SOURCE_DIR "."
#endif

#define CRITICAL_LEAD_USEC (30 * USEC_PER_SEC)
#define DOC_BEGIN          "<!-- bench/forecast: begin (generated, do not edit) -->"
#define DOC_END            "<!-- bench/forecast: end -->"

enum {
        RULE_MEMGOV,
        RULE_MEMGOV_ETA,
        _RULE_PEERS,
        _RULE_MAX = _RULE_PEERS + _PEER_MAX,
};

struct corpus_item {
        char *path;
        const char *group; /* family name, or "real" */
};

/* memgov on one real trace: replay's leads (from the first entry) and the benchmark's. */
struct real_row {
        char *name;
        double duration_s;
        bool has_oom;
        double first_lead_s[_LEVEL_MAX];    /* replay: OOM − first entry; < 0: never entered */
        double standing_lead_s[_LEVEL_MAX]; /* the benchmark's lead: standing at the OOM */
        unsigned false_alarms[_LEVEL_MAX];
        double static_lead_s; /* the static 90% rule's lead, for comparison */
};

struct stats {
        unsigned n_oom, n_crit30, n_quiet;
        uint64_t quiet_usec;              /* duration of the traces without OOM */
        uint64_t *leads[_LEVEL_MAX];      /* one per OOM trace */
        unsigned false_quiet[_LEVEL_MAX]; /* on traces without OOM */
        unsigned false_oom[_LEVEL_MAX];   /* on OOM traces: entries no OOM followed in time */
};

static const char *rule_name(int r)
{
        if (r == RULE_MEMGOV)
                return "**memgov** (policy: ETA, usage, PSI)";
        if (r == RULE_MEMGOV_ETA)
                return "memgov, ETA conditions only";
        return peer_to_string((enum peer)(r - _RULE_PEERS));
}

static void stats_add(struct stats *s, const struct rule_result *r, size_t max_oom)
{
        if (r->has_oom) {
                for (int l = LEVEL_WARN; l < _LEVEL_MAX; l++) {
                        if (!s->leads[l])
                                s->leads[l] = calloc(max_oom, sizeof(uint64_t));
                        if (!s->leads[l])
                                abort();
                        s->leads[l][s->n_oom] = r->lead_usec[l];
                        s->false_oom[l] += r->false_alarms[l];
                }
                if (r->lead_usec[LEVEL_CRITICAL] >= CRITICAL_LEAD_USEC)
                        s->n_crit30++;
                s->n_oom++;
        } else {
                s->n_quiet++;
                s->quiet_usec += r->duration_usec;
                for (int l = LEVEL_WARN; l < _LEVEL_MAX; l++)
                        s->false_quiet[l] += r->false_alarms[l];
        }
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

/* Linear-interpolated percentile (q in 0..1) of n values, in seconds. */
static double percentile_s(uint64_t *v, unsigned n, double q)
{
        if (n == 0)
                return NAN;
        qsort(v, n, sizeof(*v), cmp_u64);
        double pos = q * (n - 1);
        size_t i = (size_t)pos;
        double frac = pos - (double)i;
        double a = (double)v[i], b = (double)v[MIN(i + 1, (size_t)n - 1)];
        return (a + (b - a) * frac) / 1e6;
}

static void fmt_lead(char *buf, size_t size, struct stats *s, int l)
{
        if (s->n_oom == 0) {
                snprintf(buf, size, "–");
                return;
        }
        snprintf(buf, size, "%.0f / %.0f", percentile_s(s->leads[l], s->n_oom, 0.5),
                 percentile_s(s->leads[l], s->n_oom, 0.1));
}

static void fmt_rate(char *buf, size_t size, unsigned count, uint64_t usec)
{
        if (usec == 0)
                snprintf(buf, size, "–");
        else
                snprintf(buf, size, "%.2f", count / ((double)usec / (double)USEC_PER_HOUR));
}

static void print_main_table(FILE *f, struct stats *st)
{
        fprintf(f, "| rule | critical ≥ 30 s before OOM | warn lead s, median / p10 | degrade "
                   "lead | critical lead | false warn / h | false degrade / h | false critical "
                   "/ h |\n");
        fprintf(f, "|---|---|---|---|---|---|---|---|\n");
        for (int r = 0; r < _RULE_MAX; r++) {
                struct stats *s = &st[r];
                char w[32], d[32], c[32], fw[32], fd[32], fc[32];

                fmt_lead(w, sizeof(w), s, LEVEL_WARN);
                fmt_lead(d, sizeof(d), s, LEVEL_DEGRADE);
                fmt_lead(c, sizeof(c), s, LEVEL_CRITICAL);
                fmt_rate(fw, sizeof(fw), s->false_quiet[LEVEL_WARN], s->quiet_usec);
                fmt_rate(fd, sizeof(fd), s->false_quiet[LEVEL_DEGRADE], s->quiet_usec);
                fmt_rate(fc, sizeof(fc), s->false_quiet[LEVEL_CRITICAL], s->quiet_usec);
                fprintf(f, "| %s | %u/%u (%.1f%%) | %s | %s | %s | %s | %s | %s |\n", rule_name(r),
                        s->n_crit30, s->n_oom, s->n_oom ? 100.0 * s->n_crit30 / s->n_oom : 0.0, w,
                        d, c, fw, fd, fc);
        }
}

static void print_group_table(FILE *f, const char *const *groups, size_t n_groups, struct stats *gs)
{
        fprintf(f, "| traces | n | OOM | critical ≥ 30 s | warn lead s, median / p10 | "
                   "critical lead s, median / p10 | false warn / degrade / critical (entries) "
                   "|\n");
        fprintf(f, "|---|---|---|---|---|---|---|\n");
        for (size_t g = 0; g < n_groups; g++) {
                struct stats *s = &gs[g];
                char w[32], c[32];

                if (s->n_oom + s->n_quiet == 0)
                        continue;
                fmt_lead(w, sizeof(w), s, LEVEL_WARN);
                fmt_lead(c, sizeof(c), s, LEVEL_CRITICAL);
                fprintf(f, "| %s | %u | %u | %u | %s | %s | %u / %u / %u |\n", groups[g],
                        s->n_oom + s->n_quiet, s->n_oom, s->n_crit30, w, c,
                        s->false_quiet[LEVEL_WARN] + s->false_oom[LEVEL_WARN],
                        s->false_quiet[LEVEL_DEGRADE] + s->false_oom[LEVEL_DEGRADE],
                        s->false_quiet[LEVEL_CRITICAL] + s->false_oom[LEVEL_CRITICAL]);
        }
}

/* Three leads (warn / degrade / critical) in seconds; "–" for a level never entered. */
static void fmt_real_leads(char *buf, size_t size, const double *v)
{
        char x[_LEVEL_MAX][16];
        for (int l = LEVEL_WARN; l < _LEVEL_MAX; l++) {
                if (v[l] < 0)
                        snprintf(x[l], sizeof(x[l]), "–");
                else
                        snprintf(x[l], sizeof(x[l]), "%.0f", v[l]);
        }
        snprintf(buf, size, "%s / %s / %s", x[LEVEL_WARN], x[LEVEL_DEGRADE], x[LEVEL_CRITICAL]);
}

static void print_real_table(FILE *f, const struct real_row *rows, size_t n, bool memgov_only)
{
        fprintf(f, "\nReal traces (memgov, full policy; leads in seconds, warn / degrade / "
                   "critical):\n\n");
        if (n == 0) {
                fprintf(f, "None yet: `tests/traces/real/` holds no trace.\n");
                return;
        }
        fprintf(f, "| trace | minutes | OOM | replay lead (first entry) | standing at the OOM | "
                   "false alarms (entries) | static 90%% lead |\n");
        fprintf(f, "|---|---|---|---|---|---|---|\n");
        for (size_t i = 0; i < n; i++) {
                const struct real_row *r = &rows[i];
                char first[64], standing[64], st90[16];
                if (r->has_oom) {
                        fmt_real_leads(first, sizeof(first), r->first_lead_s);
                        fmt_real_leads(standing, sizeof(standing), r->standing_lead_s);
                } else {
                        snprintf(first, sizeof(first), "–");
                        snprintf(standing, sizeof(standing), "–");
                }
                if (!r->has_oom || memgov_only)
                        snprintf(st90, sizeof(st90), "–");
                else
                        snprintf(st90, sizeof(st90), "%.0f", r->static_lead_s);
                fprintf(f, "| `%s` | %.1f | %s | %s | %s | %u / %u / %u | %s |\n", r->name,
                        r->duration_s / 60, r->has_oom ? "yes" : "no", first, standing,
                        r->false_alarms[LEVEL_WARN], r->false_alarms[LEVEL_DEGRADE],
                        r->false_alarms[LEVEL_CRITICAL], st90);
        }
}

static int mkdir_p(const char *path)
{
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++)
                if (*s == '/') {
                        *s = '\0';
                        if (mkdir(p, 0755) < 0 && errno != EEXIST)
                                return negative_errno();
                        *s = '/';
                }
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.csv files of dir, sorted; none when dir does not exist. */
static size_t list_real(const char *dir, char ***ret)
{
        DIR *d = opendir(dir);
        char **v = NULL;
        size_t n = 0;
        struct dirent *de;

        *ret = NULL;
        if (!d)
                return 0;
        while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);
                if (len < 5 || strcmp(de->d_name + len - 4, ".csv") != 0)
                        continue;
                char **nv = realloc(v, (n + 1) * sizeof(*v));
                if (!nv)
                        abort();
                v = nv;
                if (asprintf(&v[n++], "%s/%s", dir, de->d_name) < 0)
                        abort();
        }
        closedir(d);
        if (n > 0)
                qsort(v, n, sizeof(*v), cmp_str);
        *ret = v;
        return n;
}

/* Replace the generated block of the "Forecast quality" section of doc (or add it). */
static int update_doc(const char *doc, const char *block)
{
        _cleanup_free_ char *old = NULL;
        size_t old_len = 0;
        FILE *f = fopen(doc, "re");

        if (f) {
                struct stat sb;
                if (fstat(fileno(f), &sb) == 0 && (old = malloc((size_t)sb.st_size + 1))) {
                        old_len = fread(old, 1, (size_t)sb.st_size, f);
                        old[old_len] = '\0';
                }
                fclose(f);
        }

        _cleanup_free_ char *out = NULL;
        const char *b = old ? strstr(old, DOC_BEGIN) : NULL;
        const char *e = b ? strstr(b, DOC_END) : NULL;
        int r;
        if (b && e)
                r = asprintf(&out, "%.*s%s%s", (int)(b - old), old, block, e + strlen(DOC_END));
        else if (old && old_len > 0)
                r = asprintf(&out, "%s%s\n## Forecast quality\n\n%s\n", old,
                             old[old_len - 1] == '\n' ? "" : "\n", block);
        else
                r = asprintf(&out, "# Benchmarks\n\n## Forecast quality\n\n%s\n", block);
        if (r < 0)
                return -ENOMEM;

        _cleanup_free_ char *tmp = NULL;
        if (asprintf(&tmp, "%s.tmp", doc) < 0)
                return -ENOMEM;
        f = fopen(tmp, "we");
        if (!f)
                return negative_errno();
        if (fputs(out, f) < 0 || fclose(f) != 0)
                return -EIO;
        if (rename(tmp, doc) < 0)
                return negative_errno();
        return 0;
}

static void help(FILE *f)
{
        fprintf(f, "Usage: bench-forecast [OPTIONS...]\n\n"
                   "Generates the synthetic corpus, adds the real traces, runs memgov's forecast\n"
                   "and level decisions and the peer rules over every trace, and prints the\n"
                   "scores as markdown.\n\n"
                   "Options:\n"
                   "  --policy FILE       default: bench/forecast/policy.json of the source tree\n"
                   "  --corpus DIR        where to write the synthetic traces (default\n"
                   "                      ./forecast-corpus)\n"
                   "  --real DIR          real traces (default: tests/traces/real of the source)\n"
                   "  --seed N            generator seed (default 1)\n"
                   "  --scale F           share of each family's traces to make, 0 < F <= 1\n"
                   "  --memgov-only       skip the peer rules (profiling)\n"
                   "  --verbose           one line per trace for memgov on stderr\n"
                   "  --update-doc FILE   write the tables into FILE (docs/benchmarks.md)\n\n"
                   "Example:\n"
                   "  build/bench/forecast/bench-forecast --update-doc docs/benchmarks.md\n");
}

int main(int argc, char *argv[])
{
        enum {
                ARG_POLICY = 0x100,
                ARG_CORPUS,
                ARG_REAL,
                ARG_SEED,
                ARG_SCALE,
                ARG_DOC,
                ARG_ONLY,
                ARG_VERBOSE,
        };
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},
                {"policy", required_argument, NULL, ARG_POLICY},
                {"corpus", required_argument, NULL, ARG_CORPUS},
                {"real", required_argument, NULL, ARG_REAL},
                {"seed", required_argument, NULL, ARG_SEED},
                {"scale", required_argument, NULL, ARG_SCALE},
                {"update-doc", required_argument, NULL, ARG_DOC},
                {"memgov-only", no_argument, NULL, ARG_ONLY},
                {"verbose", no_argument, NULL, ARG_VERBOSE},
                {},
        };
        const char *policy_path = MEMGOV_SOURCE_DIR "/bench/forecast/policy.json";
        const char *corpus = "forecast-corpus", *real = MEMGOV_SOURCE_DIR "/tests/traces/real";
        const char *doc = NULL;
        uint64_t seed = 1;
        double scale = 1;
        bool memgov_only = false, verbose = false;
        int opt;

        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (opt) {
                case 'h':
                        help(stdout);
                        return 0;
                case ARG_POLICY:
                        policy_path = optarg;
                        break;
                case ARG_CORPUS:
                        corpus = optarg;
                        break;
                case ARG_REAL:
                        real = optarg;
                        break;
                case ARG_SEED:
                        seed = strtoull(optarg, NULL, 0);
                        break;
                case ARG_SCALE:
                        scale = strtod(optarg, NULL);
                        if (!(scale > 0 && scale <= 1)) {
                                fprintf(stderr, "bench-forecast: --scale takes 0 < F <= 1\n");
                                return 2;
                        }
                        break;
                case ARG_DOC:
                        doc = optarg;
                        break;
                case ARG_ONLY:
                        memgov_only = true;
                        break;
                case ARG_VERBOSE:
                        verbose = true;
                        break;
                default:
                        help(stderr);
                        return 2;
                }
        }

        _cleanup_(policy_freep) struct policy *policy = NULL;
        struct diag dg = {};
        if (policy_load_file(policy_path, &dg, &policy) < 0) {
                diag_print(&dg, stderr);
                fprintf(stderr, "bench-forecast: cannot load the policy %s\n", policy_path);
                return 1;
        }
        /* memgov with only its forecast: the same policy without usage, PSI, rates. */
        struct policy eta_only = *policy;
        for (int l = LEVEL_WARN; l < _LEVEL_MAX; l++)
                eta_only.levels[l] = (struct policy_level){.eta_usec = policy->levels[l].eta_usec};

        /* The corpus. */
        if (mkdir_p(corpus) < 0) {
                fprintf(stderr, "bench-forecast: cannot create %s: %m\n", corpus);
                return 1;
        }
        struct corpus_item *items = NULL;
        size_t n_items = 0, n_synthetic = 0;
        for (int fam = 0; fam < _FAMILY_MAX; fam++) {
                unsigned n = (unsigned)MAX(1.0, round(family_counts[fam] * scale));
                for (unsigned i = 0; i < n; i++) {
                        char *path;
                        if (asprintf(&path, "%s/%s-%03u.csv", corpus,
                                     family_to_string((enum family)fam), i) < 0)
                                abort();
                        int r = gen_write_trace(seed, (enum family)fam, i, path);
                        if (r < 0) {
                                fprintf(stderr, "bench-forecast: %s: %s\n", path, strerror(-r));
                                return 1;
                        }
                        items = realloc(items, (n_items + 1) * sizeof(*items));
                        if (!items)
                                abort();
                        items[n_items++] =
                                (struct corpus_item){path, family_to_string((enum family)fam)};
                        n_synthetic++;
                }
        }
        char **real_paths;
        size_t n_real = list_real(real, &real_paths);
        for (size_t i = 0; i < n_real; i++) {
                items = realloc(items, (n_items + 1) * sizeof(*items));
                if (!items)
                        abort();
                items[n_items++] = (struct corpus_item){real_paths[i], "real"};
        }
        free(real_paths);

        /* Groups for the per-family table: the families, then "real". */
        const char *groups[_FAMILY_MAX + 1];
        for (int fam = 0; fam < _FAMILY_MAX; fam++)
                groups[fam] = family_to_string((enum family)fam);
        groups[_FAMILY_MAX] = "real";

        struct stats st[_RULE_MAX] = {}, gs[_FAMILY_MAX + 1] = {};
        struct real_row *rows = calloc(MAX(n_real, (size_t)1), sizeof(*rows));
        size_t n_rows = 0;
        if (!rows)
                abort();
        uint64_t updates = 0, samples = 0, total_usec = 0;
        unsigned mismatches = 0, n_real_used = 0;

        for (size_t k = 0; k < n_items; k++) {
                _cleanup_(trace_freep) struct trace *t = NULL;
                int r = trace_load_file(items[k].path, &dg, &t);
                if (r < 0) {
                        diag_print(&dg, stderr);
                        diag_clear(&dg);
                        fprintf(stderr, "bench-forecast: skipping %s: %s\n", items[k].path,
                                strerror(-r));
                        if (strcmp(items[k].group, "real") != 0)
                                return 1;
                        continue;
                }
                bool is_real = strcmp(items[k].group, "real") == 0;
                struct real_row *row = NULL;
                if (is_real) {
                        const char *slash = strrchr(items[k].path, '/');
                        n_real_used++;
                        row = &rows[n_rows++];
                        row->name = strdup(slash ? slash + 1 : items[k].path);
                        if (!row->name)
                                abort();
                        if (t->n_samples > 0)
                                row->duration_s = (double)(t->samples[t->n_samples - 1].t_usec -
                                                           t->samples[0].t_usec) /
                                                  1e6;
                }
                samples += t->n_samples;
                if (t->n_samples > 0)
                        total_usec += t->samples[t->n_samples - 1].t_usec - t->samples[0].t_usec;

                enum level *levels = calloc(MAX(t->n_samples, (size_t)1), sizeof(*levels));
                if (!levels)
                        abort();

                for (int rule = 0; rule < _RULE_MAX; rule++) {
                        struct rule_result res;

                        if (rule >= _RULE_PEERS && memgov_only)
                                break;
                        if (rule < _RULE_PEERS) {
                                const struct policy *p = rule == RULE_MEMGOV ? policy : &eta_only;
                                struct forecast_state fs;
                                struct decide_state ds;

                                forecast_init(&fs, p);
                                decide_init(&ds);
                                for (size_t i = 0; i < t->n_samples; i++) {
                                        struct forecast f;
                                        struct decision d;

                                        forecast_update(&fs, &t->samples[i], &f);
                                        decide_update(&ds, p, &f, &d);
                                        levels[i] = d.level;
                                }
                                updates += t->n_samples;

                                /* replay must agree: it is the same code, and what users run */
                                struct replay_result rr;
                                score_levels(t, levels, p->forecast_horizon_usec, &res);
                                if (replay_run(p, t, &rr) < 0)
                                        abort();
                                updates += rr.n_updates;
                                for (int l = LEVEL_WARN; l < _LEVEL_MAX; l++)
                                        if (rr.false_alarms[l] != res.false_alarms[l])
                                                mismatches++;
                                if (row && rule == RULE_MEMGOV) {
                                        row->has_oom = rr.has_oom;
                                        for (int l = LEVEL_WARN; l < _LEVEL_MAX; l++) {
                                                row->first_lead_s[l] =
                                                        rr.has_oom && rr.has_first[l] &&
                                                                        rr.first_usec[l] <=
                                                                                rr.oom_usec
                                                                ? (double)(rr.oom_usec -
                                                                           rr.first_usec[l]) /
                                                                          1e6
                                                                : -1;
                                                row->standing_lead_s[l] =
                                                        (double)res.lead_usec[l] / 1e6;
                                                row->false_alarms[l] = res.false_alarms[l];
                                        }
                                }
                                replay_result_clear(&rr);
                        } else {
                                peer_run((enum peer)(rule - _RULE_PEERS), policy, t, levels);
                                score_levels(t, levels, policy->forecast_horizon_usec, &res);
                                if (row && rule == _RULE_PEERS + PEER_STATIC)
                                        row->static_lead_s =
                                                (double)res.lead_usec[LEVEL_CRITICAL] / 1e6;
                        }
                        /* the synthetic corpus only: real traces have their own table */
                        if (!is_real)
                                stats_add(&st[rule], &res, n_items);
                        if (rule == RULE_MEMGOV && verbose)
                                fprintf(stderr,
                                        "%s: oom %s lead w/d/c %.0f/%.0f/%.0f s, false "
                                        "w/d/c %u/%u/%u\n",
                                        items[k].path, res.has_oom ? "yes" : "no",
                                        (double)res.lead_usec[LEVEL_WARN] / 1e6,
                                        (double)res.lead_usec[LEVEL_DEGRADE] / 1e6,
                                        (double)res.lead_usec[LEVEL_CRITICAL] / 1e6,
                                        res.false_alarms[LEVEL_WARN],
                                        res.false_alarms[LEVEL_DEGRADE],
                                        res.false_alarms[LEVEL_CRITICAL]);
                        if (rule == RULE_MEMGOV && !is_real) {
                                size_t g = 0;
                                while (g < _FAMILY_MAX && strcmp(groups[g], items[k].group) != 0)
                                        g++;
                                stats_add(&gs[g], &res, n_items);
                        }
                }
                free(levels);
        }

        /* The report. */
        char *block = NULL;
        size_t block_len = 0;
        FILE *f = open_memstream(&block, &block_len);
        if (!f)
                abort();
        fprintf(f, "%s\n\n", DOC_BEGIN);
        fprintf(f,
                "Made by `build/bench/forecast/bench-forecast --seed %" PRIu64
                " --update-doc docs/benchmarks.md` (scale %.2f, policy "
                "`bench/forecast/policy.json`).\n\n",
                seed, scale);
        fprintf(f,
                "Corpus: %zu synthetic traces of seed %" PRIu64 " (%u with an OOM); the %u "
                "real traces from `%s/` are in their own table below. %.1f trace-hours, %" PRIu64
                " samples in all. False alarms are counted on the %u synthetic traces without "
                "an OOM (%.1f trace-hours). Leads are how long the level had been standing, "
                "without a break, at the OOM (0 when it was not), in seconds; median / 10th "
                "percentile over the OOM traces.\n\n",
                n_synthetic, seed, st[RULE_MEMGOV].n_oom, n_real_used,
                strncmp(real, MEMGOV_SOURCE_DIR "/", strlen(MEMGOV_SOURCE_DIR "/")) == 0
                        ? real + strlen(MEMGOV_SOURCE_DIR "/")
                        : real,
                (double)total_usec / (double)USEC_PER_HOUR, samples, st[RULE_MEMGOV].n_quiet,
                (double)st[RULE_MEMGOV].quiet_usec / (double)USEC_PER_HOUR);
        print_main_table(f, st);
        fprintf(f, "\nmemgov (full policy) per family:\n\n");
        print_group_table(f, groups, _FAMILY_MAX, gs);
        print_real_table(f, rows, n_rows, memgov_only);
        fprintf(f, "\n%s", DOC_END);
        fclose(f);

        fputs(block, stdout);
        fputs("\n", stdout);
        fprintf(stderr, "bench-forecast: %" PRIu64 " forecast+decide updates\n", updates);
        if (mismatches) {
                fprintf(stderr, "bench-forecast: replay and the benchmark disagree %u times\n",
                        mismatches);
                return 1;
        }
        if (doc) {
                int r = update_doc(doc, block);
                if (r < 0) {
                        fprintf(stderr, "bench-forecast: cannot write %s: %s\n", doc, strerror(-r));
                        return 1;
                }
        }
        free(block);
        for (size_t k = 0; k < n_rows; k++)
                free(rows[k].name);
        free(rows);
        for (size_t k = 0; k < n_items; k++)
                free(items[k].path);
        free(items);
        for (int r = 0; r < _RULE_MAX; r++)
                for (int l = 0; l < _LEVEL_MAX; l++)
                        free(st[r].leads[l]);
        for (size_t g = 0; g <= _FAMILY_MAX; g++)
                for (int l = 0; l < _LEVEL_MAX; l++)
                        free(gs[g].leads[l]);
        return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Export: the status document as memgovctl status prints it — one line about the daemon,
 * then a table a person reads at a glance. The document itself is governor/status.c.
 */
#include <inttypes.h>
#include <string.h>

#include "memgov/status.h"

#define CGROUP_COLUMN_MAX 48

char *status_format_bytes(uint64_t bytes, char buf[static 16])
{
        static const char units[] = "KMGTPE";
        double v = (double)bytes;
        size_t u = 0;

        if (bytes == STATUS_NONE)
                return strcpy(buf, "-");
        if (bytes < 1024) {
                (void)snprintf(buf, 16, "%uB", (unsigned)bytes);
                return buf;
        }
        v /= 1024;
        /* Move up while the value would print as 1024.0 or more. */
        while (v >= 1023.95 && u + 1 < sizeof(units) - 1) {
                v /= 1024;
                u++;
        }
        (void)snprintf(buf, 16, "%.1f%c", v, units[u]);
        return buf;
}

char *status_format_duration(uint64_t usec, char buf[static 16])
{
        uint64_t s;

        if (usec == STATUS_NONE)
                return strcpy(buf, "-");
        s = usec / USEC_PER_SEC;
        if (s < 60)
                (void)snprintf(buf, 16, "%us", (unsigned)s);
        else if (s < 3600)
                (void)snprintf(buf, 16, "%um%02us", (unsigned)(s / 60), (unsigned)(s % 60));
        else if (s < 86400)
                (void)snprintf(buf, 16, "%uh%02um", (unsigned)(s / 3600),
                               (unsigned)(s % 3600 / 60));
        else if (s < 86400 * 10000ULL)
                (void)snprintf(buf, 16, "%ud%02uh", (unsigned)(s / 86400),
                               (unsigned)(s % 86400 / 3600));
        else
                (void)snprintf(buf, 16, "%uy", (unsigned)(s / (86400 * 365)));
        return buf;
}

enum {
        COL_SERVICE,
        COL_CGROUP,
        COL_USAGE,
        COL_ETA,
        COL_LEVEL,
        COL_HIGH,
        COL_EVENT,
        COL_WEBHOOK,
        _COL_MAX
};

static const char *const col_titles[_COL_MAX] = {
        "SERVICE", "CGROUP",      "USAGE/LIMIT", "ETA",
        "LEVEL",   "MEMORY.HIGH", "LAST EVENT",  "LAST WEBHOOK",
};

/* "degrade delivered 5s ago", "critical failed (HTTP 500) 1m02s ago", "-" when none. */
static char *webhook_cell(const struct status_delivery *w)
{
        char a[16], http[32] = "";
        char *cell = NULL;

        if (!event_to_string(w->event))
                return strdup("-");
        if (w->http_status > 0 && strcmp(w->result ?: "", "delivered") != 0)
                (void)snprintf(http, sizeof(http), " (HTTP %ld)", w->http_status);
        if (asprintf(&cell, "%s %s%s %s ago", event_to_string(w->event), w->result ?: "?", http,
                     status_format_duration(w->age_usec, a)) < 0)
                return NULL;
        return cell;
}

/* The cells of one row, each malloc'ed (NULL on ENOMEM). */
static void row_cells(const struct status_instance *i, bool full, char *cells[_COL_MAX])
{
        char a[16], b[16];
        size_t n = strlen(i->cgroup);

        cells[COL_SERVICE] = strdup(i->service);
        if (full || n <= CGROUP_COLUMN_MAX)
                cells[COL_CGROUP] = strdup(i->cgroup);
        else if (asprintf(&cells[COL_CGROUP], "%.20s...%s", i->cgroup,
                          i->cgroup + n - (CGROUP_COLUMN_MAX - 23)) < 0)
                cells[COL_CGROUP] = NULL;

        if (i->current_bytes == STATUS_NONE)
                cells[COL_USAGE] = strdup("-");
        else if (i->limit_bytes == STATUS_NONE || i->limit_bytes == 0) {
                cells[COL_USAGE] = strdup(status_format_bytes(i->current_bytes, a));
        } else if (asprintf(&cells[COL_USAGE], "%s/%s %u%%",
                            status_format_bytes(i->current_bytes, a),
                            status_format_bytes(i->limit_bytes, b),
                            (unsigned)MIN(999.0, (double)i->current_bytes * 100.0 /
                                                                 (double)i->limit_bytes +
                                                         0.5)) < 0)
                cells[COL_USAGE] = NULL;

        /* "-": nothing known yet (no sample, or the forecast still warming up). */
        if (!i->forecast_known || i->last_sample_age_usec == STATUS_NONE)
                cells[COL_ETA] = strdup("-");
        else if (i->eta_usec == STATUS_NONE)
                cells[COL_ETA] = strdup("none");
        else
                cells[COL_ETA] = strdup(status_format_duration(i->eta_usec, a));

        cells[COL_LEVEL] = strdup(level_to_string(i->level));

        if (i->last_sample_age_usec == STATUS_NONE)
                cells[COL_HIGH] = strdup("-");
        else if (i->high_bytes == STATUS_NONE)
                cells[COL_HIGH] = strdup("max");
        else if (asprintf(&cells[COL_HIGH], "%s%s", status_format_bytes(i->high_bytes, a),
                          i->memory_high_set_bytes == i->high_bytes ? " (memgov)" : "") < 0)
                cells[COL_HIGH] = NULL;

        if (!event_to_string(i->last_event.event))
                cells[COL_EVENT] = strdup("-");
        else if (asprintf(&cells[COL_EVENT], "%s %s ago", event_to_string(i->last_event.event),
                          status_format_duration(i->last_event.age_usec, a)) < 0)
                cells[COL_EVENT] = NULL;

        cells[COL_WEBHOOK] = webhook_cell(&i->last_delivery);
}

static void print_header(FILE *out, const struct status_doc *doc)
{
        const struct status_daemon *d = &doc->daemon;
        char up[16];

        fprintf(out, "memgovd %s", d->version ? d->version : "(unknown version)");
        if (d->pid > 0)
                fprintf(out, " (pid %ld)", (long)d->pid);
        if (d->uptime_usec != STATUS_NONE)
                fprintf(out, ", up %s", status_format_duration(d->uptime_usec, up));
        if (d->n_policies != STATUS_NONE)
                fprintf(out, ", %" PRIu64 " polic%s", d->n_policies,
                        d->n_policies == 1 ? "y" : "ies");
        fprintf(out, ", %zu cgroup%s", doc->n_instances, doc->n_instances == 1 ? "" : "s");
        if (d->dry_run)
                fputs(", dry run (memory.high is not written)", out);
        fputc('\n', out);
}

/* Cells padded to their column's width, two spaces apart; the last one is not padded. */
static void print_row(FILE *out, const char *const cells[_COL_MAX], const size_t width[_COL_MAX])
{
        for (size_t c = 0; c + 1 < _COL_MAX; c++)
                fprintf(out, "%-*s  ", (int)width[c], cells[c]);
        fprintf(out, "%s\n", cells[_COL_MAX - 1]);
}

int status_format_table(FILE *out, const struct status_doc *doc, bool full)
{
        size_t width[_COL_MAX];
        char *(*cells)[_COL_MAX] = NULL;
        int r = 0;

        print_header(out, doc);
        if (doc->n_instances == 0) {
                if (doc->daemon.n_policies == 0)
                        fprintf(out,
                                "No policy is loaded; put policies into %s and run "
                                "'memgovctl reload'.\n",
                                doc->daemon.policy_dir ? doc->daemon.policy_dir
                                                       : "the policy directory");
                else
                        fprintf(out, "No cgroup matches a policy under %s yet.\n",
                                doc->daemon.cgroup_root ? doc->daemon.cgroup_root
                                                        : "the cgroup root");
                return fflush(out) != 0 || ferror(out) ? -EIO : 0;
        }

        cells = calloc(doc->n_instances, sizeof(*cells));
        if (!cells)
                return -ENOMEM;
        for (size_t c = 0; c < _COL_MAX; c++)
                width[c] = strlen(col_titles[c]);
        for (size_t k = 0; k < doc->n_instances; k++) {
                row_cells(&doc->instances[k], full, cells[k]);
                for (size_t c = 0; c < _COL_MAX; c++) {
                        if (!cells[k][c])
                                r = -ENOMEM;
                        else
                                width[c] = MAX(width[c], strlen(cells[k][c]));
                }
        }
        if (r == 0) {
                fputc('\n', out);
                print_row(out, col_titles, width);
                for (size_t k = 0; k < doc->n_instances; k++)
                        print_row(out, (const char *const *)cells[k], width);
                if (fflush(out) != 0 || ferror(out))
                        r = -EIO;
        }
        for (size_t k = 0; k < doc->n_instances; k++)
                for (size_t c = 0; c < _COL_MAX; c++)
                        free(cells[k][c]);
        free(cells);
        return r;
}

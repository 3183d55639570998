/* SPDX-License-Identifier: MIT */
/*
 * record: the incident report, one self-contained HTML page (inline CSS and SVG, no script)
 * drawn from the samples and the decision log, for the incident bundle and for
 * `memgovctl report`.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "memgov/decide.h"
#include "memgov/report.h"

/* The plot area inside the SVG, and the marker lanes above it. */
#define PLOT_LEFT   86.0
#define PLOT_RIGHT  (REPORT_CHART_WIDTH - 24.0)
#define PLOT_TOP    84.0
#define PLOT_BOTTOM (REPORT_CHART_HEIGHT - 62.0)
#define LANE_Y(i)   (16.0 + 17.0 * (i))

enum lane { LANE_LEVEL, LANE_HIGH, LANE_CAPTURE, LANE_WEBHOOK, _LANE_MAX };

static const char *const lane_names[_LANE_MAX] = {"level", "memory.high", "capture", "webhook"};

/* Band fill and marker colour per level. */
static const char *const band_fill[_LEVEL_MAX] = {NULL, "#fff1a8", "#ffd6a0", "#ffb8b8"};
static const char *const level_color[_LEVEL_MAX] = {"#2e7d32", "#b59500", "#e66a00", "#c62828"};

struct chart {
        uint64_t t_start, t_end; /* µs, the samples' clock */
        /*
         * Times are shown relative to this: the event of an incident (the OOM kill at 0:00,
         * what came before it negative), else the first sample.
         */
        uint64_t origin;
        const char *origin_name; /* "the OOM kill", "the first sample" */
        double y_max;            /* bytes at the top of the plot */
};

static double cx(const struct chart *c, uint64_t t)
{
        if (c->t_end <= c->t_start)
                return PLOT_LEFT;
        double u = t <= c->t_start ? 0.0
                   : t >= c->t_end ? 1.0
                                   : (double)(t - c->t_start) / (double)(c->t_end - c->t_start);
        return PLOT_LEFT + u * (PLOT_RIGHT - PLOT_LEFT);
}

static double cy(const struct chart *c, double bytes)
{
        double u = c->y_max > 0 ? bytes / c->y_max : 0.0;
        return PLOT_BOTTOM - MIN(MAX(u, 0.0), 1.0) * (PLOT_BOTTOM - PLOT_TOP);
}

/* ---- text --------------------------------------------------------------------------- */

static void esc(FILE *f, const char *s)
{
        for (; s && *s; s++)
                switch (*s) {
                case '&':
                        fputs("&amp;", f);
                        break;
                case '<':
                        fputs("&lt;", f);
                        break;
                case '>':
                        fputs("&gt;", f);
                        break;
                case '"':
                        fputs("&quot;", f);
                        break;
                case '\'':
                        fputs("&#39;", f);
                        break;
                default:
                        fputc(*s, f);
                }
}

/* printf, then HTML-escaped. */
static void _printf_(2, 3) escf(FILE *f, const char *fmt, ...)
{
        char buf[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        esc(f, buf);
}

static const char *fmt_bytes(char buf[static 32], double v)
{
        static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        size_t u = 0;
        double a = fabs(v);

        while (a >= 1024.0 && u + 1 < ELEMENTSOF(units)) {
                a /= 1024.0;
                u++;
        }
        if (u == 0)
                snprintf(buf, 32, "%s%.0f B", v < 0 ? "-" : "", a);
        else
                snprintf(buf, 32, "%s%.*f %s", v < 0 ? "-" : "",
                         a < 10    ? 2
                         : a < 100 ? 1
                                   : 0,
                         a, units[u]);
        return buf;
}

/* "35 s", "4m 10s", "1h 02m". */
static const char *fmt_duration(char buf[static 32], uint64_t usec)
{
        uint64_t s = (usec + USEC_PER_SEC / 2) / USEC_PER_SEC;

        if (usec < 10 * USEC_PER_SEC)
                snprintf(buf, 32, "%.1f s", (double)usec / 1e6);
        else if (s < 60)
                snprintf(buf, 32, "%" PRIu64 " s", s);
        else if (s < 3600)
                snprintf(buf, 32, "%" PRIu64 "m %02" PRIu64 "s", s / 60, s % 60);
        else
                snprintf(buf, 32, "%" PRIu64 "h %02" PRIu64 "m", s / 3600, s / 60 % 60);
        return buf;
}

/* "m:ss", "-m:ss.d", "h:mm:ss": a signed time relative to the origin, in seconds. */
static int fmt_rel(char buf[static 64], int64_t rel_usec, bool tenths)
{
        uint64_t d = rel_usec < 0 ? (uint64_t)(-rel_usec) : (uint64_t)rel_usec;
        uint64_t s = d / USEC_PER_SEC, frac = d % USEC_PER_SEC / (USEC_PER_SEC / 10);
        const char *sign = rel_usec < 0 ? "-" : "";

        if (s >= 3600)
                return snprintf(buf, 64, "%s%" PRIu64 ":%02" PRIu64 ":%02" PRIu64, sign, s / 3600,
                                s / 60 % 60, s % 60);
        if (tenths && frac > 0)
                return snprintf(buf, 64, "%s%" PRIu64 ":%02" PRIu64 ".%" PRIu64, sign, s / 60,
                                s % 60, frac);
        return snprintf(buf, 64, "%s%" PRIu64 ":%02" PRIu64, sign, s / 60, s % 60);
}

/* A time of the samples' clock relative to the origin, and the UTC time when known. */
static const char *fmt_time(char buf[static 64], const struct report_input *in,
                            const struct chart *c, uint64_t t)
{
        int n = fmt_rel(buf, (int64_t)t - (int64_t)c->origin, true);

        if (in->realtime_usec > 0 && n > 0 && n < 40) {
                int64_t wall = (int64_t)in->realtime_usec / (int64_t)USEC_PER_SEC -
                               ((int64_t)in->t_usec - (int64_t)t) / (int64_t)USEC_PER_SEC;
                time_t tt = (time_t)wall;
                struct tm tm;
                if (gmtime_r(&tt, &tm))
                        strftime(buf + n, (size_t)(64 - n), " (%H:%M:%S UTC)", &tm);
        }
        return buf;
}

static const char *event_title(const char *event)
{
        if (!event)
                return NULL;
        if (strcmp(event, "oom_kill") == 0)
                return "OOM kill";
        if (strcmp(event, "critical") == 0)
                return "critical level";
        return event;
}

/* One line about an event of the log, for tables and marker titles. */
static void describe(FILE *f, const struct incident_event *e)
{
        char a[32], b[32];

        switch (e->action) {
        case INCIDENT_LEVEL:
                escf(f, "%s → %s", level_to_string(e->previous_level), level_to_string(e->level));
                if (e->reason)
                        escf(f, " (%s", e->reason);
                if (e->eta_usec != USEC_INFINITY)
                        escf(f, "%sOOM forecast in %s at the earliest", e->reason ? "; " : " (",
                             fmt_duration(a, e->eta_usec));
                if (e->reason || e->eta_usec != USEC_INFINITY)
                        esc(f, ")");
                break;
        case INCIDENT_MEMORY_HIGH:
                if (e->bytes == CGROUP_LIMIT_MAX)
                        esc(f, "memory.high = max");
                else
                        escf(f, "memory.high = %s", fmt_bytes(a, (double)e->bytes));
                if (e->reason)
                        escf(f, " (%s)", e->reason);
                if (e->detail)
                        escf(f, ": %s", e->detail);
                break;
        case INCIDENT_CAPTURE:
                escf(f, "%s%scapture at %s%s", e->reason ?: "", e->reason ? " " : "",
                     e->event ?: "?", e->failed ? " (incomplete)" : "");
                if (e->detail)
                        escf(f, " into %s", e->detail);
                if (e->n_suspects > 0) {
                        const struct incident_suspect *s = &e->suspects[0];
                        escf(f, "; top suspect %s %s%s", s->function, s->growth >= 0 ? "+" : "",
                             s->kind == SUSPECT_HEAP ? fmt_bytes(b, (double)s->growth) : "");
                        if (s->kind != SUSPECT_HEAP)
                                escf(f, "%" PRId64 " goroutines", s->growth);
                }
                break;
        case INCIDENT_WEBHOOK:
                escf(f, "%s webhook %s", e->event ?: "?", e->reason ?: "sent");
                if (e->detail)
                        escf(f, ": %s", e->detail);
                break;
        case INCIDENT_OOM_KILL:
                escf(f, "the kernel OOM-killed %" PRIu64 " process%s", e->bytes,
                     e->bytes == 1 ? "" : "es");
                break;
        default:
                break;
        }
}

/* ---- the chart ---------------------------------------------------------------------- */

static bool sample_value(const struct sample *s, const char *series, uint64_t *ret)
{
        if (strcmp(series, "current") == 0)
                *ret = s->current_bytes;
        else if (strcmp(series, "anon") == 0 && (s->has & SAMPLE_HAS_ANON))
                *ret = s->anon_bytes;
        else if (strcmp(series, "file") == 0 && (s->has & SAMPLE_HAS_FILE))
                *ret = s->file_bytes;
        else if (strcmp(series, "high") == 0 && (s->has & SAMPLE_HAS_HIGH))
                *ret = s->high_bytes;
        else if (strcmp(series, "max") == 0)
                *ret = s->max_bytes;
        else
                return false;
        return *ret != CGROUP_LIMIT_MAX;
}

/*
 * A line series. With more samples than half the plot's pixel columns, each column keeps
 * its lowest and highest sample (in time order): the shape stays, the page stays small.
 */
static void draw_line(FILE *f, const struct chart *c, const struct incident_samples *ss,
                      const char *series, const char *style)
{
        size_t cols = (size_t)(PLOT_RIGHT - PLOT_LEFT);
        bool bucket = ss->len > 2 * cols, open = false, any = false;
        size_t k = 0;

        while (k < ss->len) {
                size_t lo = k, hi = k, end = k + 1;
                uint64_t vlo = 0, vhi = 0, v;
                bool has = sample_value(incident_samples_get(ss, k), series, &vlo);
                vhi = vlo;
                if (bucket && has) {
                        size_t col =
                                (size_t)(cx(c, incident_samples_get(ss, k)->t_usec) - PLOT_LEFT);
                        while (end < ss->len &&
                               (size_t)(cx(c, incident_samples_get(ss, end)->t_usec) - PLOT_LEFT) ==
                                       col &&
                               sample_value(incident_samples_get(ss, end), series, &v)) {
                                if (v < vlo) {
                                        vlo = v;
                                        lo = end;
                                }
                                if (v > vhi) {
                                        vhi = v;
                                        hi = end;
                                }
                                end++;
                        }
                }
                if (!has) {
                        open = false;
                        k = end;
                        continue;
                }
                if (!any)
                        fprintf(f, "<path class=\"series series-%s\" %s d=\"", series, style);
                any = true;
                size_t first = MIN(lo, hi), second = MAX(lo, hi);
                uint64_t vfirst = lo <= hi ? vlo : vhi, vsecond = lo <= hi ? vhi : vlo;
                fprintf(f, "%c%.1f %.1f", open ? 'L' : 'M',
                        cx(c, incident_samples_get(ss, first)->t_usec), cy(c, (double)vfirst));
                if (second != first)
                        fprintf(f, "L%.1f %.1f", cx(c, incident_samples_get(ss, second)->t_usec),
                                cy(c, (double)vsecond));
                open = true;
                k = end;
        }
        if (any)
                fputs("\"/>\n", f);
}

/* A limit (memory.high, memory.max) as steps: each value holds until the next sample. */
static void draw_steps(FILE *f, const struct chart *c, const struct incident_samples *ss,
                       const char *series, const char *style)
{
        bool open = false, any = false;
        uint64_t prev = 0;

        for (size_t k = 0; k < ss->len; k++) {
                const struct sample *s = incident_samples_get(ss, k);
                uint64_t v;
                bool has = sample_value(s, series, &v);
                double x = cx(c, s->t_usec);

                if (!has) {
                        if (open)
                                fprintf(f, "H%.1f", x);
                        open = false;
                        continue;
                }
                if (!any)
                        fprintf(f, "<path class=\"series series-%s\" %s d=\"", series, style);
                any = true;
                if (!open)
                        fprintf(f, "M%.1f %.1f", x, cy(c, (double)v));
                else if (v != prev)
                        fprintf(f, "H%.1fV%.1f", x, cy(c, (double)v));
                open = true;
                prev = v;
        }
        if (open)
                fprintf(f, "H%.1f", cx(c, c->t_end));
        if (any)
                fputs("\"/>\n", f);
}

/* A "nice" step (1, 2, 5 × 10^k) giving about n intervals over range. */
static double nice_step(double range, double n)
{
        double raw = range / n, p = pow(10.0, floor(log10(raw))), m = raw / p;
        return (m <= 1.0 ? 1.0 : m <= 2.0 ? 2.0 : m <= 5.0 ? 5.0 : 10.0) * p;
}

static void draw_axes(FILE *f, const struct chart *c)
{
        static const uint64_t steps_s[] = {1,   2,   5,    10,   15,   30,    60,    120,   300,
                                           600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400};
        char buf[32];

        /* y: bytes in binary units, gridlines at a nice step of the unit that fits. */
        double unit = c->y_max >= 4.0 * (1 << 30)   ? (double)(1 << 30)
                      : c->y_max >= 4.0 * (1 << 20) ? (double)(1 << 20)
                                                    : 1024.0;
        double step = nice_step(c->y_max / unit, 5.0) * unit;
        fputs("<g class=\"axis axis-y\">\n", f);
        for (double v = 0; v <= c->y_max * 1.0001; v += step) {
                double y = cy(c, v);
                fprintf(f,
                        "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>"
                        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">",
                        PLOT_LEFT, PLOT_RIGHT, y, y, PLOT_LEFT - 6, y + 4);
                esc(f, fmt_bytes(buf, v));
                fputs("</text>\n", f);
        }
        fputs("</g>\n", f);

        /* x: m:ss from the origin, at a round step giving about 8 intervals. */
        uint64_t span = c->t_end - c->t_start, tick = steps_s[ELEMENTSOF(steps_s) - 1];
        for (size_t i = 0; i < ELEMENTSOF(steps_s); i++)
                if (span / (steps_s[i] * USEC_PER_SEC) <= 8) {
                        tick = steps_s[i];
                        break;
                }
        int64_t xstep = (int64_t)(tick * USEC_PER_SEC),
                lo = (int64_t)c->t_start - (int64_t)c->origin,
                hi = (int64_t)c->t_end - (int64_t)c->origin;
        /* the first multiple of the step at or after lo (division rounds toward zero) */
        int64_t first = lo >= 0 ? (lo + xstep - 1) / xstep * xstep : lo / xstep * xstep;
        fputs("<g class=\"axis axis-x\">\n", f);
        for (int64_t rel = first; rel <= hi; rel += xstep) {
                double x = cx(c, (uint64_t)((int64_t)c->origin + rel));
                char label[64];
                fmt_rel(label, rel, false);
                fprintf(f,
                        "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>"
                        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                        x, x, PLOT_TOP, PLOT_BOTTOM, x, PLOT_BOTTOM + 16, label);
        }
        fprintf(f,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"axis-title\">time "
                "from %s (m:ss)</text>\n",
                (PLOT_LEFT + PLOT_RIGHT) / 2, PLOT_BOTTOM + 32, c->origin_name);
        fputs("</g>\n", f);
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"frame\"/>\n",
                PLOT_LEFT, PLOT_TOP, PLOT_RIGHT - PLOT_LEFT, PLOT_BOTTOM - PLOT_TOP);
}

/* The level at the chart's start: the latest event before it, else the first's "from". */
static enum level level_at_start(const struct incident_log *l, uint64_t t_start)
{
        enum level lv = LEVEL_OK;
        bool seen = false;

        for (size_t k = 0; k < incident_log_size(l); k++) {
                const struct incident_event *e = incident_log_get(l, k);
                if (e->action != INCIDENT_LEVEL)
                        continue;
                if (e->t_usec < t_start) {
                        lv = e->level;
                        seen = true;
                } else
                        return seen ? lv : e->previous_level;
        }
        return lv;
}

static void draw_band(FILE *f, const struct chart *c, enum level lv, uint64_t a, uint64_t b)
{
        if (lv <= LEVEL_OK || lv >= _LEVEL_MAX || b <= a)
                return;
        double x = cx(c, a), w = cx(c, b) - x;
        fprintf(f,
                "<rect class=\"band band-%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                "height=\"%.1f\" fill=\"%s\"/>\n",
                level_to_string(lv), x, PLOT_TOP, MAX(w, 0.5), PLOT_BOTTOM - PLOT_TOP,
                band_fill[lv]);
}

static void draw_bands(FILE *f, const struct chart *c, const struct incident_log *l)
{
        enum level lv = level_at_start(l, c->t_start);
        uint64_t from = c->t_start;

        for (size_t k = 0; k < incident_log_size(l); k++) {
                const struct incident_event *e = incident_log_get(l, k);
                if (e->action != INCIDENT_LEVEL || e->t_usec < c->t_start)
                        continue;
                if (e->t_usec > c->t_end)
                        break;
                draw_band(f, c, lv, from, e->t_usec);
                lv = e->level;
                from = e->t_usec;
        }
        draw_band(f, c, lv, from, c->t_end);
}

/* The newest sample not after t (the first one when all are after it); NULL: no samples. */
static const struct sample *sample_at(const struct incident_samples *ss, uint64_t t)
{
        size_t lo = 0, hi = ss->len;

        if (ss->len == 0)
                return NULL;
        while (hi - lo > 1) {
                size_t mid = lo + (hi - lo) / 2;
                if (incident_samples_get(ss, mid)->t_usec <= t)
                        lo = mid;
                else
                        hi = mid;
        }
        return incident_samples_get(ss, lo);
}

/* At each rise of the level, the forecast: from memory.current to the limit at the ETA. */
static void draw_forecasts(FILE *f, const struct chart *c, const struct incident_samples *ss,
                           const struct incident_log *l)
{
        for (size_t k = 0; k < incident_log_size(l); k++) {
                const struct incident_event *e = incident_log_get(l, k);
                const struct sample *s;
                char a[32];

                if (e->action != INCIDENT_LEVEL || e->level <= e->previous_level ||
                    e->eta_usec == USEC_INFINITY || e->t_usec < c->t_start ||
                    e->t_usec > c->t_end || !(s = sample_at(ss, e->t_usec)))
                        continue;
                uint64_t limit = s->max_bytes != CGROUP_LIMIT_MAX ? s->max_bytes : s->limit_bytes;
                if (limit == CGROUP_LIMIT_MAX || limit == 0 || (double)limit > c->y_max)
                        continue;
                double x1 = cx(c, e->t_usec), y1 = cy(c, (double)s->current_bytes);
                double t2 = (double)e->t_usec + (double)e->eta_usec;
                double x2 = PLOT_LEFT + (t2 - (double)c->t_start) /
                                                (double)MAX(c->t_end - c->t_start, (uint64_t)1) *
                                                (PLOT_RIGHT - PLOT_LEFT);
                double y2 = cy(c, (double)limit);
                if (x2 > PLOT_RIGHT) {
                        y2 = y1 + (y2 - y1) * (PLOT_RIGHT - x1) / MAX(x2 - x1, 1e-9);
                        x2 = PLOT_RIGHT;
                }
                fprintf(f,
                        "<g class=\"forecast\"><title>forecast at %s: the limit in %s at the "
                        "earliest</title><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                        "stroke=\"%s\"/>",
                        level_to_string(e->level), fmt_duration(a, e->eta_usec), x1, y1, x2, y2,
                        level_color[e->level]);
                if (x2 < PLOT_RIGHT)
                        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>", x2, y2,
                                level_color[e->level]);
                fputs("</g>\n", f);
        }
}

static void marker_open(FILE *f, const struct report_input *in, const struct chart *c,
                        const struct incident_event *e)
{
        char t[64];

        fprintf(f, "<g class=\"marker marker-%s\"><title>", incident_action_to_string(e->action));
        esc(f, fmt_time(t, in, c, e->t_usec));
        esc(f, ": ");
        describe(f, e);
        fputs("</title>", f);
}

static void draw_markers(FILE *f, const struct report_input *in, const struct chart *c)
{
        double last_label_x = -1e9;

        for (size_t k = 0; k < incident_log_size(in->log); k++) {
                const struct incident_event *e = incident_log_get(in->log, k);
                if (e->t_usec < c->t_start || e->t_usec > c->t_end)
                        continue;
                double x = cx(c, e->t_usec);
                marker_open(f, in, c, e);
                switch (e->action) {
                case INCIDENT_LEVEL: {
                        const char *col = level_color[e->level];
                        double y = LANE_Y(LANE_LEVEL);
                        bool up = e->level > e->previous_level;
                        fprintf(f,
                                "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
                                "stroke=\"%s\" class=\"rule\"/>",
                                x, x, y + 6, PLOT_BOTTOM, col);
                        fprintf(f, "<path d=\"M%.1f %.1fl6 %sl-12 0z\" fill=\"%s\"/>", x,
                                up ? y - 6 : y + 6, up ? "11" : "-11", col);
                        if (x - last_label_x >= 56) {
                                fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"lbl\">%s</text>",
                                        x + 8, y + 4, level_to_string(e->level));
                                last_label_x = x;
                        }
                        break;
                }
                case INCIDENT_MEMORY_HIGH: {
                        double y = LANE_Y(LANE_HIGH);
                        fprintf(f,
                                "<path d=\"M%.1f %.1fl6 6l-6 6l-6 -6z\" fill=\"#ef6c00\"/>"
                                "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
                                "class=\"tick\"/>",
                                x, y - 6, x, x, PLOT_TOP - 4, PLOT_TOP + 4);
                        break;
                }
                case INCIDENT_CAPTURE:
                        fprintf(f,
                                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5.5\" fill=\"%s\" "
                                "stroke=\"#1565c0\" stroke-width=\"2\"/>"
                                "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
                                "class=\"tick\"/>",
                                x, LANE_Y(LANE_CAPTURE), e->failed ? "#fff" : "#64b5f6", x, x,
                                PLOT_TOP - 4, PLOT_TOP + 4);
                        break;
                case INCIDENT_WEBHOOK:
                        fprintf(f,
                                "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" "
                                "fill=\"%s\"/>",
                                x - 5, LANE_Y(LANE_WEBHOOK) - 5, e->failed ? "#c62828" : "#43a047");
                        break;
                case INCIDENT_OOM_KILL:
                        fprintf(f,
                                "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
                                "class=\"oom\"/><text x=\"%.1f\" y=\"%.1f\" "
                                "text-anchor=\"end\" class=\"oom-label\">OOM kill</text>",
                                x, x, PLOT_TOP - 8, PLOT_BOTTOM, x - 4, PLOT_TOP + 14);
                        break;
                default:
                        break;
                }
                fputs("</g>\n", f);
        }
}

static void legend_item(FILE *f, double *x, const char *swatch, const char *label)
{
        fprintf(f, "<g transform=\"translate(%.1f %.1f)\">%s<text x=\"22\" y=\"4\">%s</text></g>\n",
                *x, (double)REPORT_CHART_HEIGHT - 12, swatch, label);
        *x += 34 + 7.0 * (double)strlen(label);
}

static void draw_legend(FILE *f, bool anon, bool file, bool high)
{
        double x = PLOT_LEFT;

        fputs("<g class=\"legend\">\n", f);
        legend_item(f, &x, "<line x2=\"18\" class=\"s-current\"/>", "memory.current");
        if (anon)
                legend_item(f, &x, "<line x2=\"18\" class=\"s-anon\"/>", "anon");
        if (file)
                legend_item(f, &x, "<line x2=\"18\" class=\"s-file\"/>", "file");
        if (high)
                legend_item(f, &x, "<line x2=\"18\" class=\"s-high\"/>", "memory.high");
        legend_item(f, &x, "<line x2=\"18\" class=\"s-max\"/>", "memory.max");
        legend_item(f, &x, "<line x2=\"18\" class=\"s-forecast\" stroke=\"#777\"/>",
                    "forecast to the limit");
        for (int l = LEVEL_WARN; l < _LEVEL_MAX; l++) {
                char sw[128];
                snprintf(sw, sizeof(sw), "<rect y=\"-6\" width=\"18\" height=\"12\" fill=\"%s\"/>",
                         band_fill[l]);
                legend_item(f, &x, sw, level_to_string((enum level)l));
        }
        fputs("</g>\n", f);
}

static void write_chart(FILE *f, const struct report_input *in, const struct chart *c)
{
        const struct incident_samples *ss = &in->samples;
        bool anon = false, file = false, high = false;

        for (size_t k = 0; k < ss->len; k++) {
                const struct sample *s = incident_samples_get(ss, k);
                anon |= (s->has & SAMPLE_HAS_ANON) != 0;
                file |= (s->has & SAMPLE_HAS_FILE) != 0;
                high |= (s->has & SAMPLE_HAS_HIGH) && s->high_bytes != CGROUP_LIMIT_MAX;
        }

        fprintf(f,
                "<svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
                "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"memory over "
                "time\">\n",
                REPORT_CHART_WIDTH, REPORT_CHART_HEIGHT, REPORT_CHART_WIDTH, REPORT_CHART_HEIGHT);
        for (int i = 0; i < _LANE_MAX; i++)
                fprintf(f,
                        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" "
                        "class=\"lane\">%s</text>\n",
                        PLOT_LEFT - 8, LANE_Y(i) + 4, lane_names[i]);
        draw_bands(f, c, in->log);
        draw_axes(f, c);
        draw_steps(f, c, ss, "max", "");
        if (high)
                draw_steps(f, c, ss, "high", "");
        if (file)
                draw_line(f, c, ss, "file", "");
        if (anon)
                draw_line(f, c, ss, "anon", "");
        draw_line(f, c, ss, "current", "");
        draw_forecasts(f, c, ss, in->log);
        draw_markers(f, in, c);
        draw_legend(f, anon, file, high);
        fputs("</svg>\n", f);
}

/* ---- the page ----------------------------------------------------------------------- */

static const char style[] =
        "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#222;"
        "margin:24px auto;max-width:1040px;padding:0 12px}"
        "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}"
        ".sub{color:#555;margin:0 0 16px}"
        "table{border-collapse:collapse;width:100%}"
        "th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e3e3e3;"
        "vertical-align:top}"
        "th{background:#f5f5f5;font-weight:600}td.num{text-align:right;"
        "font-variant-numeric:tabular-nums;white-space:nowrap}"
        "table.summary th{width:150px;background:none;color:#555;font-weight:500}"
        "code{font:12.5px ui-monospace,monospace;word-break:break-all}"
        ".lvl{display:inline-block;padding:0 6px;border-radius:3px;font-size:12px}"
        ".lvl-ok{background:#e3f1e4}.lvl-warn{background:#fff1a8}"
        ".lvl-degrade{background:#ffd6a0}.lvl-critical{background:#ffb8b8}"
        ".muted{color:#777}.bad{color:#c62828;font-weight:600}"
        "svg text{font:11.5px system-ui,sans-serif;fill:#444}"
        "svg .lane{fill:#666}svg .lbl{font-size:11px;fill:#333}"
        "svg .grid{stroke:#e6e6e6}svg .frame{fill:none;stroke:#bbb}"
        "svg .axis-title{fill:#666}"
        "svg .series{fill:none;stroke-linejoin:round}"
        ".series-current,.s-current{stroke:#1565c0;stroke-width:2}"
        ".series-anon,.s-anon{stroke:#8e24aa;stroke-width:1.2}"
        ".series-file,.s-file{stroke:#8d6e63;stroke-width:1.2}"
        ".series-high,.s-high{stroke:#ef6c00;stroke-width:1.6;stroke-dasharray:7 4}"
        ".series-max,.s-max{stroke:#c62828;stroke-width:1.6;stroke-dasharray:3 3}"
        "svg .forecast line,.s-forecast{stroke-width:1.4;stroke-dasharray:6 4;opacity:.85}"
        "svg .rule{stroke-width:1;stroke-dasharray:2 3;opacity:.8}"
        "svg .tick{stroke:#999}"
        "svg .oom{stroke:#b71c1c;stroke-width:3}"
        "svg .oom-label{fill:#b71c1c;font-weight:700}";

static void summary_row(FILE *f, const char *th)
{
        fprintf(f, "<tr><th>%s</th><td>", th);
}

static void write_summary(FILE *f, const struct report_input *in, const struct chart *c,
                          const struct incident_suspect *sus, size_t n_sus)
{
        const struct incident_event *oom = NULL;
        char a[64], b[32], d[32];

        for (size_t k = incident_log_size(in->log); k > 0 && !oom; k--) {
                const struct incident_event *e = incident_log_get(in->log, k - 1);
                if (e->action == INCIDENT_OOM_KILL && (!in->event || e->t_usec <= in->t_usec))
                        oom = e;
        }

        fputs("<table class=\"summary\">\n", f);
        if (in->service) {
                summary_row(f, "Service");
                esc(f, in->service);
                fputs("</td></tr>\n", f);
        }
        if (in->cgroup) {
                summary_row(f, "Cgroup");
                fputs("<code>", f);
                esc(f, in->cgroup);
                fputs("</code></td></tr>\n", f);
        }
        if (in->event) {
                summary_row(f, "When");
                if (in->realtime_usec > 0) {
                        time_t tt = (time_t)(in->realtime_usec / USEC_PER_SEC);
                        struct tm tm;
                        char w[64] = "";
                        if (gmtime_r(&tt, &tm))
                                strftime(w, sizeof(w), "%Y-%m-%d %H:%M:%S UTC", &tm);
                        escf(f, "%s: %s", event_title(in->event), w);
                } else {
                        const struct sample *s0 = incident_samples_get(&in->samples, 0);
                        escf(f, "%s %s after the first sample", event_title(in->event),
                             fmt_duration(b, s0 && in->t_usec > s0->t_usec ? in->t_usec - s0->t_usec
                                                                           : 0));
                }
                fputs("</td></tr>\n", f);
        }

        summary_row(f, "Warning ahead");
        if (!oom)
                fputs("<span class=\"muted\">no OOM kill in this record</span>", f);
        else {
                bool any = false;
                for (int l = LEVEL_WARN; l < _LEVEL_MAX; l += 2) {
                        uint64_t lead;
                        if (!incident_lead(in->log, oom->t_usec, (enum level)l, &lead))
                                continue;
                        fprintf(f, "%s<span class=\"lvl lvl-%s\">%s</span> ", any ? "; " : "",
                                level_to_string((enum level)l), level_to_string((enum level)l));
                        escf(f, "%s before the OOM kill", fmt_duration(b, lead));
                        any = true;
                }
                if (!any)
                        fputs("<span class=\"bad\">none: the OOM kill came without a warning "
                              "level</span>",
                              f);
                if (!in->event || strcmp(in->event, "oom_kill") != 0)
                        escf(f, " (the OOM kill at %s)", fmt_time(a, in, c, oom->t_usec));
        }
        fputs("</td></tr>\n", f);

        uint64_t peak = 0, max = CGROUP_LIMIT_MAX;
        for (size_t k = 0; k < in->samples.len; k++) {
                const struct sample *s = incident_samples_get(&in->samples, k);
                peak = MAX(peak, s->current_bytes);
                max = s->max_bytes;
        }
        if (in->samples.len > 0) {
                summary_row(f, "Memory");
                escf(f, "peak memory.current %s", fmt_bytes(b, (double)peak));
                if (max != CGROUP_LIMIT_MAX)
                        escf(f, " of memory.max %s", fmt_bytes(d, (double)max));
                escf(f, "; %zu samples over %s", in->samples.len,
                     fmt_duration(a,
                                  incident_samples_get(&in->samples, in->samples.len - 1)->t_usec -
                                          incident_samples_get(&in->samples, 0)->t_usec));
                fputs("</td></tr>\n", f);
        }
        if (in->policy) {
                summary_row(f, "Levels");
                for (int l = LEVEL_WARN; l < _LEVEL_MAX; l++) {
                        const struct policy_level *pl = &in->policy->levels[l];
                        fprintf(f, "%s<span class=\"lvl lvl-%s\">%s</span>",
                                l > LEVEL_WARN ? "; " : "", level_to_string((enum level)l),
                                level_to_string((enum level)l));
                        if (pl->eta_usec)
                                escf(f, " ETA ≤ %s", fmt_duration(b, pl->eta_usec));
                        if (pl->usage_permille)
                                escf(f, " usage ≥ %u.%u%%", pl->usage_permille / 10,
                                     pl->usage_permille % 10);
                }
                fputs("</td></tr>\n", f);
        }
        summary_row(f, "Top suspect");
        if (n_sus == 0)
                fputs("<span class=\"muted\">none: no profile was captured</span>", f);
        else {
                fputs("<code>", f);
                esc(f, sus[0].function);
                fputs("</code> ", f);
                if (sus[0].kind == SUSPECT_HEAP)
                        escf(f, "%s%s heap", sus[0].paired && sus[0].growth >= 0 ? "+" : "",
                             fmt_bytes(b, (double)sus[0].growth));
                else
                        escf(f, "%s%" PRId64 " goroutines",
                             sus[0].paired && sus[0].growth >= 0 ? "+" : "", sus[0].growth);
        }
        fputs("</td></tr>\n</table>\n", f);
}

static void write_suspects(FILE *f, const struct report_input *in, const struct incident_suspect *s,
                           size_t n)
{
        char a[32];

        fputs("<h2>Leak suspects</h2>\n", f);
        if (in->suspects_source) {
                fputs("<p class=\"sub\">From <code>", f);
                esc(f, in->suspects_source);
                fputs("</code>", f);
                fputs(n > 0 && !s[0].paired ? "; not diffed against a base: sizes at the capture"
                                            : "",
                      f);
                fputs(".</p>\n", f);
        }
        fputs("<table id=\"suspects\">\n<thead><tr><th>#</th><th>Kind</th><th>Function</th>"
              "<th>Where</th><th class=\"num\">Growth</th><th class=\"num\">Now</th></tr></thead>"
              "\n<tbody>\n",
              f);
        if (n == 0)
                fputs("<tr><td colspan=\"6\" class=\"muted\">No suspects: no heap or goroutine "
                      "profile was captured.</td></tr>\n",
                      f);
        for (size_t i = 0; i < n; i++) {
                bool heap = s[i].kind == SUSPECT_HEAP;
                fprintf(f, "<tr class=\"suspect\"><td class=\"num\">%zu</td><td>%s</td><td><code>",
                        i + 1, suspect_kind_to_string(s[i].kind));
                esc(f, s[i].function);
                fputs("</code></td><td><code>", f);
                if (s[i].file && *s[i].file)
                        escf(f, "%s:%u", s[i].file, s[i].line);
                fputs("</code></td><td class=\"num\">", f);
                if (!s[i].paired)
                        fputs("<span class=\"muted\">–</span>", f);
                else if (heap)
                        escf(f, "%s%s", s[i].growth >= 0 ? "+" : "",
                             fmt_bytes(a, (double)s[i].growth));
                else
                        escf(f, "%+" PRId64, s[i].growth);
                fputs("</td><td class=\"num\">", f);
                if (heap)
                        esc(f, fmt_bytes(a, (double)s[i].current));
                else
                        escf(f, "%" PRIu64, s[i].current);
                fputs("</td></tr>\n", f);
        }
        fputs("</tbody></table>\n", f);
}

static void write_decisions(FILE *f, const struct report_input *in, const struct chart *c)
{
        char t[64];

        fputs("<h2>What memgov saw and did</h2>\n<table id=\"decisions\">\n<thead><tr>"
              "<th>Time</th><th>Level</th><th>Action</th><th>What</th></tr></thead>\n<tbody>\n",
              f);
        if (incident_log_size(in->log) == 0)
                fputs("<tr><td colspan=\"4\" class=\"muted\">Nothing: the level stayed ok.</td>"
                      "</tr>\n",
                      f);
        for (size_t k = 0; k < incident_log_size(in->log); k++) {
                const struct incident_event *e = incident_log_get(in->log, k);
                fprintf(f, "<tr class=\"decision decision-%s\"><td class=\"num\">",
                        incident_action_to_string(e->action));
                esc(f, fmt_time(t, in, c, e->t_usec));
                fprintf(f, "</td><td><span class=\"lvl lvl-%s\">%s</span></td><td>%s</td><td>",
                        level_to_string(e->level), level_to_string(e->level),
                        incident_action_to_string(e->action));
                describe(f, e);
                fputs("</td></tr>\n", f);
        }
        fputs("</tbody></table>\n", f);
        if (in->log && in->log->n_dropped > 0)
                fprintf(f, "<p class=\"muted\">%" PRIu64 " older events are not kept.</p>\n",
                        in->log->n_dropped);
}

static struct chart chart_for(const struct report_input *in)
{
        const struct incident_samples *ss = &in->samples;
        const struct sample *first = incident_samples_get(ss, 0),
                            *last = incident_samples_get(ss, ss->len ? ss->len - 1 : 0);
        struct chart c = {};
        uint64_t top = 0, v;

        if (first) {
                c.t_start = first->t_usec;
                c.t_end = last->t_usec;
        } else if (in->event)
                c.t_start = c.t_end = in->t_usec;
        if (in->event && in->t_usec > c.t_end && first)
                c.t_end = in->t_usec;
        /*
         * The samples may be fewer than the episode is long (the ring spans the forecast
         * window): the chart reaches back to the episode's first rise from ok, when that is
         * within the hour, so that its levels, captures and lead stand in it too.
         */
        uint64_t ref = in->event ? in->t_usec : c.t_end, episode = 0;
        bool has_episode = false;
        for (size_t k = 0; k < incident_log_size(in->log); k++) {
                const struct incident_event *e = incident_log_get(in->log, k);
                if (e->t_usec > ref)
                        break;
                if (e->action != INCIDENT_LEVEL)
                        continue;
                if (e->previous_level == LEVEL_OK && e->level > LEVEL_OK) {
                        episode = e->t_usec;
                        has_episode = true;
                } else if (e->level == LEVEL_OK)
                        has_episode = false;
        }
        if (has_episode && episode < c.t_start && c.t_start - episode <= USEC_PER_HOUR) {
                uint64_t margin = (c.t_end - episode) / 40;
                c.t_start = episode > margin ? episode - margin : 0;
        }
        if (c.t_end == c.t_start)
                c.t_end = c.t_start + USEC_PER_SEC;
        if (in->event) {
                c.origin = in->t_usec;
                c.origin_name = strcmp(in->event, "oom_kill") == 0   ? "the OOM kill"
                                : strcmp(in->event, "critical") == 0 ? "the entry into critical"
                                                                     : in->event;
        } else {
                c.origin = first ? first->t_usec : c.t_start;
                c.origin_name = "the first sample";
        }
        for (size_t k = 0; k < ss->len; k++) {
                const struct sample *s = incident_samples_get(ss, k);
                static const char *const series[] = {"current", "anon", "file", "max", "high"};
                for (size_t i = 0; i < ELEMENTSOF(series); i++)
                        if (sample_value(s, series[i], &v) && (i < 4 || v <= 2 * top))
                                top = MAX(top, v);
        }
        c.y_max = top > 0 ? (double)top * 1.06 : 1024.0 * 1024.0;
        return c;
}

int report_write_html(FILE *f, const struct report_input *in)
{
        struct chart c = chart_for(in);
        const struct incident_suspect *sus = in->suspects;
        size_t n_sus = in->n_suspects;
        const char *sus_source = in->suspects_source;

        if (!sus) {
                const struct incident_event *e = incident_log_suspects(in->log);
                if (e) {
                        sus = e->suspects;
                        n_sus = e->n_suspects;
                        sus_source = sus_source ?: e->detail;
                }
        }
        struct report_input eff = *in;
        eff.suspects_source = sus_source;

        fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n", f);
        fputs("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n", f);
        fputs("<title>", f);
        if (in->title)
                esc(f, in->title);
        else
                escf(f, "memgov incident: %s%s%s", in->service ?: "?", in->event ? " — " : "",
                     in->event ? event_title(in->event) : "");
        fprintf(f, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>", style);
        if (in->title)
                esc(f, in->title);
        else
                escf(f, "memgov incident: %s%s%s", in->service ?: "?", in->event ? " — " : "",
                     in->event ? event_title(in->event) : "");
        fputs("</h1>\n", f);
        write_summary(f, &eff, &c, sus, n_sus);

        fputs("<h2>Memory and levels</h2>\n<figure style=\"margin:0\">\n", f);
        write_chart(f, &eff, &c);
        fputs("</figure>\n", f);

        write_suspects(f, &eff, sus, n_sus);
        write_decisions(f, &eff, &c);

        if (in->n_files > 0) {
                fputs("<h2>Files</h2>\n<ul>\n", f);
                for (size_t i = 0; i < in->n_files; i++) {
                        fputs("<li><a href=\"", f);
                        esc(f, in->files[i]);
                        fputs("\">", f);
                        esc(f, in->files[i]);
                        fputs("</a></li>\n", f);
                }
                fputs("</ul>\n", f);
        }
        fputs("<p class=\"muted\">Made by ", f);
        esc(f, in->generator ?: "memgov");
        fputs(".</p>\n</body>\n</html>\n", f);
        if (fflush(f) != 0 || ferror(f))
                return -EIO;
        return 0;
}

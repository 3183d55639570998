/* SPDX-License-Identifier: MIT */
/*
 * The incident report (record effect, and `memgovctl report`): one self-contained HTML page
 * — inline CSS and SVG, no script, nothing fetched — that shows an operator what happened
 * to one cgroup and what memgov did about it:
 *
 *   - a summary: service, cgroup, when, the event, the lead time of the first warn and of
 *     critical before the OOM kill (incident_lead()), the limit, the peak, the top suspect;
 *   - a chart: memory.current (and anon, file when known) against memory.high and
 *     memory.max over time; the level as coloured background bands (warn, degrade,
 *     critical); at each rise of the level, the forecast as a dashed line to the limit at
 *     the ETA lower bound; a marker for every action of the log in its lane (level,
 *     memory.high, capture, webhook); the OOM kill as a red line;
 *   - the suspects table (kind, function, file:line, growth, now);
 *   - the decision log as a table; the bundle's files.
 *
 * Elements a test (or a stylesheet) can find: svg#chart; rect.band.band-<level>;
 * g.marker.marker-<action> (one per event of the log inside the chart's time range, the
 * OOM kill included, each with a <title>); path.series-<name> (current, anon, file, high,
 * max); table#suspects, table#decisions.
 *
 * Pure: writes only to the caller's FILE.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "memgov/incident.h"
#include "memgov/policy.h"

/* The chart's size in CSS pixels. */
#define REPORT_CHART_WIDTH  1000
#define REPORT_CHART_HEIGHT 460

struct report_input {
        const char *title;      /* the page's heading; NULL: "memgov incident: SERVICE" */
        const char *service;    /* may be NULL */
        const char *cgroup;     /* may be NULL */
        const char *event;      /* "oom_kill", "critical", …; NULL: none (a trace) */
        uint64_t t_usec;        /* the event's time on the samples' clock (with event) */
        uint64_t realtime_usec; /* the wall clock at t_usec; 0: unknown (times are relative) */
        struct incident_samples samples; /* oldest first; may be empty */
        const struct incident_log *log;  /* may be NULL */
        const struct policy *policy;     /* the level thresholds in the summary; may be NULL */
        /*
         * The suspects table; NULL: those of incident_log_suspects() of the log. Best
         * first.
         */
        const struct incident_suspect *suspects;
        size_t n_suspects;
        const char *suspects_source; /* where they came from (a dump, a file); may be NULL */
        const char *const *files;    /* files beside the report, linked by relative name */
        size_t n_files;
        const char *generator; /* the footer: "memgovd 0.1.0", "memgovctl report"; may be NULL */
};

/* Write the report as HTML to f. Returns 0, -EIO (a write failed), -ENOMEM. */
int report_write_html(FILE *f, const struct report_input *in);

/* SPDX-License-Identifier: MIT */
/*
 * Shared between governor/daemon.c (life cycle, systemd, reload), daemon-scan.c (which
 * cgroups), instance.c (sampling) and instance-pipeline.c (forecast → decide → effects).
 */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

#include "memgov/daemon.h"
#include "memgov/promtext.h"
#include "memgov/status.h"

/* Log at info that instance i stops being governed, and why ("is gone", …). */
void daemon_log_dropped(const struct instance *i, const char *why);

/* Send READY=1 (with STATUS=) unless it was sent already. */
void daemon_notify_ready(struct daemon *d);

/* Watches, globs and instances brought in line with set (which may not be d->policies yet). */
int daemon_rescan_with(struct daemon *d, const struct policy_set *set);
void daemon_watches_clear(struct daemon *d);

/* The safety-net rescan timer: (re-)armed at config.rescan_interval_usec, off at 0. */
int daemon_rescan_timer_arm(struct daemon *d);
int daemon_rescan_timer_handler(sd_event_source *s, uint64_t usec, void *userdata);
int daemon_rescan_defer_handler(sd_event_source *s, void *userdata);

/*
 * forecast → decide → effects for the good sample s of i (already kept as i->last and in
 * the ring). Returns 0 or -errno.
 */
int instance_pipeline(struct daemon *d, struct instance *i, const struct sample *s,
                      uint64_t now_usec);

/* The instance with this id, or NULL (it was dropped): for effects that end later. */
struct instance *daemon_get_instance_by_id(const struct daemon *d, uint64_t id);

/* daemon_reload(), with the problems that stopped it also added to diag (may be NULL). */
int daemon_reload_diag(struct daemon *d, struct diag *diag);

/*
 * The HTTP server (governor/daemon-export.c): started on the runtime dir's socket and the
 * config's listen address; -EADDRINUSE and the like are returned, logged. Reconfigured
 * after a reload (a failure keeps the old listeners, logged).
 */
int daemon_server_start(struct daemon *d);
void daemon_server_reconfigure(struct daemon *d);

/*
 * Captures (governor/daemon-capture.c): started by instance_raise_event() on the events a
 * policy's pprof.on and collectors name, and by POST /v1/dump/SERVICE; their counters for
 * /metrics and their latest result for /v1/status.
 */
void daemon_capture_on_event(struct daemon *d, struct instance *i, enum event e);
int daemon_handle_dump(void *userdata, const char *service, char **ret_msg);
void daemon_write_capture_metrics(const struct daemon *d, struct promtext *p);
void daemon_fill_capture_status(const struct daemon *d, const struct instance *i, uint64_t now_usec,
                                struct status_instance *ret);
int daemon_capture_start(struct daemon *d);
void daemon_capture_stop(struct daemon *d);

/*
 * The record effect (governor/daemon-record.c): ev of i goes into its incident log at
 * t_usec (the samples' clock); an OOM kill or an entry into critical then writes the
 * incident bundle (trace, decisions, captures, report.html) into the dump store.
 */
void daemon_record_event(struct daemon *d, struct instance *i, const struct instance_event *ev,
                         uint64_t t_usec, bool webhook_queued);

/*
 * Before the first sample of a new instance i: when a previous memgovd left an incident
 * of the cgroup open (same service, same inode), an entry into critical within the
 * policy's forecast window from now_usec continues it rather than writing a new bundle.
 */
void daemon_record_resume(struct daemon *d, struct instance *i, uint64_t now_usec);
void daemon_record_resume_expired(struct daemon *d, struct instance *i);

/*
 * notify's delivery callback (userdata: the daemon): the outcome becomes the instance's
 * last_delivery (status) and a "webhook" entry of its incident log.
 */
void daemon_on_delivery(const struct notify_delivery *dl, void *userdata);

/* SPDX-License-Identifier: MIT */
/*
 * Shared between governor/daemon.c (life cycle, systemd, reload), daemon-scan.c (which
 * cgroups), instance.c (sampling) and instance-pipeline.c (forecast → decide → effects).
 */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

#include "memgov/daemon.h"

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

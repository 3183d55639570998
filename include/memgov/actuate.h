/* SPDX-License-Identifier: MIT */
/*
 * The actuate stage (decide → govern → actuate): carries a memory.high intent out, through
 * one of two backends, and keeps the restore record (governor/restore.c) that lets the
 * original value come back on exit, after a crash, or by hand.
 *
 *   cgroupfs  memory.high is written in place ("max" or bytes, one write()) through the
 *             cgroup's directory fd. For delegated subtrees, hosts without systemd,
 *             containers.
 *   systemd   for a cgroup that is a systemd unit's own (its last component is a .service,
 *             .scope or .slice name and the manager's GetUnitByControlGroup says it is that
 *             unit), MemoryHigh= is set at runtime through the manager's
 *             SetUnitProperties(name, runtime=true, [("MemoryHigh", t)]): systemd owns the
 *             attributes of the cgroups it made and would put its own value back over a
 *             direct write at its next reload. "max" is UINT64_MAX (infinity) there.
 *
 * The backend comes from the policy (.memory_high.backend); auto picks systemd when the
 * manager is reachable and confirms the cgroup is a unit's, cgroupfs otherwise. The
 * confirmation is asynchronous on the daemon's loop; a change asked for meanwhile waits for
 * it. Bus calls made while the loop runs are asynchronous (sd_bus_call_method_async), never
 * blocking it; only restore (at start, at exit, memgovctl) waits for replies.
 *
 * Before the first change to a cgroup the original memory.high goes into a restore record;
 * if the record cannot be written, nothing is changed. When the original is given back the
 * record goes. memory.reclaim is always written in place (systemd has no property for it).
 *
 * A dry run (memgovd --dry-run) writes nothing, neither to cgroups nor records, and logs
 * what it would have written. Every change is logged with its reason at notice level, with
 * the fields MEMGOV_SERVICE, MEMGOV_CGROUP, MEMGOV_MEMORY_HIGH and MEMGOV_BACKEND.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "memgov/macro.h"
#include "memgov/policy.h"

/* systemd's own socket: no bus daemon needed (what systemctl uses as root). */
#define ACTUATE_SYSTEMD_PRIVATE_SOCKET "/run/systemd/private"
/* Replies waited for by the synchronous calls (restore). */
#define ACTUATE_BUS_TIMEOUT_USEC (5 * USEC_PER_SEC)

/*
 * The systemd unit whose own cgroup relpath would be, judged from the path alone: the last
 * component when it ends in ".service", ".scope" or ".slice" (without the "_" systemd puts
 * before names that could clash with cgroupfs files). Returns 1 with *ret_unit malloc'ed,
 * 0 when it is no unit's name, -ENOMEM.
 */
int actuate_unit_from_relpath(const char *relpath, char **ret_unit);

/*
 * Connect to the systemd manager: its private socket when we are root and it exists, else
 * the system bus. With event non-NULL the connection is attached to it and completes on
 * the loop (nothing blocks here); with NULL it is for synchronous calls (memgovctl).
 * Returns 0 with *ret, -EHOSTDOWN when systemd does not run here (/run/systemd/system
 * missing), or another -errno.
 */
int actuate_bus_open(sd_event *event, sd_bus **ret);

/* Set MemoryHigh= of unit at runtime and wait for the reply (restore). 0 or -errno. */
int actuate_systemd_set_high(sd_bus *bus, const char *unit, uint64_t bytes,
                             sd_bus_error *ret_error);

/* Whether a bus call's -errno says the connection is gone (systemd re-executed, stopped). */
bool actuate_bus_disconnected(int r);

/* Write memory.high of the cgroup dir_fd: "max" or bytes. 0 or -errno. */
int actuate_cgroupfs_set_high(int dir_fd, uint64_t bytes);

/* "max", or the decimal bytes, as written to memory.high. */
const char *actuate_format_high(char buf[static 24], uint64_t bytes);

/* One per daemon: the loop, the bus, where records go, whether to write at all. */
struct actuator {
        sd_event *event; /* ref */
        sd_bus *bus;     /* ref; NULL: no systemd manager reachable */
        char *state_dir; /* records in <state_dir>/restore; NULL: no records (tests) */
        bool dry_run;
        /*
         * The bus came from actuate_bus_open(): when systemd closes it (daemon-reexec, an
         * upgrade), open a new one at the next use. Set by the daemon, not by tests.
         */
        bool reconnect;
        uint64_t n_changes; /* memory.high changes carried out (or logged, dry run) */
        uint64_t n_errors;  /* changes that failed */
};

/*
 * event and bus are referenced (bus may be NULL), state_dir copied. Returns 0 or -ENOMEM.
 * Free with actuator_free() after every target.
 */
int actuator_new(sd_event *event, sd_bus *bus, const char *state_dir, bool dry_run,
                 struct actuator **ret);
struct actuator *actuator_free(struct actuator *a);
DEFINE_FREE_FUNC(actuator)

/*
 * The bus to use now (a->bus, NULL when there is none); reopened first when it was closed
 * and a->reconnect is set. Also for restore_env.bus at exit.
 */
sd_bus *actuator_bus(struct actuator *a);

/* One per governed cgroup (instance). Fields are read by tests, written by actuate.c. */
struct actuate_target {
        struct actuator *a; /* borrowed: outlives the target */
        char *service;
        char *relpath;
        int dir_fd;   /* a duplicate of the instance's, owned */
        uint64_t ino; /* of the cgroup directory, for the record */
        enum actuate_backend wanted;
        /*
         * The backend in use: ACTUATE_BACKEND_AUTO while systemd is being asked,
         * _ACTUATE_BACKEND_INVALID when none can be used (the policy wants systemd and the
         * cgroup is not a unit's, or systemd is not reachable): changes are then refused.
         */
        enum actuate_backend backend;
        char *unit; /* systemd backend: the unit */
        sd_bus_slot *resolve_slot;
        sd_bus_slot *set_slot; /* the SetUnitProperties call in flight */

        /* a change asked for while the backend was being resolved */
        bool has_pending;
        uint64_t pending_bytes, pending_original;
        char *pending_reason;

        bool has_high;
        uint64_t high_bytes;      /* the last value carried out (or logged, dry run) */
        bool reclaim_unsupported; /* memory.reclaim is missing (kernel < 5.19) */
        uint64_t n_set_replies;   /* SetUnitProperties replies received, good or not */
};

/*
 * Make the target for the cgroup relpath (dir_fd duplicated, ino its inode) of service,
 * with the policy's backend wanted. For systemd or auto with a bus, the manager is asked
 * (asynchronously) whether the cgroup is a unit's. Returns 0 or -errno.
 */
int actuate_target_new(struct actuator *a, const char *service, const char *relpath, int dir_fd,
                       uint64_t ino, enum actuate_backend wanted, struct actuate_target **ret);
/* Cancels calls in flight (their replies are ignored), closes the fd. NULL-safe. */
struct actuate_target *actuate_target_free(struct actuate_target *t);
DEFINE_FREE_FUNC(actuate_target)

/*
 * Set memory.high to bytes (CGROUP_LIMIT_MAX: "max") because of reason; original_bytes is
 * the value memgov found (govern_state.original_bytes), recorded before the first change;
 * bytes == original_bytes gives it back and drops the record once done. Returns 0 when
 * done, sent (systemd: the reply is logged when it comes) or queued (backend being
 * resolved); -EOPNOTSUPP when no backend can be used; another -errno (logged) on failure.
 */
int actuate_set_high(struct actuate_target *t, uint64_t bytes, uint64_t original_bytes,
                     const char *reason);

/*
 * Ask the kernel to reclaim bytes from the cgroup (memory.reclaim). -EAGAIN/-EBUSY (less
 * could be reclaimed) are normal and returned without a log; a missing file (kernel < 5.19)
 * is logged once and the target stops asking. 0 or -errno.
 */
int actuate_reclaim(struct actuate_target *t, uint64_t bytes);

/* SPDX-License-Identifier: MIT */
/*
 * actuate: memory.high intents carried out through cgroupfs or systemd's bus, with a
 * restore record before the first change (decide → govern → actuate).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memgov/actuate.h"
#include "memgov/cgfs.h"
#include "memgov/log.h"
#include "memgov/restore.h"

#define SYSTEMD_SERVICE   "org.freedesktop.systemd1"
#define SYSTEMD_PATH      "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER   "org.freedesktop.systemd1.Manager"
#define SYSTEMD_UNIT_PATH "/org/freedesktop/systemd1/unit"

static bool ends_with(const char *s, const char *suffix)
{
        size_t n = strlen(s), k = strlen(suffix);
        return n > k && strcmp(s + n - k, suffix) == 0;
}

int actuate_unit_from_relpath(const char *relpath, char **ret_unit)
{
        const char *end = relpath + strlen(relpath);

        while (end > relpath && end[-1] == '/')
                end--;
        const char *start = end;
        while (start > relpath && start[-1] != '/')
                start--;
        if (start == end)
                return 0;

        _cleanup_free_ char *name = strndup(start, (size_t)(end - start));
        if (!name)
                return -ENOMEM;
        if (!ends_with(name, ".service") && !ends_with(name, ".scope") &&
            !ends_with(name, ".slice"))
                return 0;
        /* systemd's cg_escape() puts '_' before names that could clash with cgroupfs files */
        if (name[0] == '_')
                memmove(name, name + 1, strlen(name));
        *ret_unit = TAKE_PTR(name);
        return 1;
}

int actuate_bus_open(sd_event *event, sd_bus **ret)
{
        sd_bus *bus = NULL;
        int r;

        if (access("/run/systemd/system", F_OK) < 0)
                return -EHOSTDOWN;

        if (geteuid() == 0 && access(ACTUATE_SYSTEMD_PRIVATE_SOCKET, F_OK) == 0) {
                r = sd_bus_new(&bus);
                if (r < 0)
                        return r;
                r = sd_bus_set_address(bus, "unix:path=" ACTUATE_SYSTEMD_PRIVATE_SOCKET);
                if (r >= 0)
                        r = sd_bus_start(bus);
                if (r < 0)
                        bus = sd_bus_unref(bus);
        }
        if (!bus) {
                r = sd_bus_open_system(&bus);
                if (r < 0)
                        return r;
        }
        if (event) {
                r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
                if (r < 0) {
                        sd_bus_unref(bus);
                        return r;
                }
        }
        *ret = bus;
        return 0;
}

const char *actuate_format_high(char buf[static 24], uint64_t bytes)
{
        if (bytes == CGROUP_LIMIT_MAX)
                snprintf(buf, 24, "max");
        else
                snprintf(buf, 24, "%" PRIu64, bytes);
        return buf;
}

int actuate_cgroupfs_set_high(int dir_fd, uint64_t bytes)
{
        char buf[24];

        return cgfs_write_at(dir_fd, "memory.high", actuate_format_high(buf, bytes));
}

static int append_memory_high(sd_bus_message *m, const char *unit, uint64_t bytes)
{
        /* systemd's infinity is UINT64_MAX, the same value as CGROUP_LIMIT_MAX */
        return sd_bus_message_append(m, "sba(sv)", unit, 1, 1, "MemoryHigh", "t", bytes);
}

int actuate_systemd_set_high(sd_bus *bus, const char *unit, uint64_t bytes, sd_bus_error *ret_error)
{
        sd_bus_message *m = NULL, *reply = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                           "SetUnitProperties");
        if (r < 0)
                return r;
        r = append_memory_high(m, unit, bytes);
        if (r >= 0)
                r = sd_bus_call(bus, m, ACTUATE_BUS_TIMEOUT_USEC, ret_error, &reply);
        sd_bus_message_unref(m);
        sd_bus_message_unref(reply);
        return r < 0 ? r : 0;
}

int actuator_new(sd_event *event, sd_bus *bus, const char *state_dir, bool dry_run,
                 struct actuator **ret)
{
        struct actuator *a = calloc(1, sizeof(*a));

        if (!a)
                return -ENOMEM;
        if (state_dir && !(a->state_dir = strdup(state_dir))) {
                free(a);
                return -ENOMEM;
        }
        a->event = event ? sd_event_ref(event) : NULL;
        a->bus = bus ? sd_bus_ref(bus) : NULL;
        a->dry_run = dry_run;
        *ret = a;
        return 0;
}

sd_bus *actuator_bus(struct actuator *a)
{
        sd_bus *fresh = NULL;
        int r;

        if (!a->bus || !a->reconnect || sd_bus_is_open(a->bus) > 0)
                return a->bus;
        /* systemd re-executed (an upgrade) and closed our connection: open a new one */
        r = actuate_bus_open(a->event, &fresh);
        if (r < 0) {
                log_debug_errno(r, "cannot reconnect to the systemd manager yet: %m");
                return a->bus;
        }
        sd_bus_flush_close_unref(a->bus);
        a->bus = fresh;
        log_info("reconnected to the systemd manager");
        return a->bus;
}

struct actuator *actuator_free(struct actuator *a)
{
        if (!a)
                return NULL;
        sd_bus_unref(a->bus);
        sd_event_unref(a->event);
        free(a->state_dir);
        free(a);
        return NULL;
}

struct actuate_target *actuate_target_free(struct actuate_target *t)
{
        if (!t)
                return NULL;
        sd_bus_slot_unref(t->resolve_slot);
        sd_bus_slot_unref(t->set_slot);
        if (t->dir_fd >= 0)
                close(t->dir_fd);
        free(t->service);
        free(t->relpath);
        free(t->unit);
        free(t->pending_reason);
        free(t);
        return NULL;
}

#define TARGET_FIELDS(t, value)                                                                    \
        LOG_FIELDS({"MEMGOV_SERVICE", (t)->service}, {"MEMGOV_CGROUP", (t)->relpath},              \
                   {"MEMGOV_MEMORY_HIGH", (value)},                                                \
                   {"MEMGOV_BACKEND", actuate_backend_to_string((t)->backend)})

static int carry_out(struct actuate_target *t, uint64_t bytes, uint64_t original_bytes,
                     const char *reason);

/* The backend is known now: a change asked for meanwhile goes out. */
static void resolved(struct actuate_target *t, enum actuate_backend backend)
{
        t->backend = backend;
        if (backend == ACTUATE_BACKEND_SYSTEMD)
                log_info("%s: memory.high of %s through systemd (unit %s)", t->service, t->relpath,
                         t->unit);
        else
                log_debug("%s: memory.high of %s through %s", t->service, t->relpath,
                          backend == ACTUATE_BACKEND_CGROUPFS ? "cgroupfs" : "nothing");
        if (t->has_pending) {
                _cleanup_free_ char *reason = TAKE_PTR(t->pending_reason);
                t->has_pending = false;
                (void)carry_out(t, t->pending_bytes, t->pending_original, reason);
        }
}

/* Not a unit's cgroup after all (or no answer): what the policy's choice allows. */
static void not_a_unit(struct actuate_target *t, const char *why)
{
        if (t->wanted == ACTUATE_BACKEND_SYSTEMD) {
                log_error("%s: the policy wants the systemd backend, but %s: memory.high of %s "
                          "will not be changed (use \"backend\": \"cgroupfs\" or \"auto\")",
                          t->service, why, t->relpath);
                resolved(t, _ACTUATE_BACKEND_INVALID);
        } else {
                log_debug("%s: %s: writing memory.high of %s directly", t->service, why,
                          t->relpath);
                resolved(t, ACTUATE_BACKEND_CGROUPFS);
        }
}

static int on_unit_by_cgroup(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        struct actuate_target *t = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        _cleanup_free_ char *name = NULL, *why = NULL;
        const char *path;
        int r;

        (void)ret_error;
        t->resolve_slot = sd_bus_slot_unref(t->resolve_slot);
        if (e) {
                if (asprintf(&why, "systemd knows no unit for it (%s)",
                             e->message ? e->message : e->name) < 0)
                        why = NULL;
                not_a_unit(t, why ? why : "systemd knows no unit for it");
                return 0;
        }
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0 || sd_bus_path_decode(path, SYSTEMD_UNIT_PATH, &name) <= 0 || !name) {
                not_a_unit(t, "systemd's answer about its unit was not understood");
                return 0;
        }
        if (strcmp(name, t->unit) != 0) {
                /* a cgroup inside a unit's (Delegate=yes): the unit does not own it */
                if (asprintf(&why, "it lies inside unit %s, not its own", name) < 0)
                        why = NULL;
                not_a_unit(t, why ? why : "it is not a unit's own cgroup");
                return 0;
        }
        resolved(t, ACTUATE_BACKEND_SYSTEMD);
        return 0;
}

int actuate_target_new(struct actuator *a, const char *service, const char *relpath, int dir_fd,
                       uint64_t ino, enum actuate_backend wanted, struct actuate_target **ret)
{
        _cleanup_(actuate_target_freep) struct actuate_target *t = calloc(1, sizeof(*t));
        _cleanup_free_ char *cgroup = NULL;
        int r;

        if (!t)
                return -ENOMEM;
        t->dir_fd = -1;
        t->a = a;
        t->ino = ino;
        t->wanted = wanted;
        t->service = strdup(service ? service : relpath);
        t->relpath = strdup(relpath);
        if (!t->service || !t->relpath)
                return -ENOMEM;
        t->dir_fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
        if (t->dir_fd < 0)
                return negative_errno();

        if (wanted == ACTUATE_BACKEND_CGROUPFS) {
                t->backend = ACTUATE_BACKEND_CGROUPFS;
                *ret = TAKE_PTR(t);
                return 0;
        }
        r = actuate_unit_from_relpath(relpath, &t->unit);
        if (r < 0)
                return r;
        t->backend = ACTUATE_BACKEND_AUTO;
        if (r == 0) {
                not_a_unit(t, "its cgroup is not named after a unit");
        } else if (!actuator_bus(a)) {
                not_a_unit(t, "the systemd manager cannot be reached");
        } else {
                while (*relpath == '/')
                        relpath++;
                if (asprintf(&cgroup, "/%s", relpath) < 0)
                        return -ENOMEM;
                r = sd_bus_call_method_async(a->bus, &t->resolve_slot, SYSTEMD_SERVICE,
                                             SYSTEMD_PATH, SYSTEMD_MANAGER, "GetUnitByControlGroup",
                                             on_unit_by_cgroup, t, "s", cgroup);
                if (r < 0) {
                        log_warning_errno(r, "%s: cannot ask systemd about %s: %m", t->service,
                                          relpath);
                        not_a_unit(t, "systemd could not be asked");
                }
        }
        *ret = TAKE_PTR(t);
        return 0;
}

static int on_set_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        struct actuate_target *t = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        char buf[24];

        (void)ret_error;
        t->set_slot = sd_bus_slot_unref(t->set_slot);
        t->n_set_replies++;
        actuate_format_high(buf, t->high_bytes);
        if (e) {
                t->a->n_errors++;
                log_struct(LOG_ERR, TARGET_FIELDS(t, buf),
                           "%s: systemd refused MemoryHigh=%s for %s: %s", t->service, buf, t->unit,
                           e->message ? e->message : e->name);
                return 0;
        }
        log_debug("%s: systemd set MemoryHigh=%s for %s", t->service, buf, t->unit);
        return 0;
}

bool actuate_bus_disconnected(int r)
{
        return r == -ECONNRESET || r == -ENOTCONN || r == -EPIPE || r == -ESHUTDOWN ||
               r == -ECONNREFUSED;
}

/* SetUnitProperties(MemoryHigh=bytes), asynchronously; the reply goes to on_set_reply(). */
static int send_set(struct actuate_target *t, uint64_t bytes)
{
        sd_bus *bus = actuator_bus(t->a);
        sd_bus_message *m = NULL;
        int r;

        /* A newer value overtakes an older one in flight: its reply no longer matters. */
        t->set_slot = sd_bus_slot_unref(t->set_slot);
        r = sd_bus_message_new_method_call(bus, &m, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                           "SetUnitProperties");
        if (r >= 0)
                r = append_memory_high(m, t->unit, bytes);
        if (r >= 0)
                r = sd_bus_call_async(bus, &t->set_slot, m, on_set_reply, t, 0);
        sd_bus_message_unref(m);
        return r;
}

/* The record before the first change; gone once the original is back. */
static int record_original(struct actuate_target *t, uint64_t original_bytes)
{
        struct restore_record rec = {
                .service = t->service,
                .relpath = t->relpath,
                .ino = t->ino,
                .backend = t->backend,
                .unit = t->backend == ACTUATE_BACKEND_SYSTEMD ? t->unit : NULL,
                .high_bytes = original_bytes,
        };
        int r;

        if (!t->a->state_dir)
                return 0;
        r = restore_save(t->a->state_dir, &rec);
        if (r < 0)
                return log_error_errno(
                        r,
                        "%s: cannot keep the original memory.high of %s in %s/" RESTORE_SUBDIR
                        ", so it is not changed: %m",
                        t->service, t->relpath, t->a->state_dir);
        return 0;
}

static int carry_out(struct actuate_target *t, uint64_t bytes, uint64_t original_bytes,
                     const char *reason)
{
        bool back = bytes == original_bytes;
        char buf[24];
        int r;

        actuate_format_high(buf, bytes);
        if (t->backend != ACTUATE_BACKEND_CGROUPFS && t->backend != ACTUATE_BACKEND_SYSTEMD)
                return -EOPNOTSUPP;

        if (t->a->dry_run) {
                t->has_high = true;
                t->high_bytes = bytes;
                t->a->n_changes++;
                log_struct(LOG_NOTICE, TARGET_FIELDS(t, buf),
                           "%s: dry run: would set memory.high of %s to %s%s%s: %s", t->service,
                           t->relpath, buf,
                           t->backend == ACTUATE_BACKEND_SYSTEMD ? " through systemd unit " : "",
                           t->backend == ACTUATE_BACKEND_SYSTEMD ? t->unit : "", reason);
                return 0;
        }

        if (!back) {
                r = record_original(t, original_bytes);
                if (r < 0) {
                        t->a->n_errors++;
                        return r;
                }
        }

        if (t->backend == ACTUATE_BACKEND_CGROUPFS) {
                r = actuate_cgroupfs_set_high(t->dir_fd, bytes);
                if (r < 0) {
                        t->a->n_errors++;
                        if (r == -ENOENT || r == -ENODEV)
                                return r; /* the cgroup is going: normal life */
                        return log_struct_errno(LOG_ERR, r, TARGET_FIELDS(t, buf),
                                                "%s: cannot set memory.high of %s to %s: %m",
                                                t->service, t->relpath, buf);
                }
        } else {
                r = send_set(t, bytes);
                if (r < 0 && actuate_bus_disconnected(r) && t->a->reconnect) {
                        /*
                         * systemd re-executed and reset the connection before sd-bus read
                         * its end: a new connection, once.
                         */
                        sd_bus_close(t->a->bus);
                        r = send_set(t, bytes);
                }
                if (r < 0) {
                        t->a->n_errors++;
                        return log_struct_errno(LOG_ERR, r, TARGET_FIELDS(t, buf),
                                                "%s: cannot ask systemd to set MemoryHigh=%s for "
                                                "%s: %m",
                                                t->service, buf, t->unit);
                }
        }

        t->has_high = true;
        t->high_bytes = bytes;
        t->a->n_changes++;
        log_struct(LOG_NOTICE, TARGET_FIELDS(t, buf), "%s: memory.high of %s set to %s%s%s: %s",
                   t->service, t->relpath, buf,
                   t->backend == ACTUATE_BACKEND_SYSTEMD ? " through systemd unit " : "",
                   t->backend == ACTUATE_BACKEND_SYSTEMD ? t->unit : "", reason);

        if (back && t->a->state_dir) {
                r = restore_remove(t->a->state_dir, t->relpath);
                if (r < 0)
                        log_warning_errno(r, "%s: cannot remove the restore record of %s: %m",
                                          t->service, t->relpath);
        }
        return 0;
}

int actuate_set_high(struct actuate_target *t, uint64_t bytes, uint64_t original_bytes,
                     const char *reason)
{
        if (t->backend == ACTUATE_BACKEND_AUTO) {
                char *copy = strdup(reason ? reason : "");
                if (!copy)
                        return -ENOMEM;
                free(t->pending_reason);
                t->pending_reason = copy;
                /* the first original is the one to record */
                if (!t->has_pending)
                        t->pending_original = original_bytes;
                t->has_pending = true;
                t->pending_bytes = bytes;
                return 0;
        }
        return carry_out(t, bytes, original_bytes, reason ? reason : "");
}

int actuate_reclaim(struct actuate_target *t, uint64_t bytes)
{
        char buf[24];
        int r;

        if (t->reclaim_unsupported || bytes == 0)
                return 0;
        snprintf(buf, sizeof(buf), "%" PRIu64, bytes);
        if (t->a->dry_run) {
                log_info("%s: dry run: would ask memory.reclaim of %s for %s bytes", t->service,
                         t->relpath, buf);
                return 0;
        }
        r = cgfs_write_at(t->dir_fd, "memory.reclaim", buf);
        if (r == -ENOENT && faccessat(t->dir_fd, "memory.current", F_OK, 0) == 0) {
                t->reclaim_unsupported = true;
                log_info("%s: memory.reclaim is not there (kernel older than 5.19): no "
                         "proactive reclaim for %s",
                         t->service, t->relpath);
                return r;
        }
        if (r == -EAGAIN || r == -EBUSY)
                return r; /* the kernel reclaimed less than asked: normal */
        if (r < 0 && r != -ENOENT && r != -ENODEV)
                log_warning_errno(r, "%s: memory.reclaim of %s: %m", t->service, t->relpath);
        else if (r == 0)
                log_debug("%s: reclaimed %s bytes of %s", t->service, buf, t->relpath);
        return r;
}

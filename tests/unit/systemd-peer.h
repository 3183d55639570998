/* SPDX-License-Identifier: MIT */
/*
 * A real sd-bus peer that plays the systemd manager for the systemd backend's tests: one end
 * of a socketpair, a D-Bus server (sd_bus_set_server) in a thread with its own sd-event
 * loop, exporting org.freedesktop.systemd1.Manager on /org/freedesktop/systemd1 with
 * SetUnitProperties and GetUnitByControlGroup. It records every call as it arrived on the
 * wire, so that tests assert what the backend really sent. The other end is handed to the
 * code under test as its bus (asynchronous calls from the test's loop, or synchronous ones
 * from restore: the peer answers from its own thread either way). Header-only: included by
 * test_actuate.c and test_restore.c.
 */
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#define SP_MAX_CALLS 32

struct sp_call {
        char method[64];
        char interface[64];
        char path[64];
        char unit[128];     /* SetUnitProperties: the name; GetUnitByControlGroup: "" */
        char cgroup[256];   /* GetUnitByControlGroup: the argument */
        int runtime;        /* SetUnitProperties: the runtime flag */
        unsigned n_props;   /* properties in the array */
        char prop[64];      /* the first property's name */
        char prop_type[16]; /* its variant's signature */
        uint64_t value;     /* its value, when "t" */
};

struct systemd_peer {
        int fds[2]; /* [0] the peer's end, [1] the client's */
        int stop_pipe[2];
        pthread_t thread;
        pthread_mutex_t lock;
        bool ready;

        /* the unit GetUnitByControlGroup answers for unit_cgroup; others get an error */
        char unit_cgroup[256];
        char unit_name[128];
        /* SetUnitProperties answers with this error name when set (e.g. access denied) */
        const char *set_error;

        struct sp_call calls[SP_MAX_CALLS];
        unsigned n_calls;
};

static struct sp_call *sp_record(struct systemd_peer *p, sd_bus_message *m)
{
        struct sp_call *c = NULL;

        pthread_mutex_lock(&p->lock);
        if (p->n_calls < SP_MAX_CALLS) {
                c = &p->calls[p->n_calls];
                memset(c, 0, sizeof(*c));
                snprintf(c->method, sizeof(c->method), "%s", sd_bus_message_get_member(m));
                snprintf(c->interface, sizeof(c->interface), "%s", sd_bus_message_get_interface(m));
                snprintf(c->path, sizeof(c->path), "%s", sd_bus_message_get_path(m));
        }
        pthread_mutex_unlock(&p->lock);
        return c;
}

static void sp_commit(struct systemd_peer *p)
{
        pthread_mutex_lock(&p->lock);
        p->n_calls++;
        pthread_mutex_unlock(&p->lock);
}

static int sp_set_unit_properties(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        struct systemd_peer *p = userdata;
        struct sp_call *c = sp_record(p, m);
        const char *name;
        int runtime, r;

        if (!c)
                return sd_bus_error_set(error, SD_BUS_ERROR_LIMITS_EXCEEDED, "too many calls");
        r = sd_bus_message_read(m, "sb", &name, &runtime);
        if (r < 0)
                return r;
        snprintf(c->unit, sizeof(c->unit), "%s", name);
        c->runtime = runtime;
        r = sd_bus_message_enter_container(m, 'a', "(sv)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'r', "sv")) > 0) {
                const char *prop, *contents;
                char type;

                r = sd_bus_message_read(m, "s", &prop);
                if (r < 0)
                        return r;
                r = sd_bus_message_peek_type(m, &type, &contents);
                if (r < 0)
                        return r;
                if (c->n_props == 0) {
                        snprintf(c->prop, sizeof(c->prop), "%s", prop);
                        snprintf(c->prop_type, sizeof(c->prop_type), "%s", contents);
                }
                r = sd_bus_message_enter_container(m, 'v', contents);
                if (r < 0)
                        return r;
                if (c->n_props == 0 && strcmp(contents, "t") == 0)
                        r = sd_bus_message_read(m, "t", &c->value);
                else
                        r = sd_bus_message_skip(m, contents);
                if (r < 0)
                        return r;
                c->n_props++;
                if ((r = sd_bus_message_exit_container(m)) < 0 ||
                    (r = sd_bus_message_exit_container(m)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        sp_commit(p);
        if (p->set_error)
                return sd_bus_error_set(error, p->set_error, "refused by the test");
        return sd_bus_reply_method_return(m, NULL);
}

static int sp_get_unit_by_cgroup(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        struct systemd_peer *p = userdata;
        struct sp_call *c = sp_record(p, m);
        const char *cgroup;
        char *path = NULL;
        int r;

        if (!c)
                return sd_bus_error_set(error, SD_BUS_ERROR_LIMITS_EXCEEDED, "too many calls");
        r = sd_bus_message_read(m, "s", &cgroup);
        if (r < 0)
                return r;
        snprintf(c->cgroup, sizeof(c->cgroup), "%s", cgroup);
        sp_commit(p);
        if (strcmp(cgroup, p->unit_cgroup) != 0)
                return sd_bus_error_setf(error, "org.freedesktop.systemd1.NoUnitForControlGroup",
                                         "No unit for control group %s", cgroup);
        r = sd_bus_path_encode("/org/freedesktop/systemd1/unit", p->unit_name, &path);
        if (r < 0)
                return r;
        r = sd_bus_reply_method_return(m, "o", path);
        free(path);
        return r;
}

static const sd_bus_vtable sp_manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("SetUnitProperties", "sba(sv)", "", sp_set_unit_properties,
                      SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("GetUnitByControlGroup", "s", "o", sp_get_unit_by_cgroup,
                      SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static int sp_on_stop(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        (void)fd;
        (void)revents;
        (void)userdata;
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void *sp_thread(void *arg)
{
        struct systemd_peer *p = arg;
        sd_event *event = NULL;
        sd_bus *bus = NULL;
        sd_bus_slot *slot = NULL;
        sd_event_source *stop = NULL;
        sd_id128_t id;
        int r;

        r = sd_event_new(&event);
        if (r >= 0)
                r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_fd(bus, p->fds[0], p->fds[0]);
        if (r >= 0)
                r = sd_id128_randomize(&id);
        if (r >= 0)
                r = sd_bus_set_server(bus, 1, id);
        if (r >= 0)
                r = sd_bus_add_object_vtable(bus, &slot, "/org/freedesktop/systemd1",
                                             "org.freedesktop.systemd1.Manager", sp_manager_vtable,
                                             p);
        if (r >= 0)
                r = sd_bus_attach_event(bus, event, 0);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r >= 0)
                r = sd_event_add_io(event, &stop, p->stop_pipe[0], EPOLLIN, sp_on_stop, NULL);
        if (r < 0) {
                fprintf(stderr, "systemd peer: cannot start: %s\n", strerror(-r));
                abort();
        }
        (void)sd_event_loop(event);
        sd_event_source_unref(stop);
        sd_bus_slot_unref(slot);
        sd_bus_flush_close_unref(bus);
        sd_event_unref(event);
        return NULL;
}

/*
 * Start the peer; *ret_client is a client bus on the other end, started, attached to
 * client_event when that is not NULL. unit_cgroup ("/system.slice/app.service") is the
 * cgroup GetUnitByControlGroup knows, as unit_name.
 */
static void systemd_peer_start(struct systemd_peer *p, const char *unit_cgroup,
                               const char *unit_name, sd_event *client_event, sd_bus **ret_client)
{
        sd_bus *client = NULL;

        memset(p, 0, sizeof(*p));
        pthread_mutex_init(&p->lock, NULL);
        snprintf(p->unit_cgroup, sizeof(p->unit_cgroup), "%s", unit_cgroup);
        snprintf(p->unit_name, sizeof(p->unit_name), "%s", unit_name);
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, p->fds) < 0 ||
            pipe2(p->stop_pipe, O_CLOEXEC) < 0 ||
            pthread_create(&p->thread, NULL, sp_thread, p) != 0)
                abort();
        if (sd_bus_new(&client) < 0 || sd_bus_set_fd(client, p->fds[1], p->fds[1]) < 0 ||
            sd_bus_start(client) < 0 ||
            (client_event && sd_bus_attach_event(client, client_event, 0) < 0))
                abort();
        *ret_client = client;
}

/* Stop the thread; the peer's end is closed by its bus. */
static void systemd_peer_stop(struct systemd_peer *p)
{
        if (write(p->stop_pipe[1], "x", 1) != 1)
                abort();
        pthread_join(p->thread, NULL);
        close(p->stop_pipe[0]);
        close(p->stop_pipe[1]);
        pthread_mutex_destroy(&p->lock);
}

static unsigned systemd_peer_n_calls(struct systemd_peer *p)
{
        pthread_mutex_lock(&p->lock);
        unsigned n = p->n_calls;
        pthread_mutex_unlock(&p->lock);
        return n;
}

/* A copy of call i (i < systemd_peer_n_calls()). */
static struct sp_call systemd_peer_call(struct systemd_peer *p, unsigned i)
{
        pthread_mutex_lock(&p->lock);
        struct sp_call c = p->calls[i];
        pthread_mutex_unlock(&p->lock);
        return c;
}

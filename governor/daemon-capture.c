/* SPDX-License-Identifier: MIT */
/* memgovd's capture effect: not wired yet. */
#include "daemon-internal.h"
#include "memgov/metrics.h"

void daemon_capture_on_event(struct daemon *d, struct instance *i, enum event e)
{
        (void)d;
        (void)i;
        (void)e;
}

int daemon_handle_dump(void *userdata, const char *service, char **ret_msg)
{
        (void)userdata;
        (void)service;
        (void)ret_msg;
        return -EOPNOTSUPP;
}

void daemon_write_capture_metrics(const struct daemon *d, struct promtext *p)
{
        (void)d;
        metrics_family(p, METRIC_PROFILE_CAPTURES_TOTAL);
}

void daemon_fill_capture_status(const struct daemon *d, const struct instance *i, uint64_t now_usec,
                                struct status_instance *ret)
{
        (void)d;
        (void)i;
        (void)now_usec;
        (void)ret;
}

int daemon_capture_start(struct daemon *d)
{
        (void)d;
        return 0;
}

void daemon_capture_stop(struct daemon *d)
{
        (void)d;
}

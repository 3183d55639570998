/* SPDX-License-Identifier: MIT */
/* Level and event names shared by decide and every effect downstream of it. */
#include <string.h>

#include "memgov/level.h"
#include "memgov/macro.h"

static const char *const level_names[_LEVEL_MAX] = {
        [LEVEL_OK] = "ok",
        [LEVEL_WARN] = "warn",
        [LEVEL_DEGRADE] = "degrade",
        [LEVEL_CRITICAL] = "critical",
};

static const char *const event_names[_EVENT_MAX] = {
        [EVENT_WARN] = "warn",         [EVENT_DEGRADE] = "degrade",
        [EVENT_CRITICAL] = "critical", [EVENT_RECOVERED] = "recovered",
        [EVENT_OOM_KILL] = "oom_kill", [EVENT_PROFILE_CAPTURED] = "profile_captured",
        [EVENT_LIVELOCK] = "livelock",
};

const char *level_to_string(enum level l)
{
        if (l < 0 || l >= _LEVEL_MAX)
                return NULL;
        return level_names[l];
}

enum level level_from_string(const char *s)
{
        if (!s)
                return _LEVEL_INVALID;
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (strcmp(level_names[i], s) == 0)
                        return (enum level)i;
        return _LEVEL_INVALID;
}

const char *event_to_string(enum event e)
{
        if (e < 0 || e >= _EVENT_MAX)
                return NULL;
        return event_names[e];
}

enum event event_from_string(const char *s)
{
        if (!s)
                return _EVENT_INVALID;
        for (size_t i = 0; i < ELEMENTSOF(event_names); i++)
                if (event_names[i] && strcmp(event_names[i], s) == 0)
                        return (enum event)i;
        return _EVENT_INVALID;
}

enum event event_for_level(enum level l)
{
        switch (l) {
        case LEVEL_WARN:
                return EVENT_WARN;
        case LEVEL_DEGRADE:
                return EVENT_DEGRADE;
        case LEVEL_CRITICAL:
                return EVENT_CRITICAL;
        case LEVEL_OK:
                return EVENT_RECOVERED;
        default:
                return _EVENT_INVALID;
        }
}

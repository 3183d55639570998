/* SPDX-License-Identifier: MIT */
/*
 * Levels and events: the vocabulary that decide produces and actuate, capture, notify,
 * record and export consume. Names are a contract (DESIGN.md §3, Levels).
 */
#pragma once

#include <stdbool.h>

enum level {
        LEVEL_OK,
        LEVEL_WARN,
        LEVEL_DEGRADE,
        LEVEL_CRITICAL,
        _LEVEL_MAX,
        _LEVEL_INVALID = -1,
};

/*
 * Events that policies subscribe to (webhooks, captures, collectors). The first four are
 * level entries; LEVEL_* and EVENT_* share values for them on purpose.
 */
enum event {
        EVENT_OK_UNUSED, /* there is no "enter ok" event: leaving danger is EVENT_RECOVERED */
        EVENT_WARN,
        EVENT_DEGRADE,
        EVENT_CRITICAL,
        EVENT_RECOVERED,
        EVENT_OOM_KILL,
        EVENT_PROFILE_CAPTURED,
        EVENT_LIVELOCK,
        _EVENT_MAX,
        _EVENT_INVALID = -1,
};

#define EVENT_MASK(e) (1u << (unsigned)(e))

/* "ok", "warn", "degrade", "critical"; NULL for an invalid value. Static strings. */
const char *level_to_string(enum level l);
/* The level for a name, or _LEVEL_INVALID. */
enum level level_from_string(const char *s);

/* "warn", …, "recovered", "oom_kill", "profile_captured", "livelock"; NULL if invalid. */
const char *event_to_string(enum event e);
/* The event for a name, or _EVENT_INVALID ("ok" is not an event). */
enum event event_from_string(const char *s);

/* The event that entering level l raises (EVENT_RECOVERED for LEVEL_OK). */
enum event event_for_level(enum level l);

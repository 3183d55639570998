/* SPDX-License-Identifier: MIT */
/*
 * The decide stage (forecast → decide → effects): the level state machine of DESIGN.md §3
 * "Levels". Pure: the time is the forecast's, nothing is read, logged or allocated; the
 * state lives in a caller-owned struct decide_state.
 *
 *   - A level's conditions are the policy's (struct policy_level): the forecast ETA lower
 *     bound <= eta, usage >= usage, PSI some/full avg10 >= psi_*_avg10, memory.events high /
 *     max rates >= *_rate. A level holds when ANY of its set conditions holds.
 *   - The ETA condition must hold on DECIDE_ETA_CONFIRM consecutive samples before it counts
 *     (or on one that comes DECIDE_ETA_CONFIRM_USEC or more after the previous sample, so
 *     that slow sampling does not delay a critical ETA by a whole interval): a single sample
 *     (a spike, a torn read) never enters a level by forecast alone; and it must have stood
 *     for 1/DECIDE_ETA_CONFIRM_DIV of the ETA. critical's ETA condition also needs growth
 *     DECIDE_CRITICAL_AGE_RATIO times as old as the ETA (forecast.growth_age_usec). The other
 *     conditions are already averaged (PSI avg10, 10 s event rates) or plain facts (usage).
 *   - Usage keeps a level it entered with hysteresis: down to DECIDE_USAGE_HYSTERESIS_PERMILLE
 *     below the share, and on the last GC cycle's peak (forecast.cycle_peak_permille).
 *   - The level is the highest whose conditions hold. It rises at once; it falls only when
 *     all conditions of the current level have been clear for the policy's hold time, and
 *     then to the highest level whose conditions hold (possibly ok: "recovered").
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "memgov/forecast.h"
#include "memgov/level.h"
#include "memgov/macro.h"
#include "memgov/policy.h"

/* Samples in a row the ETA condition must hold on before it enters a level ... */
#define DECIDE_ETA_CONFIRM 2
/* ... unless the sample comes this long after the previous one. */
#define DECIDE_ETA_CONFIRM_USEC (5 * USEC_PER_SEC)
/*
 * And in either case the condition must have stood for at least 1/DECIDE_ETA_CONFIRM_DIV of
 * the ETA lower bound, counted from the last sample on which it did not hold: a forecast of
 * the limit in T is believed once it has lasted a fixed share of T, whatever the sample
 * interval (a 30 s ETA must stand for some seconds, a 10 min ETA for a minute).
 */
#define DECIDE_ETA_CONFIRM_DIV 20
/*
 * critical by ETA: the growth behind the lower bound must have been seen for at least
 * DECIDE_CRITICAL_AGE_RATIO times the lower bound (forecast.growth_age_usec). A rise seen
 * for S goes on for another T with probability S / (S + T) (the Copernican prior the forecast
 * applies at 1/3 for every level); critical, the level that acts hardest, asks for 3/4.
 */
#define DECIDE_CRITICAL_AGE_RATIO 3
/*
 * Usage hysteresis: at or above a level, its usage condition holds down to this much (‰ of the
 * limit) below the policy's share, so that noise around the threshold does not flap the level.
 */
#define DECIDE_USAGE_HYSTERESIS_PERMILLE 20

/* Why a level holds or changed. Names are part of `memgovctl replay` output. */
enum decide_reason {
        DECIDE_REASON_NONE,         /* "none": at ok, or held by hysteresis */
        DECIDE_REASON_ETA,          /* "eta" */
        DECIDE_REASON_USAGE,        /* "usage" */
        DECIDE_REASON_PSI_SOME,     /* "psi_some" */
        DECIDE_REASON_PSI_FULL,     /* "psi_full" */
        DECIDE_REASON_HIGH_RATE,    /* "high_rate" */
        DECIDE_REASON_MAX_RATE,     /* "max_rate" */
        DECIDE_REASON_HOLD_EXPIRED, /* "hold_expired": a fall after the hold time */
        DECIDE_REASON_GOROUTINES,   /* "goroutines": a runtime condition (signals.h), extra */
        _DECIDE_REASON_MAX,
        _DECIDE_REASON_INVALID = -1,
};

/* Bit (1u << DECIDE_REASON_X) per condition that holds. */
#define DECIDE_CONDITION(r) (1u << (unsigned)(r))

struct decide_state {
        enum level level;
        uint64_t entered_usec;           /* when the current level was entered */
        bool clearing;                   /* the current level's conditions are all clear ... */
        uint64_t clear_since_usec;       /* ... since then */
        uint32_t eta_streak[_LEVEL_MAX]; /* samples in a row with ETA lower bound <= eta */
        bool has_prev;
        uint64_t prev_usec; /* the previous forecast's time */
        /* per level: the last sample on which the ETA condition did not hold */
        uint64_t eta_clear_usec[_LEVEL_MAX];
};

struct decision {
        uint64_t t_usec;           /* the forecast's time */
        enum level level;          /* after this sample */
        enum level previous_level; /* before it */
        bool changed;              /* level != previous_level */
        /*
         * changed: why (the first condition that holds at the new level, in enum order, or
         * DECIDE_REASON_HOLD_EXPIRED for a fall). Unchanged: the first condition holding at
         * the current level, or DECIDE_REASON_NONE (at ok, or held only by hysteresis).
         */
        enum decide_reason reason;
        unsigned conditions[_LEVEL_MAX]; /* DECIDE_CONDITION() bits holding per level */
        bool oom_kill;                   /* memory.events oom_kill increased at this sample */
        struct forecast forecast;        /* the forecast it was decided on (a copy) */
        /*
         * Intents for the effects are added here by the stages that act (memory.high by the
         * governance stage: its bytes and why), computed at the end of decide_update() from
         * the level, the forecast and the policy.
         */
};

/* Start at ok with no history. */
void decide_init(struct decide_state *st);

/*
 * One step: the forecast of a new sample under policy p (the same policy the forecast runs
 * with; it may change between calls after a reload). Fills *ret. Never fails.
 */
void decide_update(struct decide_state *st, const struct policy *p, const struct forecast *f,
                   struct decision *ret);

/*
 * Conditions that come from outside the forecast (the service's runtime figures,
 * signals_decide_extra()): DECIDE_CONDITION() bits per level, held alongside the policy's
 * own, entering and holding the level like them.
 */
struct decide_extra {
        unsigned conditions[_LEVEL_MAX]; /* [LEVEL_WARN..LEVEL_CRITICAL]; [LEVEL_OK] ignored */
};

/* decide_update() with extra conditions (NULL: none, exactly decide_update()). */
void decide_update_extra(struct decide_state *st, const struct policy *p, const struct forecast *f,
                         const struct decide_extra *extra, struct decision *ret);

/* "none", "eta", "usage", … as listed above; NULL when invalid. */
const char *decide_reason_to_string(enum decide_reason r);

/* SPDX-License-Identifier: MIT */
/*
 * Shared between policy.c (loading), policy-check.c (cross-field checks) and
 * policy-config.c (the daemon config, the policy directory). Not part of the contract.
 */
#pragma once

#include <stdbool.h>

#include "memgov/policy.h"
#include "policy-json.h"

#define POLICY_MAX_COLLECTORS 16
#define POLICY_MAX_WEBHOOKS   16
/* 1 EiB: far above any machine, far below what overflows arithmetic */
#define POLICY_MAX_BYTES (UINT64_C(1) << 60)

/* What the file said, for checks whose message depends on it (a default is named as such). */
struct policy_given {
        /* as the getters returned: 1 given and valid, 0 absent (default), < 0 invalid */
        int sample_interval;
        int window;
        int horizon;
        bool level[_LEVEL_MAX]; /* the level's object was given: it replaced the defaults */
};

/* warn, degrade and critical as they are when a policy does not name them. */
extern const struct policy_level policy_default_levels[_LEVEL_MAX];

/*
 * The checks across sections: levels tighten from warn to critical, the window holds at
 * least 10 samples, the horizon reaches the longest level eta. Each problem goes to c.
 */
void policy_check(struct pj *c, const struct policy *p, const struct policy_given *g);

/* [A-Za-z0-9_.-]{1,64}, and neither "." nor "..": it names a directory of dumps. */
bool policy_service_name_valid(const char *s);

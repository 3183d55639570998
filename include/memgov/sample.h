/* SPDX-License-Identifier: MIT */
/*
 * One observation of a governed cgroup (probe stage output, forecast and decide input).
 * Plain values only, no heap: the daemon fills it from cgroupfs, `memgovctl replay` from a
 * trace CSV, tests by hand. Times are CLOCK_MONOTONIC microseconds.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "memgov/parse.h"

/* Which optional fields a sample carries (traces may lack columns, kernels may lack files). */
enum {
        SAMPLE_HAS_ANON = 1u << 0,     /* anon_bytes (memory.stat) */
        SAMPLE_HAS_FILE = 1u << 1,     /* file_bytes (memory.stat) */
        SAMPLE_HAS_HIGH = 1u << 2,     /* high_bytes (memory.high) */
        SAMPLE_HAS_EVENTS = 1u << 3,   /* events (memory.events) */
        SAMPLE_HAS_PSI_SOME = 1u << 4, /* pressure.some.total_usec */
        SAMPLE_HAS_PSI_FULL = 1u << 5, /* pressure.full.total_usec */
        SAMPLE_HAS_PSI_AVG = 1u << 6,  /* pressure.*.avg*_pct as read from the kernel */
        SAMPLE_HAS_STAT = 1u << 7,     /* stat, the whole memory.stat */
        SAMPLE_HAS_SWAP = 1u << 8,     /* swap_current_bytes, swap_max_bytes */
        SAMPLE_HAS_LOW_MIN = 1u << 9,  /* low_bytes, min_bytes */
};

struct sample {
        uint64_t t_usec;        /* when it was taken */
        uint64_t current_bytes; /* memory.current */
        uint64_t max_bytes;     /* memory.max; CGROUP_LIMIT_MAX for "max" */
        uint64_t high_bytes;    /* memory.high; CGROUP_LIMIT_MAX for "max" */
        uint64_t low_bytes;
        uint64_t min_bytes;
        /*
         * The limit the OOM killer enforces for this cgroup: the smallest memory.max on the
         * path up to the root, else the machine's MemTotal. Never CGROUP_LIMIT_MAX.
         */
        uint64_t limit_bytes;
        uint64_t anon_bytes; /* memory.stat anon */
        uint64_t file_bytes; /* memory.stat file: page cache, mostly reclaimable */
        uint64_t swap_current_bytes;
        uint64_t swap_max_bytes;
        struct memory_events events; /* cumulative */
        struct pressure pressure;    /* cumulative totals; avgs only with SAMPLE_HAS_PSI_AVG */
        struct memory_stat stat;     /* only with SAMPLE_HAS_STAT (not carried by traces) */
        unsigned has;                /* SAMPLE_HAS_* */
};

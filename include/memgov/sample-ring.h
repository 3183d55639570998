/* SPDX-License-Identifier: MIT */
/*
 * A compact ring of recent samples: what a trace CSV carries (time, memory.current, anon,
 * file, memory.max, memory.high, memory.events counters, PSI totals) plus the effective
 * limit, each sample stored as the varint-coded differences from the one before it.
 * A steady or slowly leaking cgroup costs 10–20 bytes per sample instead of the 384 of a
 * struct sample; the whole memory.stat, the PSI averages, memory.low/.min and swap are not
 * kept. The byte budget is fixed when the ring is made (SAMPLE_RING_BYTES_PER_SAMPLE per
 * sample of capacity): samples whose differences are large make it hold fewer than its
 * capacity, oldest dropped first. Pure: no I/O; the daemon, the tests and the benchmarks
 * share it.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "memgov/sample.h"

/* The byte budget per sample of capacity (a record is 4–30 bytes, see sample-ring.c). */
#define SAMPLE_RING_BYTES_PER_SAMPLE 24

/* The has bits a ring keeps; the others are cleared in what it gives back. */
#define SAMPLE_RING_HAS                                                                            \
        (SAMPLE_HAS_ANON | SAMPLE_HAS_FILE | SAMPLE_HAS_HIGH | SAMPLE_HAS_EVENTS |                 \
         SAMPLE_HAS_PSI_SOME | SAMPLE_HAS_PSI_FULL)

/* The fields a ring keeps, as one array (see sample-ring.c for the order). */
#define SAMPLE_RING_FIELDS 16

struct sample_ring {
        uint8_t *buf; /* the differences, circular: bytes [head, head + used) mod size */
        size_t size;  /* the byte budget */
        size_t head, used;
        size_t len, cap; /* samples held (the oldest + one record per later one); at most cap */
        uint64_t oldest[SAMPLE_RING_FIELDS]; /* the oldest sample held, whole */
        uint64_t newest[SAMPLE_RING_FIELDS]; /* the newest, whole: the next record's base */
};

/* An empty ring of capacity cap (at least 2) with its byte budget. 0 or -ENOMEM. */
int sample_ring_init(struct sample_ring *r, size_t cap);
void sample_ring_done(struct sample_ring *r);

/* Add s as the newest sample, dropping the oldest while over capacity or budget. */
void sample_ring_push(struct sample_ring *r, const struct sample *s);

/*
 * All samples held, oldest first, decoded into a malloc'ed array (*ret NULL when empty).
 * Fields the ring does not keep are zero, their has bits cleared. 0 or -ENOMEM.
 */
int sample_ring_copy(const struct sample_ring *r, struct sample **ret, size_t *ret_n);

/* Change the capacity, keeping the newest samples. 0 or -ENOMEM (then r is unchanged). */
int sample_ring_resize(struct sample_ring *r, size_t cap);

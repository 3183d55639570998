/* SPDX-License-Identifier: MIT */
/*
 * The compact sample ring (see memgov/sample-ring.h). A record is the bit mask of the
 * fields that changed since the sample before (a varint, 1–3 bytes) followed by each
 * changed field's difference, zigzag- and varint-coded (the difference of two u64 taken
 * modulo 2^64, so every value round-trips exactly). A sample a second after the last whose
 * memory.current moved by a few MiB is about 8 bytes; the largest record is
 * 3 + 16 × 10 bytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "memgov/macro.h"
#include "memgov/sample-ring.h"

enum {
        F_T,
        F_CURRENT,
        F_ANON,
        F_FILE,
        F_MAX,
        F_HIGH,
        F_LIMIT,
        F_EV_LOW,
        F_EV_HIGH,
        F_EV_MAX,
        F_EV_OOM,
        F_EV_OOM_KILL,
        F_EV_OOM_GROUP_KILL,
        F_PSI_SOME,
        F_PSI_FULL,
        F_HAS,
        _F_MAX,
};

_Static_assert(_F_MAX == SAMPLE_RING_FIELDS, "the header's field count");

#define VARINT_MAX     10
#define RECORD_MAX     (3 + _F_MAX * VARINT_MAX)
#define RING_MIN_BYTES (2 * RECORD_MAX)

static void to_fields(const struct sample *s, uint64_t v[_F_MAX])
{
        v[F_T] = s->t_usec;
        v[F_CURRENT] = s->current_bytes;
        v[F_ANON] = s->anon_bytes;
        v[F_FILE] = s->file_bytes;
        v[F_MAX] = s->max_bytes;
        v[F_HIGH] = s->high_bytes;
        v[F_LIMIT] = s->limit_bytes;
        v[F_EV_LOW] = s->events.low;
        v[F_EV_HIGH] = s->events.high;
        v[F_EV_MAX] = s->events.max;
        v[F_EV_OOM] = s->events.oom;
        v[F_EV_OOM_KILL] = s->events.oom_kill;
        v[F_EV_OOM_GROUP_KILL] = s->events.oom_group_kill;
        v[F_PSI_SOME] = s->pressure.some.total_usec;
        v[F_PSI_FULL] = s->pressure.full.total_usec;
        v[F_HAS] = s->has & SAMPLE_RING_HAS;
}

static void from_fields(const uint64_t v[_F_MAX], struct sample *s)
{
        *s = (struct sample){
                .t_usec = v[F_T],
                .current_bytes = v[F_CURRENT],
                .anon_bytes = v[F_ANON],
                .file_bytes = v[F_FILE],
                .max_bytes = v[F_MAX],
                .high_bytes = v[F_HIGH],
                .limit_bytes = v[F_LIMIT],
                .swap_max_bytes = CGROUP_LIMIT_MAX,
                .events = {.low = v[F_EV_LOW],
                           .high = v[F_EV_HIGH],
                           .max = v[F_EV_MAX],
                           .oom = v[F_EV_OOM],
                           .oom_kill = v[F_EV_OOM_KILL],
                           .oom_group_kill = v[F_EV_OOM_GROUP_KILL]},
                .pressure = {.some = {.total_usec = v[F_PSI_SOME]},
                             .full = {.total_usec = v[F_PSI_FULL]},
                             .has_full = (v[F_HAS] & SAMPLE_HAS_PSI_FULL) != 0},
                .has = (unsigned)v[F_HAS],
        };
}

static size_t put_varint(uint8_t *p, uint64_t x)
{
        size_t n = 0;
        while (x >= 0x80) {
                p[n++] = (uint8_t)(x | 0x80);
                x >>= 7;
        }
        p[n++] = (uint8_t)x;
        return n;
}

/* Encode the record that turns from into to. Returns its length (at most RECORD_MAX). */
static size_t encode(const uint64_t from[_F_MAX], const uint64_t to[_F_MAX], uint8_t *out)
{
        uint64_t mask = 0;
        for (size_t k = 0; k < _F_MAX; k++)
                if (to[k] != from[k])
                        mask |= UINT64_C(1) << k;
        size_t n = put_varint(out, mask);
        for (size_t k = 0; k < _F_MAX; k++)
                if (mask & (UINT64_C(1) << k)) {
                        /* The difference modulo 2^64 as a signed number, zigzag-coded. */
                        uint64_t d = to[k] - from[k];
                        uint64_t zz = (d << 1) ^ (uint64_t) - (int64_t)(d >> 63);
                        n += put_varint(out + n, zz);
                }
        return n;
}

/* A reader of the circular buffer from a byte offset relative to head. */
struct cursor {
        const struct sample_ring *r;
        size_t off;
};

static uint64_t get_varint(struct cursor *c)
{
        uint64_t x = 0;
        for (unsigned shift = 0; shift < 64; shift += 7) {
                uint8_t b = c->r->buf[(c->r->head + c->off++) % c->r->size];
                x |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80))
                        break;
        }
        return x;
}

/* Apply the record at the cursor to v, advancing the cursor past it. */
static void decode(struct cursor *c, uint64_t v[_F_MAX])
{
        uint64_t mask = get_varint(c);
        for (size_t k = 0; k < _F_MAX; k++)
                if (mask & (UINT64_C(1) << k)) {
                        uint64_t zz = get_varint(c);
                        uint64_t d = (zz >> 1) ^ (uint64_t) - (int64_t)(zz & 1);
                        v[k] += d;
                }
}

int sample_ring_init(struct sample_ring *r, size_t cap)
{
        cap = MAX(cap, (size_t)2);
        size_t size = MAX(cap * SAMPLE_RING_BYTES_PER_SAMPLE, (size_t)RING_MIN_BYTES);
        uint8_t *buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        /*
         * Touched now: memgovd locks its pages as they fault in (MCL_ONFAULT), and a ring
         * that faulted in as it filled would ask for memory later, when the host may be
         * short of it.
         */
        memset(buf, 0, size);
        *r = (struct sample_ring){.buf = buf, .size = size, .cap = cap};
        return 0;
}

void sample_ring_done(struct sample_ring *r)
{
        free(r->buf);
        *r = (struct sample_ring){};
}

/* Drop the oldest sample: the first record turns the oldest into the second oldest. */
static void drop_oldest(struct sample_ring *r)
{
        if (r->len <= 1) {
                r->len = r->used = r->head = 0;
                return;
        }
        struct cursor c = {r, 0};
        decode(&c, r->oldest);
        r->head = (r->head + c.off) % r->size;
        r->used -= c.off;
        r->len--;
}

void sample_ring_push(struct sample_ring *r, const struct sample *s)
{
        uint64_t v[_F_MAX];
        uint8_t rec[RECORD_MAX];

        to_fields(s, v);
        if (r->len == 0) {
                memcpy(r->oldest, v, sizeof(v));
                memcpy(r->newest, v, sizeof(v));
                r->len = 1;
                return;
        }
        size_t n = encode(r->newest, v, rec);
        while (r->len > 1 && (r->len >= r->cap || r->size - r->used < n))
                drop_oldest(r);
        /* With only the oldest left the buffer is empty, and it holds two largest records. */
        for (size_t k = 0; k < n; k++)
                r->buf[(r->head + r->used + k) % r->size] = rec[k];
        r->used += n;
        r->len++;
        memcpy(r->newest, v, sizeof(v));
}

int sample_ring_copy(const struct sample_ring *r, struct sample **ret, size_t *ret_n)
{
        *ret = NULL;
        *ret_n = 0;
        if (r->len == 0)
                return 0;
        struct sample *out = calloc(r->len, sizeof(*out));
        if (!out)
                return -ENOMEM;
        uint64_t v[_F_MAX];
        memcpy(v, r->oldest, sizeof(v));
        from_fields(v, &out[0]);
        struct cursor c = {r, 0};
        for (size_t k = 1; k < r->len; k++) {
                decode(&c, v);
                from_fields(v, &out[k]);
        }
        *ret = out;
        *ret_n = r->len;
        return 0;
}

int sample_ring_resize(struct sample_ring *r, size_t cap)
{
        _cleanup_free_ struct sample *all = NULL;
        struct sample_ring n;
        size_t len;

        int e = sample_ring_copy(r, &all, &len);
        if (e < 0)
                return e;
        e = sample_ring_init(&n, cap);
        if (e < 0)
                return e;
        for (size_t k = len > n.cap ? len - n.cap : 0; k < len; k++)
                sample_ring_push(&n, &all[k]);
        sample_ring_done(r);
        *r = n;
        return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Pure parsers (probe stage): cgroup v2 memory files, pressure lines, and the human units
 * that policies use. They take a NUL-terminated buffer and fill plain structs: no I/O, no
 * clock, no logging, no allocation. Hostile input (truncated lines, huge numbers, missing
 * or unknown keys, junk) yields -EINVAL or -ERANGE and leaves ret_* untouched.
 *
 * Numbers are plain decimal digits: no sign, no blanks, no "0x", no exponent, no "nan" or
 * "inf". A number too big for its type is -ERANGE; anything else wrong is -EINVAL.
 *
 * Flat-keyed files (memory.events, memory.stat) are lines of "KEY VALUE": a key of
 * [A-Za-z0-9_], one space, the value, then '\n' or the end of the buffer. Keys match whole
 * ("oom" never matches "oom_kill"). Blank lines are skipped. A line without that shape is
 * -EINVAL even when its key is unknown; an unknown key's value is not read. A known key
 * that appears twice is -EINVAL (the kernel prints each once; a duplicate means two reads
 * were glued together).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* memory.events and memory.events.local: cumulative counters. */
struct memory_events {
        uint64_t low;
        uint64_t high;
        uint64_t max;
        uint64_t oom;
        uint64_t oom_kill;
        uint64_t oom_group_kill;
};

/*
 * The memory.stat keys memgov uses, in bytes (counters as counts). Keys absent from the
 * file stay 0; unknown keys are ignored (new kernels add keys).
 */
struct memory_stat {
        uint64_t anon;
        uint64_t file;
        uint64_t kernel;
        uint64_t kernel_stack;
        uint64_t sock;
        uint64_t shmem;
        uint64_t slab;
        uint64_t slab_reclaimable;
        uint64_t slab_unreclaimable;
        uint64_t file_mapped;
        uint64_t file_dirty;
        uint64_t file_writeback;
        uint64_t anon_thp;
        uint64_t inactive_anon;
        uint64_t active_anon;
        uint64_t inactive_file;
        uint64_t active_file;
        uint64_t unevictable;
        uint64_t pgmajfault;
        uint64_t workingset_refault_anon;
        uint64_t workingset_refault_file;
};

/* One line of a pressure file: "some avg10=0.12 avg60=0.05 avg300=0.01 total=12345". */
struct pressure_line {
        double avg10_pct; /* percent of wall time stalled, as the kernel prints it */
        double avg60_pct;
        double avg300_pct;
        uint64_t total_usec; /* cumulative stall time */
};

/* memory.pressure: "some" always, "full" on cgroups (and on the system since 5.13). */
struct pressure {
        struct pressure_line some;
        struct pressure_line full;
        bool has_full;
};

/*
 * A single-value cgroup file: a decimal number or the word "max" (CGROUP_LIMIT_MAX),
 * optionally followed by '\n'. Returns 0, -EINVAL on junk or -ERANGE on overflow.
 */
int parse_limit(const char *buf, uint64_t *ret_bytes);

/* A plain decimal u64 ("123\n"): memory.current, memory.swap.current. */
int parse_u64(const char *buf, uint64_t *ret);

/*
 * memory.events / memory.events.local. All six keys are optional (older kernels lack
 * oom_group_kill); unknown keys are skipped; a known key with a bad value is -EINVAL.
 */
int parse_memory_events(const char *buf, struct memory_events *ret);

/* memory.stat, per the struct above. A known key with a bad value is -EINVAL. */
int parse_memory_stat(const char *buf, struct memory_stat *ret);

/*
 * A memory.pressure (or /proc/pressure/memory) file. The "some" line is required, "full"
 * optional, each at most once; any other line is -EINVAL. Each line carries exactly
 * avg10=, avg60=, avg300= (0..100, -ERANGE above) and total=, in any order, separated by
 * single spaces; a line missing one ("some avg10=0.10") is -EINVAL.
 */
int parse_pressure(const char *buf, struct pressure *ret);

/*
 * A size as a user writes it: "1048576", "512K", "512KiB", "512M", "1.5G", "2GiB", "1T"
 * (binary multiples, K = 1024, optional "B"/"iB" suffix, case-insensitive), "max"
 * (CGROUP_LIMIT_MAX), or "80%" / "97.5%" of base_bytes (rounded down). Percent needs a
 * base; with base_bytes == 0 a percent is -EINVAL. Returns 0, -EINVAL, -ERANGE.
 * Also P and E. No blanks anywhere ("512 M" is -EINVAL); a fraction needs a unit of K or
 * more ("1.5" and "1.5B" are -EINVAL); fractions of a byte round down. "max" is lower
 * case only. A percent above 100% is allowed here (the caller judges), up to the result
 * fitting in 64 bits.
 */
int parse_size(const char *s, uint64_t base_bytes, uint64_t *ret_bytes);

/*
 * Like parse_size() but keeps a percent unresolved, for policies whose base (the
 * effective limit) is known only per instance: a percent sets *ret_permille (1..1000,
 * "80%" → 800, "97.5%" → 975) and *ret_bytes = 0; an absolute size sets *ret_bytes and
 * *ret_permille = 0. A percent above 100% is -ERANGE, and so is one that rounds down to
 * 0 permille ("0%", "0.05%"), which would read as an absolute size. "max" gives
 * CGROUP_LIMIT_MAX bytes.
 */
int parse_size_or_share(const char *s, uint64_t *ret_bytes, uint32_t *ret_permille);

/*
 * A duration: "500ms", "30s", "5m", "2h", "1.5s", "250us", or a bare number of seconds
 * ("30", "0.5"). Units, case-sensitive: us, ms, s, m or min, h, d. No blanks. Fractions
 * of a microsecond round down. Returns 0, -EINVAL, -ERANGE.
 */
int parse_duration(const char *s, uint64_t *ret_usec);

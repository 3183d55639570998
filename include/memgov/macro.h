/* SPDX-License-Identifier: MIT */
/*
 * Small helpers every module uses: cleanup attributes, ownership transfer, time units.
 * No state, no I/O; safe to include from the pure core.
 */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define _unused_       __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _cleanup_(f)   __attribute__((cleanup(f)))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b)     ((a) < (b) ? (a) : (b))
#define MAX(a, b)     ((a) > (b) ? (a) : (b))

#define USEC_PER_MSEC   ((uint64_t)1000)
#define USEC_PER_SEC    ((uint64_t)1000000)
#define USEC_PER_MINUTE (60 * USEC_PER_SEC)
#define USEC_PER_HOUR   (60 * USEC_PER_MINUTE)
#define USEC_INFINITY   UINT64_MAX

/* CLOCK_MONOTONIC now, in microseconds: the clock of samples and sd-event's timers. */
static inline uint64_t monotonic_usec(void)
{
        struct timespec ts;

        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

/* The word "max" in a cgroup limit file: no limit. */
#define CGROUP_LIMIT_MAX UINT64_MAX

static inline void freep(void *p)
{
        free(*(void **)p);
}

static inline void closep(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                (void)close(*fd);
                errno = saved;
        }
}

static inline void fclosep(FILE **f)
{
        if (*f)
                (void)fclose(*f);
}

#define _cleanup_free_   _cleanup_(freep)
#define _cleanup_close_  _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Take ownership of a pointer out of a _cleanup_ variable. */
#define TAKE_PTR(p)                                                                                \
        ({                                                                                         \
                __typeof__(p) _taken = (p);                                                        \
                (p) = NULL;                                                                        \
                _taken;                                                                            \
        })

/* Take ownership of a file descriptor out of a _cleanup_close_ variable. */
#define TAKE_FD(fd)                                                                                \
        ({                                                                                         \
                int _taken = (fd);                                                                 \
                (fd) = -1;                                                                         \
                _taken;                                                                            \
        })

/*
 * Declare a cleanup function for a type that has a type_free(struct type *) returning NULL,
 * e.g. DEFINE_FREE_FUNC(policy) gives policy_freep() for _cleanup_(policy_freep).
 */
#define DEFINE_FREE_FUNC(name)                                                                     \
        static inline void name##_freep(struct name **p)                                           \
        {                                                                                          \
                if (*p)                                                                            \
                        *p = name##_free(*p);                                                      \
        }

static inline int negative_errno(void)
{
        return errno > 0 ? -errno : -EIO;
}

/* SPDX-License-Identifier: MIT */
/*
 * Capture effect, the pure part: cooldowns and the hourly cap, base/current pairing, and
 * the expansion of collector placeholders. No I/O and no clock: the daemon passes now_usec.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memgov/capture.h"
#include "memgov/cgfs.h"

/* ---- cooldowns and the hourly cap --------------------------------------------------- */

size_t capture_limiter_last_hour(const struct capture_limiter *l, uint64_t now_usec)
{
        size_t n = 0;

        for (size_t i = 0; i < l->n_recent; i++) {
                uint64_t t = l->recent_usec[i];
                if (t <= now_usec && now_usec - t < USEC_PER_HOUR)
                        n++;
        }
        return n;
}

unsigned capture_limiter_allow(const struct capture_limiter *l, const struct policy_pprof *p,
                               unsigned wanted, uint64_t now_usec)
{
        unsigned allowed = 0;

        if (!l || !p)
                return 0;
        if (p->max_per_hour > 0 && capture_limiter_last_hour(l, now_usec) >= p->max_per_hour)
                return 0;
        for (int k = 0; k < _PPROF_KIND_MAX; k++) {
                uint64_t last = l->last_usec[k];

                if (!(wanted & (1u << k)))
                        continue;
                if (last == 0 || p->cooldown_usec == 0 || now_usec < last ||
                    now_usec - last >= p->cooldown_usec)
                        allowed |= 1u << k;
        }
        return allowed;
}

void capture_limiter_record(struct capture_limiter *l, unsigned kinds, uint64_t now_usec)
{
        for (int k = 0; k < _PPROF_KIND_MAX; k++)
                if (kinds & (1u << k))
                        l->last_usec[k] = now_usec;
        /* A ring: the oldest time is overwritten once it is full. */
        l->recent_usec[l->head] = now_usec;
        l->head = (l->head + 1) % CAPTURE_HOUR_SLOTS;
        if (l->n_recent < CAPTURE_HOUR_SLOTS)
                l->n_recent++;
}

/* ---- pairing ------------------------------------------------------------------------ */

const char *capture_role_to_string(enum capture_role r)
{
        switch (r) {
        case CAPTURE_ROLE_BASE:
                return "base";
        case CAPTURE_ROLE_CURRENT:
                return "current";
        default:
                return NULL;
        }
}

enum capture_role capture_pair_role(const struct capture_pair *p, enum level level)
{
        if (level == LEVEL_OK || !p || !p->base_dir)
                return CAPTURE_ROLE_BASE;
        return CAPTURE_ROLE_CURRENT;
}

int capture_pair_record(struct capture_pair *p, enum capture_role role, enum level level,
                        const char *dir, uint64_t now_usec)
{
        char *copy;

        if (!p || !dir || (role != CAPTURE_ROLE_BASE && role != CAPTURE_ROLE_CURRENT))
                return -EINVAL;
        copy = strdup(dir);
        if (!copy)
                return -ENOMEM;
        if (role == CAPTURE_ROLE_BASE) {
                free(p->base_dir);
                p->base_dir = copy;
                p->base_usec = now_usec;
                p->base_level = level;
                free(p->current_dir);
                p->current_dir = NULL;
                p->current_usec = 0;
        } else {
                free(p->current_dir);
                p->current_dir = copy;
                p->current_usec = now_usec;
        }
        return 0;
}

void capture_pair_recovered(struct capture_pair *p)
{
        if (!p)
                return;
        if (p->base_dir && p->base_level == LEVEL_OK) {
                free(p->current_dir);
                p->current_dir = NULL;
                p->current_usec = 0;
                return;
        }
        capture_pair_clear(p);
}

void capture_pair_clear(struct capture_pair *p)
{
        if (!p)
                return;
        free(p->base_dir);
        free(p->current_dir);
        *p = (struct capture_pair){};
}

/* ---- placeholders ------------------------------------------------------------------- */

#define ARG_MAX_BYTES 4096

/* A growing string with a hard cap: -EINVAL past ARG_MAX_BYTES. */
struct buf {
        char s[ARG_MAX_BYTES + 1];
        size_t n;
};

static int buf_add(struct buf *b, const char *s, size_t n)
{
        if (n > ARG_MAX_BYTES - b->n)
                return -EINVAL;
        memcpy(b->s + b->n, s, n);
        b->n += n;
        b->s[b->n] = '\0';
        return 0;
}

static int buf_add_pid(struct buf *b, pid_t pid)
{
        char num[24];
        int k = snprintf(num, sizeof(num), "%" PRIdMAX, (intmax_t)pid);

        return buf_add(b, num, (size_t)k);
}

static int expand_one(const char *arg, const struct capture_placeholders *ph, struct buf *b)
{
        b->n = 0;
        b->s[0] = '\0';
        for (const char *p = arg; *p;) {
                const char *v = NULL;
                size_t skip = 0;
                int r;

                if (*p != '{') {
                        const char *q = strchr(p, '{');
                        size_t n = q ? (size_t)(q - p) : strlen(p);
                        r = buf_add(b, p, n);
                        if (r < 0)
                                return r;
                        p += n;
                        continue;
                }
                if (strncmp(p, "{pid}", 5) == 0) {
                        pid_t pid = ph->pid > 0 ? ph->pid : ph->n_pids > 0 ? ph->pids[0] : 0;
                        if (pid <= 0)
                                return -EINVAL;
                        r = buf_add_pid(b, pid);
                        if (r < 0)
                                return r;
                        p += 5;
                        continue;
                }
                if (strncmp(p, "{pids}", 6) == 0) {
                        if (ph->n_pids == 0)
                                return -EINVAL;
                        for (size_t i = 0; i < ph->n_pids; i++) {
                                r = (i > 0 ? buf_add(b, ",", 1) : 0);
                                if (r >= 0)
                                        r = buf_add_pid(b, ph->pids[i]);
                                if (r < 0)
                                        return r;
                        }
                        p += 6;
                        continue;
                }
                if (strncmp(p, "{cgroup}", 8) == 0)
                        v = ph->cgroup, skip = 8;
                else if (strncmp(p, "{dir}", 5) == 0)
                        v = ph->dir, skip = 5;
                else if (strncmp(p, "{service}", 9) == 0)
                        v = ph->service, skip = 9;
                if (skip == 0) {
                        r = buf_add(b, "{", 1);
                        if (r < 0)
                                return r;
                        p++;
                        continue;
                }
                if (!v)
                        return -EINVAL;
                r = buf_add(b, v, strlen(v));
                if (r < 0)
                        return r;
                p += skip;
        }
        return 0;
}

int capture_expand_argv(char *const *argv, const struct capture_placeholders *ph, char ***ret)
{
        _cleanup_free_ struct buf *b = NULL;
        char **out = NULL;
        size_t n = 0, cap = 0;
        int r = 0;

        if (!argv || !argv[0] || !ph || !ret)
                return -EINVAL;
        b = malloc(sizeof(*b));
        if (!b)
                return -ENOMEM;

        for (char *const *a = argv; *a && r >= 0; a++) {
                size_t add = strcmp(*a, "{pids}") == 0 ? ph->n_pids : 1;

                if (add == 0) {
                        r = -EINVAL;
                        break;
                }
                if (n + add + 1 > cap) {
                        size_t c = MAX(cap * 2, n + add + 1);
                        char **t = reallocarray(out, c, sizeof(*out));
                        if (!t) {
                                r = -ENOMEM;
                                break;
                        }
                        out = t;
                        cap = c;
                }
                for (size_t i = 0; i < add; i++) {
                        if (strcmp(*a, "{pids}") == 0) {
                                b->n = 0;
                                r = buf_add_pid(b, ph->pids[i]);
                        } else
                                r = expand_one(*a, ph, b);
                        if (r < 0)
                                break;
                        out[n] = strdup(b->s);
                        if (!out[n]) {
                                r = -ENOMEM;
                                break;
                        }
                        out[++n] = NULL;
                }
        }
        if (r < 0) {
                if (out) {
                        out[n] = NULL;
                        strv_free(out);
                }
                return r;
        }
        *ret = out;
        return 0;
}

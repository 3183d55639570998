/* SPDX-License-Identifier: MIT */
/*
 * Which cgroups are governed (probe stage, before any sample): each policy's glob is
 * expanded against the tree and the instances follow the matches. inotify on every
 * directory a match could appear in makes that prompt; a periodic rescan is the safety net.
 */
#include <inttypes.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "daemon-internal.h"
#include "memgov/daemon.h"
#include "memgov/log.h"

struct dir_watch {
        char *relpath; /* "" is the root */
        uint64_t ino;
        sd_event_source *source;
};

/*
 * What a glob's parent directories report. Files come and go inside cgroups of test
 * trees; only directories (cgroups) and the watched directory itself matter.
 */
#define DIR_WATCH_MASK                                                                             \
        (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF)

/* ---- watches on the directories where policy globs can grow ---- */

static int strv_push(char ***l, size_t *n, size_t *cap, char *s)
{
        if (*n + 1 >= *cap) {
                size_t ncap = *cap ? *cap * 2 : 16;
                char **nl = reallocarray(*l, ncap, sizeof(char *));
                if (!nl)
                        return -ENOMEM;
                *l = nl;
                *cap = ncap;
        }
        (*l)[(*n)++] = s;
        (*l)[*n] = NULL;
        return 0;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The directories in which a new match of pattern could appear: for a pattern A/B/C, the
 * root, every match of A and every match of A/B. Watching all of them, not
 * only the parents of wildcard components, also catches a literal component created
 * late (a slice that appears after memgovd started).
 */
static int glob_parents(const struct cgfs *c, const char *pattern, char ***l, size_t *n,
                        size_t *cap)
{
        _cleanup_free_ char *pat = strdup(pattern), *prefix = NULL;
        char *save = NULL, *comp, *next;
        int r;

        if (!pat)
                return -ENOMEM;
        char *root = strdup("");
        if (!root || strv_push(l, n, cap, root) < 0) {
                free(root);
                return -ENOMEM;
        }

        comp = strtok_r(pat, "/", &save);
        while (comp && strcmp(comp, ".") == 0)
                comp = strtok_r(NULL, "/", &save);
        for (; comp; comp = next) {
                next = strtok_r(NULL, "/", &save);
                while (next && strcmp(next, ".") == 0)
                        next = strtok_r(NULL, "/", &save);
                if (!next)
                        break; /* the last component: its matches are instances, not parents */

                char *np;
                if (asprintf(&np, "%s%s%s", prefix ? prefix : "", prefix ? "/" : "", comp) < 0)
                        return -ENOMEM;
                free(prefix);
                prefix = np;

                char **m = NULL;
                r = cgfs_glob(c, prefix, &m);
                if (r < 0)
                        return r;
                /* Move the matches over; on failure free those not moved. */
                size_t j = 0;
                for (r = 0; m[j]; j++) {
                        r = strv_push(l, n, cap, m[j]);
                        if (r < 0)
                                break;
                }
                bool empty = j == 0;
                if (r < 0)
                        for (; m[j]; j++)
                                free(m[j]);
                free(m);
                if (r < 0)
                        return r;
                if (empty)
                        break;
        }
        return 0;
}

static void dir_watch_clear(struct dir_watch *w)
{
        free(w->relpath);
        sd_event_source_disable_unref(w->source);
        *w = (struct dir_watch){};
}

void daemon_watches_clear(struct daemon *d)
{
        for (size_t k = 0; k < d->n_watches; k++)
                dir_watch_clear(&d->watches[k]);
        free(d->watches);
        d->watches = NULL;
        d->n_watches = 0;
}

static int dir_watch_handler(sd_event_source *s, const struct inotify_event *ev, void *userdata)
{
        struct daemon *d = userdata;

        (void)s;
        if ((ev->mask & IN_ISDIR) ||
            (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_Q_OVERFLOW)))
                daemon_schedule_rescan(d);
        return 0;
}

/* The watch on relpath in d->watches (sorted), or NULL. */
static struct dir_watch *watch_find(struct daemon *d, const char *relpath)
{
        size_t lo = 0, hi = d->n_watches;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(d->watches[mid].relpath, relpath);
                if (c == 0)
                        return &d->watches[mid];
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

/* Open a cgroup directory and tell its inode. Returns 0, -ENOENT if gone, or -errno. */
static int open_with_ino(const struct cgfs *c, const char *relpath, int *ret_fd, uint64_t *ret_ino)
{
        _cleanup_close_ int fd = -1;
        struct stat st;

        int r = cgfs_open_cgroup(c, relpath, &fd);
        if (r < 0)
                return r;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        *ret_fd = TAKE_FD(fd);
        *ret_ino = (uint64_t)st.st_ino;
        return 0;
}

/*
 * Bring the directory watches in line with the policies of set: keep those whose
 * directory is still the same inode, add the new ones, drop the rest. A directory that
 * cannot be watched is left to the periodic rescan (logged at debug).
 */
static void strv_free_n(char **l, size_t n)
{
        for (size_t k = 0; k < n; k++)
                free(l[k]);
        free(l);
}

static int watches_update(struct daemon *d, const struct policy_set *set)
{
        char **want = NULL;
        size_t n_want = 0, cap = 0;
        int r;

        for (size_t k = 0; k < set->n_policies; k++) {
                r = glob_parents(d->cgfs, set->policies[k]->cgroup, &want, &n_want, &cap);
                if (r < 0)
                        log_debug_errno(r, "%s: cannot list the directories of '%s': %m",
                                        set->policies[k]->service, set->policies[k]->cgroup);
        }
        if (n_want > 0) {
                /* Sorted and unique: policies share parents (the root, a common slice). */
                qsort(want, n_want, sizeof(char *), cmp_str);
                size_t u = 1;
                for (size_t k = 1; k < n_want; k++) {
                        if (strcmp(want[k], want[u - 1]) == 0)
                                free(want[k]);
                        else
                                want[u++] = want[k];
                }
                n_want = u;
        }

        struct dir_watch *nw = calloc(MAX(n_want, (size_t)1), sizeof(struct dir_watch));
        if (!nw) {
                strv_free_n(want, n_want);
                return -ENOMEM;
        }
        size_t n = 0;
        for (size_t k = 0; k < n_want; k++) {
                _cleanup_close_ int fd = -1;
                uint64_t ino;

                if (open_with_ino(d->cgfs, want[k], &fd, &ino) < 0)
                        continue; /* gone meanwhile: its parent's watch reports it */

                /* Carried over: the old entry keeps its relpath for the search, loses source. */
                struct dir_watch *old = watch_find(d, want[k]);
                if (old && old->source && old->ino == ino) {
                        nw[n++] = *old;
                        old->source = NULL;
                        continue;
                }
                struct dir_watch w = {.ino = ino};
                r = sd_event_add_inotify_fd(d->event, &w.source, fd, DIR_WATCH_MASK,
                                            dir_watch_handler, d);
                if (r < 0) {
                        log_debug_errno(r,
                                        "cannot watch %s/%s: %m; the periodic rescan will "
                                        "find its cgroups",
                                        d->cgfs->cgroup_path, want[k]);
                        continue;
                }
                (void)sd_event_source_set_description(w.source, "glob-dir-watch");
                w.relpath = TAKE_PTR(want[k]);
                nw[n++] = w;
        }
        strv_free_n(want, n_want);

        for (size_t k = 0; k < d->n_watches; k++)
                if (d->watches[k].source)
                        dir_watch_clear(&d->watches[k]);
        free(d->watches);
        d->watches = nw;
        d->n_watches = n;
        return 0;
}

/* ---- reconciling instances with the tree ---- */

struct match {
        char *relpath; /* owned */
        size_t policy; /* index in the set: lower is earlier by file name */
};

static int cmp_match(const void *a, const void *b)
{
        const struct match *x = a, *y = b;
        int c = strcmp(x->relpath, y->relpath);
        if (c != 0)
                return c;
        return x->policy < y->policy ? -1 : x->policy > y->policy;
}

static void matches_free(struct match *m, size_t n)
{
        for (size_t k = 0; k < n; k++)
                free(m[k].relpath);
        free(m);
}

/* The policy of set with this service name, or SIZE_MAX. */
static size_t policy_by_service(const struct policy_set *set, const char *service)
{
        for (size_t k = 0; k < set->n_policies; k++)
                if (strcmp(set->policies[k]->service, service) == 0)
                        return k;
        return SIZE_MAX;
}

/* Make, log and sample a new instance; NULL if it vanished at once or could not be made. */
static struct instance *instance_create(struct daemon *d, const struct policy *p,
                                        const char *relpath, int fd, uint64_t ino,
                                        uint64_t now_usec)
{
        struct instance *i = NULL;

        int r = instance_new(d, p, relpath, fd, ino, now_usec, &i);
        if (r < 0) {
                log_struct_errno(
                        LOG_ERR, r,
                        LOG_FIELDS({"MEMGOV_SERVICE", p->service}, {"MEMGOV_CGROUP", relpath}),
                        "%s: cannot govern %s: %m", p->service, relpath);
                return NULL;
        }
        log_struct(LOG_INFO, LOG_FIELDS({"MEMGOV_SERVICE", p->service}, {"MEMGOV_CGROUP", relpath}),
                   "%s: governing %s (every %" PRIu64 "ms)", p->service, relpath,
                   p->sample_interval_usec / USEC_PER_MSEC);
        daemon_record_resume(d, i, now_usec);
        if (instance_sample(i, now_usec) == -ENOENT) {
                daemon_log_dropped(i, "is gone");
                return instance_free(i);
        }
        return i;
}

static void warn_overlap(struct instance *i, const struct policy_set *set, const struct match *m,
                         size_t n)
{
        if (i->warned_overlap || n < 2)
                return;
        i->warned_overlap = true;
        for (size_t k = 1; k < n; k++)
                log_struct(LOG_WARNING,
                           LOG_FIELDS({"MEMGOV_SERVICE", i->policy->service},
                                      {"MEMGOV_CGROUP", i->relpath}),
                           "%s is matched by the policies %s (%s) and %s (%s); the first by "
                           "file name governs it, %s is ignored for it",
                           i->relpath, i->policy->service, i->policy->path,
                           set->policies[m[k].policy]->service, set->policies[m[k].policy]->path,
                           set->policies[m[k].policy]->service);
}

/*
 * Expand every policy of set and bring d->instances in line: one instance per matching
 * cgroup, of the first policy (by file name) that matches it. An existing instance stays
 * when its cgroup is the same inode and its policy has the same service name (then it is
 * re-pointed to set's policy); otherwise it is dropped and, if still matched, made anew.
 * The instances of a policy whose glob fails to expand are kept as they are.
 */
static int reconcile(struct daemon *d, const struct policy_set *set, uint64_t now_usec)
{
        struct match *m = NULL;
        size_t n_m = 0, cap_m = 0;
        int r;

        _cleanup_free_ bool *failed = calloc(MAX(set->n_policies, (size_t)1), sizeof(bool));
        if (!failed)
                return -ENOMEM;

        for (size_t k = 0; k < set->n_policies; k++) {
                const struct policy *p = set->policies[k];
                char **paths = NULL;

                r = cgfs_glob(d->cgfs, p->cgroup, &paths);
                if (r < 0) {
                        failed[k] = true;
                        log_struct_errno(LOG_WARNING, r, LOG_FIELDS({"MEMGOV_SERVICE", p->service}),
                                         "%s: cannot expand '%s' under %s: %m; its cgroups stay "
                                         "as they were",
                                         p->service, p->cgroup, d->cgfs->cgroup_path);
                        continue;
                }
                size_t j = 0;
                for (r = 0; paths[j]; j++) {
                        if (n_m == cap_m) {
                                size_t ncap = cap_m ? cap_m * 2 : 16;
                                struct match *nm = reallocarray(m, ncap, sizeof(struct match));
                                if (!nm) {
                                        r = -ENOMEM;
                                        break;
                                }
                                m = nm;
                                cap_m = ncap;
                        }
                        m[n_m++] = (struct match){.relpath = paths[j], .policy = k};
                }
                for (; paths[j]; j++)
                        free(paths[j]);
                free(paths);
                if (r < 0) {
                        matches_free(m, n_m);
                        return r;
                }
        }
        if (n_m > 0)
                qsort(m, n_m, sizeof(struct match), cmp_match);

        /* Allocated up front: past this point nothing fails half-way. */
        struct instance **next = calloc(d->n_instances + n_m + 1, sizeof(struct instance *));
        /*
         * Dropped instances are freed only once d->instances no longer lists them: a first
         * sample below may format STATUS= from that list.
         */
        _cleanup_free_ struct instance **dropped =
                calloc(d->n_instances + 1, sizeof(struct instance *));
        size_t n_dropped = 0;
        if (!next || !dropped) {
                free(next);
                matches_free(m, n_m);
                return -ENOMEM;
        }
        size_t n = 0, a = 0, b = 0;
        while (a < d->n_instances || b < n_m) {
                struct instance *cur = a < d->n_instances ? d->instances[a] : NULL;
                int c = !cur ? 1 : b >= n_m ? -1 : strcmp(cur->relpath, m[b].relpath);

                if (c < 0) {
                        /* Governed, no longer matched. */
                        size_t k = policy_by_service(set, cur->policy->service);
                        if (k != SIZE_MAX && failed[k]) {
                                if (cur->policy != set->policies[k])
                                        (void)instance_set_policy(cur, set->policies[k], now_usec);
                                next[n++] = cur;
                        } else {
                                _cleanup_close_ int fd = -1;
                                uint64_t ino;
                                bool there = open_with_ino(d->cgfs, cur->relpath, &fd, &ino) >= 0 &&
                                             ino == cur->ino;
                                daemon_log_dropped(cur, there ? "no longer matches its policy"
                                                              : "is gone");
                                dropped[n_dropped++] = cur;
                        }
                        a++;
                        continue;
                }

                /* The matches of one path: m[b] (the winner) up to m[e]. */
                size_t e = b + 1;
                while (e < n_m && strcmp(m[e].relpath, m[b].relpath) == 0)
                        e++;
                const struct policy *p = set->policies[m[b].policy];
                _cleanup_close_ int fd = -1;
                uint64_t ino = 0;
                bool there = open_with_ino(d->cgfs, m[b].relpath, &fd, &ino) >= 0;

                if (c == 0) {
                        a++;
                        if (there && ino == cur->ino &&
                            strcmp(cur->policy->service, p->service) == 0) {
                                if (cur->policy != p)
                                        (void)instance_set_policy(cur, p, now_usec);
                                warn_overlap(cur, set, m + b, e - b);
                                next[n++] = cur;
                                b = e;
                                continue;
                        }
                        daemon_log_dropped(cur, !there ? "is gone"
                                                : ino != cur->ino
                                                        ? "was re-created"
                                                        : "is now governed by another policy");
                        dropped[n_dropped++] = cur;
                }
                if (there) {
                        struct instance *i =
                                instance_create(d, p, m[b].relpath, TAKE_FD(fd), ino, now_usec);
                        if (i) {
                                warn_overlap(i, set, m + b, e - b);
                                next[n++] = i;
                        }
                }
                b = e;
        }
        matches_free(m, n_m);
        free(d->instances);
        d->instances = next;
        d->n_instances = n;
        for (size_t k = 0; k < n_dropped; k++) {
                instance_give_back(dropped[k]);
                instance_free(dropped[k]);
        }
        return 0;
}

/* Watches first, then the globs: a cgroup made in between is reported by its new watch. */
int daemon_rescan_with(struct daemon *d, const struct policy_set *set)
{
        uint64_t now;
        int r;

        r = sd_event_now(d->event, CLOCK_MONOTONIC, &now);
        if (r < 0)
                return r;
        r = watches_update(d, set);
        if (r < 0)
                log_warning_errno(r, "cannot update the directory watches: %m; relying on the "
                                     "periodic rescan");
        d->in_rescan = true;
        r = reconcile(d, set, now);
        d->in_rescan = false;
        if (r < 0)
                return r;
        d->n_scans++;
        if (d->sampled)
                daemon_notify_ready(d);
        log_debug("rescan %" PRIu64 ": %zu instances, %zu directories watched", d->n_scans,
                  d->n_instances, d->n_watches);
        return 0;
}

int daemon_rescan(struct daemon *d)
{
        int r = daemon_rescan_with(d, d->policies);
        if (r < 0)
                log_error_errno(r, "rescan of %s failed: %m", d->cgfs->cgroup_path);
        return r;
}

int daemon_rescan_defer_handler(sd_event_source *s, void *userdata)
{
        struct daemon *d = userdata;

        (void)s;
        (void)daemon_rescan(d);
        return 0;
}

void daemon_schedule_rescan(struct daemon *d)
{
        if (d->rescan_defer)
                (void)sd_event_source_set_enabled(d->rescan_defer, SD_EVENT_ONESHOT);
}

int daemon_rescan_timer_arm(struct daemon *d)
{
        if (d->config.rescan_interval_usec == 0)
                return sd_event_source_set_enabled(d->rescan_timer, SD_EVENT_OFF);
        int r = sd_event_source_set_time_relative(d->rescan_timer, d->config.rescan_interval_usec);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(d->rescan_timer, SD_EVENT_ONESHOT);
}

int daemon_rescan_timer_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct daemon *d = userdata;

        (void)s;
        (void)usec;
        (void)daemon_rescan(d);
        (void)daemon_rescan_timer_arm(d);
        return 0;
}

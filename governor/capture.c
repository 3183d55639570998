/* SPDX-License-Identifier: MIT */
/*
 * Capture effect: profiles over HTTP, built-in snapshots and collector commands into one
 * dump, then the leak suspects. Two queues run side by side on the loop — the HTTP
 * requests one after another, the commands one after another — and the capture finishes
 * when both are empty: suspects.json, the manifest, the rename, the callback.
 *
 * Nothing here waits: HTTP is curl's multi interface (governor/http.c), a command is a
 * child watched by sd_event_add_child() with a deadline timer that kills its process
 * group. The only synchronous work is reading small /proc and cgroup files at the start
 * and hashing and parsing the dump's files at the end.
 *
 * Collector commands and the built-in snapshots are in governor/capture-collect.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "capture-internal.h"
#include "memgov/cgfs.h"
#include "memgov/log.h"

const char *capture_file_name(enum pprof_kind kind, bool text)
{
        static const char *const binary[_PPROF_KIND_MAX] = {
                [PPROF_HEAP] = "heap.pb.gz",           [PPROF_ALLOCS] = "allocs.pb.gz",
                [PPROF_GOROUTINE] = "goroutine.pb.gz", [PPROF_THREADCREATE] = "threadcreate.pb.gz",
                [PPROF_BLOCK] = "block.pb.gz",         [PPROF_MUTEX] = "mutex.pb.gz",
                [PPROF_PROFILE] = "profile.pb.gz",
        };

        if (kind < 0 || kind >= _PPROF_KIND_MAX)
                return NULL;
        if (text)
                return kind == PPROF_HEAP        ? "heap.txt"
                       : kind == PPROF_GOROUTINE ? "goroutine.txt"
                                                 : NULL;
        return binary[kind];
}

static const char *file_kind_of(enum pprof_kind kind, bool text)
{
        static const char *const binary[_PPROF_KIND_MAX] = {
                [PPROF_HEAP] = "pprof-heap",           [PPROF_ALLOCS] = "pprof-allocs",
                [PPROF_GOROUTINE] = "pprof-goroutine", [PPROF_THREADCREATE] = "pprof-threadcreate",
                [PPROF_BLOCK] = "pprof-block",         [PPROF_MUTEX] = "pprof-mutex",
                [PPROF_PROFILE] = "pprof-cpu",
        };

        if (text)
                return kind == PPROF_HEAP ? "pprof-heap-text" : "pprof-goroutine-text";
        return binary[kind];
}

const char *capture_dump_dir(const struct capture *c)
{
        return dump_tmp_path(c->dump);
}

/* ---- freeing ------------------------------------------------------------------------ */

static struct capture *capture_free(struct capture *c)
{
        if (!c)
                return NULL;
        c->request = http_request_cancel(c->request);
        c->request_file = dump_file_abort(c->dump, c->request_file);
        capture_child_stop(c);
        c->defer = sd_event_source_disable_unref(c->defer);
        for (size_t i = 0; i < c->n_jobs; i++)
                free(c->jobs[i].url);
        free(c->jobs);
        for (size_t i = 0; i < c->n_cmds; i++) {
                strv_free(c->cmds[i].argv);
                free(c->cmds[i].path);
                free(c->cmds[i].label);
        }
        free(c->cmds);
        dump_free(c->dump);
        sd_event_unref(c->event);
        free(c->service);
        free(c->base_dir);
        free(c);
        return NULL;
}

struct capture *capture_cancel(struct capture *c)
{
        return capture_free(c);
}

/* ---- HTTP queue --------------------------------------------------------------------- */

void capture_format_duration(char *buf, size_t n, uint64_t usec)
{
        if (usec % USEC_PER_SEC == 0)
                (void)snprintf(buf, n, "%" PRIu64 "s", usec / USEC_PER_SEC);
        else
                (void)snprintf(buf, n, "%" PRIu64 "ms", usec / USEC_PER_MSEC);
}

/* Whether the file starts with the gzip magic, as every binary profile Go serves does. */
static bool fd_is_gzip(int fd)
{
        unsigned char m[2];

        return pread(fd, m, 2, 0) == 2 && m[0] == 0x1f && m[1] == 0x8b;
}

static void http_next(struct capture *c);

static void on_http_done(struct http_request *req _unused_, struct http_result *res, void *userdata)
{
        struct capture *c = userdata;
        const struct http_job *j = &c->jobs[c->next_job - 1];
        struct dump_file *f = TAKE_PTR(c->request_file);
        char error[256] = "", limit[32];
        int r;

        c->request = NULL;
        if (res->error == -EFBIG)
                (void)snprintf(error, sizeof(error), "cut at the size cap of %" PRIu64 " bytes",
                               j->max_bytes);
        else if (res->error == -ETIMEDOUT) {
                capture_format_duration(limit, sizeof(limit), j->timeout_usec);
                (void)snprintf(error, sizeof(error), "timed out after %s", limit);
        } else if (res->error < 0)
                (void)snprintf(error, sizeof(error), "%s", res->error_text);
        else if (res->status != 200)
                (void)snprintf(error, sizeof(error), "HTTP status %ld", res->status);
        else if (!j->text && !fd_is_gzip(dump_file_fd(f)))
                (void)snprintf(error, sizeof(error), "not a gzip-compressed profile");

        if (error[0]) {
                c->n_failed++;
                log_warning("%s: %s: %s", c->service, j->url, error);
        } else
                log_debug("%s: %s: %" PRIu64 " bytes in %" PRIu64 " ms", c->service, j->url,
                          res->bytes_received, res->total_usec / USEC_PER_MSEC);

        if (res->bytes_received > 0) {
                /* Keep what came, even cut short: a partial goroutine dump still reads. */
                r = dump_file_commit(c->dump, f, error[0] ? error : NULL);
                if (r < 0)
                        log_warning_errno(r, "%s: cannot keep %s: %m", c->service, j->file);
        } else {
                dump_file_abort(c->dump, f);
                (void)dump_add_error(c->dump, j->file, "%s", error[0] ? error : "empty response");
        }
        /*
         * An endpoint that did not answer at all will not answer the next request either:
         * skip the rest rather than wait out every timeout of a wedged service.
         */
        if (res->error == -ETIMEDOUT || res->error == -ECONNREFUSED || res->error == -EHOSTUNREACH)
                while (c->next_job < c->n_jobs) {
                        const struct http_job *skip = &c->jobs[c->next_job++];
                        c->n_failed++;
                        (void)dump_add_error(c->dump, skip->file,
                                             "skipped: %s did not answer the request before",
                                             j->url);
                }

        http_next(c);
}

/* Start the next request, or note that the queue is done. */
static void http_next(struct capture *c)
{
        while (c->next_job < c->n_jobs) {
                struct http_job *j = &c->jobs[c->next_job++];
                struct http_request_opts o = {
                        .url = j->url,
                        .timeout_usec = j->timeout_usec,
                        .max_response_bytes = j->max_bytes,
                };
                int r;

                r = dump_file_open(c->dump, j->file, j->file_kind, &c->request_file);
                if (r < 0) {
                        /* the dump directory's fault (full, read-only), not the endpoint's */
                        c->n_failed++;
                        log_warning_errno(r, "%s: cannot create %s in %s: %m", c->service, j->file,
                                          dump_tmp_path(c->dump));
                        (void)dump_add_error(c->dump, j->file, "cannot create the file: %s",
                                             strerror(-r));
                        continue;
                }
                o.output_fd = dump_file_fd(c->request_file);
                r = http_request_start(c->http, &o, on_http_done, c, &c->request);
                if (r >= 0)
                        return;
                c->request_file = dump_file_abort(c->dump, c->request_file);
                c->n_failed++;
                log_warning_errno(r, "%s: cannot request %s: %m", c->service, j->url);
                (void)dump_add_error(c->dump, j->file, "cannot start the request: %s",
                                     strerror(-r));
        }
        capture_maybe_finish(c);
}

static int add_job(struct capture *c, const struct policy_pprof *p, enum pprof_kind kind, bool text)
{
        const char *base = p->url;
        size_t len = strlen(base);
        uint64_t timeout = p->timeout_usec ? p->timeout_usec : CAPTURE_DEFAULT_TIMEOUT_USEC;
        struct http_job *t, *j;
        int k;

        while (len > 0 && base[len - 1] == '/')
                len--;
        t = reallocarray(c->jobs, c->n_jobs + 1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        c->jobs = t;
        j = &c->jobs[c->n_jobs];
        *j = (struct http_job){
                .kind = kind,
                .text = text,
                .file = capture_file_name(kind, text),
                .file_kind = file_kind_of(kind, text),
                .timeout_usec = timeout,
                .max_bytes = p->max_bytes ? p->max_bytes : CAPTURE_DEFAULT_MAX_BYTES,
        };
        if (kind == PPROF_PROFILE) {
                uint64_t secs = p->cpu_seconds ? p->cpu_seconds : CAPTURE_DEFAULT_CPU_SECONDS;
                /* The server takes that long before it answers: the timeout comes on top. */
                j->timeout_usec = timeout + secs * USEC_PER_SEC;
                k = asprintf(&j->url, "%.*s/profile?seconds=%" PRIu64, (int)len, base, secs);
        } else if (text)
                k = asprintf(&j->url, "%.*s/%s?debug=1%s", (int)len, base,
                             pprof_kind_to_string(kind), kind == PPROF_HEAP ? "&gc=1" : "");
        else
                k = asprintf(&j->url, "%.*s/%s", (int)len, base, pprof_kind_to_string(kind));
        if (k < 0)
                return -ENOMEM;
        c->n_jobs++;
        return 0;
}

/* The queue in a fixed order: text forms first (the analysis needs them most). */
static int plan_http(struct capture *c, const struct policy_pprof *p, unsigned kinds)
{
        static const struct {
                enum pprof_kind kind;
                bool text;
        } order[] = {
                {PPROF_HEAP, true},       {PPROF_HEAP, false},   {PPROF_GOROUTINE, true},
                {PPROF_GOROUTINE, false}, {PPROF_ALLOCS, false}, {PPROF_THREADCREATE, false},
                {PPROF_BLOCK, false},     {PPROF_MUTEX, false},  {PPROF_PROFILE, false},
        };
        int r;

        if (!p || !p->url || !p->url[0] || kinds == 0)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(order); i++) {
                if (!(kinds & (1u << order[i].kind)))
                        continue;
                r = add_job(c, p, order[i].kind, order[i].text);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- finishing ---------------------------------------------------------------------- */

/* A text profile of a dump directory, parsed; NULL when absent or unusable. */
static struct pprof_profile *load_profile(struct capture *c, int dirfd, const char *name, bool mine)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        struct pprof_profile *p = NULL;
        size_t len = 0, cap = 1 << 16;
        int r;

        fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        buf = malloc(cap);
        if (!buf)
                return NULL;
        for (;;) {
                ssize_t n;

                if (len == cap) {
                        char *t;
                        if (cap > PPROF_INPUT_MAX) {
                                if (mine)
                                        (void)dump_add_error(c->dump, name,
                                                             "not analysed: larger than %zu "
                                                             "bytes",
                                                             PPROF_INPUT_MAX);
                                return NULL;
                        }
                        t = realloc(buf, cap * 2);
                        if (!t)
                                return NULL;
                        buf = t;
                        cap *= 2;
                }
                n = read(fd, buf + len, cap - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t)n;
        }
        r = pprof_parse(buf, len, &p);
        if (r < 0) {
                log_debug_errno(r, "%s: %s: cannot parse the profile: %m", c->service, name);
                if (mine)
                        (void)dump_add_error(c->dump, name, "not analysed: %s",
                                             r == -EINVAL ? "not a Go text profile" : strerror(-r));
                return NULL;
        }
        return p;
}

static void capture_finish(struct capture *c)
{
        _cleanup_(pprof_profile_freep) struct pprof_profile *hb = NULL, *hc = NULL, *gb = NULL,
                                                            *gc = NULL;
        _cleanup_(pprof_summary_freep) struct pprof_summary *summary = NULL;
        _cleanup_close_ int base_fd = -1;
        struct capture_result res = {};
        uint64_t now = 0;
        int r;

        c->finished = true;
        hc = load_profile(c, dump_dirfd(c->dump), "heap.txt", true);
        gc = load_profile(c, dump_dirfd(c->dump), "goroutine.txt", true);
        if (c->base_dir) {
                base_fd = open(c->base_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (base_fd < 0)
                        log_info("%s: base dump %s is gone; no diff this time", c->service,
                                 c->base_dir);
                else {
                        hb = load_profile(c, base_fd, "heap.txt", false);
                        gb = load_profile(c, base_fd, "goroutine.txt", false);
                }
        }
        if (hc || gc) {
                struct pprof_summary_input in = {
                        .base_dir = base_fd >= 0 ? c->base_dir : NULL,
                        .current_dir = dump_path(c->dump),
                        .heap_base = hb,
                        .heap_current = hc,
                        .goroutine_base = gb,
                        .goroutine_current = gc,
                        .top_n = c->top_n,
                };

                r = pprof_summarize(&in, &summary);
                if (r >= 0)
                        r = dump_write_file(c->dump, "suspects.json", "suspects", summary->json,
                                            strlen(summary->json));
                if (r < 0)
                        log_warning_errno(r, "%s: cannot write suspects.json: %m", c->service);
        }

        res.error = dump_commit(c->dump, 0);
        if (res.error >= 0) {
                res.dir = dump_path(c->dump);
                res.files = dump_entries(c->dump, &res.n_files);
        }
        res.n_failed = c->n_failed;
        res.summary = summary;
        res.paired = summary && (summary->heap_growth || summary->goroutine_growth);
        if (res.paired) {
                res.suspects = summary->ordered;
                res.n_suspects = summary->n_ordered;
        }
        /* Not sd_event_now(): that is when the loop last woke, not now. */
        now = monotonic_usec();
        if (now > c->start_usec)
                res.duration_usec = now - c->start_usec;

        if (res.error >= 0)
                log_info("%s: captured %zu files into %s in %" PRIu64 " ms%s%s", c->service,
                         res.n_files, res.dir, res.duration_usec / USEC_PER_MSEC,
                         res.n_suspects ? "; top suspect: " : "",
                         res.n_suspects ? res.suspects[0]->function : "");
        c->cb(c, &res, c->userdata);
        capture_free(c);
}

static int on_defer(sd_event_source *s _unused_, void *userdata)
{
        struct capture *c = userdata;

        if (c->finished || c->request || c->next_job < c->n_jobs || c->child_pid > 0 ||
            c->next_cmd < c->n_cmds)
                return 0;
        capture_finish(c);
        return 0;
}

/* Finish on a later iteration once both queues are empty (never inside capture_start()). */
void capture_maybe_finish(struct capture *c)
{
        if (c->defer)
                (void)sd_event_source_set_enabled(c->defer, SD_EVENT_ONESHOT);
}

int capture_start(sd_event *event, struct http_client *http, struct dump_store *store,
                  const struct capture_request *req, capture_done_fn cb, void *userdata,
                  struct capture **ret)
{
        _cleanup_free_ pid_t *pids = NULL;
        struct capture *c;
        uint64_t reserve = 0;
        size_t n_pids = 0;
        int r;

        if (!event || !store || !req || !cb || !req->service || !req->event)
                return -EINVAL;
        if (req->pprof && req->pprof->url && req->kinds_mask && !http)
                return -EINVAL;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(event);
        c->http = http;
        c->store = store;
        c->cb = cb;
        c->userdata = userdata;
        c->top_n = req->top_n;
        c->service = strdup(req->service);
        c->base_dir = req->base_dir ? strdup(req->base_dir) : NULL;
        if (!c->service || (req->base_dir && !c->base_dir)) {
                r = -ENOMEM;
                goto fail;
        }
        c->start_usec = monotonic_usec();

        if (req->n_collectors > 0) {
                sigset_t ss;

                /* sd_event_add_child() needs SIGCHLD blocked; memgovd has one thread. */
                sigemptyset(&ss);
                sigaddset(&ss, SIGCHLD);
                if (sigprocmask(SIG_BLOCK, &ss, NULL) < 0) {
                        r = -EBUSY;
                        goto fail;
                }
        }

        /* The most the requests may write, for the free-space floor; commands are held by
         * RLIMIT_FSIZE instead. */
        if (req->pprof && req->pprof->url)
                for (int k = 0; k < _PPROF_KIND_MAX; k++)
                        if (req->kinds_mask & (1u << k)) {
                                uint64_t m = req->pprof->max_bytes ? req->pprof->max_bytes
                                                                   : CAPTURE_DEFAULT_MAX_BYTES;
                                reserve += m * (k == PPROF_HEAP || k == PPROF_GOROUTINE ? 2 : 1);
                        }
        r = dump_begin(store, req->service, req->event, req->realtime_usec, reserve, &c->dump);
        if (r < 0)
                goto fail;

        r = plan_http(c, req->pprof, req->kinds_mask);
        if (r < 0)
                goto fail;

        if (req->cgroup_fd >= 0) {
                r = cgfs_read_procs(req->cgroup_fd, &pids, &n_pids);
                if (r < 0) {
                        (void)dump_add_error(c->dump, "cgroup.procs", "cannot read: %s",
                                             strerror(-r));
                        n_pids = 0;
                }
        }
        if (req->builtin) {
                r = capture_builtin_snapshots(c, req, pids, n_pids);
                if (r < 0)
                        goto fail;
        }
        r = capture_plan_cmds(c, req, pids, n_pids);
        if (r < 0)
                goto fail;

        r = sd_event_add_defer(event, &c->defer, on_defer, c);
        if (r < 0)
                goto fail;
        (void)sd_event_source_set_enabled(c->defer, SD_EVENT_OFF);
        (void)sd_event_source_set_description(c->defer, "capture-finish");

        log_info("%s: capturing (%s) into %s: %zu requests, %zu commands", c->service, req->event,
                 dump_tmp_path(c->dump), c->n_jobs, c->n_cmds);
        http_next(c);
        capture_cmd_next(c);
        if (ret)
                *ret = c;
        return 0;
fail:
        capture_free(c);
        return r;
}

/* SPDX-License-Identifier: MIT */
/*
 * Capture effect: collector commands and the built-in snapshots. A command runs in its own
 * process group, started with fork and execve (argv only, never a shell), its output and
 * working directory in the dump, watched by sd_event_add_child() with a deadline that
 * kills the group. The snapshots are small /proc and cgroup files, read at the start.
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
#include <unistd.h>

#include "capture-internal.h"
#include "memgov/cgfs.h"
#include "memgov/log.h"

#define COLLECTOR_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define SNAPSHOT_MAX   ((size_t)1 << 20)

void capture_child_stop(struct capture *c)
{
        if (c->child_pid > 0) {
                /* The group first: a collector's own children must not outlive it. */
                (void)kill(-c->child_pid, SIGKILL);
                c->child_pid = 0;
        }
        /* Owned by the source: it kills and reaps the child when freed, if still there. */
        c->child_source = sd_event_source_disable_unref(c->child_source);
        c->deadline = sd_event_source_disable_unref(c->deadline);
        c->child_out = dump_file_abort(c->dump, c->child_out);
        c->child_err = dump_file_abort(c->dump, c->child_err);
}

/* ---- command queue ------------------------------------------------------------------ */

void capture_cmd_next(struct capture *c);

static int on_child(sd_event_source *s _unused_, const siginfo_t *si, void *userdata)
{
        struct capture *c = userdata;
        const struct cmd_job *j = &c->cmds[c->next_cmd - 1];
        char why[128] = "", limit[32];
        int r;

        /* Still a zombie here, so the group id cannot have been reused: end stragglers. */
        (void)kill(-c->child_pid, SIGKILL);
        c->child_pid = 0;
        c->deadline = sd_event_source_disable_unref(c->deadline);

        if (c->child_killed) {
                capture_format_duration(limit, sizeof(limit), j->timeout_usec);
                (void)snprintf(why, sizeof(why), "killed at its deadline of %s", limit);
        } else if (si->si_code == CLD_EXITED && si->si_status != 0)
                (void)snprintf(why, sizeof(why), "exited with status %d", si->si_status);
        else if (si->si_code == CLD_KILLED || si->si_code == CLD_DUMPED)
                (void)snprintf(why, sizeof(why), "killed by signal %s", strsignal(si->si_status));

        if (why[0]) {
                c->n_failed++;
                log_warning("%s: collector %s: %s", c->service, j->argv[0], why);
                (void)dump_add_error(c->dump, j->label, "%s", why);
        } else
                log_debug("%s: collector %s done", c->service, j->argv[0]);

        /* Output of a command cut short is partial; a failed command's output is whole. */
        r = dump_file_commit(c->dump, TAKE_PTR(c->child_out), c->child_killed ? why : NULL);
        if (r >= 0)
                r = dump_file_commit(c->dump, TAKE_PTR(c->child_err), c->child_killed ? why : NULL);
        if (r < 0)
                log_warning_errno(r, "%s: cannot keep the output of %s: %m", c->service, j->label);
        /* sd-event reaps the child after this returns; the source goes then. */
        c->child_source = sd_event_source_disable_unref(c->child_source);
        capture_cmd_next(c);
        return 0;
}

static int on_deadline(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata)
{
        struct capture *c = userdata;

        if (c->child_pid > 0) {
                c->child_killed = true;
                (void)kill(-c->child_pid, SIGKILL);
        }
        return 0;
}

/* fork + execve with everything prepared beforehand: the child only calls syscalls. */
static int spawn(struct capture *c, const struct cmd_job *j)
{
        _cleanup_free_ char *out_name = NULL, *err_name = NULL, *env_service = NULL,
                            *env_dir = NULL;
        _cleanup_close_ int devnull = -1;
        uint64_t room = 0;
        char *envp[5];
        struct rlimit rl;
        sigset_t none;
        pid_t pid;
        int r;

        r = dump_store_room(c->store, &room, NULL);
        if (r < 0)
                return r;
        if (room == 0)
                return -ENOSPC;
        if (asprintf(&out_name, "%s.stdout", j->label) < 0 ||
            asprintf(&err_name, "%s.stderr", j->label) < 0 ||
            asprintf(&env_service, "MEMGOV_SERVICE=%s", c->service) < 0 ||
            asprintf(&env_dir, "MEMGOV_DUMP_DIR=%s", dump_tmp_path(c->dump)) < 0)
                return -ENOMEM;
        envp[0] = (char *)"PATH=" COLLECTOR_PATH;
        envp[1] = (char *)"LANG=C.UTF-8";
        envp[2] = env_service;
        envp[3] = env_dir;
        envp[4] = NULL;

        devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (devnull < 0)
                return negative_errno();
        r = dump_file_open(c->dump, out_name, "collector-stdout", &c->child_out);
        if (r >= 0)
                r = dump_file_open(c->dump, err_name, "collector-stderr", &c->child_err);
        if (r < 0)
                return r;

        rl.rlim_cur = rl.rlim_max = room > (uint64_t)RLIM_INFINITY ? RLIM_INFINITY : room;
        sigemptyset(&none);

        pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                int out = dump_file_fd(c->child_out), err = dump_file_fd(c->child_err);

                (void)setpgid(0, 0);
                if (dup2(devnull, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
                    dup2(err, STDERR_FILENO) < 0 || fchdir(dump_dirfd(c->dump)) < 0)
                        _exit(126);
                umask(077);
                (void)setrlimit(RLIMIT_FSIZE, &rl);
                (void)signal(SIGPIPE, SIG_DFL);
                (void)signal(SIGXFSZ, SIG_DFL);
                (void)sigprocmask(SIG_SETMASK, &none, NULL);
                (void)close_range(3, ~0U, 0);
                execve(j->path, j->argv, envp);
                (void)!write(STDERR_FILENO, "memgovd: execve failed\n", 23);
                _exit(127);
        }
        /* Also here, so that a kill of the group cannot race the child's own setpgid. */
        (void)setpgid(pid, pid);
        c->child_pid = pid;
        c->child_killed = false;

        r = sd_event_add_child(c->event, &c->child_source, pid, WEXITED, on_child, c);
        if (r < 0) {
                /* Cannot watch it: do not let it run unobserved. */
                (void)kill(-pid, SIGKILL);
                (void)waitpid(pid, NULL, 0);
                c->child_pid = 0;
                return r;
        }
        (void)sd_event_source_set_child_process_own(c->child_source, true);
        (void)sd_event_source_set_description(c->child_source, "capture-collector");
        r = sd_event_add_time_relative(c->event, &c->deadline, CLOCK_MONOTONIC, j->timeout_usec, 0,
                                       on_deadline, c);
        if (r < 0)
                return r; /* the caller stops the child */
        (void)sd_event_source_set_description(c->deadline, "capture-collector-deadline");
        log_debug("%s: started collector %s (pid %d)", c->service, j->argv[0], (int)pid);
        return 0;
}

void capture_cmd_next(struct capture *c)
{
        while (c->next_cmd < c->n_cmds) {
                const struct cmd_job *j = &c->cmds[c->next_cmd++];
                int r = spawn(c, j);

                if (r >= 0)
                        return;
                capture_child_stop(c);
                c->n_failed++;
                if (r == -ENOSPC)
                        log_warning("%s: collector %s not run: no room above the dump store's "
                                    "free-space floor",
                                    c->service, j->argv[0]);
                else
                        log_warning_errno(r, "%s: cannot run collector %s: %m", c->service,
                                          j->argv[0]);
                (void)dump_add_error(c->dump, j->label, "not run: %s",
                                     r == -ENOSPC ? "no room above the free-space floor"
                                                  : strerror(-r));
        }
        capture_maybe_finish(c);
}

/* An executable for argv[0]: as given when it holds a '/', else searched in COLLECTOR_PATH. */
static int resolve_executable(const char *name, char **ret)
{
        const char *p = COLLECTOR_PATH;

        if (strchr(name, '/')) {
                if (access(name, X_OK) < 0)
                        return negative_errno();
                *ret = strdup(name);
                return *ret ? 0 : -ENOMEM;
        }
        while (*p) {
                size_t n = strcspn(p, ":");
                char *cand;

                if (asprintf(&cand, "%.*s/%s", (int)n, p, name) < 0)
                        return -ENOMEM;
                if (access(cand, X_OK) == 0) {
                        *ret = cand;
                        return 0;
                }
                free(cand);
                p += n;
                if (*p == ':')
                        p++;
        }
        return -ENOENT;
}

/* "collector<i>-<name of argv[0], safe>[.<pid>]" */
static char *cmd_label(size_t index, const char *argv0, pid_t pid)
{
        const char *base = strrchr(argv0, '/');
        char safe[48];
        size_t n = 0;
        char *out;

        base = base ? base + 1 : argv0;
        for (const char *s = base; *s && n < sizeof(safe) - 1; s++)
                safe[n++] =
                        (char)((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                                               (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'
                                       ? *s
                                       : '_');
        safe[n] = '\0';
        int k = pid > 0 ? asprintf(&out, "collector%zu-%s.%d", index, safe, (int)pid)
                        : asprintf(&out, "collector%zu-%s", index, safe);
        return k < 0 ? NULL : out;
}

static int add_cmd(struct capture *c, size_t index, const struct policy_collector *pc,
                   const struct capture_placeholders *ph, pid_t pid)
{
        struct capture_placeholders mine = *ph;
        struct cmd_job j = {
                .timeout_usec =
                        pc->timeout_usec ? pc->timeout_usec : CAPTURE_DEFAULT_COLLECTOR_USEC,
        };
        struct cmd_job *t;
        int r;

        mine.pid = pid;
        j.label = cmd_label(index, pc->argv[0], pid);
        if (!j.label)
                return -ENOMEM;
        r = capture_expand_argv(pc->argv, &mine, &j.argv);
        if (r >= 0)
                r = resolve_executable(j.argv[0], &j.path);
        if (r < 0) {
                c->n_failed++;
                log_warning_errno(r, "%s: collector %s not run: %m", c->service, pc->argv[0]);
                (void)dump_add_error(c->dump, j.label, "not run: %s",
                                     r == -ENOENT ? "no such program" : strerror(-r));
                strv_free(j.argv);
                free(j.label);
                return r == -ENOMEM ? r : 0;
        }
        t = reallocarray(c->cmds, c->n_cmds + 1, sizeof(*t));
        if (!t) {
                strv_free(j.argv);
                free(j.path);
                free(j.label);
                return -ENOMEM;
        }
        c->cmds = t;
        c->cmds[c->n_cmds++] = j;
        return 0;
}

static bool argv_uses_pid(char *const *argv)
{
        for (char *const *a = argv; *a; a++)
                if (strstr(*a, "{pid}"))
                        return true;
        return false;
}

int capture_plan_cmds(struct capture *c, const struct capture_request *req, const pid_t *pids,
                      size_t n_pids)
{
        struct capture_placeholders ph = {
                .pids = pids,
                .n_pids = n_pids,
                .cgroup = req->cgroup_path,
                .dir = dump_tmp_path(c->dump),
                .service = c->service,
        };
        int r;

        for (size_t i = 0; i < req->n_collectors; i++) {
                const struct policy_collector *pc = &req->collectors[i];

                if (!pc->argv || !pc->argv[0])
                        continue;
                if (pc->per_process) {
                        if (n_pids == 0)
                                (void)dump_add_error(c->dump, pc->argv[0],
                                                     "not run: no process in the cgroup");
                        for (size_t k = 0; k < MIN(n_pids, (size_t)CAPTURE_COLLECTOR_PIDS_MAX);
                             k++) {
                                r = add_cmd(c, i, pc, &ph, pids[k]);
                                if (r < 0)
                                        return r;
                        }
                        if (n_pids > CAPTURE_COLLECTOR_PIDS_MAX)
                                (void)dump_add_error(c->dump, pc->argv[0],
                                                     "ran for the first %d of %zu processes",
                                                     CAPTURE_COLLECTOR_PIDS_MAX, n_pids);
                } else {
                        /* Once: {pid} is the first process of the cgroup. */
                        r = add_cmd(c, i, pc, &ph, argv_uses_pid(pc->argv) && n_pids ? pids[0] : 0);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* ---- built-in snapshots ------------------------------------------------------------- */

static void snapshot(struct capture *c, int dirfd, const char *path, const char *name,
                     const char *kind, char *buf)
{
        ssize_t n = cgfs_read_at(dirfd, path, buf, SNAPSHOT_MAX);
        int r;

        /* A process that exited meanwhile is normal life. */
        if (n == -ENOENT || n == -ESRCH)
                return;
        if (n < 0) {
                (void)dump_add_error(c->dump, name, "cannot read %s: %s", path, strerror((int)-n));
                return;
        }
        r = dump_write_file(c->dump, name, kind, buf, (size_t)n);
        if (r < 0)
                (void)dump_add_error(c->dump, name, "cannot write: %s", strerror(-r));
}

int capture_builtin_snapshots(struct capture *c, const struct capture_request *req,
                              const pid_t *pids, size_t n_pids)
{
        _cleanup_free_ char *buf = malloc(SNAPSHOT_MAX);
        _cleanup_free_ char *list = NULL;
        size_t len = 0;
        int r;

        if (!buf)
                return -ENOMEM;
        if (req->cgroup_fd >= 0) {
                list = malloc(n_pids * 12 + 1);
                if (!list)
                        return -ENOMEM;
                for (size_t i = 0; i < n_pids; i++)
                        len += (size_t)sprintf(list + len, "%d\n", (int)pids[i]);
                r = dump_write_file(c->dump, "cgroup.procs", "cgroup-procs", list, len);
                if (r < 0)
                        return r;
                snapshot(c, req->cgroup_fd, "memory.stat", "memory.stat", "memory.stat", buf);
        }
        if (req->proc_fd < 0)
                return 0;
        for (size_t i = 0; i < MIN(n_pids, (size_t)CAPTURE_BUILTIN_PIDS_MAX); i++) {
                char path[64], name[64];

                (void)snprintf(path, sizeof(path), "%d/smaps_rollup", (int)pids[i]);
                (void)snprintf(name, sizeof(name), "smaps_rollup.%d", (int)pids[i]);
                snapshot(c, req->proc_fd, path, name, "smaps_rollup", buf);
                (void)snprintf(path, sizeof(path), "%d/status", (int)pids[i]);
                (void)snprintf(name, sizeof(name), "status.%d", (int)pids[i]);
                snapshot(c, req->proc_fd, path, name, "status", buf);
        }
        if (n_pids > CAPTURE_BUILTIN_PIDS_MAX)
                (void)dump_add_error(c->dump, "smaps_rollup",
                                     "taken for the first %d of %zu processes",
                                     CAPTURE_BUILTIN_PIDS_MAX, n_pids);
        return 0;
}

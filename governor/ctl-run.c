/* SPDX-License-Identifier: MIT */
/*
 * memgovctl run: start a workload under governance on a host without systemd. It creates a
 * cgroup under a parent (enabling the memory controller on the way down), writes the
 * limits, moves itself in and execs the command, so that everything the command starts is
 * counted, limited and visible to memgovd's probe from its first byte.
 */
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "memgov/cgfs.h"
#include "memgov/ctl.h"
#include "memgov/parse.h"

#define DEFAULT_PARENT "memgov.run"

static void help(FILE *f)
{
        fprintf(f, "Usage: memgovctl run [OPTIONS...] -- CMD [ARG...]\n\n"
                   "Creates a cgroup PARENT/NAME, writes the memory limits given, moves itself\n"
                   "into it and executes CMD (no shell), which keeps this process id. The\n"
                   "memory controller is enabled in the cgroup.subtree_control of PARENT and\n"
                   "its ancestors where missing.\n\n"
                   "Options:\n"
                   "  --cgroup-root DIR      default: the cgroup2 mount from /proc/self/mountinfo\n"
                   "  --cgroup-parent PATH   relative to the root, created if missing; default "
                   "\"" DEFAULT_PARENT "\"\n"
                   "  --name NAME            default: CMD's file name and this process id, "
                   "e.g. leaky-4242\n"
                   "  --memory-max SIZE      hard limit: bytes, K, M, G, T (e.g. 512M) or max\n"
                   "  --memory-high SIZE     throttling limit, same units\n"
                   "  --memory-swap-max SIZE swap limit, same units\n"
                   "  -q, --quiet            do not say which cgroup was created\n\n"
                   "Example:\n"
                   "  memgovctl run --memory-max 150M --memory-high 120M -- ./leaky -mode heap\n");
}

/* The limit options, written in this order (high before max, so max never undercuts it). */
struct limit_arg {
        const char *file;
        const char *option;
        const char *arg;
        uint64_t bytes;
};

static int parse_limit_arg(struct limit_arg *l)
{
        int r = parse_size(l->arg, 0, &l->bytes);
        if (r < 0) {
                fprintf(stderr,
                        "memgovctl run: %s: expected a size such as 512M, 1.5G or max, got "
                        "'%s'%s\n",
                        l->option, l->arg,
                        strchr(l->arg, '%') ? " (a percent has no base here)" : "");
                return r;
        }
        return 0;
}

/* Whether a path has a ".." component, which would leave the cgroup root. */
static bool has_dotdot(const char *path)
{
        for (const char *p = path; *p;) {
                size_t k = strcspn(p, "/");
                if (k == 2 && p[0] == '.' && p[1] == '.')
                        return true;
                p += k;
                p += strspn(p, "/");
        }
        return false;
}

/* Whether CMD can be executed as execvp() would find it, before anything is created. */
static bool command_found(const char *cmd)
{
        if (strchr(cmd, '/'))
                return access(cmd, X_OK) == 0;

        const char *path = getenv("PATH");
        if (!path || !path[0])
                path = "/usr/local/bin:/usr/bin:/bin";
        for (const char *p = path;;) {
                size_t k = strcspn(p, ":");
                _cleanup_free_ char *full = NULL;
                if (asprintf(&full, "%.*s/%s", (int)k, k ? p : ".", cmd) < 0)
                        return false;
                struct stat st;
                if (access(full, X_OK) == 0 && stat(full, &st) == 0 && S_ISREG(st.st_mode))
                        return true;
                if (!p[k])
                        return false;
                p += k + 1;
        }
}

/* Write a control file; on a test tree (not cgroup2) the file is created. */
static int write_control(int dirfd, const char *name, const char *value, bool real)
{
        return real ? cgfs_write_at(dirfd, name, value) : cgfs_write_create_at(dirfd, name, value);
}

/*
 * Make sure the memory controller is enabled in relpath's cgroup.subtree_control, so that
 * its children get memory.* files. The caller goes top-down: a controller can be enabled
 * only where the parent has enabled it.
 */
static int enable_memory(const struct cgfs *c, const char *relpath, bool real)
{
        _cleanup_close_ int fd = -1;
        const char *sep = relpath[0] ? "/" : "";
        int r;

        r = cgfs_open_cgroup(c, relpath, &fd);
        if (r < 0) {
                fprintf(stderr, "memgovctl run: opening %s%s%s: %s\n", c->cgroup_path, sep, relpath,
                        strerror(-r));
                return r;
        }
        r = cgfs_lists_controller(fd, "cgroup.subtree_control", "memory");
        if (r == -ENOENT && !real)
                r = 0;
        if (r < 0) {
                fprintf(stderr, "memgovctl run: reading %s%s%s/cgroup.subtree_control: %s\n",
                        c->cgroup_path, sep, relpath, strerror(-r));
                return r;
        }
        if (r > 0)
                return 0;

        r = write_control(fd, "cgroup.subtree_control", "+memory", real);
        if (r >= 0)
                return 0;

        fprintf(stderr,
                "memgovctl run: cannot write '+memory' to %s%s%s/cgroup.subtree_control: %s\n",
                c->cgroup_path, sep, relpath, strerror(-r));
        if (r == -EBUSY)
                fprintf(stderr,
                        "  %s%s%s has processes of its own, and cgroup v2 gives no controllers to "
                        "the children\n"
                        "  of a cgroup with processes (the no-internal-process rule). Choose a "
                        "--cgroup-parent\n"
                        "  that holds no processes, or move its processes into a child cgroup "
                        "first.\n",
                        c->cgroup_path, sep, relpath);
        else if (r == -ENOENT)
                fprintf(stderr,
                        "  The memory controller is not available there: check %s%s%s/"
                        "cgroup.controllers\n"
                        "  (on a host with memory on cgroup v1, boot with "
                        "systemd.unified_cgroup_hierarchy=1).\n",
                        c->cgroup_path, sep, relpath);
        else if (r == -EACCES || r == -EPERM)
                fprintf(stderr, "  Run as root, or under a cgroup delegated to you.\n");
        return r;
}

/* Create each missing component of parent, enabling memory from the root down. */
static int prepare_parent(const struct cgfs *c, const char *parent, bool real)
{
        _cleanup_free_ char *path = strdup(parent);
        if (!path)
                return -ENOMEM;

        int r = enable_memory(c, "", real);
        if (r < 0)
                return r;

        for (char *slash = path;; slash++) {
                slash = strchr(slash, '/');
                if (slash)
                        *slash = '\0';
                if (path[0]) {
                        r = cgfs_mkdir_cgroup(c, path);
                        if (r < 0 && r != -EEXIST) {
                                fprintf(stderr, "memgovctl run: creating cgroup %s/%s: %s\n",
                                        c->cgroup_path, path, strerror(-r));
                                return r;
                        }
                        r = enable_memory(c, path, real);
                        if (r < 0)
                                return r;
                }
                if (!slash)
                        return 0;
                *slash = '/';
        }
}

static int write_limit(const struct cgfs *c, int dirfd, const char *relpath,
                       const struct limit_arg *l, bool real)
{
        char value[32];

        if (l->bytes == CGROUP_LIMIT_MAX)
                snprintf(value, sizeof(value), "max");
        else
                snprintf(value, sizeof(value), "%" PRIu64, l->bytes);

        int r = write_control(dirfd, l->file, value, real);
        if (r >= 0)
                return 0;
        fprintf(stderr, "memgovctl run: writing %s to %s/%s/%s: %s\n", value, c->cgroup_path,
                relpath, l->file, strerror(-r));
        if (r == -ENOENT)
                fprintf(stderr, "  %s\n",
                        strcmp(l->file, "memory.swap.max") == 0
                                ? "Swap accounting is off in this kernel (boot with "
                                  "swapaccount=1), or the memory controller is not enabled."
                                : "The memory controller is not enabled for this cgroup.");
        return r;
}

int ctl_run(int argc, char *argv[])
{
        enum {
                ARG_CGROUP_ROOT = 0x100,
                ARG_CGROUP_PARENT,
                ARG_NAME,
                ARG_MEMORY_MAX,
                ARG_MEMORY_HIGH,
                ARG_MEMORY_SWAP_MAX,
        };
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},
                {"quiet", no_argument, NULL, 'q'},
                {"cgroup-root", required_argument, NULL, ARG_CGROUP_ROOT},
                {"cgroup-parent", required_argument, NULL, ARG_CGROUP_PARENT},
                {"name", required_argument, NULL, ARG_NAME},
                {"memory-max", required_argument, NULL, ARG_MEMORY_MAX},
                {"memory-high", required_argument, NULL, ARG_MEMORY_HIGH},
                {"memory-swap-max", required_argument, NULL, ARG_MEMORY_SWAP_MAX},
                {},
        };
        struct limit_arg limits[] = {
                {"memory.high", "--memory-high", NULL, 0},
                {"memory.max", "--memory-max", NULL, 0},
                {"memory.swap.max", "--memory-swap-max", NULL, 0},
        };
        const char *cgroup_root = NULL, *parent = DEFAULT_PARENT, *name = NULL;
        bool quiet = false;
        int opt, r;

        /* '+': stop at the first non-option, so CMD's own options stay CMD's. */
        while ((opt = getopt_long(argc, argv, "+hq", options, NULL)) >= 0) {
                switch (opt) {
                case 'h':
                        help(stdout);
                        return 0;
                case 'q':
                        quiet = true;
                        break;
                case ARG_CGROUP_ROOT:
                        cgroup_root = optarg;
                        break;
                case ARG_CGROUP_PARENT:
                        parent = optarg;
                        break;
                case ARG_NAME:
                        name = optarg;
                        break;
                case ARG_MEMORY_HIGH:
                        limits[0].arg = optarg;
                        break;
                case ARG_MEMORY_MAX:
                        limits[1].arg = optarg;
                        break;
                case ARG_MEMORY_SWAP_MAX:
                        limits[2].arg = optarg;
                        break;
                default:
                        fprintf(stderr, "See 'memgovctl run --help'.\n");
                        return 2;
                }
        }
        if (optind >= argc) {
                fprintf(stderr, "memgovctl run: no command given\n\n");
                help(stderr);
                return 2;
        }
        char **cmd = argv + optind;

        for (size_t i = 0; i < ELEMENTSOF(limits); i++)
                if (limits[i].arg && parse_limit_arg(&limits[i]) < 0)
                        return 2;

        _cleanup_free_ char *default_name = NULL;
        if (!name) {
                _cleanup_free_ char *copy = strdup(cmd[0]);
                if (!copy || asprintf(&default_name, "%s-%d", basename(copy), (int)getpid()) < 0)
                        return 1;
                name = default_name;
        }
        if (!name[0] || strchr(name, '/') || strchr(name, '\n') || strcmp(name, ".") == 0 ||
            strcmp(name, "..") == 0) {
                fprintf(stderr,
                        "memgovctl run: --name: '%s' is not a cgroup name (no '/', not "
                        "'.' or '..')\n",
                        name);
                return 2;
        }
        if (has_dotdot(parent)) {
                fprintf(stderr, "memgovctl run: --cgroup-parent: '..' is not allowed\n");
                return 2;
        }
        if (!command_found(cmd[0])) {
                fprintf(stderr, "memgovctl run: %s: command not found or not executable\n", cmd[0]);
                return 127;
        }

        _cleanup_(cgfs_freep) struct cgfs *c = NULL;
        r = cgfs_new(cgroup_root, NULL, &c);
        if (r == -ENOENT && !cgroup_root)
                fprintf(stderr, "memgovctl run: no cgroup2 mount in /proc/self/mountinfo; mount "
                                "one or give --cgroup-root DIR\n");
        else if (r < 0)
                fprintf(stderr, "memgovctl run: opening %s: %s\n",
                        cgroup_root ? cgroup_root : "the cgroup2 mount", strerror(-r));
        if (r < 0)
                return 1;

        r = cgfs_root_is_cgroup2(c);
        if (r < 0) {
                fprintf(stderr, "memgovctl run: %s: %s\n", c->cgroup_path, strerror(-r));
                return 1;
        }
        bool real = r > 0;
        if (real) {
                r = cgfs_has_memory_controller(c);
                if (r <= 0) {
                        fprintf(stderr,
                                "memgovctl run: %s/cgroup.controllers %s: this cgroup2 "
                                "hierarchy has no memory controller (it is disabled, or bound to "
                                "a cgroup v1 mount: see /proc/self/mountinfo). Boot with "
                                "systemd.unified_cgroup_hierarchy=1 (or cgroup_no_v1=memory), "
                                "or run in a VM (tests/vm/run).\n",
                                c->cgroup_path, r < 0 ? strerror(-r) : "does not list 'memory'");
                        return 1;
                }
        } else
                fprintf(stderr,
                        "memgovctl run: warning: %s is not a cgroup2 filesystem; writing plain "
                        "files there, no limit is enforced\n",
                        c->cgroup_path);

        _cleanup_free_ char *relpath = NULL;
        if (asprintf(&relpath, "%s/%s", parent, name) < 0)
                return 1;

        r = prepare_parent(c, parent, real);
        if (r < 0)
                return 1;

        r = cgfs_mkdir_cgroup(c, relpath);
        if (r < 0) {
                fprintf(stderr, "memgovctl run: creating cgroup %s/%s: %s%s\n", c->cgroup_path,
                        relpath, strerror(-r), r == -EEXIST ? "; choose another --name" : "");
                return 1;
        }

        _cleanup_close_ int fd = -1;
        r = cgfs_open_cgroup(c, relpath, &fd);
        if (r < 0) {
                fprintf(stderr, "memgovctl run: opening %s/%s: %s\n", c->cgroup_path, relpath,
                        strerror(-r));
                return 1;
        }
        for (size_t i = 0; i < ELEMENTSOF(limits); i++)
                if (limits[i].arg && write_limit(c, fd, relpath, &limits[i], real) < 0) {
                        (void)cgfs_rmdir_cgroup(c, relpath);
                        return 1;
                }

        /* Our own pid, not "0": the same move, and what the file then lists. */
        char pid[32];
        snprintf(pid, sizeof(pid), "%d", (int)getpid());
        r = write_control(fd, "cgroup.procs", pid, real);
        if (r < 0) {
                fprintf(stderr, "memgovctl run: moving into %s/%s/cgroup.procs: %s\n",
                        c->cgroup_path, relpath, strerror(-r));
                (void)cgfs_rmdir_cgroup(c, relpath);
                return 1;
        }

        if (!quiet)
                fprintf(stderr, "memgovctl run: running %s in cgroup %s/%s\n", cmd[0],
                        c->cgroup_path, relpath);

        /* Nothing of ours may leak into CMD: the fds are O_CLOEXEC; free before exec. */
        c = cgfs_free(c);
        fflush(NULL);
        execvp(cmd[0], cmd);
        fprintf(stderr, "memgovctl run: executing %s: %m\n", cmd[0]);
        return 127;
}

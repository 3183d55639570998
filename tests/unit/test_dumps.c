/* SPDX-License-Identifier: MIT */
/*
 * The dump store in a temporary state directory: the atomic layout and permissions, the
 * manifest against sha256 computed here, what collectors leave behind, retention by count,
 * bytes and age, and the free-space floor through the statvfs seam.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <openssl/evp.h>

#include "memgov/dumps.h"
#include "memgov/log.h"
#include "memgov/macro.h"

/* 2024-05-01T12:34:56Z */
#define T0  (UINT64_C(1714566896) * USEC_PER_SEC)
#define DAY (24 * USEC_PER_HOUR)

struct fixture {
        char dir[64];
        char *state;
        struct dump_store *store;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        strcpy(f->dir, "/tmp/test-dumps-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        assert_true(asprintf(&f->state, "%s/state", f->dir) > 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        char cmd[128];

        dump_store_free(f->store);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f->state);
        free(f);
        return 0;
}

static struct dump_store *open_store(struct fixture *f, const struct dumps_limits *limits)
{
        dump_store_free(f->store);
        f->store = NULL;
        assert_int_equal(dump_store_open(f->state, limits, &f->store), 0);
        return f->store;
}

/* Plenty of room unless a test says otherwise: 1 TiB free of 2 TiB. */
struct fake_fs {
        uint64_t total, avail;
};

static int fake_statvfs(int fd _unused_, struct statvfs *ret, void *userdata)
{
        const struct fake_fs *fs = userdata;

        *ret = (struct statvfs){.f_frsize = 4096,
                                .f_bsize = 4096,
                                .f_blocks = fs->total / 4096,
                                .f_bavail = fs->avail / 4096};
        return 0;
}

static bool path_exists(const char *fmt, ...) _printf_(1, 2);
static bool path_exists(const char *fmt, ...)
{
        _cleanup_free_ char *p = NULL;
        struct stat st;
        va_list ap;

        va_start(ap, fmt);
        assert_true(vasprintf(&p, fmt, ap) > 0);
        va_end(ap);
        return lstat(p, &st) == 0;
}

static mode_t mode_of(const char *path)
{
        struct stat st;

        assert_int_equal(lstat(path, &st), 0);
        return st.st_mode & 07777;
}

static void sha256_hex_of_file(const char *path, char hex[65], uint64_t *size)
{
        unsigned char md[32];
        unsigned len = 0;
        char buf[4096];
        FILE *fp = fopen(path, "re");
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        size_t n;

        assert_non_null(fp);
        assert_non_null(ctx);
        assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
        *size = 0;
        while ((n = fread(buf, 1, sizeof(buf), fp)) > 0) {
                assert_int_equal(EVP_DigestUpdate(ctx, buf, n), 1);
                *size += n;
        }
        assert_int_equal(EVP_DigestFinal_ex(ctx, md, &len), 1);
        for (unsigned i = 0; i < len; i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
        EVP_MD_CTX_free(ctx);
        fclose(fp);
}

static struct json_object *read_manifest(const char *dump_dir)
{
        _cleanup_free_ char *p = NULL;
        struct json_object *o;

        assert_true(asprintf(&p, "%s/manifest.json", dump_dir) > 0);
        o = json_object_from_file(p);
        assert_non_null(o);
        return o;
}

/* The manifest's entry for name, or NULL. */
static struct json_object *manifest_file(struct json_object *m, const char *name)
{
        struct json_object *files, *v;

        assert_true(json_object_object_get_ex(m, "files", &files));
        for (size_t i = 0; i < json_object_array_length(files); i++) {
                struct json_object *e = json_object_array_get_idx(files, i);
                assert_true(json_object_object_get_ex(e, "name", &v));
                if (strcmp(json_object_get_string(v), name) == 0)
                        return e;
        }
        return NULL;
}

static const char *json_str(struct json_object *o, const char *key)
{
        struct json_object *v;

        assert_true(json_object_object_get_ex(o, key, &v));
        return json_object_get_string(v);
}

/* Every file of the dump is in the manifest with its size and sha256, and nothing else. */
static void assert_manifest_matches(const char *dump_dir)
{
        struct json_object *m = read_manifest(dump_dir), *files;
        _cleanup_free_ char *cmd = NULL;
        char line[4096];
        size_t on_disk = 0;
        FILE *p;

        assert_true(json_object_object_get_ex(m, "files", &files));
        for (size_t i = 0; i < json_object_array_length(files); i++) {
                struct json_object *e = json_object_array_get_idx(files, i), *v;
                _cleanup_free_ char *path = NULL;
                char hex[65];
                uint64_t size;

                assert_true(asprintf(&path, "%s/%s", dump_dir, json_str(e, "name")) > 0);
                sha256_hex_of_file(path, hex, &size);
                assert_string_equal(json_str(e, "sha256"), hex);
                assert_true(json_object_object_get_ex(e, "size", &v));
                assert_int_equal((uint64_t)json_object_get_uint64(v), size);
                assert_int_equal(mode_of(path), 0600);
        }
        /* Regular files on disk, manifest.json aside. */
        assert_true(asprintf(&cmd, "cd %s && find . -type f ! -name manifest.json", dump_dir) > 0);
        p = popen(cmd, "r");
        assert_non_null(p);
        while (fgets(line, sizeof(line), p)) {
                line[strcspn(line, "\n")] = '\0';
                if (!manifest_file(m, line + 2)) {
                        print_error("%s is not in the manifest\n", line);
                        fail();
                }
                on_disk++;
        }
        pclose(p);
        assert_int_equal(on_disk, json_object_array_length(files));
        json_object_put(m);
}

static void test_dump_layout_is_atomic(void **state)
{
        struct fixture *f = *state;
        struct dump_store *s = open_store(f, NULL);
        _cleanup_(dump_freep) struct dump *d = NULL;
        _cleanup_free_ char *tmp = NULL, *final = NULL;
        struct dump_file *file = NULL;
        const struct dump_entry *entries;
        struct json_object *m, *e;
        size_t n;

        assert_int_equal(dump_begin(s, "checkout-api", "warn", T0, 0, &d), 0);
        assert_string_equal(dump_name(d), "20240501T123456Z-warn");
        assert_true(asprintf(&tmp, "%s/dumps/checkout-api/.20240501T123456Z-warn.tmp", f->state) >
                    0);
        assert_true(asprintf(&final, "%s/dumps/checkout-api/20240501T123456Z-warn", f->state) > 0);
        assert_string_equal(dump_tmp_path(d), tmp);
        assert_string_equal(dump_path(d), final);
        assert_true(path_exists("%s", tmp));
        assert_false(path_exists("%s", final));
        assert_int_equal(mode_of(tmp), 0700);
        assert_int_equal(mode_of(f->state), 0700);

        /* A streamed file is invisible under its name until committed. */
        assert_int_equal(dump_file_open(d, "heap.pb.gz", "pprof-heap", &file), 0);
        assert_int_equal(write(dump_file_fd(file), "\x1f\x8b\x08\x00gzip", 8), 8);
        assert_true(path_exists("%s/.heap.pb.gz.tmp", tmp));
        assert_false(path_exists("%s/heap.pb.gz", tmp));
        assert_int_equal(dump_file_commit(d, file, NULL), 0);
        assert_true(path_exists("%s/heap.pb.gz", tmp));
        assert_false(path_exists("%s/.heap.pb.gz.tmp", tmp));

        /* A file cut short keeps what came, as .partial, and says why. */
        assert_int_equal(dump_file_open(d, "goroutine.txt", "pprof-goroutine-text", &file), 0);
        assert_int_equal(write(dump_file_fd(file), "goroutine profile: total 3\n", 27), 27);
        assert_int_equal(dump_file_commit(d, file, "larger than 27 bytes"), 0);

        /* An abandoned file leaves nothing. */
        assert_int_equal(dump_file_open(d, "mutex.pb.gz", "pprof-mutex", &file), 0);
        dump_file_abort(d, file);
        assert_false(path_exists("%s/.mutex.pb.gz.tmp", tmp));

        assert_int_equal(dump_write_file(d, "suspects.json", "suspects", "{}\n", 3), 0);
        assert_int_equal(dump_add_error(d, "allocs", "timed out after %d s", 10), 0);

        assert_int_equal(dump_commit(d, T0), 0);
        assert_false(path_exists("%s", tmp));
        assert_true(path_exists("%s", final));
        assert_int_equal(mode_of(final), 0700);
        assert_manifest_matches(final);

        entries = dump_entries(d, &n);
        assert_int_equal(n, 3);
        assert_string_equal(entries[0].name, "heap.pb.gz");
        assert_int_equal(entries[0].size, 8);
        assert_true(entries[0].complete);
        assert_string_equal(entries[1].name, "goroutine.txt.partial");
        assert_false(entries[1].complete);
        assert_string_equal(entries[1].error, "larger than 27 bytes");

        m = read_manifest(final);
        assert_string_equal(json_str(m, "service"), "checkout-api");
        assert_string_equal(json_str(m, "event"), "warn");
        assert_string_equal(json_str(m, "time"), "2024-05-01T12:34:56Z");
        e = manifest_file(m, "heap.pb.gz");
        assert_non_null(e);
        assert_string_equal(json_str(e, "kind"), "pprof-heap");
        /* sha256 of the 8 bytes written above */
        assert_string_equal(json_str(e, "sha256"),
                            "eac17cd194463bfae416382ccbe509cf2cc61fc249611694ae96f7c3a45aca42");
        json_object_put(m);
}

static void test_dump_adopts_collector_output_and_removes_links(void **state)
{
        struct fixture *f = *state;
        struct dump_store *s = open_store(f, NULL);
        _cleanup_(dump_freep) struct dump *d = NULL;
        _cleanup_free_ char *p = NULL;
        struct json_object *m, *errors;
        int fd;

        assert_int_equal(dump_begin(s, "svc", "critical", T0, 0, &d), 0);
        /* What a command such as gcore -o {dir}/core {pid} leaves behind. */
        fd = openat(dump_dirfd(d), "core.4242", O_WRONLY | O_CREAT | O_EXCL, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "ELF core", 8), 8);
        close(fd);
        assert_int_equal(mkdirat(dump_dirfd(d), "sub", 0755), 0);
        fd = openat(dump_dirfd(d), "sub/heap.hprof", O_WRONLY | O_CREAT | O_EXCL, 0644);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(symlinkat("/etc/passwd", dump_dirfd(d), "passwd"), 0);
        assert_int_equal(mkfifoat(dump_dirfd(d), "fifo", 0600), 0);

        assert_int_equal(dump_commit(d, T0), 0);
        assert_manifest_matches(dump_path(d));
        m = read_manifest(dump_path(d));
        assert_string_equal(json_str(manifest_file(m, "core.4242"), "kind"), "collector-output");
        assert_non_null(manifest_file(m, "sub/heap.hprof"));
        assert_null(manifest_file(m, "passwd"));
        assert_false(path_exists("%s/passwd", dump_path(d)));
        assert_false(path_exists("%s/fifo", dump_path(d)));
        assert_true(path_exists("/etc/passwd"));
        assert_true(json_object_object_get_ex(m, "errors", &errors));
        assert_int_equal(json_object_array_length(errors), 2);
        assert_string_equal(json_str(json_object_array_get_idx(errors, 0), "error"),
                            "removed: not a regular file");
        assert_true(asprintf(&p, "%s/core.4242", dump_path(d)) > 0);
        assert_int_equal(mode_of(p), 0600);
        json_object_put(m);
}

static void test_dump_names_and_arguments(void **state)
{
        struct fixture *f = *state;
        struct dump_store *s = open_store(f, NULL);
        _cleanup_(dump_freep) struct dump *a = NULL;
        _cleanup_(dump_freep) struct dump *b = NULL;
        struct dump *x = NULL;
        struct dump_file *file = NULL;
        static const char *const bad_services[] = {"",    ".",   "..",    ".hidden",
                                                   "a/b", "a b", "../etc"};
        static const char *const bad_events[] = {"", "w.arn", "a/b", "x y", ".x"};
        static const char *const bad_files[] = {"", ".x", "../x", "a/b", "manifest.json"};

        for (size_t i = 0; i < ELEMENTSOF(bad_services); i++)
                assert_int_equal(dump_begin(s, bad_services[i], "warn", T0, 0, &x), -EINVAL);
        for (size_t i = 0; i < ELEMENTSOF(bad_events); i++)
                assert_int_equal(dump_begin(s, "svc", bad_events[i], T0, 0, &x), -EINVAL);
        assert_null(x);

        /* Two dumps in the same second for the same event. */
        assert_int_equal(dump_begin(s, "svc.v2", "oom_kill", T0, 0, &a), 0);
        assert_int_equal(dump_begin(s, "svc.v2", "oom_kill", T0, 0, &b), 0);
        assert_string_equal(dump_name(a), "20240501T123456Z-oom_kill");
        assert_string_equal(dump_name(b), "20240501T123456Z-oom_kill-2");

        for (size_t i = 0; i < ELEMENTSOF(bad_files); i++)
                assert_int_equal(dump_file_open(a, bad_files[i], "x", &file), -EINVAL);
        assert_int_equal(dump_write_file(a, "status.1", "status", "x", 1), 0);
        assert_int_equal(dump_file_open(a, "status.1", "status", &file), -EEXIST);
        assert_null(file);

        /* An uncommitted dump leaves nothing behind. */
        assert_true(path_exists("%s", dump_tmp_path(b)));
        {
                _cleanup_free_ char *tmp = strdup(dump_tmp_path(b));
                b = dump_free(b);
                assert_false(path_exists("%s", tmp));
        }
}

static void test_store_open_removes_leftovers(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *cmd = NULL;

        assert_int_equal(mkdir(f->state, 0700), 0);
        assert_true(asprintf(&cmd,
                             "mkdir -p %1$s/dumps/svc/.20240501T123456Z-warn.tmp/sub "
                             "%1$s/dumps/svc/20240501T120000Z-warn && "
                             "touch %1$s/dumps/svc/.20240501T123456Z-warn.tmp/sub/x "
                             "%1$s/dumps/svc/20240501T120000Z-warn/manifest.json",
                             f->state) > 0);
        assert_int_equal(system(cmd), 0);

        open_store(f, NULL);
        assert_false(path_exists("%s/dumps/svc/.20240501T123456Z-warn.tmp", f->state));
        assert_true(path_exists("%s/dumps/svc/20240501T120000Z-warn/manifest.json", f->state));
}

/* Commit a dump at t with a file of size bytes. */
static void make_dump(struct dump_store *s, const char *service, uint64_t t, size_t size)
{
        _cleanup_(dump_freep) struct dump *d = NULL;
        _cleanup_free_ char *data = calloc(1, size + 1);

        assert_non_null(data);
        assert_int_equal(dump_begin(s, service, "warn", t, 0, &d), 0);
        assert_int_equal(dump_write_file(d, "data", "test", data, size), 0);
        assert_int_equal(dump_commit(d, t), 0);
}

static char **list(struct dump_store *s, const char *service, int expect)
{
        char **names = NULL;

        assert_int_equal(dump_store_list(s, service, &names), expect);
        return names;
}

static void test_retention_by_count(void **state)
{
        struct fixture *f = *state;
        struct dumps_limits limits = {.max_count = 3};
        struct dump_store *s = open_store(f, &limits);
        char **names;

        for (int i = 0; i < 5; i++)
                make_dump(s, "svc", T0 + (uint64_t)i * USEC_PER_MINUTE, 10);
        make_dump(s, "other", T0, 10);

        names = list(s, "svc", 3);
        assert_string_equal(names[0], "20240501T123656Z-warn");
        assert_string_equal(names[2], "20240501T123856Z-warn");
        assert_null(names[3]);
        for (char **n = names; *n; n++)
                free(*n);
        free(names);
        /* Retention is per service. */
        names = list(s, "other", 1);
        free(names[0]);
        free(names);
}

static void test_retention_by_bytes(void **state)
{
        struct fixture *f = *state;
        struct dumps_limits limits = {.max_bytes = 25 * 1024};
        struct dump_store *s = open_store(f, &limits);
        char **names;

        /* 10 KiB and a manifest each: two fit in 25 KiB, three do not. */
        for (int i = 0; i < 4; i++)
                make_dump(s, "svc", T0 + (uint64_t)i * USEC_PER_SEC, 10 * 1024);
        names = list(s, "svc", 2);
        assert_string_equal(names[0], "20240501T123458Z-warn");
        assert_string_equal(names[1], "20240501T123459Z-warn");
        free(names[0]);
        free(names[1]);
        free(names);

        /* The newest is kept even when it alone is over the limit. */
        make_dump(s, "svc", T0 + 10 * USEC_PER_SEC, 30 * 1024);
        names = list(s, "svc", 1);
        assert_string_equal(names[0], "20240501T123506Z-warn");
        free(names[0]);
        free(names);
}

static void test_retention_by_age(void **state)
{
        struct fixture *f = *state;
        struct dumps_limits limits = {.max_age_usec = 2 * DAY};
        struct dump_store *s = open_store(f, &limits);
        char **names;

        make_dump(s, "svc", T0 - 5 * DAY, 10);
        make_dump(s, "svc", T0 - 3 * DAY, 10);
        /* Each commit applies retention at its own time: 4 days old is too old. */
        make_dump(s, "svc", T0 - 1 * DAY, 10);
        names = list(s, "svc", 2);
        assert_string_equal(names[0], "20240428T123456Z-warn");
        free(names[0]);
        free(names[1]);
        free(names);
        /* Not a dump: left alone. */
        assert_true(path_exists("%s/dumps/svc", f->state));
        {
                _cleanup_free_ char *p = NULL;
                assert_true(asprintf(&p, "%s/dumps/svc/notes", f->state) > 0);
                assert_int_equal(mkdir(p, 0700), 0);
        }

        assert_int_equal(dump_store_prune(s, "svc", T0), 1);
        names = list(s, "svc", 1);
        assert_string_equal(names[0], "20240430T123456Z-warn");
        free(names[0]);
        free(names);
        assert_true(path_exists("%s/dumps/svc/notes", f->state));

        /* Much later, the newest still stays. */
        assert_int_equal(dump_store_prune(s, "svc", T0 + 30 * DAY), 0);
        names = list(s, "svc", 1);
        free(names[0]);
        free(names);
}

static void test_free_space_floor(void **state)
{
        struct fixture *f = *state;
        struct dumps_limits limits = {.min_free_bytes = (uint64_t)1 << 30, .min_free_permille = 50};
        struct dump_store *s = open_store(f, &limits);
        struct fake_fs fs = {.total = (uint64_t)10 << 30, .avail = (uint64_t)3 << 30};
        struct dump *d = NULL;
        uint64_t room = 0, floor = 0;
        char **names;

        dump_store_set_statvfs(s, fake_statvfs, &fs);
        assert_int_equal(dump_store_room(s, &room, &floor), 0);
        assert_int_equal(floor, (uint64_t)1 << 30);
        assert_int_equal(room, (uint64_t)2 << 30);

        /* 2 GiB above the floor: a capture that may write 3 GiB is refused, 1 GiB is not. */
        assert_int_equal(dump_begin(s, "svc", "warn", T0, (uint64_t)3 << 30, &d), -ENOSPC);
        assert_null(d);
        assert_false(path_exists("%s/dumps/svc/.20240501T123456Z-warn.tmp", f->state));
        assert_int_equal(dump_begin(s, "svc", "warn", T0, (uint64_t)1 << 30, &d), 0);
        d = dump_free(d);

        /* Below the floor, nothing at all; the floor is also 5% of a large disk. */
        fs.avail = (uint64_t)512 << 20;
        assert_int_equal(dump_begin(s, "svc", "warn", T0, 0, &d), -ENOSPC);
        fs.total = (uint64_t)100 << 30;
        fs.avail = (uint64_t)4 << 30;
        assert_int_equal(dump_store_room(s, &room, &floor), 0);
        assert_int_equal(floor, (uint64_t)5 << 30);
        assert_int_equal(room, 0);
        assert_int_equal(dump_begin(s, "svc", "warn", T0, 1, &d), -ENOSPC);
        assert_null(d);
        names = list(s, "svc", 0);
        assert_null(names[0]);
        free(names);
}

/*
 * The default floor, the larger of 64 MiB and 1% of the filesystem: a small disk with room
 * for a capture takes it; a large one keeps 1%.
 */
static void test_default_free_space_floor(void **state)
{
        struct fixture *f = *state;
        struct dump_store *s = open_store(f, NULL);
        struct fake_fs fs = {.total = (uint64_t)2 << 30, .avail = (uint64_t)300 << 20};
        struct dump *d = NULL;
        uint64_t room = 0, floor = 0;

        dump_store_set_statvfs(s, fake_statvfs, &fs);
        /* 2 GiB, 300 MiB of it free: 64 MiB kept, a capture of up to 236 MiB goes ahead */
        assert_int_equal(dump_store_room(s, &room, &floor), 0);
        assert_int_equal(floor, (uint64_t)64 << 20);
        assert_int_equal(room, (uint64_t)236 << 20);
        assert_int_equal(dump_begin(s, "svc", "warn", T0, (uint64_t)100 << 20, &d), 0);
        d = dump_free(d);
        assert_int_equal(dump_begin(s, "svc", "warn", T0, (uint64_t)237 << 20, &d), -ENOSPC);
        assert_null(d);

        /* 100 GiB: 1% (1 GiB) is kept */
        fs.total = (uint64_t)100 << 30;
        fs.avail = (uint64_t)3 << 30;
        assert_int_equal(dump_store_room(s, &room, &floor), 0);
        assert_int_equal(floor, (uint64_t)1 << 30);
        assert_int_equal(room, fs.avail - floor);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_dump_layout_is_atomic, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dump_adopts_collector_output_and_removes_links,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_dump_names_and_arguments, setup, teardown),
                cmocka_unit_test_setup_teardown(test_store_open_removes_leftovers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_retention_by_count, setup, teardown),
                cmocka_unit_test_setup_teardown(test_retention_by_bytes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_retention_by_age, setup, teardown),
                cmocka_unit_test_setup_teardown(test_free_space_floor, setup, teardown),
                cmocka_unit_test_setup_teardown(test_default_free_space_floor, setup, teardown),
        };

        log_set_max_level(LOG_ERR);
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Open incidents in a temporary state dir: saved, found only for the same service, cgroup
 * and inode, replaced by a newer bundle, removed, and an unreadable file taken as none.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
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

#include "memgov/incident.h"

struct fixture {
        char state[PATH_MAX];
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        strcpy(f->state, "/tmp/memgov-test-incident-open.XXXXXX");
        assert_non_null(mkdtemp(f->state));
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        nftw(f->state, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

static void test_incident_open_find_none(void **state)
{
        struct fixture *f = *state;
        char *b = NULL;

        /* No incidents directory at all. */
        assert_int_equal(incident_open_find(f->state, "svc", "a.slice/x.service", 7, &b), 0);
        assert_null(b);
        assert_int_equal(incident_open_remove(f->state, "a.slice/x.service"), 0);
}

static void test_incident_open_save_find_matching_only(void **state)
{
        struct fixture *f = *state;
        char *b = NULL;

        assert_int_equal(incident_open_save(f->state, "svc", "a.slice/x.service", 7,
                                            "/s/dumps/svc/20261204T150000Z-incident-critical"),
                         0);
        assert_int_equal(incident_open_find(f->state, "svc", "a.slice/x.service", 7, &b), 1);
        assert_string_equal(b, "/s/dumps/svc/20261204T150000Z-incident-critical");
        free(b);
        b = NULL;
        /* A cgroup made anew (another inode), another service, another cgroup: not it. */
        assert_int_equal(incident_open_find(f->state, "svc", "a.slice/x.service", 8, &b), 0);
        assert_int_equal(incident_open_find(f->state, "other", "a.slice/x.service", 7, &b), 0);
        assert_int_equal(incident_open_find(f->state, "svc", "a.slice/y.service", 7, &b), 0);
        assert_null(b);
        /* ret_bundle may be NULL. */
        assert_int_equal(incident_open_find(f->state, "svc", "a.slice/x.service", 7, NULL), 1);
}

static void test_incident_open_save_replaces_older(void **state)
{
        struct fixture *f = *state;
        char *b = NULL;

        assert_int_equal(incident_open_save(f->state, "svc", "x", 7, "/d/one"), 0);
        assert_int_equal(incident_open_save(f->state, "svc", "x", 9, "/d/two"), 0);
        assert_int_equal(incident_open_find(f->state, "svc", "x", 7, &b), 0);
        assert_int_equal(incident_open_find(f->state, "svc", "x", 9, &b), 1);
        assert_string_equal(b, "/d/two");
        free(b);
}

static void test_incident_open_remove_then_none(void **state)
{
        struct fixture *f = *state;

        assert_int_equal(incident_open_save(f->state, "svc", "x", 7, "/d/one"), 0);
        assert_int_equal(incident_open_remove(f->state, "x"), 1);
        assert_int_equal(incident_open_find(f->state, "svc", "x", 7, NULL), 0);
        assert_int_equal(incident_open_remove(f->state, "x"), 0);
}

static void test_incident_open_unreadable_is_none(void **state)
{
        struct fixture *f = *state;
        char path[PATH_MAX * 2];
        static const char *const bad[] = {
                "",
                "{",
                "[]",
                "{\"service\":\"svc\",\"cgroup\":\"x\",\"inode\":\"7\",\"bundle\":\"/d\"}",
                "{\"service\":\"svc\",\"cgroup\":\"x\",\"inode\":7}",
                "{\"service\":1,\"cgroup\":\"x\",\"inode\":7,\"bundle\":\"/d\"}",
        };

        assert_int_equal(incident_open_save(f->state, "svc", "x", 7, "/d/one"), 0);
        snprintf(path, sizeof(path), "%s/%s/x.json", f->state, INCIDENT_OPEN_SUBDIR);
        assert_int_equal(access(path, F_OK), 0); /* named as the restore records are */
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
                FILE *fp = fopen(path, "we");
                assert_non_null(fp);
                fputs(bad[k], fp);
                assert_int_equal(fclose(fp), 0);
                assert_int_equal(incident_open_find(f->state, "svc", "x", 7, NULL), 0);
        }
}

static void test_incident_open_invalid_arguments(void **state)
{
        struct fixture *f = *state;

        assert_int_equal(incident_open_save(NULL, "svc", "x", 7, "/d"), -EINVAL);
        assert_int_equal(incident_open_save(f->state, "svc", "x", 7, NULL), -EINVAL);
        assert_int_equal(incident_open_save(f->state, "svc", "", 7, "/d"), -EINVAL);
        assert_int_equal(incident_open_find(f->state, NULL, "x", 7, NULL), -EINVAL);
        assert_int_equal(incident_open_remove(NULL, "x"), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_incident_open_find_none, setup, teardown),
                cmocka_unit_test_setup_teardown(test_incident_open_save_find_matching_only, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_incident_open_save_replaces_older, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_incident_open_remove_then_none, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_incident_open_unreadable_is_none, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_incident_open_invalid_arguments, setup,
                                                teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

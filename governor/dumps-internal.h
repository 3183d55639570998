/* SPDX-License-Identifier: MIT */
/*
 * The dump store's internals, shared by governor/dumps.c (the store, dumps and their
 * files), dumps-commit.c (adopting collector output, the manifest, the rename) and
 * dumps-fs.c (file-system helpers and retention). Not a public interface.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memgov/dumps.h"

#define DUMP_WALK_DEPTH_MAX  8
#define DUMP_ENTRIES_MAX     4096
#define DUMP_NAME_SUFFIX_MAX 100

struct dump_store {
        char *path; /* <state>/dumps */
        int fd;
        struct dumps_limits limits;
        dumps_statvfs_fn statvfs_fn;
        void *statvfs_userdata;
};

struct dump_error {
        char *what;
        char *message;
};

struct dump {
        struct dump_store *store;
        char *service;
        char *name;     /* final */
        char *tmp_name; /* .<name>.tmp */
        char *path;
        char *tmp_path;
        int service_fd;
        int fd;
        uint64_t realtime_usec;
        char *event;
        struct dump_entry *entries;
        size_t n_entries;
        struct dump_error *errors;
        size_t n_errors;
        bool committed;
};

struct dump_file {
        int fd;
        char *name;
        char *tmp_name;
        char *kind;
};

/* [A-Za-z0-9_-] (and '.' when allow_dot), 1..max characters, not starting with '.'. */
bool dumps_name_valid(const char *s, size_t max, bool allow_dot);
int dumps_fsync_dirfd(int fd);
/* Open parent_fd/name as a directory (0700), creating it when missing; never via a link. */
int dumps_open_or_make_dir(int parent_fd, const char *name, int *ret_fd);
/* Remove parent_fd/name and everything under it, following no link. */
int dumps_rm_rf_at(int parent_fd, const char *name, unsigned depth);
/* Bytes in the regular files under parent_fd/name. */
uint64_t dumps_size_at(int parent_fd, const char *name, unsigned depth);
/* The time at the head of a dump name, in µs of the epoch; -EINVAL if it is no dump name. */
int dumps_name_time(const char *name, uint64_t *ret_usec);
int dumps_sha256_fd(int fd, char hex[65], uint64_t *ret_size);
const struct dump_entry *dumps_entry_find(const struct dump *d, const char *name);
/* Hash the file at fd and list it in the manifest as name. */
int dumps_entry_add(struct dump *d, int fd, const char *name, const char *kind, const char *error);
void dumps_entry_clear(struct dump_entry *e);
int dumps_cmp_str(const void *a, const void *b);

/* SPDX-License-Identifier: MIT */
/*
 * The capture effect's internals, shared by governor/capture.c (the HTTP queue, finishing,
 * the public entry points) and capture-collect.c (collector commands and the built-in
 * snapshots). Not a public interface.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "memgov/capture.h"

/* One HTTP request of the queue. */
struct http_job {
        enum pprof_kind kind;
        bool text;
        char *url;
        const char *file;      /* static */
        const char *file_kind; /* static, for the manifest */
        uint64_t timeout_usec;
        uint64_t max_bytes;
};

/* One command of the queue, argv already expanded. */
struct cmd_job {
        char **argv;
        char *path;  /* resolved executable */
        char *label; /* file prefix, e.g. "collector0-gcore.4242" */
        uint64_t timeout_usec;
};

struct capture {
        sd_event *event;
        struct http_client *http;
        struct dump_store *store;
        struct dump *dump;
        capture_done_fn cb;
        void *userdata;
        char *service;
        char *base_dir;
        size_t top_n;
        uint64_t start_usec;
        size_t n_failed;

        struct http_job *jobs;
        size_t n_jobs, next_job;
        struct http_request *request; /* running */
        struct dump_file *request_file;

        struct cmd_job *cmds;
        size_t n_cmds, next_cmd;
        pid_t child_pid; /* running; 0: none */
        sd_event_source *child_source;
        sd_event_source *deadline;
        struct dump_file *child_out, *child_err;
        bool child_killed;

        sd_event_source *defer; /* checks whether all is done, after capture_start() */
        bool finished;
};

/* Finish on a later loop iteration once both queues are empty (never inside capture_start()). */
void capture_maybe_finish(struct capture *c);
/* "10s", "300ms" */
void capture_format_duration(char *buf, size_t n, uint64_t usec);

/* Kill the running command's process group, drop its sources and unfinished output. */
void capture_child_stop(struct capture *c);
/* Start the next command, or note that the command queue is done. */
void capture_cmd_next(struct capture *c);
/* Expand and resolve the request's collectors into the command queue. */
int capture_plan_cmds(struct capture *c, const struct capture_request *req, const pid_t *pids,
                      size_t n_pids);
/* cgroup.procs, memory.stat, and smaps_rollup and status of each pid, into the dump. */
int capture_builtin_snapshots(struct capture *c, const struct capture_request *req,
                              const pid_t *pids, size_t n_pids);

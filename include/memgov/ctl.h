/* SPDX-License-Identifier: MIT */
/*
 * memgovctl's subcommands. Each lives in governor/ctl-<name>.c, takes the arguments after
 * the subcommand name (argv[0] is the subcommand) and returns the process exit status:
 * 0 success, 1 a problem the user can fix (said on stderr), 2 a usage error.
 */
#pragma once

#include <stdio.h>

struct policy;
struct trace;

struct ctl_command {
        const char *name;
        const char *synopsis; /* one line for the overview */
        int (*run)(int argc, char *argv[]);
};

/* The subcommands, in the order `memgovctl --help` lists them; NULL-name terminated. */
extern const struct ctl_command ctl_commands[];

int ctl_check_policy(int argc, char *argv[]);
int ctl_record(int argc, char *argv[]);
int ctl_run(int argc, char *argv[]);
int ctl_replay(int argc, char *argv[]);
int ctl_report(int argc, char *argv[]);
int ctl_status(int argc, char *argv[]);
int ctl_dump(int argc, char *argv[]);
int ctl_reload(int argc, char *argv[]);
int ctl_capture(int argc, char *argv[]);
int ctl_restore(int argc, char *argv[]);

/* What ctl_load_policy_and_trace() needs of a subcommand's command line. */
struct ctl_inputs {
        const char *command; /* "replay", for messages */
        int argc;            /* the subcommand's, and getopt's optind after parsing */
        char **argv;
        int optind;
        const char *policy_path; /* --policy, NULL if not given */
        void (*help)(FILE *f);   /* printed after a usage error */
};

/*
 * For subcommands that take --policy FILE and one TRACE.csv (argv[optind]): check that
 * both were given, then load both. Problems are said on stderr, a usage error with the
 * help. Returns 0 with *ret_policy and *ret_trace set, else the exit status (1 or 2).
 */
int ctl_load_policy_and_trace(const struct ctl_inputs *in, struct policy **ret_policy,
                              struct trace **ret_trace);

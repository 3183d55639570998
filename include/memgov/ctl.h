/* SPDX-License-Identifier: MIT */
/*
 * memgovctl's subcommands. Each lives in governor/ctl-<name>.c, takes the arguments after
 * the subcommand name (argv[0] is the subcommand) and returns the process exit status:
 * 0 success, 1 a problem the user can fix (said on stderr), 2 a usage error.
 */
#pragma once

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

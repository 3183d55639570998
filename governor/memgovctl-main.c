/* SPDX-License-Identifier: MIT */
/* memgovctl: the command-line face of memgov (check, record, replay, status, …). */
#include <stdio.h>
#include <string.h>

#include "memgov/ctl.h"

const struct ctl_command ctl_commands[] = {
        {"check-policy", "FILE...  validate policy files", ctl_check_policy},
        {"record", "--cgroup PATH -o FILE.csv  record a trace", ctl_record},
        {"run", "[OPTIONS] -- CMD...  run CMD in a new cgroup", ctl_run},
        {"replay", "--policy FILE [--json] TRACE.csv  replay a trace offline", ctl_replay},
        {"report", "--policy FILE -o FILE.html TRACE.csv  replay a trace into an HTML report",
         ctl_report},
        {"status", "[--json]  what the running memgovd governs now", ctl_status},
        {"dump", "SERVICE  ask memgovd to capture SERVICE now", ctl_dump},
        {"reload", "ask memgovd to reload its config and policies", ctl_reload},
        {"capture", "--url URL --service NAME  capture Go profiles into a dump now", ctl_capture},
        {"restore", "SERVICE|--all  put back the memory.high memgovd changed", ctl_restore},
        {NULL, NULL, NULL},
};

static void help(FILE *f)
{
        fprintf(f, "Usage: memgovctl COMMAND [OPTIONS...]\n\nCommands:\n");
        for (const struct ctl_command *c = ctl_commands; c->name; c++)
                fprintf(f, "  %-14s %s\n", c->name, c->synopsis);
        fprintf(f, "\nExample:\n  memgovctl check-policy /etc/memgov/policies.d/*.json\n"
                   "\n'memgovctl COMMAND --help' shows a command's options.\n");
}

int main(int argc, char *argv[])
{
        if (argc < 2) {
                help(stderr);
                return 2;
        }
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
            strcmp(argv[1], "help") == 0) {
                help(stdout);
                return 0;
        }
        if (strcmp(argv[1], "--version") == 0) {
                printf("memgovctl %s\n", MEMGOV_VERSION);
                return 0;
        }
        for (const struct ctl_command *c = ctl_commands; c->name; c++)
                if (strcmp(c->name, argv[1]) == 0)
                        return c->run(argc - 1, argv + 1);
        fprintf(stderr, "memgovctl: unknown command '%s'; see 'memgovctl --help'\n", argv[1]);
        return 2;
}

/* SPDX-License-Identifier: MIT */
/*
 * Without libFuzzer (a GCC build): run a fuzz target over its seed corpus once, so that
 * every input that ever found a bug stays a regression test in every build.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int run_file(const char *path)
{
        FILE *f = fopen(path, "re");
        uint8_t *buf;
        long n;

        if (!f) {
                fprintf(stderr, "%s: cannot open\n", path);
                return -1;
        }
        if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0) {
                fclose(f);
                return -1;
        }
        rewind(f);
        buf = malloc((size_t)n + 1); /* +1: malloc(0) may return NULL */
        if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                fclose(f);
                fprintf(stderr, "%s: cannot read\n", path);
                return -1;
        }
        fclose(f);
        (void)LLVMFuzzerTestOneInput(buf, (size_t)n);
        free(buf);
        return 0;
}

int main(int argc, char **argv)
{
        size_t n = 0;

        for (int i = 1; i < argc; i++) {
                struct stat st;
                DIR *d;
                struct dirent *de;

                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: no such file or directory\n", argv[i]);
                        return 1;
                }
                if (!S_ISDIR(st.st_mode)) {
                        if (run_file(argv[i]) < 0)
                                return 1;
                        n++;
                        continue;
                }
                d = opendir(argv[i]);
                if (!d)
                        return 1;
                while ((de = readdir(d))) {
                        char path[4096];

                        if (de->d_name[0] == '.')
                                continue;
                        snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
                        if (run_file(path) < 0) {
                                closedir(d);
                                return 1;
                        }
                        n++;
                }
                closedir(d);
        }
        if (n == 0) {
                fprintf(stderr, "no inputs\n");
                return 1;
        }
        printf("%zu inputs ran\n", n);
        return 0;
}

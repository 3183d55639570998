/* SPDX-License-Identifier: MIT */
/* User-facing diagnostics gathered by policy validation and trace reading. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "memgov/diag.h"

int diag_add(struct diag *d, const char *fmt, ...)
{
        char *line = NULL;
        va_list ap;

        va_start(ap, fmt);
        int r = vasprintf(&line, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;

        char **lines = realloc(d->lines, (d->n_lines + 1) * sizeof(char *));
        if (!lines) {
                free(line);
                return -ENOMEM;
        }
        lines[d->n_lines++] = line;
        d->lines = lines;
        return 0;
}

void diag_print(const struct diag *d, FILE *f)
{
        for (size_t i = 0; i < d->n_lines; i++)
                fprintf(f, "%s\n", d->lines[i]);
}

void diag_clear(struct diag *d)
{
        for (size_t i = 0; i < d->n_lines; i++)
                free(d->lines[i]);
        free(d->lines);
        d->lines = NULL;
        d->n_lines = 0;
}

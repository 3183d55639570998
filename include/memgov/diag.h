/* SPDX-License-Identifier: MIT */
/*
 * Diagnostics for the user: a list of "FILE: PATH: message" lines gathered while validating
 * policies or reading traces, so that every problem is reported at once, not just the first.
 */
#pragma once

#include <stddef.h>

#include "memgov/macro.h"

struct diag {
        char **lines; /* owned, each malloc'ed */
        size_t n_lines;
};

/*
 * Append one line formatted like printf. On allocation failure the line is lost and
 * -ENOMEM returned; the lines already held stay valid. Returns 0 otherwise.
 */
int diag_add(struct diag *d, const char *fmt, ...) _printf_(2, 3);

/* Print every line, each followed by '\n', to f. */
void diag_print(const struct diag *d, FILE *f);

/* Free the lines and reset *d to empty. Accepts an empty or zeroed diag. */
void diag_clear(struct diag *d);

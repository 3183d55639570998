/* SPDX-License-Identifier: MIT */
/* Shared by the parser fuzz targets: libFuzzer's entry point and a NUL-terminated copy. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The parsers take C strings; the fuzzer's bytes are not terminated. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
        char *s = malloc(size + 1);

        if (!s)
                abort();
        memcpy(s, data, size);
        s[size] = '\0';
        return s;
}

/* A contract violation: crash so that the fuzzer keeps the input. */
#define fuzz_check(cond)                                                                           \
        do {                                                                                       \
                if (!(cond))                                                                       \
                        abort();                                                                   \
        } while (0)

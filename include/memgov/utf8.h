/* SPDX-License-Identifier: MIT */
/*
 * UTF-8 validation for writers of text formats that must be valid UTF-8 (Prometheus text,
 * JSON): cgroup names and other strings from the system may hold any bytes.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The UTF-8 of U+FFFD REPLACEMENT CHARACTER, written in place of an invalid byte. */
#define UTF8_REPLACEMENT "\xef\xbf\xbd"

/*
 * The length (1..4) of the valid UTF-8 sequence at s, or 0 when the byte at s does not
 * start one: a stray continuation byte, a truncated sequence (the NUL stops it), an
 * overlong form, a surrogate or a code point above U+10FFFF. s must not be at its NUL.
 */
static inline size_t utf8_valid_len(const unsigned char *s)
{
        uint32_t cp;
        size_t n;

        if (s[0] < 0x80)
                return 1;
        if ((s[0] & 0xe0) == 0xc0) {
                n = 2;
                cp = s[0] & 0x1fu;
        } else if ((s[0] & 0xf0) == 0xe0) {
                n = 3;
                cp = s[0] & 0x0fu;
        } else if ((s[0] & 0xf8) == 0xf0) {
                n = 4;
                cp = s[0] & 0x07u;
        } else
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3fu);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000))
                return 0;
        if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
                return 0;
        return n;
}

/* SPDX-License-Identifier: MIT */
/*
 * Notify stage under fuzzing: a webhook secret file's content (webhook_key_from_secret(),
 * "whsec_<base64>" or raw bytes) and the signature made with the key it gives.
 */
#include <errno.h>

#include "fuzz.h"
#include "memgov/macro.h"
#include "memgov/webhook.h"

static bool is_space(uint8_t c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ uint8_t *key = NULL;
        _cleanup_free_ char *sig = NULL;
        size_t key_size = 0, start = 0, end = size;
        int r;

        while (start < end && is_space(data[start]))
                start++;
        while (end > start && is_space(data[end - 1]))
                end--;

        r = webhook_key_from_secret(data, size, &key, &key_size);
        fuzz_check(r == 0 || r == -EINVAL || r == -ENOMEM);
        if (r < 0) {
                fuzz_check(!key && key_size == 0);
                /* only an empty secret or a broken whsec_ one is refused */
                fuzz_check(start == end || r == -ENOMEM ||
                           (end - start >= 6 && memcmp(data + start, "whsec_", 6) == 0));
                return 0;
        }
        fuzz_check(key && key_size > 0);
        if (end - start >= 6 && memcmp(data + start, "whsec_", 6) == 0)
                /* base64: 3 bytes for every 4 characters, less the padding */
                fuzz_check(key_size <= (end - start - 6) / 4 * 3 &&
                           key_size + 2 >= (end - start - 6) / 4 * 3);
        else
                fuzz_check(key_size == end - start && memcmp(key, data + start, key_size) == 0);

        r = webhook_sign(key, key_size, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", 1714564800, data, size,
                         &sig);
        fuzz_check(r == 0 || r == -ENOMEM);
        if (r == 0) /* "v1," and the base64 of 32 bytes */
                fuzz_check(strlen(sig) == 3 + 44 && strncmp(sig, "v1,", 3) == 0);
        return 0;
}

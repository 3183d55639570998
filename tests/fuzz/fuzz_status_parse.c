/* SPDX-License-Identifier: MIT */
/*
 * Export under fuzzing: what `memgovctl status` reads back from the daemon's socket — the
 * status document (status_parse_json()) and the API's answer objects
 * (status_parse_message()). A document that parses must print as a table, and writing it
 * out again must give a document that reads back to the same thing (after one round, the
 * JSON is a fixed point).
 */
#include <errno.h>
#include <stdio.h>

#include "fuzz.h"
#include "memgov/macro.h"
#include "memgov/status.h"

static char *write_doc(const struct status_doc *doc, size_t *ret_len)
{
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        int r;

        fuzz_check(f);
        r = status_write_json(f, &doc->daemon, doc->instances, doc->n_instances);
        fuzz_check(fclose(f) == 0);
        fuzz_check(r == 0);
        *ret_len = len;
        return out;
}

static void check_table(const struct status_doc *doc)
{
        _cleanup_free_ char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);

        fuzz_check(f);
        fuzz_check(status_format_table(f, doc, false) == 0);
        fuzz_check(status_format_table(f, doc, true) == 0);
        fuzz_check(fclose(f) == 0);
}

static void check_message(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *text = NULL;
        bool ok = false;
        int r = status_parse_message((const char *)data, size, &ok, &text);

        fuzz_check(r == 0 || r == -EINVAL || r == -ENOMEM);
        fuzz_check(r == 0 ? text != NULL : text == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_(status_doc_freep) struct status_doc *doc = NULL, *again = NULL, *third = NULL;
        _cleanup_free_ char *error = NULL, *out = NULL, *out2 = NULL;
        size_t len = 0, len2 = 0;
        int r;

        check_message(data, size);

        r = status_parse_json((const char *)data, size, &doc, &error);
        fuzz_check(r == 0 || r == -EINVAL || r == -ENOMEM);
        if (r < 0) {
                fuzz_check(!doc && (error || r == -ENOMEM));
                return 0;
        }
        fuzz_check(doc->schema == STATUS_SCHEMA);
        fuzz_check(doc->n_instances == 0 || doc->instances);
        for (size_t i = 0; i < doc->n_instances; i++) {
                fuzz_check(doc->instances[i].service && doc->instances[i].cgroup);
                fuzz_check(level_to_string(doc->instances[i].level));
        }
        check_table(doc);

        out = write_doc(doc, &len);
        r = status_parse_json(out, len, &again, NULL);
        fuzz_check(r == 0);
        fuzz_check(again->n_instances == doc->n_instances);
        out2 = write_doc(again, &len2);
        r = status_parse_json(out2, len2, &third, NULL);
        fuzz_check(r == 0);
        free(out);
        out = write_doc(third, &len);
        fuzz_check(len == len2 && memcmp(out, out2, len) == 0);
        return 0;
}

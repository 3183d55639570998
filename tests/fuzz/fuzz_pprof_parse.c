/* SPDX-License-Identifier: MIT */
/*
 * Capture stage under fuzzing: Go's text profiles as a pprof endpoint serves them
 * (pprof_parse()), and the leak-suspect ranking and summary made from them. An endpoint
 * may answer anything; the parser must stay within the bounds its header promises.
 *
 * An input with a NUL byte is two profiles, base and current, ranked against each other.
 */
#include <errno.h>
#include <json-c/json.h>

#include "fuzz.h"
#include "memgov/macro.h"
#include "memgov/pprof.h"

static void check_profile(const struct pprof_profile *p)
{
        fuzz_check(p->kind == PPROF_TEXT_GOROUTINE || p->kind == PPROF_TEXT_HEAP);
        fuzz_check(pprof_text_kind_to_string(p->kind));
        fuzz_check(p->n_stacks <= PPROF_STACKS_MAX);
        fuzz_check(p->n_stacks == 0 || p->stacks);
        fuzz_check(p->n_dropped_stacks == 0 || p->n_stacks == PPROF_STACKS_MAX);
        for (size_t i = 0; i < p->n_stacks; i++) {
                const struct pprof_stack *s = &p->stacks[i];
                const struct pprof_frame *site = pprof_stack_site(s);

                fuzz_check(s->n_frames <= PPROF_FRAMES_MAX);
                fuzz_check(!s->truncated || s->n_frames == PPROF_FRAMES_MAX);
                fuzz_check(s->n_frames == 0 ? !site
                                            : site >= s->frames && site < s->frames + s->n_frames);
                if (p->kind == PPROF_TEXT_GOROUTINE)
                        fuzz_check(s->bytes == 0 && s->alloc_bytes == 0);
                for (size_t k = 0; k < s->n_frames; k++) {
                        fuzz_check(s->frames[k].function && s->frames[k].file);
                        fuzz_check(strlen(s->frames[k].function) <= PPROF_NAME_MAX);
                        fuzz_check(strlen(s->frames[k].file) <= PPROF_NAME_MAX);
                        (void)pprof_function_is_user(s->frames[k].function);
                }
        }
}

static void check_list(const struct suspect_list *l, size_t top_n, bool paired)
{
        fuzz_check(l->paired == paired);
        fuzz_check(l->n_items <= top_n);
        for (size_t i = 0; i < l->n_items; i++) {
                const struct suspect *s = &l->items[i];
                _cleanup_free_ char *text = suspect_format(s, l->paired);

                fuzz_check(s->function && s->file);
                fuzz_check(text);
                fuzz_check(s->n_stack == 0 || s->stack);
                if (paired) /* only sites that grew, best first */
                        fuzz_check(s->growth > 0 &&
                                   (i == 0 || s->growth <= l->items[i - 1].growth));
                else
                        fuzz_check(i == 0 || s->current <= l->items[i - 1].current);
        }
}

static void rank(const struct pprof_profile *base, const struct pprof_profile *current)
{
        _cleanup_(suspect_list_freep) struct suspect_list *l = NULL;
        int r;

        r = pprof_rank(base, current, 3, &l);
        if (base && base->kind != current->kind) {
                fuzz_check(r == -EINVAL);
                return;
        }
        fuzz_check(r == 0 || r == -ENOMEM);
        if (r == 0)
                check_list(l, 3, base != NULL);
}

static void summarize(const struct pprof_profile *base, const struct pprof_profile *current)
{
        _cleanup_(pprof_summary_freep) struct pprof_summary *s = NULL;
        struct pprof_summary_input in = {.base_dir = "base", .current_dir = "current", .top_n = 2};
        struct json_object *o;

        if (current->kind == PPROF_TEXT_HEAP) {
                in.heap_current = current;
                in.heap_base = base && base->kind == current->kind ? base : NULL;
        } else {
                in.goroutine_current = current;
                in.goroutine_base = base && base->kind == current->kind ? base : NULL;
        }
        if (pprof_summarize(&in, &s) < 0)
                return;
        fuzz_check(s->json);
        /* suspects.json is read by people's tools: it must be JSON whatever the names were */
        o = json_tokener_parse(s->json);
        fuzz_check(o);
        json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_(pprof_profile_freep) struct pprof_profile *base = NULL, *current = NULL;
        const uint8_t *nul = memchr(data, '\0', size);
        const char *buf = (const char *)data;
        int r;

        if (nul) {
                size_t n = (size_t)(nul - data);

                if (pprof_parse(buf, n, &base) == 0)
                        check_profile(base);
                buf += n + 1;
                size -= n + 1;
        }
        r = pprof_parse(buf, size, &current);
        fuzz_check(r == 0 || r == -EINVAL || r == -ENOMEM);
        if (r < 0) {
                fuzz_check(!current);
                return 0;
        }
        check_profile(current);
        rank(NULL, current);
        if (base)
                rank(base, current);
        summarize(base, current);
        return 0;
}

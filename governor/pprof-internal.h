/* SPDX-License-Identifier: MIT */
/*
 * Capture stage, analysis: the storage behind a parsed profile (governor/pprof.c), shared
 * with the ranking (governor/pprof-rank.c). Not a public interface.
 */
#pragma once

#include <stddef.h>

#include "memgov/pprof.h"

struct pprof_internal {
        char **strings; /* open-addressing set of interned names */
        size_t strings_cap, n_strings;
        struct pprof_stack *stacks;
        size_t stacks_cap, n_stacks;
        struct pprof_frame *frames; /* every stack's frames, back to back */
        size_t frames_cap, n_frames;
        size_t *frame_off; /* per stack: its first frame in frames */
        size_t frame_off_cap;
        size_t *index; /* open-addressing map: stack hash → stack; SIZE_MAX is empty */
        size_t index_cap;
};

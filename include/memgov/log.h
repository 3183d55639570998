/* SPDX-License-Identifier: MIT */
/*
 * Logging for the daemon and the effects (actuate, capture, notify, record, export): to the
 * journal with structured fields when stderr is connected to it (systemd sets
 * JOURNAL_STREAM), else to stderr as "PROGRAM: LEVEL: message". The pure modules (parse,
 * forecast, decide) do not log.
 *
 * Levels are syslog's (LOG_ERR … LOG_DEBUG from <syslog.h>). A message above the global
 * maximum level is dropped before it is formatted.
 */
#pragma once

#include <stdbool.h>
#include <syslog.h>

#include "memgov/macro.h"

/* Where messages go; LOG_TARGET_AUTO decides once, on the first message or log_open(). */
enum log_target {
        LOG_TARGET_AUTO,
        LOG_TARGET_JOURNAL,
        LOG_TARGET_STDERR,
};

/*
 * Decide the target now: the journal if $JOURNAL_STREAM ("DEV:INODE") names the file
 * stderr is connected to, as systemd documents for services, else stderr. Idempotent.
 */
void log_open(void);

/* Force a target (tests, or LOG_TARGET_AUTO to decide again). */
void log_set_target(enum log_target t);
enum log_target log_get_target(void);

/* The global maximum level (default LOG_INFO): messages with a higher value are dropped. */
void log_set_max_level(int level);
int log_get_max_level(void);

/*
 * A level from a name ("debug", "info", "notice", "warning", "err"/"error", "crit",
 * "alert", "emerg") or a number 0..7. Returns the level, or -EINVAL.
 */
int log_level_from_string(const char *s);
/* "debug", "info", …; NULL for a value outside 0..7. */
const char *log_level_to_string(int level);

/* One structured field: journal key (upper case, e.g. "MEMGOV_SERVICE") and value. */
struct log_field {
        const char *key;
        const char *value; /* NULL: the field is left out */
};

/*
 * A field list for log_struct(), terminated for you:
 *   LOG_FIELDS({"MEMGOV_SERVICE", svc}, {"MEMGOV_CGROUP", relpath})
 */
#define LOG_FIELDS(...) ((const struct log_field[]){__VA_ARGS__, {NULL, NULL}})

/*
 * The one entry point behind the macros below. Logs fmt (printf, "%m" is strerror(error)
 * when error != 0, else of errno) at level, with fields (may be NULL; terminated by a NULL
 * key) and the call site. Returns -abs(error), so that "return log_error_errno(r, …);"
 * reads naturally; 0 when error is 0. errno is preserved.
 */
int log_internal(int level, int error, const char *file, int line, const char *func,
                 const struct log_field *fields, const char *fmt, ...) _printf_(7, 8);

#define log_full_errno(level, error, ...)                                                          \
        log_internal(level, error, __FILE__, __LINE__, __func__, NULL, __VA_ARGS__)
#define log_full(level, ...) (void)log_full_errno(level, 0, __VA_ARGS__)

#define log_debug(...)   log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...)   log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(error, ...)   log_full_errno(LOG_DEBUG, error, __VA_ARGS__)
#define log_info_errno(error, ...)    log_full_errno(LOG_INFO, error, __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, error, __VA_ARGS__)
#define log_error_errno(error, ...)   log_full_errno(LOG_ERR, error, __VA_ARGS__)

/*
 * A message with structured fields: in the journal each field is its own key (so that
 * `journalctl MEMGOV_SERVICE=checkout` finds it); on stderr only the message is printed.
 *   log_struct(LOG_WARNING, LOG_FIELDS({"MEMGOV_SERVICE", svc}, {"MEMGOV_LEVEL", "warn"}),
 *              "%s: entered warn, ETA %s", svc, eta);
 */
#define log_struct(level, fields, ...)                                                             \
        (void)log_internal(level, 0, __FILE__, __LINE__, __func__, fields, __VA_ARGS__)
#define log_struct_errno(level, error, fields, ...)                                                \
        log_internal(level, error, __FILE__, __LINE__, __func__, fields, __VA_ARGS__)

/* SPDX-License-Identifier: MIT */
/* Logging for the daemon and the effects: the journal under systemd, stderr otherwise. */
#define SD_JOURNAL_SUPPRESS_LOCATION /* the call site comes from the log_*() macros */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "memgov/log.h"

/* Longer messages are cut: a log line is not the place for a whole file. */
#define LOG_MESSAGE_MAX  2048
#define LOG_FIELDS_MAX   16
#define LOG_FIXED_IOVECS 7 /* PRIORITY, MESSAGE, CODE_FILE, CODE_LINE, CODE_FUNC, ERRNO, ID */

static int max_level = LOG_INFO;
static enum log_target target = LOG_TARGET_AUTO;

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert",     [LOG_CRIT] = "crit",
        [LOG_ERR] = "error",   [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
};

/*
 * systemd sets JOURNAL_STREAM=DEV:INODE to the stream it connected stdout/stderr to. Only
 * when stderr is still that very file do we talk to the journal natively; a redirected
 * stderr (a shell in a unit, a test) keeps the plain text the user asked for.
 */
static bool stderr_is_journal(void)
{
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_open(void)
{
        if (target == LOG_TARGET_AUTO)
                target = stderr_is_journal() ? LOG_TARGET_JOURNAL : LOG_TARGET_STDERR;
}

void log_set_target(enum log_target t)
{
        target = t;
}

enum log_target log_get_target(void)
{
        return target;
}

void log_set_max_level(int level)
{
        max_level = LOG_PRI(level);
}

int log_get_max_level(void)
{
        return max_level;
}

int log_level_from_string(const char *s)
{
        if (!s || !*s)
                return -EINVAL;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        if (strcmp(s, "err") == 0)
                return LOG_ERR;
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (strcmp(level_names[i], s) == 0)
                        return (int)i;
        return -EINVAL;
}

const char *log_level_to_string(int level)
{
        if (level < 0 || (size_t)level >= ELEMENTSOF(level_names))
                return NULL;
        return level_names[level];
}

static void write_journal(int level, int error, const char *file, int line, const char *func,
                          const struct log_field *fields, const char *msg)
{
        struct iovec iov[LOG_FIXED_IOVECS + LOG_FIELDS_MAX];
        char *owned[ELEMENTSOF(iov)];
        size_t n = 0, n_owned = 0;
        char *s;

#define ADD(...)                                                                                   \
        do {                                                                                       \
                if (asprintf(&s, __VA_ARGS__) >= 0) {                                              \
                        owned[n_owned++] = s;                                                      \
                        iov[n++] = (struct iovec){.iov_base = s, .iov_len = strlen(s)};            \
                }                                                                                  \
        } while (0)

        ADD("PRIORITY=%d", level);
        ADD("MESSAGE=%s", msg);
        ADD("SYSLOG_IDENTIFIER=%s", program_invocation_short_name);
        ADD("CODE_FILE=%s", file);
        ADD("CODE_LINE=%d", line);
        ADD("CODE_FUNC=%s", func);
        if (error != 0)
                ADD("ERRNO=%d", error);
        for (size_t i = 0; fields && i < LOG_FIELDS_MAX && fields[i].key; i++)
                if (fields[i].value)
                        ADD("%s=%s", fields[i].key, fields[i].value);
#undef ADD

        if (sd_journal_sendv(iov, (int)n) < 0) {
                /* The journal is gone (shutdown); stderr still reaches something. */
                fprintf(stderr, "<%d>%s\n", level, msg);
        }
        for (size_t i = 0; i < n_owned; i++)
                free(owned[i]);
}

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const struct log_field *fields, const char *fmt, ...)
{
        int saved_errno = errno;
        char msg[LOG_MESSAGE_MAX];
        va_list ap;

        if (error < 0)
                error = -error;
        if (LOG_PRI(level) > max_level) {
                errno = saved_errno;
                return -error;
        }
        log_open();

        /* "%m" is glibc's strerror(errno): make it name the error we were given. */
        if (error != 0)
                errno = error;
        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);

        if (target == LOG_TARGET_JOURNAL)
                write_journal(LOG_PRI(level), error, file, line, func, fields, msg);
        else
                fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name,
                        log_level_to_string(LOG_PRI(level)), msg);

        errno = saved_errno;
        return -error;
}

/*
 * log.h - the one logging API of every esgate process.
 *
 * Lines go to stderr (journald, or the terminal, adds context).  Every line
 * names the process role ("master", "worker 3") and its severity in
 * brackets, nginx-style, so tests and operators can grep for "[crit]".
 * When stderr is the journal (JOURNAL_STREAM matches), each line starts
 * with a "<N>" syslog priority so `journalctl -p warning` works.
 *
 * The *_errno variants append ": strerror(errno)" (relayd's log_warn);
 * log_fatal/log_fatalx log at [crit] and exit(1).
 */
#ifndef ESGATE_LOG_H
#define ESGATE_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LEVEL_DEBUG = 0,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
	LOG_LEVEL_CRIT,
};

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Sets the role printed in every line ("master", "worker 2", "esdemo"). */
void log_init(const char *role);
/* Lines below this level are dropped. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "debug|info|warn|error"; returns -1 on anything else. */
int log_level_parse(const char *name);
const char *log_level_name(enum log_level level);

/* Sends every later line (and anything else written to stderr, such as
 * sanitizer reports) to PATH, appending: the file is opened and put in
 * place of fd 2.  OWNER/GROUP (-1: unchanged) let unprivileged workers
 * reopen it after rotation.  Returns 0, or -1 with errno set. */
int log_open_file(const char *path, int owner, int group);
/* Opens the file again (after it was moved away for rotation); a no-op
 * when logging to stderr.  Returns 0, or -1 with errno set. */
int log_reopen(void);

/* Whether stderr is the journal (JOURNAL_STREAM names it): lines written
 * there without this API then need their own "<N>" priority prefix. */
int log_is_journal(void);

void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);  /* + strerror */
void log_errorx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_error(const char *fmt, ...) LOG_PRINTF(1, 2); /* + strerror */
void log_critx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_fatal(const char *fmt, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));  /* + strerror */
void log_fatalx(const char *fmt, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));
void log_vlog(enum log_level level, int errnum, const char *fmt, va_list ap) LOG_PRINTF(3, 0);

#endif

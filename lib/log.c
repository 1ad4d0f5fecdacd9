/*
 * log.c - severities, the role tag and journald priority prefixes.
 *
 * One write(2) per line, so lines from master and workers sharing stderr do
 * not interleave mid-line.  No allocation: safe to call anywhere but a
 * signal handler (esgate has none that log).
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char log_role[32] = "esgate";
static enum log_level log_min = LOG_LEVEL_INFO;
static int log_journal = -1; /* -1: not checked yet */
static char log_path[4096];  /* "" while logging to the inherited stderr */
static int log_owner = -1, log_group = -1;

static const char *const log_names[] = {"debug", "info", "warn", "error", "crit"};
/* syslog priorities: debug 7, info 6, warning 4, err 3, crit 2 */
static const int log_prio[] = {7, 6, 4, 3, 2};

void
log_init(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
	log_journal = -1;
}

int
log_open_file(const char *path, int owner, int group)
{
	snprintf(log_path, sizeof(log_path), "%s", path);
	log_owner = owner;
	log_group = group;
	return log_reopen();
}

int
log_reopen(void)
{
	int fd;

	if (log_path[0] == '\0')
		return 0;
	if ((fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)) < 0)
		return -1;
	if ((log_owner != -1 || log_group != -1) && fchown(fd, (uid_t)log_owner, (gid_t)log_group) != 0 &&
	    errno != EPERM) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	if (dup2(fd, STDERR_FILENO) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	close(fd);
	log_journal = 0;
	return 0;
}

void
log_set_level(enum log_level level)
{
	log_min = level;
}

enum log_level
log_get_level(void)
{
	return log_min;
}

int
log_level_parse(const char *name)
{
	for (int i = LOG_LEVEL_DEBUG; i <= LOG_LEVEL_ERROR; i++)
		if (strcmp(name, log_names[i]) == 0)
			return i;
	return -1;
}

const char *
log_level_name(enum log_level level)
{
	return log_names[level];
}

/* JOURNAL_STREAM is "dev:ino" of the journal socket; trust it only when
 * stderr really is that socket (a child may inherit the variable with
 * stderr redirected elsewhere). */
int
log_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) != 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void
log_vlog(enum log_level level, int errnum, const char *fmt, va_list ap)
{
	char buf[2048];
	size_t len = 0;
	int n;

	if (level < log_min)
		return;
	if (log_journal < 0)
		log_journal = log_is_journal();
	if (log_journal) {
		n = snprintf(buf, sizeof(buf), "<%d>", log_prio[level]);
	} else {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		n = (int)strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, ".%03ld ", ts.tv_nsec / 1000000);
	}
	len = (size_t)n;
	n = snprintf(buf + len, sizeof(buf) - len, "[%s] %s[%d]: ", log_names[level], log_role, (int)getpid());
	if (n > 0)
		len += (size_t)n;
	if (len < sizeof(buf)) {
		n = vsnprintf(buf + len, sizeof(buf) - len, fmt, ap);
		if (n > 0)
			len += (size_t)n;
	}
	if (len >= sizeof(buf) - 1)
		len = sizeof(buf) - 2;
	if (errnum != 0) {
		n = snprintf(buf + len, sizeof(buf) - len, ": %s", strerror(errnum));
		if (n > 0)
			len += (size_t)n;
		if (len >= sizeof(buf) - 1)
			len = sizeof(buf) - 2;
	}
	buf[len++] = '\n';
	while (write(STDERR_FILENO, buf, len) < 0 && errno == EINTR)
		;
}

#define LOG_DEFINE(name, level, with_errno)                                                        \
	void name(const char *fmt, ...)                                                            \
	{                                                                                          \
		int saved = errno;                                                                 \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		log_vlog(level, with_errno ? saved : 0, fmt, ap);                                  \
		va_end(ap);                                                                        \
		errno = saved;                                                                     \
	}

LOG_DEFINE(log_debug, LOG_LEVEL_DEBUG, 0)
LOG_DEFINE(log_info, LOG_LEVEL_INFO, 0)
LOG_DEFINE(log_warnx, LOG_LEVEL_WARN, 0)
LOG_DEFINE(log_warn, LOG_LEVEL_WARN, 1)
LOG_DEFINE(log_errorx, LOG_LEVEL_ERROR, 0)
LOG_DEFINE(log_error, LOG_LEVEL_ERROR, 1)
LOG_DEFINE(log_critx, LOG_LEVEL_CRIT, 0)

void
log_fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	log_vlog(LOG_LEVEL_CRIT, saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void
log_fatalx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vlog(LOG_LEVEL_CRIT, 0, fmt, ap);
	va_end(ap);
	exit(1);
}

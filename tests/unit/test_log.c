/*
 * test_log.c - lib/log.c: level names, filtering, the line format.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"

/* Runs FN with stderr sent to a pipe and returns what it wrote. */
static char *
capture(void (*fn)(void))
{
	static char buf[4096];
	int p[2], saved;
	ssize_t n;

	cr_assert_eq(pipe(p), 0);
	saved = dup(STDERR_FILENO);
	dup2(p[1], STDERR_FILENO);
	close(p[1]);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

Test(log, level_names_round_trip)
{
	cr_assert_eq(log_level_parse("debug"), LOG_LEVEL_DEBUG);
	cr_assert_eq(log_level_parse("info"), LOG_LEVEL_INFO);
	cr_assert_eq(log_level_parse("warn"), LOG_LEVEL_WARN);
	cr_assert_eq(log_level_parse("error"), LOG_LEVEL_ERROR);
	cr_assert_eq(log_level_parse("crit"), -1, "crit is not a level an operator sets");
	cr_assert_eq(log_level_parse("INFO"), -1);
	cr_assert_eq(log_level_parse(""), -1);
	cr_assert_str_eq(log_level_name(LOG_LEVEL_WARN), "warn");
}

static void
emit_info_and_debug(void)
{
	unsetenv("JOURNAL_STREAM");
	log_init("worker 3");
	log_set_level(LOG_LEVEL_INFO);
	log_debug("hidden %d", 1);
	log_info("shown %d", 2);
}

Test(log, filters_below_level_and_tags_role)
{
	char *out = capture(emit_info_and_debug);
	char want[64];

	cr_assert_null(strstr(out, "hidden"));
	snprintf(want, sizeof(want), "[info] worker 3[%d]: shown 2\n", (int)getpid());
	cr_assert_not_null(strstr(out, want), "got: %s", out);
	cr_assert_eq(strchr(out, '\n'), out + strlen(out) - 1, "exactly one line");
}

static void
emit_errno(void)
{
	unsetenv("JOURNAL_STREAM");
	log_init("master");
	errno = ENOENT;
	log_warn("open %s", "x.yaml");
}

Test(log, errno_variant_appends_strerror_and_keeps_errno)
{
	char *out = capture(emit_errno);

	cr_assert_not_null(strstr(out, "[warn] master["), "got: %s", out);
	cr_assert_not_null(strstr(out, "open x.yaml: No such file or directory\n"), "got: %s", out);
}

static void
emit_journal(void)
{
	char js[64];
	struct stat st;

	fstat(STDERR_FILENO, &st);
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", js, 1);
	log_init("master");
	log_errorx("boom");
	unsetenv("JOURNAL_STREAM");
	log_init("master");
}

Test(log, journal_lines_carry_syslog_priority)
{
	char *out = capture(emit_journal);

	cr_assert(strncmp(out, "<3>[error] master[", 18) == 0, "got: %s", out);
}

static void
emit_long(void)
{
	static char big[5000];

	unsetenv("JOURNAL_STREAM");
	log_init("master");
	memset(big, 'x', sizeof(big) - 1);
	log_info("%s", big);
}

Test(log, long_messages_are_cut_but_stay_one_line)
{
	char *out = capture(emit_long);
	size_t len = strlen(out);

	cr_assert_gt(len, 1000);
	cr_assert_eq(out[len - 1], '\n');
	cr_assert_eq(strchr(out, '\n'), out + len - 1);
}

Test(log, file_is_reopened_after_rotation)
{
	char dir[] = "/tmp/esgate-logtest-XXXXXX", path[128], moved[128], buf[256];
	int saved = dup(STDERR_FILENO);
	FILE *f;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/error.log", dir);
	snprintf(moved, sizeof(moved), "%s/error.log.1", dir);
	unsetenv("JOURNAL_STREAM");
	log_init("master");
	cr_assert_eq(log_open_file(path, -1, -1), 0);
	log_info("before rotation");
	cr_assert_eq(rename(path, moved), 0);
	log_info("still to the old file");
	cr_assert_eq(log_reopen(), 0);
	log_info("after rotation");
	dup2(saved, STDERR_FILENO);
	close(saved);

	f = fopen(moved, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	cr_expect_not_null(strstr(buf, "before rotation"));
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	cr_expect_not_null(strstr(buf, "still to the old file"));
	cr_expect_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	cr_expect_not_null(strstr(buf, "after rotation"));
	cr_expect_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	unlink(path);
	unlink(moved);
	rmdir(dir);
}

/*
 * notify.c - sd_notify wrappers (see notify.h).  The one piece of state,
 * whether we are the main process, is per process: it changes only at a
 * binary upgrade's handover.
 */
#include "master/notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

static int notify_main = 1;

void
notify_set_main(int is_main)
{
	notify_main = is_main;
}

int
notify_is_main(void)
{
	return notify_main;
}

static void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
notify_send(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int rc;

	if (!notify_main)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if ((rc = sd_notify(0, buf)) < 0)
		log_debug("sd_notify failed (%d)", rc);
}

void
notify_ready(const char *status)
{
	notify_send("READY=1\nSTATUS=%s", status);
}

void
notify_reloading(const char *status)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	notify_send("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=%s",
	            (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL, status);
}

void
notify_stopping(const char *status)
{
	notify_send("STOPPING=1\nSTATUS=%s", status);
}

void
notify_status(const char *status)
{
	notify_send("STATUS=%s", status);
}

void
notify_handover(pid_t pid)
{
	notify_send("MAINPID=%d", (int)pid);
	notify_main = 0;
}

uint64_t
notify_watchdog_usec(void)
{
	uint64_t usec = 0;

	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return usec;
}

void
notify_watchdog(void)
{
	notify_send("WATCHDOG=1");
}

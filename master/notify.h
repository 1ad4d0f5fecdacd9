/*
 * notify.h - telling systemd what the master is doing (sd_notify).
 *
 * Every call is a no-op when NOTIFY_SOCKET is unset, so esgate behaves the
 * same in a terminal.  Debian 12's systemd (252) has no Type=notify-reload:
 * the unit is Type=notify with ExecReload sending HUP, and a reload is
 * announced as RELOADING=1 with MONOTONIC_USEC (without it, systemctl
 * reload waits forever), then READY=1 once the new generation serves.
 */
#ifndef ESGATE_NOTIFY_H
#define ESGATE_NOTIFY_H

#include <stdint.h>
#include <sys/types.h>

void notify_ready(const char *status);
void notify_reloading(const char *status);
void notify_stopping(const char *status);
void notify_status(const char *status);
/* A new master (binary upgrade) takes over as the service's main process. */
void notify_mainpid(pid_t pid, const char *status);
/* The watchdog period systemd asked for (WATCHDOG_USEC), or 0. */
uint64_t notify_watchdog_usec(void);
void notify_watchdog(void);

#endif

/*
 * notify.h - telling systemd what the master is doing (sd_notify).
 *
 * Every call is a no-op when NOTIFY_SOCKET is unset, so esgate behaves the
 * same in a terminal.  Debian 12's systemd (252) has no Type=notify-reload:
 * the unit is Type=notify with ExecReload sending HUP, and a reload is
 * announced as RELOADING=1 with MONOTONIC_USEC (without it, systemctl
 * reload waits forever), then READY=1 once the new generation serves.
 *
 * Only the service's main process speaks.  systemd takes READY=1,
 * STOPPING=1 and STATUS= from whichever process sends them (with
 * NotifyAccess=all; the unit says NotifyAccess=main, so that systemd
 * itself ignores everyone else), and a STOPPING=1 from an old master that
 * drains after a binary upgrade would stop the service under its
 * successor (gunicorn's open bug #2856).  So this process speaks only
 * while it is the main process: a master started by USR2 is silent until
 * the old master has handed the service over with MAINPID= (the old
 * master is then the main process, so systemd accepts it), and the old
 * master is silent from that message on.  While silent, every call below
 * except notify_watchdog_usec() sends nothing.
 */
#ifndef ESGATE_NOTIFY_H
#define ESGATE_NOTIFY_H

#include <stdint.h>
#include <sys/types.h>

/* Whether this process is the service's main process (default: yes). */
void notify_set_main(int is_main);
int notify_is_main(void);

void notify_ready(const char *status);
void notify_reloading(const char *status);
void notify_stopping(const char *status);
void notify_status(const char *status);
/* Hands the service over to PID (the new master of a binary upgrade):
 * MAINPID=PID, sent while we are still the main process; from then on
 * this process is silent. */
void notify_handover(pid_t pid);
/* The watchdog period systemd asked for (WATCHDOG_USEC), or 0. */
uint64_t notify_watchdog_usec(void);
void notify_watchdog(void);

#endif

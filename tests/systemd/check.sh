#!/bin/sh
# tests/systemd/check.sh - offline checks of systemd/ (run by `make check-systemd`).
#
# Needs no running systemd: `make install` into temporary DESTDIRs (default
# PREFIX, PREFIX=/usr, and an /opt layout), then on each installed copy:
#   - the Exec paths point at the installed binary and config (the sed);
#   - systemd-analyze verify on esgate.service and esgate.socket, with the
#     absolute paths redirected into the DESTDIR (verify insists that
#     ExecStart= binaries exist; --root= cannot be used, it hides the
#     system's own units such as sysinit.target);
#   - systemd-analyze security --offline=yes: exposure <= MAX_EXPOSURE;
#   - systemd-sysusers --root creates the User= of the unit;
#   - make uninstall leaves no file behind.
# Environment: MAKE (make), BUILD (build), MAX_EXPOSURE (2.0).
set -u

cd "$(dirname "$0")/../.." || exit 1
MAKE=${MAKE:-make}
BUILD=${BUILD:-build}
MAX_EXPOSURE=${MAX_EXPOSURE:-2.0}

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() {
	failed=$((failed + 1))
	echo "FAIL $1" >&2
	[ $# -lt 2 ] || printf '%s\n' "$2" | sed 's/^/     /' >&2
}

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "FAIL systemd-analyze not found (Debian package: systemd)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

# The settings an install is made with must not leak in from an outer make.
unset MAKEFLAGS MFLAGS MAKELEVEL
unset PREFIX DESTDIR SYSCONFDIR UNITDIR SYSUSERSDIR

# value KEY FILE: the last KEY= of FILE.
value() { sed -n "s/^$1=//p" "$2" | tail -n 1; }

# check_layout NAME PREFIX SYSCONFDIR UNITDIR SYSUSERSDIR [make variables...]
check_layout() {
	name=$1 prefix=$2 sysconfdir=$3 unitdir=$4 sysusersdir=$5
	shift 5
	dest=$tmp/$name
	if ! out=$($MAKE -s --no-print-directory install BUILD="$BUILD" DESTDIR="$dest" "$@" 2>&1); then
		fail "$name: make install $*" "$out"
		return
	fi
	svc=$dest$unitdir/esgate.service
	sock=$dest$unitdir/esgate.socket
	users=$dest$sysusersdir/esgate.conf
	missing=""
	for f in "$svc" "$sock" "$users" "$dest$prefix/sbin/esgate"; do
		[ -f "$f" ] || missing="$missing ${f#"$dest"}"
	done
	if [ -n "$missing" ]; then
		fail "$name: make install${*:+ $*}: missing:$missing"
		return
	fi
	pass "$name: make install${*:+ $*} puts the units in $unitdir"

	want="$prefix/sbin/esgate -c $sysconfdir/esgate/esgate.yaml"
	got=$(value ExecStart "$svc")
	if [ "$got" = "$want" ] && [ "$(value ExecStartPre "$svc")" = "$prefix/sbin/esgate -t -c $sysconfdir/esgate/esgate.yaml" ] &&
		[ "$(grep -c "^Exec[A-Za-z]*=$prefix/sbin/esgate " "$svc")" = 3 ]; then
		pass "$name: ExecStart=$want"
	else
		fail "$name: Exec paths not rewritten for PREFIX=$prefix SYSCONFDIR=$sysconfdir" "$(grep '^Exec' "$svc")"
	fi

	# verify: the same units, with the installed paths moved into DESTDIR.
	vdir=$tmp/verify-$name
	mkdir -p "$vdir"
	sed "s|=$prefix/sbin/esgate|=$dest$prefix/sbin/esgate|" "$svc" >"$vdir/esgate.service"
	cp "$sock" "$vdir/esgate.socket"
	out=$(systemd-analyze verify --man=no "$vdir/esgate.socket" "$vdir/esgate.service" 2>&1)
	rc=$?
	esgate_out=$(printf '%s\n' "$out" | grep -i 'esgate')
	if [ $rc -eq 0 ] && [ -z "$esgate_out" ]; then
		pass "$name: systemd-analyze verify esgate.service esgate.socket"
	else
		fail "$name: systemd-analyze verify (exit $rc)" "$out"
	fi

	# The LoadCredential= drop-in for a TLS key (systemd/esgate-tls.conf, as
	# installed among the examples), read from esgate.service.d/ next to the
	# unit; its reload is the HUP alone (the file says why).
	tlsconf=$dest$prefix/share/doc/esgate/examples/esgate-tls.conf
	mkdir -p "$vdir/esgate.service.d"
	sed "s| $prefix/sbin/esgate| $dest$prefix/sbin/esgate|" "$tlsconf" >"$vdir/esgate.service.d/tls.conf"
	out=$(systemd-analyze verify --man=no "$vdir/esgate.service" 2>&1)
	rc=$?
	if [ $rc -eq 0 ] && [ -z "$(printf '%s\n' "$out" | grep -i 'esgate')" ] &&
		grep -q '^LoadCredential=esgate-tls.key:/' "$tlsconf" &&
		[ "$(grep '^ExecReload=' "$tlsconf" | tr '\n' '|')" = 'ExecReload=|ExecReload=/bin/kill -HUP $MAINPID|' ]; then
		pass "$name: systemd-analyze verify esgate.service with the esgate-tls.conf drop-in"
	else
		fail "$name: systemd-analyze verify with esgate-tls.conf (exit $rc)" "$out"
	fi
	rm -r "$vdir/esgate.service.d"

	out=$(systemd-analyze security --offline=yes "$svc" 2>&1)
	level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for esgate\.service: \([0-9][0-9]*\.[0-9]\).*/\1/p')
	if [ -z "$level" ]; then
		fail "$name: systemd-analyze security --offline=yes: no exposure level" "$out"
	elif awk -v l="$level" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(l + 0 <= m + 0) }'; then
		pass "$name: exposure $level <= $MAX_EXPOSURE"
	else
		fail "$name: exposure $level > $MAX_EXPOSURE" "$(printf '%s\n' "$out" | grep '✗')"
	fi

	# The User= of the unit is what the sysusers.d file creates.
	user=$(value User "$svc")
	root=$tmp/sysusers-$name
	mkdir -p "$root/etc"
	if ! command -v systemd-sysusers >/dev/null 2>&1; then
		fail "$name: systemd-sysusers not found (Debian package: systemd)"
	elif out=$(systemd-sysusers --root="$root" "$users" 2>&1) &&
		grep -q "^$user:x:[0-9]*:[0-9]*:.*:/usr/sbin/nologin\$" "$root/etc/passwd" &&
		grep -q "^$(value Group "$svc"):x:" "$root/etc/group"; then
		pass "$name: esgate.conf (sysusers.d) creates User=$user"
	else
		fail "$name: systemd-sysusers does not create User=$user" "$out"
	fi

	if ! out=$($MAKE -s --no-print-directory uninstall DESTDIR="$dest" "$@" 2>&1); then
		fail "$name: make uninstall $*" "$out"
	elif [ -n "$(find "$dest" ! -type d)" ]; then
		fail "$name: make uninstall leaves files" "$(find "$dest" ! -type d)"
	else
		pass "$name: make uninstall removes every file"
	fi
}

# Settings the code relies on, which verify and security do not catch.
svc=systemd/esgate.service
bad=""
[ "$(value Type $svc)" = notify ] || bad="$bad Type=notify"
[ "$(value NotifyAccess $svc)" = main ] || bad="$bad NotifyAccess=main(only the main process speaks; MAINPID= hands over after USR2)"
[ "$(value KillSignal $svc)" = SIGQUIT ] || bad="$bad KillSignal=SIGQUIT"
[ "$(value KillMode $svc)" = mixed ] || bad="$bad KillMode=mixed"
t=$(value TimeoutStopSec $svc)
case $t in *[!0-9]* | '') bad="$bad TimeoutStopSec=<seconds>" ;; *) [ "$t" -gt 30 ] || bad="$bad TimeoutStopSec>30(graceful_timeout)" ;; esac
grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' $svc || bad="$bad ExecReload=/bin/kill -HUP \$MAINPID"
grep -q '^ExecStop=/bin/sh -c .*kill -QUIT "\$\$MAINPID" && while kill -0 "\$\$MAINPID"' $svc ||
	bad="$bad ExecStop=(QUIT the main process and wait for it: systemd 252 does not wait for a main process it did not fork)"
if [ -z "$bad" ]; then
	pass "esgate.service: Type, NotifyAccess, KillMode, KillSignal, TimeoutStopSec, ExecReload, ExecStop"
else
	fail "esgate.service: expected$bad"
fi

check_layout default /usr/local /etc /usr/local/lib/systemd/system /usr/local/lib/sysusers.d
check_layout usr /usr /etc /lib/systemd/system /usr/lib/sysusers.d PREFIX=/usr
check_layout opt /opt/esgate /opt/esgate/etc /opt/esgate/lib/systemd/system /opt/esgate/lib/sysusers.d \
	PREFIX=/opt/esgate SYSCONFDIR=/opt/esgate/etc

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

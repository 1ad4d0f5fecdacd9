# esgate - see README.md.  `make run` and `make test` are the two commands a
# fresh Debian 12 machine needs (as root): both install what they use.

PREFIX     ?= /usr/local
DESTDIR    ?=
SYSCONFDIR ?= /etc
# systemd units and the sysusers.d file: /lib/systemd/system for PREFIX=/usr
# (Debian's place), else under PREFIX (systemd also reads /usr/local/lib).
UNITDIR     ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
MANDIR      ?= $(PREFIX)/share/man
# The examples that are not configuration: the LoadCredential= drop-in.
EXAMPLEDIR  ?= $(PREFIX)/share/doc/esgate/examples
PKG_CONFIG ?= pkg-config
CC         ?= cc
BUILD      ?= build
PYTHON     ?= /usr/bin/python3

# debian/changelog names the same version (make deb checks); the package
# build passes its own.
VERSION ?= 0.1.0

# Debian packages this Makefile uses: build deps, then what the tests drive.
DEB_BUILD := gcc make pkg-config libev-dev libh2o-evloop-dev libyaml-dev libjansson-dev \
	libcurl4-openssl-dev libcriterion-dev libssl-dev zlib1g-dev libsystemd-dev libhiredis-dev
DEB_TEST  := curl nghttp2-client openssl python3 python3-elasticsearch python3-jwt python3-cryptography procps iproute2 systemd mandoc groff-base man-db redis-server strace \
	chromium chromium-driver nodejs npm
# What `make bench` drives: nginx (nginx-light, or an nginx already there),
# wrk, h2load; the strongest peer of each row (HAProxy, nghttpx, h2o
# standalone, Varnish) and strace for system calls per request.
DEB_BENCH := wrk nghttp2-client python3 redis-server haproxy openssl nghttp2-proxy h2o varnish strace linux-perf

ifeq ($(SANITIZE),1)
SAN_CFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
BUILD := build/asan
endif

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wpointer-arith -Wcast-qual -Wundef -Wvla -Wno-unused-parameter
# -DH2O_USE_LIBUV=0: libh2o-evloop's .pc does not set it, and without it the
# headers describe the libuv flavour (doc/DESIGN.md, section 2).
BASE_CFLAGS := -std=gnu11 -O2 -g -D_GNU_SOURCE -DH2O_USE_LIBUV=0 -DESGATE_VERSION='"$(VERSION)"' \
	-I. $(WARN) $(SAN_CFLAGS)
ALL_CFLAGS = $(BASE_CFLAGS) $(CPPFLAGS) $(CFLAGS)
LIBS := -lev -lh2o-evloop -lyaml -ljansson -lcurl -lhiredis -lsystemd -lssl -lcrypto -lz -lm
ALL_LDFLAGS = $(SAN_CFLAGS) $(LDFLAGS)

LIB_SRC    := $(wildcard lib/*.c)
MASTER_SRC := $(filter-out master/main.c,$(wildcard master/*.c))
WORKER_SRC := $(wildcard worker/*.c)
# The status page (worker/statuspage.html) becomes a C array at build time.
PAGE_OBJ   := $(BUILD)/gen/statuspage_html.o
CORE_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC) $(MASTER_SRC) $(WORKER_SRC)) $(PAGE_OBJ)
UNIT_SRC   := $(wildcard tests/unit/*.c)
UNIT_BIN   := $(BUILD)/unit-tests
MAN_PAGES  := man/esgate.8 man/esgate.yaml.5

.PHONY: all deps test-deps bench-deps run test unit integration test-asan bench bench-tls install install-files uninstall check-systemd check-man clean format

all: deps $(BUILD)/esgate $(BUILD)/esdemo

# Install the Debian packages only when something is missing, running
# apt-get update once first.
deps:
	@missing=""; for p in $(DEB_BUILD); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi

# npm counts as there when an npm runs (NodeSource's nodejs package carries
# its own and conflicts with Debian's).  Then the official JavaScript client
# (tests/js/package-lock.json) into tests/js/node_modules, again only when
# that is missing or older than the lock file.
test-deps: deps
	@missing=""; for p in $(DEB_TEST); do dpkg -s $$p >/dev/null 2>&1 || \
	  { [ $$p = npm ] && command -v npm >/dev/null; } || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi
	@[ tests/js/node_modules/.package-lock.json -nt tests/js/package-lock.json ] || \
	  { echo "npm ci in tests/js"; cd tests/js && npm ci --no-audit --no-fund --loglevel=error; }

bench-deps: deps
	@missing=""; for p in $(DEB_BENCH); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	dpkg -s nginx-light >/dev/null 2>&1 || dpkg -s nginx >/dev/null 2>&1 || missing="$$missing nginx-light"; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi

# Each object depends on the headers it includes, as the compiler saw them
# (-MMD writes build/x.d next to build/x.o; -MP adds an empty rule per header
# so a deleted header does not break the build).  deps first (order-only):
# under make -j the compiler must not race the installation of the headers
# it needs.
$(BUILD)/%.o: %.c | deps
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

# <h2o/http2_internal.h> includes a khash.h that Debian does not ship:
# guard.c, h2drain.c and h2ohpack.c alone get the stand-in (worker/compat/khash.h says why).
$(BUILD)/worker/guard.o $(BUILD)/worker/h2drain.o $(BUILD)/worker/h2ohpack.o: ALL_CFLAGS += -Iworker/compat

-include $(patsubst %.o,%.d,$(CORE_OBJ) $(BUILD)/master/main.o $(BUILD)/tests/esdemo/esdemo.o \
	$(patsubst %.c,$(BUILD)/%.o,$(UNIT_SRC)))

$(BUILD)/gen/statuspage_html.c: worker/statuspage.html
	@mkdir -p $(dir $@)
	@echo "  GEN $@"
	@{ echo '/* Generated by the Makefile from worker/statuspage.html: do not edit. */'; \
	  echo '#include "worker/statuspage.h"'; \
	  echo 'const unsigned char statuspage_html[] = {'; \
	  od -An -v -tx1 $< | sed -e 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '};'; \
	  echo 'const size_t statuspage_html_len = sizeof(statuspage_html);'; } >$@.tmp && mv $@.tmp $@

$(PAGE_OBJ): $(BUILD)/gen/statuspage_html.c worker/statuspage.h | deps
	@echo "  CC $<"
	@$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/esgate: $(BUILD)/master/main.o $(CORE_OBJ)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/esdemo: $(BUILD)/tests/esdemo/esdemo.o $(BUILD)/lib/log.o $(BUILD)/lib/status.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(UNIT_BIN): $(patsubst %.c,$(BUILD)/%.o,$(UNIT_SRC)) $(CORE_OBJ)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) -lcriterion

run: all
	@./tests/run-demo.sh $(BUILD)

unit: deps $(UNIT_BIN)
	$(UNIT_BIN) --jobs 2

integration: test-deps $(BUILD)/esgate $(BUILD)/esdemo
	ESGATE_BUILD=$(BUILD) $(PYTHON) tests/integration/run.py

test: test-deps
	$(MAKE) check-layering
	$(MAKE) unit integration
	$(MAKE) check-systemd
	$(MAKE) check-boot
	$(MAKE) check-man
	$(MAKE) fuzz-short
	$(MAKE) check-valgrind
	$(MAKE) SANITIZE=1 unit integration

# The layering, from the #include lines (tests/layering/check.py): no circle
# of modules anywhere, lib/ includes nothing of master/ or worker/, master/
# uses only worker/worker.h.  Its self-test first shows it catches each.
.PHONY: check-layering
check-layering:
	$(PYTHON) tests/layering/check.py --self-test

# esgate against nginx as a reverse proxy (same upstream, same worker count),
# 5 interleaved rounds; writes bench/RESULTS.md (bench/run.sh; about 20 minutes).
bench: bench-deps $(BUILD)/esgate $(BUILD)/esdemo
	BUILD=$(BUILD) PYTHON=$(PYTHON) BENCH_COMMAND="make bench" bench/run.sh

# HTTPS: esgate against nginx and HAProxy 2.6 terminating TLS (bench/tls.py:
# keep-alive, HTTP/2, full and resumed handshakes; writes bench/TLS.md).
.PHONY: bench-tls
bench-tls: bench-deps $(BUILD)/esgate $(BUILD)/esdemo
	BUILD=$(BUILD) $(PYTHON) bench/tls.py --out bench/TLS.md

# How long the search firewall holds a worker's loop for one request, on
# the most expensive bodies at max_bytes (bench/firewall.c; RELIABILITY.md).
.PHONY: bench-firewall
bench-firewall: deps $(BUILD)/bench-firewall
	$(BUILD)/bench-firewall

$(BUILD)/bench-firewall: $(BUILD)/bench/firewall.o $(BUILD)/lib/dsl.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# A million GET / through 2 workers (ten `h2load --h1 -n 100000 -c 64`);
# fails unless all succeed and each worker's settled RSS after 1M is within
# 10 % of its RSS after 100k; appends to bench/SOAK.md (bench/soak.sh).
.PHONY: soak
soak: test-deps $(BUILD)/esgate $(BUILD)/esdemo
	BUILD=$(BUILD) PYTHON=$(PYTHON) SOAK_COMMAND="make soak" bench/soak.sh

# The package under a real systemd (tests/boot/check_boot.py): builds it
# (and a newer version), boots a Debian 12 container (systemd-nspawn -b;
# its root file system made once by debootstrap into BOOT_CACHE), installs
# it with apt and drives it: reload and binary upgrade under load (wrk),
# stop, socket activation, logrotate, journal priorities, package upgrade
# and removal.  A machine where nspawn cannot boot fails it.
BOOT_DEPS  := systemd-container debootstrap util-linux wrk curl
BOOT_CACHE ?= /var/cache/esgate-boot
.PHONY: check-boot boot-deps
boot-deps: deb-deps
	@missing=""; for p in $(BOOT_DEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi

check-boot: boot-deps $(BUILD)/esdemo
	$(PYTHON) tests/boot/check_boot.py --build $(BUILD) --cache $(BOOT_CACHE)

# Systemd checks: systemd-analyze verify and security on installed units
# (tests/systemd/check.sh).
check-systemd: all
	BUILD=$(BUILD) MAKE=$(MAKE) tests/systemd/check.sh

# The man pages: mandoc's linter (warnings and worse; STYLE notes pass),
# groff with every warning on, and man -l, as a reader would run it.  Any
# output fails.  And esgate.yaml(5) names every key of lib/config.c's
# directive tables (tests/man/directives.py, after its self-test).
check-man:
	@$(PYTHON) tests/man/directives.py --self-test
	@fail=0; \
	out=$$(mandoc -T lint -W warning $(MAN_PAGES) 2>&1); [ -z "$$out" ] || { echo "$$out"; fail=1; }; \
	for f in $(MAN_PAGES); do \
	  out=$$(groff -ww -mandoc -Tutf8 -z $$f 2>&1); [ -z "$$out" ] || { echo "$$out"; fail=1; }; \
	  out=$$(MANWIDTH=80 man -l $$f 2>&1 >/dev/null); [ -z "$$out" ] || { echo "$$out"; fail=1; }; \
	done; \
	[ $$fail = 0 ] && echo "man pages OK: $(MAN_PAGES)"

# Valgrind's memcheck on the master and workers through a selection of the
# integration tests (tests/valgrind/run.sh): an -O1 -g build in
# build/valgrind; any memcheck error or definite leak fails.  A few minutes.
.PHONY: check-valgrind
check-valgrind: test-deps
	@dpkg -s valgrind >/dev/null 2>&1 || { echo "installing: valgrind"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind >/dev/null; }
	MAKE=$(MAKE) PYTHON=$(PYTHON) tests/valgrind/run.sh

# The unit names /usr/local/sbin/esgate and /etc/esgate: rewritten for
# PREFIX and SYSCONFDIR.  Without DESTDIR, as root, the esgate user is
# created and a running systemd reloaded.
install: all
	@$(MAKE) --no-print-directory install-files

# install without `all`'s package check (the Debian package build uses it).
install-files: $(BUILD)/esgate
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(SYSCONFDIR)/esgate \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(EXAMPLEDIR)
	install -m 755 $(BUILD)/esgate $(DESTDIR)$(PREFIX)/sbin/esgate
	install -m 644 man/esgate.8 $(DESTDIR)$(MANDIR)/man8/esgate.8
	install -m 644 man/esgate.yaml.5 $(DESTDIR)$(MANDIR)/man5/esgate.yaml.5
	install -m 644 conf/esgate.yaml $(DESTDIR)$(SYSCONFDIR)/esgate/esgate.yaml.example
	sed -e 's|/usr/local/sbin/esgate|$(PREFIX)/sbin/esgate|g' -e 's|/etc/esgate/|$(SYSCONFDIR)/esgate/|g' \
		systemd/esgate.service >$(DESTDIR)$(UNITDIR)/esgate.service
	chmod 644 $(DESTDIR)$(UNITDIR)/esgate.service
	install -m 644 systemd/esgate.socket $(DESTDIR)$(UNITDIR)/esgate.socket
	install -m 644 systemd/esgate-tls.conf $(DESTDIR)$(EXAMPLEDIR)/esgate-tls.conf
	install -m 644 systemd/esgate.sysusers $(DESTDIR)$(SYSUSERSDIR)/esgate.conf
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v systemd-sysusers >/dev/null; then \
	  systemd-sysusers $(SYSUSERSDIR)/esgate.conf; fi
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

# Keeps esgate.yaml, the esgate user and /var/log/esgate.
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/esgate $(DESTDIR)$(SYSCONFDIR)/esgate/esgate.yaml.example \
		$(DESTDIR)$(UNITDIR)/esgate.service $(DESTDIR)$(UNITDIR)/esgate.socket \
		$(DESTDIR)$(SYSUSERSDIR)/esgate.conf \
		$(DESTDIR)$(MANDIR)/man8/esgate.8 $(DESTDIR)$(MANDIR)/man5/esgate.yaml.5 \
		$(DESTDIR)$(EXAMPLEDIR)/esgate-tls.conf
	rmdir $(DESTDIR)$(EXAMPLEDIR) $(DESTDIR)$(EXAMPLEDIR)/.. 2>/dev/null || true
	rmdir $(DESTDIR)$(SYSCONFDIR)/esgate 2>/dev/null || true
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

# The Debian package (debian/build-deb.sh): dpkg-buildpackage -b with
# debhelper, from a copy of the tree, into build/deb/; lintian must report
# no error.  DEB_VERSION= builds it as a newer version.
DEB_PKG := build-essential debhelper dpkg-dev lintian
DEB_OUT := build/deb
DEB_VERSION ?=

.PHONY: deb deb-deps
deb-deps: deps
	@missing=""; for p in $(DEB_PKG); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi

deb: deb-deps
	debian/build-deb.sh $(DEB_OUT) $(DEB_VERSION)

# Fuzzing (tests/fuzz/, see tests/fuzz/run.sh): one libFuzzer target per
# file, each linked with only the lib/ sources it needs, built with clang
# under ASan + UBSan (any report aborts) into build/fuzz.  `make fuzz` runs
# each target FUZZ_SECONDS; `make fuzz-short` 20 s each, as `make test` does;
# FUZZ_JOBS targets at a time (one per CPU by default).
# Both first replay every file in tests/fuzz/regressions/ and corpus/.
FUZZ_DEPS    := clang libclang-rt-14-dev
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := build/fuzz
FUZZ_TARGETS := fuzz_config fuzz_route fuzz_reqid fuzz_query fuzz_metrics_label fuzz_dsl fuzz_h1resp fuzz_auth \
	fuzz_hpacksize fuzz_h1req
FUZZ_BIN     := $(addprefix $(FUZZ_BUILD)/,$(FUZZ_TARGETS))
FUZZ_CFLAGS  := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer -D_GNU_SOURCE -DH2O_USE_LIBUV=0 -I. $(WARN)

.PHONY: fuzz-deps fuzz fuzz-short fuzz-clean

fuzz-deps: deps
	@missing=""; for p in $(FUZZ_DEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi

# The lib/ sources (and libraries) each target links.  config.c calls
# into more and more of lib/ (policies, rate limits), so fuzz_config takes
# all of it.
$(FUZZ_BUILD)/fuzz_config: $(LIB_SRC)
$(FUZZ_BUILD)/fuzz_route $(FUZZ_BUILD)/fuzz_query: lib/route.c
$(FUZZ_BUILD)/fuzz_reqid: lib/reqid.c
$(FUZZ_BUILD)/fuzz_metrics_label: lib/metrics.c
$(FUZZ_BUILD)/fuzz_dsl: lib/dsl.c lib/dls.c lib/qwalk.c
$(FUZZ_BUILD)/fuzz_h1resp: lib/h1resp.c lib/httptok.c
$(FUZZ_BUILD)/fuzz_hpacksize: lib/hpacksize.c
$(FUZZ_BUILD)/fuzz_h1req: lib/h1req.c lib/httptok.c
$(FUZZ_BUILD)/fuzz_auth: lib/auth.c lib/apikey.c lib/base64.c lib/jwt.c lib/dls.c lib/fls.c lib/qwalk.c \
	lib/ratelimit.c lib/route.c lib/sha256.c lib/siphash.c
FUZZ_LIBS_fuzz_dsl := -ljansson -lm
FUZZ_LIBS_fuzz_auth := -ljansson -lcrypto
FUZZ_LIBS_fuzz_config := $(LIBS)
# fuzz_h1req compares lib/h1req.c with libh2o's own request parser
FUZZ_LIBS_fuzz_h1req := -lh2o-evloop

$(FUZZ_BUILD)/%: tests/fuzz/%.c
	@mkdir -p $(dir $@)
	@echo "  FUZZ $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -MF $@.d -o $@ $(filter %.c,$^) $(FUZZ_LIBS_$*)

-include $(wildcard $(FUZZ_BUILD)/*.d)

# fuzz_dsl's dictionary: every key and type name lib/dsl.c's tables know,
# so that mutations build the shapes the tables describe.
$(FUZZ_BUILD)/fuzz_dsl.dict: lib/dsl.c
	@mkdir -p $(dir $@)
	grep -oE '"[a-z_@][a-z0-9_.]*"' lib/dsl.c | sort -u >$@

fuzz: fuzz-deps $(FUZZ_BIN) $(FUZZ_BUILD)/fuzz_dsl.dict
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-short: fuzz-deps $(FUZZ_BIN) $(FUZZ_BUILD)/fuzz_dsl.dict
	tests/fuzz/run.sh $(FUZZ_BUILD) 20 $(FUZZ_TARGETS)

fuzz-clean:
	rm -rf $(FUZZ_BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

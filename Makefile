# Sluice: one non-recursive Makefile.
#
#   make            build the four programs
#   make check      install missing packages, build, run every test
#   make demo       install missing packages, build, run a transfer end to end
#   make bench      the throughput benchmark (not part of check)
#   make deps       install missing Debian packages with apt-get, and the
#                   npm packages the tests use (tools/npm-deps.sh)
#
# WERROR=1 turns warnings into errors (CI); SANITIZE=address,undefined
# builds everything with sanitizers.

CC       ?= gcc
PREFIX   ?= /usr/local
DESTDIR  ?=
PKGS      = libsodium liburing zlib libconfig libisal libcrypto libpcap
DEB_PKGS  = build-essential pkg-config libsodium-dev liburing-dev zlib1g-dev \
            libconfig-dev libisal-dev libssl-dev libpcap-dev libcmocka-dev \
            iproute2 procps clamav bc tcpdump libcurl4-openssl-dev \
            skopeo docker-registry s3cmd

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm
# libcurl is the publisher's alone (S3); nothing on the link side links it.
CURL_CFLAGS := $(shell pkg-config --cflags libcurl 2>/dev/null)
CURL_LIBS   := $(shell pkg-config --libs libcurl 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

WARN      = -Wall -Wextra -Wshadow -Wformat=2 -Wvla -Wstrict-prototypes \
            -Wmissing-prototypes -Wno-unused-parameter -Wno-format-truncation
HARDEN    = -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
# What the code needs is added with override, as liburing's Makefile does:
# `make CFLAGS=-O0` changes the optimisation, never drops a warning,
# the hardening, the include path or the dependency files.
CFLAGS   ?= -O2 -g
override CFLAGS += -std=gnu11 -D_GNU_SOURCE -pthread $(WARN) $(HARDEN) -I. \
            $(PKG_CFLAGS) -MMD -MP
override LDFLAGS += -pie -pthread -Wl,-z,relro,-z,now
ifeq ($(WERROR),1)
override CFLAGS += -Werror
endif
ifneq ($(SANITIZE),)
override CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
override LDFLAGS += -fsanitize=$(SANITIZE)
endif

# Objects (and their .d files) live under build/, beside the library.
objs = $(patsubst %.c,build/%.o,$(1))

PROTO_SRCS  = proto/wire.c proto/manifest.c proto/link.c proto/frame.c
COMMON_SRCS = common/log.c common/util.c common/hash.c common/sign.c \
              common/fec.c common/compress.c common/conf.c common/manifest.c \
              common/limits.c common/logfmt.c common/qlog.c common/audit.c \
              common/spool.c common/rules.c common/request.c \
              common/capfile.c
SEND_SRCS   = sender/main.c sender/send.c sender/tx.c sender/pace.c sender/daemon.c \
              sender/preflight.c
RECV_SRCS   = receiver/main.c receiver/ingest.c receiver/assemble.c \
              receiver/transfer.c receiver/lifecycle.c receiver/policy.c \
              receiver/verify.c receiver/hooks.c receiver/metrics.c \
              receiver/progress.c receiver/finished.c receiver/failpoint.c \
              receiver/preflight.c receiver/sigcheck.c receiver/pcapin.c \
              receiver/journal.c
PUB_SRCS    = receiver/publish/main.c receiver/publish/result.c \
              receiver/publish/conf.c receiver/publish/state.c \
              receiver/publish/dir.c receiver/publish/oci.c \
              receiver/publish/s3.c
PUB_MODS    = $(filter-out receiver/publish/main.c,$(PUB_SRCS))
SLUICE_SRCS = tools/sluice.c tools/replay.c tools/linkreport.c sender/send.c \
              sender/tx.c sender/pace.c
LINK_SRCS   = tools/sluice-link.c

LIB         = build/libsluice.a
LIB_OBJS    = $(call objs,$(PROTO_SRCS) $(COMMON_SRCS))
SEND_BIN    = sender/sluice-send
RECV_BIN    = receiver/sluice-recv
SLUICE_BIN  = tools/sluice
LINK_BIN    = tools/sluice-link
HOOKD_BIN   = tools/sluice-hookd
PUB_BIN     = receiver/publish/sluice-publish
BINS        = $(SEND_BIN) $(RECV_BIN) $(SLUICE_BIN) $(LINK_BIN) $(HOOKD_BIN) \
              $(PUB_BIN)

UNIT_SRCS   = $(wildcard tests/unit/test_*.c)
UNIT_BINS   = $(patsubst tests/unit/%.c,tests/bin/%,$(UNIT_SRCS))

ALL_OBJS    = $(LIB_OBJS) $(call objs,$(SEND_SRCS) $(RECV_SRCS) \
              tools/sluice-hookd.c $(SLUICE_SRCS) $(LINK_SRCS) $(PUB_SRCS))

.PHONY: all deps check unit e2e demo bench install uninstall clean fuzz \
        fuzz-replay

all: $(BINS)

$(LIB): $(LIB_OBJS)
	@mkdir -p build
	$(AR) rcs $@ $^

build/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(SEND_BIN): $(call objs,$(SEND_SRCS)) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
$(RECV_BIN): $(call objs,$(RECV_SRCS)) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
# `sluice publish` reads the publisher's configuration and states with
# the publisher's own code (one parser per file format).
PUB_SHARED  = build/receiver/publish/conf.o build/receiver/publish/state.o \
              build/receiver/publish/result.o
$(SLUICE_BIN): $(call objs,$(SLUICE_SRCS)) $(PUB_SHARED) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
$(HOOKD_BIN): build/tools/sluice-hookd.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
$(LINK_BIN): $(call objs,$(LINK_SRCS)) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)
$(call objs,$(PUB_SRCS)): override CFLAGS += $(CURL_CFLAGS)
$(PUB_BIN): $(call objs,$(PUB_SRCS)) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CURL_LIBS)

tests/bin/%: tests/unit/%.c $(LIB)
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) -Wno-missing-prototypes $(LDFLAGS) -o $@ $< $(LIB) \
	    $(PKG_LIBS) $(CMOCKA_LIBS)

# Unit tests of receiver modules that are not in the library.
tests/bin/test_finished: tests/unit/test_finished.c build/receiver/finished.o $(LIB)
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) -Wno-missing-prototypes $(LDFLAGS) -o $@ $^ \
	    $(PKG_LIBS) $(CMOCKA_LIBS)
tests/bin/test_sigcheck: tests/unit/test_sigcheck.c build/receiver/sigcheck.o $(LIB)
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) -Wno-missing-prototypes $(LDFLAGS) -o $@ $^ \
	    $(PKG_LIBS) $(CMOCKA_LIBS)
tests/bin/test_publish_conf: tests/unit/test_publish_conf.c \
    build/receiver/publish/conf.o $(LIB)
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) -Wno-missing-prototypes $(LDFLAGS) -o $@ $^ \
	    $(PKG_LIBS) $(CMOCKA_LIBS)
tests/bin/test_publish_state: tests/unit/test_publish_state.c $(PUB_SHARED) $(LIB)
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) -Wno-missing-prototypes $(LDFLAGS) -o $@ $^ \
	    $(PKG_LIBS) $(CMOCKA_LIBS)
# Lifecycle with its I/O neighbours stubbed in the test (policy is real),
# on a clock the test skews.
tests/bin/test_lifecycle: tests/unit/test_lifecycle.c build/receiver/lifecycle.o \
    build/receiver/transfer.o build/receiver/finished.o build/receiver/policy.o $(LIB)
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) -Wno-missing-prototypes $(LDFLAGS) \
	    -Wl,--wrap=util_now_ns -o $@ $^ $(PKG_LIBS) $(CMOCKA_LIBS)

# Test-only tools, built by make check.
MUTATE_BIN  = tests/bin/sluice-mutate
$(MUTATE_BIN): tests/mutate/sluice-mutate.c build/sender/send.o build/sender/tx.o build/sender/pace.o $(LIB)
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

JUNK_BIN    = tests/bin/sluice-junk
$(JUNK_BIN): tests/mutate/sluice-junk.c $(LIB)
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

FILL_BIN    = tests/bin/finished-fill
$(FILL_BIN): tests/tools/finished-fill.c build/receiver/finished.o $(LIB)
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

REPLAY_BIN  = tests/bin/dgram-replay
$(REPLAY_BIN): tests/tools/dgram-replay.c $(LIB)
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

MANGLE_BIN  = tests/bin/pcap-mangle
$(MANGLE_BIN): tests/tools/pcap-mangle.c
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

PUBSTORE_BIN = tests/bin/pubstore
$(PUBSTORE_BIN): tests/tools/pubstore.c $(call objs,$(PUB_MODS)) $(LIB)
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CURL_LIBS)

# The raw-UDP baseline and data generator, built by make bench only.
LINKBENCH_BIN = tests/bin/linkbench
$(LINKBENCH_BIN): tests/bench/linkbench.c $(LIB)
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

UDPBENCH_BIN = tests/bin/udpbench
$(UDPBENCH_BIN): tests/bench/udpbench.c build/sender/pace.o $(LIB)
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

# npm packages (s3rver) go to a cache outside the tree; without npm or a
# registry the tests that need them skip, and make deps still succeeds.
deps:
	@tools/deps.sh $(DEB_PKGS)
	@tools/npm-deps.sh >/dev/null || echo "deps: s3rver not installed; the S3 test will skip"

check: deps
	@$(MAKE) --no-print-directory all $(UNIT_BINS) $(MUTATE_BIN) $(JUNK_BIN) \
	    $(FILL_BIN) $(REPLAY_BIN) $(MANGLE_BIN) $(PUBSTORE_BIN)
	@tests/run.sh

unit: $(UNIT_BINS)
	@tests/run.sh unit

e2e: all $(MUTATE_BIN) $(JUNK_BIN) $(REPLAY_BIN) $(FILL_BIN) $(MANGLE_BIN) \
    $(PUBSTORE_BIN)
	@tests/run.sh e2e

demo: deps
	@$(MAKE) --no-print-directory all
	@tools/demo.sh

# udpcast (the comparison) and GNU time (the sender's peak RSS) are
# installed for bench only, and may fail to: bench.sh then says n/a.
bench: deps
	@tools/deps.sh udpcast time || echo "bench: udpcast or time not installed"
	@$(MAKE) --no-print-directory all $(UDPBENCH_BIN) $(LINKBENCH_BIN)
	@tests/bin/linkbench
	@tests/bench/bench.sh
	@tests/bench/fresh.sh
	@tests/bench/capacity.sh
	@tests/bench/sink.sh

# make install PREFIX=/usr DESTDIR=...: binaries, the units, the
# sysusers/tmpfiles/logrotate snippets, example configurations, man pages.
BINDIR      = $(PREFIX)/bin
UNITDIR     = $(PREFIX)/lib/systemd/system
SYSUSERSDIR = $(PREFIX)/lib/sysusers.d
TMPFILESDIR = $(PREFIX)/lib/tmpfiles.d
MANDIR      = $(PREFIX)/share/man
DOCDIR      = $(PREFIX)/share/doc/sluice
SYSCONFDIR ?= /etc
INSTALLED   = $(BINDIR)/sluice-send $(BINDIR)/sluice-recv $(BINDIR)/sluice \
              $(BINDIR)/sluice-link $(BINDIR)/sluice-hookd \
              $(UNITDIR)/sluice-recv.service \
              $(UNITDIR)/sluice-send.service $(UNITDIR)/sluice-train@.service \
              $(UNITDIR)/sluice-train@.timer \
              $(UNITDIR)/sluice-hook.socket $(UNITDIR)/sluice-hook@.service \
              $(UNITDIR)/sluice-publish.service $(BINDIR)/sluice-publish \
              $(DOCDIR)/train-schedule.conf \
              $(SYSUSERSDIR)/sluice.conf $(TMPFILESDIR)/sluice.conf \
              $(SYSCONFDIR)/logrotate.d/sluice \
              $(SYSCONFDIR)/sluice/receiver.conf.example \
              $(SYSCONFDIR)/sluice/sender.conf.example \
              $(SYSCONFDIR)/sluice/publish.conf.example \
              $(MANDIR)/man1/sluice.1 $(MANDIR)/man1/sluice-link.1 \
              $(MANDIR)/man5/sluice.conf.5 \
              $(MANDIR)/man8/sluice-send.8 $(MANDIR)/man8/sluice-recv.8 \
              $(MANDIR)/man8/sluice-publish.8

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/logrotate.d $(DESTDIR)$(SYSCONFDIR)/sluice \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR)
	install -m 0755 $(BINS) $(DESTDIR)$(BINDIR)/
	install -m 0644 systemd/sluice-recv.service systemd/sluice-send.service \
	    systemd/sluice-train@.service systemd/sluice-train@.timer \
	    systemd/sluice-hook.socket systemd/sluice-hook@.service \
	    systemd/sluice-publish.service $(DESTDIR)$(UNITDIR)/
	install -m 0644 systemd/train-schedule.conf $(DESTDIR)$(DOCDIR)/
	install -m 0644 systemd/sluice.sysusers $(DESTDIR)$(SYSUSERSDIR)/sluice.conf
	install -m 0644 systemd/sluice.tmpfiles $(DESTDIR)$(TMPFILESDIR)/sluice.conf
	install -m 0644 systemd/sluice.logrotate \
	    $(DESTDIR)$(SYSCONFDIR)/logrotate.d/sluice
	install -m 0644 systemd/receiver.conf.example \
	    systemd/sender.conf.example systemd/publish.conf.example \
	    $(DESTDIR)$(SYSCONFDIR)/sluice/
	install -m 0644 man/sluice.1 man/sluice-link.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 man/sluice.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 man/sluice-send.8 man/sluice-recv.8 \
	    man/sluice-publish.8 $(DESTDIR)$(MANDIR)/man8/

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(SYSCONFDIR)/sluice $(DESTDIR)$(DOCDIR) 2>/dev/null

clean:
	rm -rf build tests/bin $(BINS) $(ALL_OBJS) $(ALL_OBJS:.o=.d)

-include $(ALL_OBJS:.o=.d)

# Fuzzing.  `make fuzz` builds libFuzzer harnesses with clang (run them by
# hand: tests/bin/fuzz_wire tests/fuzz/corpus/wire); `make fuzz-replay`
# replays the committed corpora under ASan+UBSan with gcc, as CI does.
FUZZ_NAMES  = wire manifest logfmt audit request finished missing progress \
              pcap
FUZZ_SRCS   = $(PROTO_SRCS) common/logfmt.c common/manifest.c common/hash.c common/sign.c \
              common/audit.c common/qlog.c common/request.c common/log.c \
              common/fec.c common/compress.c common/conf.c common/limits.c \
              receiver/finished.c receiver/progress.c receiver/transfer.c \
              receiver/failpoint.c sender/send.c sender/tx.c sender/pace.c common/util.c \
              common/capfile.c
FUZZ_SAN    = -fsanitize=address,undefined -fno-sanitize-recover=all

fuzz:
	@mkdir -p tests/bin
	for f in $(FUZZ_NAMES); do \
	    clang -g -O1 -std=gnu11 -D_GNU_SOURCE -I. -fsanitize=fuzzer,address,undefined \
	        -o tests/bin/fuzz_$$f tests/fuzz/fuzz_$$f.c $(FUZZ_SRCS) \
	        $(shell pkg-config --libs libcrypto libsodium zlib libisal libconfig libpcap) -lm -pthread || exit 1; \
	done

fuzz-replay:
	@mkdir -p tests/bin
	@for f in $(FUZZ_NAMES); do \
	    $(CC) -g -O1 -std=gnu11 -D_GNU_SOURCE -I. $(FUZZ_SAN) \
	        -o tests/bin/replay_$$f tests/fuzz/replay.c tests/fuzz/fuzz_$$f.c \
	        $(FUZZ_SRCS) $(shell pkg-config --libs libcrypto libsodium zlib libisal libconfig libpcap) -lm -pthread || exit 1; \
	    tests/bin/replay_$$f tests/fuzz/corpus/$$f/* || exit 1; \
	done

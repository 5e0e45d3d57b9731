# nobounce - build, test, benchmark, install.
#
#   make demo     build, then show the main job on a real workload
#   make check    build and run every test (what CI runs)
#   make bench    benchmarks: ratios measured side by side in one run
#   make stress   a time-bounded soak (STRESS_SECONDS=600)
#   make install  PREFIX=/usr/local DESTDIR=

PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
DESTDIR ?=

CC      ?= cc
B       := build
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS  ?= -O2 -g
BASEFLAGS := -std=gnu11 $(WARN) -fPIC -D_GNU_SOURCE -Ishim
SHIMFLAGS := $(BASEFLAGS) -fvisibility=hidden -DNB_SHARED -ftls-model=initial-exec

# Mechanisms (unit-testable without the hooks) and the interposed entry points.
HOOK_SRC  := $(wildcard shim/hook_*.c)
CORE_SRC  := $(filter-out $(HOOK_SRC),$(wildcard shim/*.c))
HDRS      := $(wildcard shim/*.h)

LIB       := $(B)/libnobounce.so
SHIM_OBJ  := $(patsubst shim/%.c,$(B)/shim/%.o,$(CORE_SRC) $(HOOK_SRC))
CORE_OBJ  := $(patsubst shim/%.c,$(B)/core/%.o,$(CORE_SRC))

UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(patsubst tests/unit/%.c,$(B)/unit/%,$(UNIT_SRC))
PROG_SRC  := $(wildcard tests/prog/*.c)
PROG_BIN  := $(patsubst tests/prog/%.c,$(B)/prog/%,$(PROG_SRC))
TLIB_SRC  := $(wildcard tests/lib/*.c)
TLIB_SO   := $(patsubst tests/lib/%.c,$(B)/testlib/lib%.so,$(TLIB_SRC))

.PHONY: all deps lib progs unit stress check check-valgrind check-unit check-integration check-sanitize check-tsan \
        demo bench install uninstall clean

all: lib progs

deps:
	@sh scripts/deps.sh

lib: $(LIB)

# Symbol resolution and the free/realloc hooks run inside a sanitizer's
# own start-up, before its runtime accepts instrumented calls: those two
# files are never instrumented (they hold no shared state worth checking).
NOSAN_SRC := shim/real.c shim/hook_mem.c shim/hook_limits.c shim/hook_kread.c

$(B)/shim/%.o: shim/%.c $(HDRS) | deps
	@mkdir -p $(@D)
	$(CC) $(SHIMFLAGS) $(CFLAGS) $(if $(filter $<,$(NOSAN_SRC)),,$(SAN)) -c $< -o $@

$(LIB): $(SHIM_OBJ)
	$(CC) -shared $(if $(SAN),,-Wl,-z,defs) -Wl,-z,now $(SAN) \
	    -o $@ $^ -ldl -lpthread

# The core again, without hooks and with default visibility, for unit tests.
$(B)/core/%.o: shim/%.c $(HDRS) | deps
	@mkdir -p $(@D)
	$(CC) $(BASEFLAGS) $(CFLAGS) $(SAN) -c $< -o $@

$(B)/unit/%: tests/unit/%.c tests/unit/*.h $(CORE_OBJ) | deps
	@mkdir -p $(@D)
	$(CC) $(BASEFLAGS) $(CFLAGS) $(SAN) $< $(CORE_OBJ) -o $@ -lcmocka -ldl -lpthread

$(B)/prog/%: tests/prog/%.c tests/prog/*.h | deps
	@mkdir -p $(@D)
	$(CC) $(BASEFLAGS) $(CFLAGS) $(SAN) $< -o $@ -lpthread $(PROG_LDFLAGS)

# fdswap exports its own lseek (a program's definition the library must
# not call for its own position moves).
$(B)/prog/fdswap: PROG_LDFLAGS = -rdynamic

# Helper libraries preloaded next to the shim by the integration tests.
$(B)/testlib/lib%.so: tests/lib/%.c | deps
	@mkdir -p $(@D)
	$(CC) $(BASEFLAGS) $(CFLAGS) -shared $< -o $@

# Keep the core objects between runs: make would delete them as intermediates.
.SECONDARY: $(CORE_OBJ)

# xferlog compiles the kernel-transfer mechanism in, to compare it with the
# plain calls directly.
$(B)/prog/xferlog: shim/xfer.c shim/xfer.h shim/sigview.c

progs: $(PROG_BIN) $(TLIB_SO)
unit: $(UNIT_BIN)

check: check-sanitize check-tsan check-valgrind check-unit check-integration

# Valgrind memcheck: the mechanisms' unit tests, and test programs run
# plain and preloaded under it (tests/valgrind.sh says what and why).
check-valgrind: $(LIB) $(PROG_BIN) $(UNIT_BIN)
	@bash tests/valgrind.sh

check-unit: $(UNIT_BIN)
	@sh tests/run-unit.sh $(UNIT_BIN)

check-integration: $(LIB) $(PROG_BIN) $(TLIB_SO)
	@bash tests/run-integration.sh

# Unit tests and test programs under ASan+UBSan. The library itself is
# preloaded as built, after the sanitizer runtime, which must come first
# in the process; the zero-copy and kernel-transfer suites then run their
# programs from build-san (leak checking off: test programs keep their
# buffers to the end on purpose).
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer
check-sanitize: $(LIB)
	$(MAKE) B=build-san SAN="$(SAN_FLAGS)" CFLAGS="-O1 -g" check-unit \
	    build-san/prog/zc build-san/prog/xferlog build-san/prog/neighbours
	NB_TEST_PROG=$(CURDIR)/build-san/prog \
	    NB_TEST_PRELOAD_FIRST=$$($(CC) -print-file-name=libasan.so) \
	    ASAN_OPTIONS=detect_leaks=0:handle_segv=0:handle_sigbus=0 UBSAN_OPTIONS=halt_on_error=1 \
	    NB_ONLY_TEST=45- bash tests/run-integration.sh
	NB_TEST_PROG=$(CURDIR)/build-san/prog ASAN_OPTIONS=detect_leaks=0 \
	    UBSAN_OPTIONS=halt_on_error=1 NB_ONLY_TEST=60- bash tests/run-integration.sh

# The library and the threaded test program under TSan: the race detector
# sees the shim's shared state (descriptor table, pairs, loops, arming)
# from several copying threads at once. Observe mode: phantoms resolve
# through SIGSEGV on guarded pages, which TSan's own signal interception
# does not support; the zero-copy path is stressed without TSan in the
# integration tests.
check-tsan:
	$(MAKE) B=build-tsan SAN="-fsanitize=thread" CFLAGS="-O1 -g" build-tsan/libnobounce.so \
	    build-tsan/prog/threads
	TSAN_OPTIONS="halt_on_error=1 exitcode=66" NOBOUNCE_MODE=observe \
	    LD_PRELOAD=$(CURDIR)/build-tsan/libnobounce.so build-tsan/prog/threads 4 64
	TSAN_OPTIONS="halt_on_error=1 exitcode=66" NOBOUNCE_MODE=observe NOBOUNCE_ARM_AFTER=1 \
	    LD_PRELOAD=$(CURDIR)/build-tsan/libnobounce.so build-tsan/prog/threads 4 64

demo: $(LIB) $(PROG_BIN)
	@bash scripts/demo.sh

bench: $(LIB) $(PROG_BIN)
	@bash scripts/bench.sh
	@bash scripts/bench-kernel.sh
	@bash scripts/bench-syscalls.sh
	@bash scripts/bench-zerocopy.sh
	@if [ "$$(id -u)" = 0 ]; then bash scripts/bench-netns.sh; \
	else echo "bench-netns.sh: left out (needs root for network namespaces)"; fi
	@bash scripts/bench-leases.sh
	@bash scripts/bench-servers.sh
	@bash scripts/bench-hotpath.sh

# A time-bounded soak (STRESS_SECONDS, default 600): plain vs preloaded,
# compared run by run (scripts/stress.sh).
STRESS_SECONDS ?= 600
stress: $(LIB) $(PROG_BIN)
	@bash scripts/stress.sh $(STRESS_SECONDS)

install: $(LIB)
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man7
	install -m 0644 $(LIB) $(DESTDIR)$(LIBDIR)/libnobounce.so
	sed 's|@LIBDIR@|$(LIBDIR)|' scripts/nobounce > $(DESTDIR)$(BINDIR)/nobounce
	chmod 0755 $(DESTDIR)$(BINDIR)/nobounce
	install -m 0644 man/nobounce.1 $(DESTDIR)$(MANDIR)/man1/nobounce.1
	install -m 0644 man/libnobounce.7 $(DESTDIR)$(MANDIR)/man7/libnobounce.7

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libnobounce.so $(DESTDIR)$(BINDIR)/nobounce \
	    $(DESTDIR)$(MANDIR)/man1/nobounce.1 $(DESTDIR)$(MANDIR)/man7/libnobounce.7

clean:
	rm -rf build build-san build-tsan

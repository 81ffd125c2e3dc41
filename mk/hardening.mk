# Hardening (issue 8): libFuzzer targets, a valgrind run of the CLI tier, the
# sweep program tests/hardening/sweep.sh builds on demand, and LSAN_OPTIONS
# for make test SANITIZE=1.
#
#   make fuzz FUZZ_SECONDS=N   build every tests/fuzz/*/fuzz_*.c with clang
#                              (libFuzzer + ASan + UBSan) and run each N s
#   make fuzz-regress          run each target once over its committed seeds
#   make valgrind              tests/cli/basic.sh with bin/xsr under valgrind

# make test SANITIZE=1: LeakSanitizer ignores leaks inside Criterion itself.
ifeq ($(SANITIZE),1)
export LSAN_OPTIONS ?= suppressions=$(CURDIR)/tests/hardening/lsan.supp:print_suppressions=0
endif

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  := -std=gnu11 -O1 -g -fno-omit-frame-pointer -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
                -Ilibxsrelf/include -DXSR_TESTHOOKS=1 -fsanitize=address,undefined \
                -fno-sanitize-recover=undefined
FUZZ_SRC     := $(wildcard tests/fuzz/*/fuzz_*.c)
FUZZ_BIN     := $(foreach s,$(FUZZ_SRC),build/fuzz/$(basename $(notdir $(s))))
FUZZ_LIBOBJ  := $(LIB_SRC:libxsrelf/src/%.c=build/fuzz/lib/%.o)
# The migration receiver's target also links the engines it drives (migrate/,
# restore/ for post-copy), the backend interface and util/; every other target
# links the library alone.
FUZZ_TOOLOBJ := $(patsubst %.c,build/fuzz/tools/%.o,$(wildcard migrate/*.c restore/*.c util/*.c) backends/backend.c)

build/fuzz/lib/%.o: libxsrelf/src/%.c $(wildcard libxsrelf/include/xsrelf/*.h libxsrelf/src/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

build/fuzz/tools/%.o: %.c $(wildcard libxsrelf/include/xsrelf/*.h util/*.h backends/*.h save/*.h restore/*.h vmm/*.h cli/*.h migrate/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

# Every target calls the library only (its parsers, and its foreign-format
# modules such as xsrelf/xen.h): it links the library's objects, nothing of
# the tool.  tests/spec/check-layers.sh checks their includes.
build/fuzz/fuzz_%: $(FUZZ_LIBOBJ) $(wildcard tests/fuzz/*/fuzz_*.c tests/fuzz/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $$(ls tests/fuzz/*/$(notdir $@).c) \
	    $(FUZZ_LIBOBJ) $(LIB_LIBS) -lpthread

build/fuzz/fuzz_migrate-recv: tests/fuzz/migrate-recv/fuzz_migrate-recv.c $(FUZZ_LIBOBJ) $(FUZZ_TOOLOBJ) $(wildcard tests/fuzz/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIBOBJ) $(FUZZ_TOOLOBJ) $(LIB_LIBS) -lpthread

.SECONDARY: $(FUZZ_LIBOBJ) $(FUZZ_TOOLOBJ)

fuzz-deps:
	XSR_EXTRA_PKGS="clang libclang-rt-14-dev" tests/install-deps.sh

fuzz-build: fuzz-deps
	$(MAKE) $(FUZZ_BIN)

fuzz: fuzz-build
	tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

fuzz-regress: fuzz-build
	tests/fuzz/run.sh regress $(FUZZ_BIN)

# The sweep program of tests/hardening/sweep.sh (links the static library).
tests/build/sweep: tests/hardening/sweep.c lib/libxsrelf.a
	@mkdir -p tests/build
	$(CC) $(CFLAGS_BASE) -o $@ $< lib/libxsrelf.a $(LIB_LIBS) -lpthread

# The QEMU / virsh save sweep program of tests/hardening/qemu-sweep.sh.
tests/build/qemu-sweep: tests/hardening/qemu_sweep.c lib/libxsrelf.a
	@mkdir -p tests/build
	$(CC) $(CFLAGS_BASE) -o $@ $< lib/libxsrelf.a $(LIB_LIBS) -lpthread

# Hostile inputs with recomputed checksums (tests/hardening/hostile.sh, fuzz seeds).
tests/build/craft: tests/hardening/craft.c tests/fuzz/resum.h lib/libxsrelf.a
	@mkdir -p tests/build
	$(CC) $(CFLAGS_BASE) -o $@ $< lib/libxsrelf.a $(LIB_LIBS) -lpthread

valgrind: all
	XSR=$(CURDIR)/tests/hardening/valgrind-xsr bash tests/cli/basic.sh

.PHONY: fuzz fuzz-deps fuzz-build fuzz-regress valgrind

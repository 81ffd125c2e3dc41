# xsrelf top-level build.  `make` builds bin/xsr, lib/libxsrelf.{so,a} and
# bin/xsr-guest.elf; `make test` installs what it needs and runs every test.
PREFIX     ?= /usr/local
CC         ?= cc
SANITIZE   ?= 0
SOVERSION  := 1
VERSION    := 0.1.0

CFLAGS_BASE := -std=gnu11 -O2 -g -Wall -Wextra -Wno-unused-parameter -Werror=implicit-function-declaration \
               -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Ilibxsrelf/include -fPIC
ifeq ($(SANITIZE),1)
CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS_SAN := -fsanitize=address,undefined
endif
XSR_TESTHOOKS ?= 1
CFLAGS     += $(CFLAGS_BASE)
LIB_LIBS   := -lelf -lxxhash -lzstd -llz4 -lz -lbz2 -llzma -llzo2
# The Xen backend (backends/xen.c) is built when libxen-dev is there; without it
# `xsr save|core DOMID` and Xen restores say "built without Xen support".
XEN_LIBS   := $(shell pkg-config --exists xencontrol xenforeignmemory xenguest xenlight xentoollog xenstore 2>/dev/null && \
                echo "-lxenctrl -lxenforeignmemory -lxenguest -lxenlight -lxentoollog -lxenstore")
CFLAGS     += $(if $(XEN_LIBS),-DXSR_HAVE_XEN=1)

LIB_SRC    := $(wildcard libxsrelf/src/*.c)
LIB_OBJ    := $(LIB_SRC:%.c=build/%.o)
# The shipped library (lib/libxsrelf.so, and the archive `make install` puts
# beside it) is built without test hooks: it reads no XSR_FAULT, XSR_IO_COUNT
# or XSR_BENCH_NOHASH.  lib/libxsrelf.a, which bin/xsr and the test programs
# link, keeps them (XSR_TESTHOOKS, default 1) for the fault tier.
SHIP_OBJ   := $(LIB_SRC:%.c=build/shipped/%.o)
TOOL_SRC   := $(wildcard util/*.c cli/*.c save/*.c restore/*.c core/*.c backends/*.c vmm/*.c migrate/*.c)
TOOL_OBJ   := $(TOOL_SRC:%.c=build/%.o)

all: lib/libxsrelf.so lib/libxsrelf.a build/shipped/libxsrelf.a bin/xsr guest

build/%.o: %.c $(wildcard libxsrelf/include/xsrelf/*.h libxsrelf/src/*.h util/*.h backends/*.h save/*.h restore/*.h vmm/*.h cli/*.h migrate/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DXSR_TESTHOOKS=$(XSR_TESTHOOKS) -fvisibility=hidden -c $< -o $@

build/shipped/%.o: %.c $(wildcard libxsrelf/include/xsrelf/*.h libxsrelf/src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DXSR_TESTHOOKS=0 -fvisibility=hidden -c $< -o $@

build/shipped/libxsrelf.a: $(SHIP_OBJ)
	rm -f $@ && ar rcs $@ $^

lib/libxsrelf.a: $(LIB_OBJ)
	@mkdir -p lib
	rm -f $@ && ar rcs $@ $^

lib/libxsrelf.so: $(SHIP_OBJ) libxsrelf/libxsrelf.map
	@mkdir -p lib
	$(CC) -shared -Wl,-soname,libxsrelf.so.$(SOVERSION) -Wl,--version-script=libxsrelf/libxsrelf.map \
	    $(LDFLAGS_SAN) -o lib/libxsrelf.so.$(VERSION) $(SHIP_OBJ) $(LIB_LIBS)
	ln -sf libxsrelf.so.$(VERSION) lib/libxsrelf.so.$(SOVERSION)
	ln -sf libxsrelf.so.$(SOVERSION) $@

bin/xsr: $(TOOL_OBJ) lib/libxsrelf.a
	@mkdir -p bin
	$(CC) $(LDFLAGS_SAN) -o $@ $(TOOL_OBJ) lib/libxsrelf.a $(LIB_LIBS) $(XEN_LIBS) -lpthread

-include guest/guest.mk
-include mk/*.mk
guest:: ;

clean:
	rm -rf build bin lib tests/build

.PHONY: all clean guest test deps bench bench-quick demo install fuzz check-xen
-include tests/tests.mk

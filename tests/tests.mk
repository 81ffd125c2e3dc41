# Tests: `make test` installs what it needs, builds, and runs every tier.
UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_BIN := tests/build/unit

deps:
	tests/install-deps.sh

$(UNIT_BIN): $(UNIT_SRC) lib/libxsrelf.a
	@mkdir -p tests/build
	$(CC) $(CFLAGS_BASE) -Ibackends -o $@ $(UNIT_SRC) build/backends/synth.o build/backends/backend.o \
	    build/save/save.o build/save/xenstore.o build/restore/restore.o build/restore/lazy.o build/util/err.o lib/libxsrelf.a -lcriterion $(LIB_LIBS) -lpthread

test: deps
	$(MAKE) all $(UNIT_BIN)
	tests/run-all.sh

# make bench: every row, the KVM ones in the nested-KVM rig without /dev/kvm
# (~30 min); make bench-quick: small sizes, no rig (~1-2 min).  Both write
# bench/results/latest.json and print a Markdown table (tests/bench/table.py).
bench: all
	python3 tests/bench/table.py --mode full --json bench/results/latest.json -- tests/bench/bench.sh

bench-quick: all
	BENCH_QUICK=1 python3 tests/bench/table.py --mode quick --json bench/results/latest.json -- tests/bench/bench.sh

demo: deps
	$(MAKE) all
	scripts/demo.sh

install: all build/shipped/libxsrelf.a
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/xsrelf \
	    $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/xsrelf/gdb $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 755 bin/xsr $(DESTDIR)$(PREFIX)/bin/xsr
	install -m 644 bin/xsr-guest.elf $(DESTDIR)$(PREFIX)/bin/xsr-guest.elf
	install -m 644 build/shipped/libxsrelf.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 lib/libxsrelf.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libxsrelf.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libxsrelf.so.$(SOVERSION)
	ln -sf libxsrelf.so.$(SOVERSION) $(DESTDIR)$(PREFIX)/lib/libxsrelf.so
	install -m 644 libxsrelf/include/xsrelf/*.h $(DESTDIR)$(PREFIX)/include/xsrelf/
	install -m 644 docs/man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 contrib/bash-completion/xsr $(DESTDIR)$(PREFIX)/share/bash-completion/completions/xsr
	[ ! -d gdb-scripts ] || install -m 644 gdb-scripts/*.py $(DESTDIR)$(PREFIX)/share/xsrelf/gdb/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' libxsrelf/xsrelf.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/xsrelf.pc

# gdb loads every .py in its data directory's gdb/command at start-up.
GDB_PYDIR ?= $(shell gdb -nx -batch -ex 'python print(gdb.PYTHONDIR)' 2>/dev/null)
install-gdb:
	@[ -n "$(GDB_PYDIR)" ] || { echo "install-gdb: gdb with Python not found"; exit 1; }
	install -D -m 644 gdb-scripts/xsrelf.py $(DESTDIR)$(GDB_PYDIR)/gdb/command/xsrelf.py
	@echo "installed: gdb now has the xsr commands at start-up"
.PHONY: install-gdb

# Helpers of tests/cli/verbs.sh: a pair of images one page and two vCPU fields
# apart (xsr diff), and the hand-built page tables of tests/gdb (xsr dump --vaddr).
tests/build/mkpair: tests/cli/mkpair.c lib/libxsrelf.a
	@mkdir -p tests/build
	$(CC) $(CFLAGS_BASE) -o $@ $< lib/libxsrelf.a $(LIB_LIBS) -lpthread

tests/build/mkpt: tests/gdb/mkpt.c lib/libxsrelf.a
	@mkdir -p tests/build
	$(CC) $(CFLAGS_BASE) -o $@ $< lib/libxsrelf.a $(LIB_LIBS) -lpthread

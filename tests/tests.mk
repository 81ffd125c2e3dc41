# Tests: `make test` installs what it needs, builds, and runs every tier.
UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_BIN := tests/build/unit

deps:
	tests/install-deps.sh

$(UNIT_BIN): $(UNIT_SRC) lib/libxsrelf.a
	@mkdir -p tests/build
	$(CC) $(CFLAGS_BASE) -Ibackends -o $@ $(UNIT_SRC) build/backends/synth.o build/backends/backend.o \
	    build/save/save.o build/restore/restore.o lib/libxsrelf.a -lcriterion $(LIB_LIBS) -lpthread

test: deps
	$(MAKE) all $(UNIT_BIN)
	tests/run-all.sh

bench: all
	tests/bench/bench.sh

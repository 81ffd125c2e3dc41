#!/bin/bash
# The dependency rules (docs/architecture.md), checked with the compiler's
# includes (cc -MM) and the objects' symbols (nm): check-layers.py.  Every
# violation must be in tests/spec/layers-known.txt, which only shrinks.  The
# checker itself is seen to fail on deliberate violations: an include of cli/
# from the library, a circle of two objects, a tool object defining an xsr_
# name the library does not export, and a known entry that is gone.
set -uo pipefail
. "$(dirname "$0")/../cli/lib.inc"
CHK=$ROOT/tests/spec/check-layers.py
KNOWN=$ROOT/tests/spec/layers-known.txt

if ! ls "$ROOT"/build/cli/*.o >/dev/null 2>&1; then
	bad "no objects under build/ (make all first)"
	summary
	exit 1
fi
python3 "$CHK" --root "$ROOT" --objs "$ROOT/build" --known "$KNOWN" >"$T/out" 2>&1
rc=$?
check "the tree keeps the rules: no violation outside layers-known.txt, none of it fixed and still listed ($(tail -n1 "$T/out"))" \
	test $rc -eq 0
[ $rc -eq 0 ] || sed 's/^/     /' "$T/out" | head -30

# A copy of the library's sources, and cli/cli.h (with util/, which it includes), with the library including it.
mkdir -p "$T/tree/cli"
(cd "$ROOT" && tar -cf - libxsrelf util) | tar -xf - -C "$T/tree" && cp "$ROOT/cli/cli.h" "$T/tree/cli/"
echo '#include "../../cli/cli.h"' >>"$T/tree/libxsrelf/src/common.c"
python3 "$CHK" --root "$T/tree" --known "$KNOWN" >"$T/out" 2>&1
rc=$?
check "a deliberate violation (libxsrelf/src/common.c includes cli/cli.h) fails, naming it" \
	bash -c "[ $rc -eq 1 ] && grep -qx 'NEW violation: lib-includes-outside libxsrelf/src/common.c cli/cli.h' '$T/out'"

# Two objects that call each other: a circle.
mkdir -p "$T/objs/save"
printf 'int b(int);\nint a(int x) { return x ? b(x - 1) : 0; }\n' >"$T/a.c"
printf 'int a(int);\nint b(int x) { return x ? a(x - 1) : 1; }\n' >"$T/b.c"
cc -c "$T/a.c" -o "$T/objs/save/a.o" && cc -c "$T/b.c" -o "$T/objs/save/b.o"
python3 "$CHK" --root "$T/empty" --objs "$T/objs" >"$T/out" 2>&1
rc=$?
check "a deliberate circle (save/a.c <-> save/b.c) fails, naming it" \
	bash -c "[ $rc -eq 1 ] && grep -qx 'NEW violation: circle save/a.c save/b.c' '$T/out'"

# xsr_ is the library's: a tool object may define only the names libxsrelf.map lists.
mkdir -p "$T/objs2/cli"
printf '%s\n' 'int xsr_tool_thing(void) { return 1; }' 'int xsr_strerror(void) { return 2; }' \
	'int cli_thing(void) { return 3; }' >"$T/c.c"
cc -c "$T/c.c" -o "$T/objs2/cli/c.o"
python3 "$CHK" --root "$T/empty" --objs "$T/objs2" --map "$ROOT/libxsrelf/libxsrelf.map" >"$T/out" 2>&1
rc=$?
check "a deliberate tool xsr_ symbol (cli/c.c defines xsr_tool_thing) fails, naming it; the map's xsr_strerror and cli_thing pass" \
	bash -c "[ $rc -eq 1 ] && grep -qx 'NEW violation: tool-defines-xsr cli/c.c xsr_tool_thing' '$T/out' &&
		grep -q '^1 violations found' '$T/out'"

# A known entry that is no longer found must be deleted from the list.
printf '%s\n' "circle save/a.c save/b.c" "includes-cli vmm/nothing.c cli/cli.h" >"$T/known"
python3 "$CHK" --root "$T/empty" --objs "$T/objs" --known "$T/known" >"$T/out" 2>&1
rc=$?
check "a listed violation that is gone fails, asking to remove its line" \
	bash -c "[ $rc -eq 1 ] && grep -q '^FIXED.*includes-cli vmm/nothing.c cli/cli.h' '$T/out'"
summary

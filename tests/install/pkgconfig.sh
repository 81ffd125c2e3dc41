#!/bin/bash
# The installed library is enough for a program of one's own: `make install`
# into a temporary prefix, tests/install/xen2xsr.c (a Xen save -> an xsrelf
# image through xsrelf/xen.h) built with `pkg-config --cflags --libs xsrelf`
# against it alone, run on the golden xl save; its image verifies and is
# byte for byte the one `xsr import` writes.
set -uo pipefail
. "$(dirname "$0")/../cli/lib.inc"
SAVE=$ROOT/tests/xen/golden/xen417-rigu.save.zst
for tool in pkg-config zstd "${CC:-cc}"; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIPPED: $tool not installed"
		summary
		exit 0
	fi
done
if [ ! -f "$SAVE" ]; then
	bad "golden save $SAVE is there"
	summary
	exit 1
fi
P=$T/prefix
# make install's prerequisite is `all`, already built by whoever runs the tiers: nothing is rebuilt
check "make install PREFIX=<temporary directory>" make -s -C "$ROOT" install PREFIX="$P"
check "the installed headers hold xsrelf/xen.h, xsrelf/qemu.h and xsrelf/foreign.h" \
	test -f "$P/include/xsrelf/xen.h" -a -f "$P/include/xsrelf/qemu.h" -a -f "$P/include/xsrelf/foreign.h"
export PKG_CONFIG_PATH=$P/lib/pkgconfig
check "pkg-config finds xsrelf in the prefix" bash -c "pkg-config --cflags --libs xsrelf | grep -q -- '-I$P/include'"
# an ASan build of the library (make test SANITIZE=1) needs its runtime first in the program
SAN=()
readelf -d "$P/lib/libxsrelf.so" 2>/dev/null | grep -q libasan && SAN=(-fsanitize=address,undefined)
# only the installed headers: no -I into the source tree
check "xen2xsr.c builds with pkg-config --cflags --libs xsrelf" bash -c \
	"${CC:-cc} ${SAN[*]} -std=gnu11 -Wall -Wextra -Werror -o '$T/xen2xsr' '$ROOT/tests/install/xen2xsr.c' \
	 \$(pkg-config --cflags --libs xsrelf) -Wl,-rpath,'$P/lib'"
check "xsrelf/qemu.h compiles alone and links xsr_qemu_import_fd from the installed library" bash -c \
	"printf '#include <xsrelf/qemu.h>\\nint main(void) { return xsr_qemu_import_fd(-1, -1, 0, 0, 0, 0) != XSR_E_INVAL; }\\n' >'$T/q.c' &&
	 ${CC:-cc} ${SAN[*]} -std=gnu11 -Wall -Wextra -Werror -o '$T/q' '$T/q.c' \$(pkg-config --cflags --libs xsrelf) -Wl,-rpath,'$P/lib' && '$T/q'"
check "xen2xsr is linked against the installed libxsrelf.so" bash -c \
	"ldd '$T/xen2xsr' | grep -q '$P/lib/libxsrelf.so'"
zstd -q -d -c "$SAVE" >"$T/rigu.save"
check "xen2xsr imports the golden xl save" "$T/xen2xsr" "$T/rigu.save" "$T/lib.xsr"
check "xsr verify accepts its image" "$XSR" verify "$T/lib.xsr"
check "xsr import of the same save" "$XSR" import "$T/rigu.save" "$T/cli.xsr"
check "the program's image is xsr import's, byte for byte" cmp "$T/lib.xsr" "$T/cli.xsr"
check "xen2xsr --stream: a streamed image" "$T/xen2xsr" --stream "$T/rigu.save" "$T/lib.s.xsr"
check "xsr import --stream: the same octets" bash -c \
	"'$XSR' import --stream '$T/rigu.save' '$T/cli.s.xsr' && cmp '$T/lib.s.xsr' '$T/cli.s.xsr'"
# it can fail: a damaged save is refused with a message naming an offset
head -c 4000 "$T/rigu.save" >"$T/cut.save"
check "a cut save is refused, naming an offset" bash -c \
	"! '$T/xen2xsr' '$T/cut.save' '$T/cut.xsr' 2>'$T/cut.err' && grep -q 'offset 0x' '$T/cut.err'"
summary

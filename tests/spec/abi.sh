#!/bin/bash
# The shared library's versioned xsr_convert: a program built today binds
# xsr_convert@@XSRELF_1.4 (struct xsr_convert_opts with the progress
# callback) and is called back; a program built before 1.4 binds
# xsr_convert@XSRELF_1 and passes the shorter struct, and whatever follows
# it in memory must not be read as a callback.
set -uo pipefail
. "$(dirname "$0")/../cli/lib.inc"
SO=$ROOT/lib/libxsrelf.so
if [ ! -e "$SO" ]; then
	bad "lib/libxsrelf.so is built (make all)"
	summary
	exit 1
fi
CC=${CC:-cc}
# an ASan build of the library (make test SANITIZE=1) needs its runtime first in the program
SAN=()
readelf -d "$SO" | grep -q 'libasan' && SAN=(-fsanitize=address,undefined)
syms=$(readelf -W --dyn-syms "$SO")
check "the library exports xsr_convert@@XSRELF_1.4" grep -q ' xsr_convert@@XSRELF_1.4$' <<<"$syms"
check "and keeps xsr_convert@XSRELF_1" grep -q ' xsr_convert@XSRELF_1$' <<<"$syms"
check "no implementation name leaks (convert_1_*)" bash -c "! grep -q 'convert_1_' <<<'$syms'"

# The export list (libxsrelf/libxsrelf.map names each symbol) and the public
# headers agree: every XSR_API function of libxsrelf/include/xsrelf/*.h is
# exported, and every exported symbol is declared there.  The last check
# feeds the comparison a header name the library lacks, to see it fail.
declared() { grep -hv '^#' "$ROOT"/libxsrelf/include/xsrelf/*.h | tr '\n' ' ' | grep -o 'XSR_API[^;{]*(' |
	sed -E 's/.*[^A-Za-z0-9_]([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*\($/\1/' | sort -u; }
exported() { awk '$7 != "UND" && $5 != "LOCAL" && $8 ~ /@/ {sub(/@.*/, "", $8); print $8}' <<<"$syms" | sort -u; }
declared >"$T/declared"
exported >"$T/exported"
check "the public headers declare XSR_API functions (parsed $(wc -l <"$T/declared"))" test "$(wc -l <"$T/declared")" -ge 60
check "every function in a public header is exported" \
	bash -c "comm -23 '$T/declared' '$T/exported' | sed 's/^/not exported: /' >&2; [ -z \"\$(comm -23 '$T/declared' '$T/exported')\" ]"
check "every exported symbol is in a public header" \
	bash -c "comm -13 '$T/declared' '$T/exported' | sed 's/^/in no header: /' >&2; [ -z \"\$(comm -13 '$T/declared' '$T/exported')\" ]"
check "every exported symbol has an explicit version node (no glob)" bash -c "! grep -q 'xsr_\\*' '$ROOT/libxsrelf/libxsrelf.map'"
{ cat "$T/declared"; echo xsr_not_in_the_library; } | sort >"$T/declared+"
check "the comparison fails on a header name the library lacks" test -n "$(comm -23 "$T/declared+" "$T/exported")"
check "the 1.5 symbols bind XSRELF_1.5" bash -c "grep -q ' xsr_sniff_layout@@XSRELF_1.5\$' <<<'$syms'"
check "the replay binds XSRELF_1.5" bash -c "grep -q ' xsr_image_replay@@XSRELF_1.5\$' <<<'$syms' && grep -q ' xsr_replay_fd@@XSRELF_1.5\$' <<<'$syms'"
check "the shared-memory path's QEMU calls bind XSRELF_1.6" bash -c \
	"grep -q ' xsr_qemu_import_shared_fd@@XSRELF_1.6\$' <<<'$syms' && grep -q ' xsr_qemu_export_shared@@XSRELF_1.6\$' <<<'$syms'"

# Test hooks: the shipped library reads no XSR_FAULT / XSR_IO_COUNT /
# XSR_BENCH_NOHASH (built with XSR_TESTHOOKS=0), while the test build that
# bin/xsr links has them; the second check shows the first is able to fail.
hooks() { strings -a "$1" | grep -c -E 'XSR_FAULT|XSR_IO_COUNT|XSR_BENCH_NOHASH'; }
check "the shipped libxsrelf.so has no test hooks" test "$(hooks "$(readlink -f "$SO")")" = 0
check "the shipped libxsrelf.a (make install) has no test hooks" test "$(hooks "$ROOT/build/shipped/libxsrelf.a")" = 0
check "the test build (lib/libxsrelf.a) has them, so the check can fail" test "$(hooks "$ROOT/lib/libxsrelf.a")" -ge 3

"$XSR" synth --mem 1M --vcpus 1 "$T/a.elf"
cat >"$T/new.c" <<'C'
#include <fcntl.h>
#include <stdio.h>
#include <xsrelf/reader.h>
static uint64_t calls, last, total;
static void cb(void *ctx, uint64_t d, uint64_t t) { calls++, last = d, total = t; }
int main(int argc, char **argv)
{
	struct xsr_convert_opts o = {.layout = XSR_LAYOUT_STREAM, .progress = cb};
	char err[256] = "";
	int in = open(argv[1], O_RDONLY), out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int rc = xsr_convert(in, out, &o, err, sizeof(err));
	printf("rc=%d calls=%llu last=%llu total=%llu %s\n", rc, (unsigned long long)calls, (unsigned long long)last,
	       (unsigned long long)total, err);
	return rc || !calls || last != total;
}
C
cat >"$T/old.c" <<'C'
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
/* struct xsr_convert_opts as XSRELF_1 declared it */
struct old_opts {
	uint8_t layout, compress, paging, reserved;
	uint32_t paging_vcpu;
	const void *vmcoreinfo;
	uint32_t vmcoreinfo_len;
	void *paging_stats;
};
int old_convert(int in, int out, const struct old_opts *o, char *err, size_t errlen);
__asm__(".symver old_convert, xsr_convert@XSRELF_1");
int main(int argc, char **argv)
{
	struct {
		struct old_opts o;
		void *junk[2]; /* where 1.4's callback would be: must not be called */
	} s;
	memset(&s, 0xa5, sizeof(s));
	memset(&s.o, 0, sizeof(s.o));
	s.o.layout = 2;
	char err[256] = "";
	int in = open(argv[1], O_RDONLY), out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int rc = old_convert(in, out, &s.o, err, sizeof(err));
	printf("rc=%d %s\n", rc, err);
	return rc != 0;
}
C
check "a program built today compiles against xsrelf/reader.h" \
	"$CC" "${SAN[@]}" -I"$ROOT/libxsrelf/include" -o "$T/new" "$T/new.c" -L"$ROOT/lib" -lxsrelf
check "it binds xsr_convert@XSRELF_1.4" bash -c "readelf -W --dyn-syms '$T/new' | grep -q 'xsr_convert@XSRELF_1.4'"
check "its progress callback is called, up to the total" env LD_LIBRARY_PATH="$ROOT/lib" "$T/new" "$T/a.elf" "$T/new.stream"
check "a program built before 1.4 (bound to XSRELF_1) compiles" "$CC" "${SAN[@]}" -o "$T/old" "$T/old.c" -L"$ROOT/lib" -lxsrelf
check "it binds xsr_convert@XSRELF_1" bash -c "readelf -W --dyn-syms '$T/old' | grep -q 'xsr_convert@XSRELF_1 '"
check "its shorter struct converts, nothing after it read" env LD_LIBRARY_PATH="$ROOT/lib" "$T/old" "$T/a.elf" "$T/old.stream"
check "both write the same stream" cmp "$T/new.stream" "$T/old.stream"
summary

#!/bin/bash
# Output tier (issue 15, the output side): where images go and with what
# mode, what a signal leaves behind, write errors on stdout, text from an
# image on a terminal, and the smaller defects.  Every test here failed
# before its fix.
set -uo pipefail
. "$(dirname "$0")/lib.inc"

# lstat-free test helpers.
ftype() { stat -c %F "$1" 2>/dev/null; }
fmode() { stat -c %a "$1" 2>/dev/null; }
no_tmp() { ! ls -A "$1" | grep -q 'xsr-tmp'; }

check "synth a small image" "$XSR" synth --mem 8M --vcpus 2 --zero-fraction 0.3 "$T/a.img"

# --- Finding 3: a non-regular path is never replaced. ---
mkfifo "$T/fifo"
(timeout 60 cat "$T/fifo" >"$T/from-fifo") &
reader=$!
"$XSR" convert "$T/a.img" "$T/fifo" 2>"$T/e"; rc=$?
wait $reader
check "convert onto a FIFO writes into it (exit 0)" test $rc -eq 0
check "  ... the FIFO is still a FIFO" test "$(ftype "$T/fifo")" = fifo
check "  ... and what came out of it is an intact stream" "$XSR" verify "$T/from-fifo"
check "  ... no temporary file left" no_tmp "$T"
if [ "$(id -u)" = 0 ]; then
	mknod "$T/null" c 1 3 && mknod "$T/full" c 1 7
	check "convert onto a character device (a private /dev/null) exits 0" "$XSR" convert "$T/a.img" "$T/null"
	check "  ... the device is still a character device" test "$(ftype "$T/null")" = "character special file"
	"$XSR" convert "$T/a.img" "$T/full" 2>"$T/e"; rc=$?
	check "convert onto a full device fails with exit 3" test $rc -eq 3
	check "  ... the device is still a character device" test "$(ftype "$T/full")" = "character special file"
	check "  ... the message names the output, not the input alone" grep -q "$T/full" "$T/e"
else
	echo "skip - character device tests need root (mknod)"
fi
mkdir "$T/dir"
"$XSR" convert "$T/a.img" "$T/dir" 2>"$T/e"; rc=$?
check "convert onto a directory is refused (exit 3), the directory stays" bash -c "[ $rc -eq 3 ] && [ -d '$T/dir' ] && grep -q 'not a regular file' '$T/e'"
# A symbolic link is followed: the target is replaced, the link stays.
cp "$T/a.img" "$T/target.img" && chmod 640 "$T/target.img"
ln -s target.img "$T/link.img"
check "convert onto a symlink exits 0" "$XSR" convert --to stream "$T/a.img" "$T/link.img"
check "  ... the link is still a symlink to the same name" test "$(readlink "$T/link.img")" = target.img
check "  ... its target holds the new image (a stream now)" bash -c "'$XSR' info '$T/target.img' | grep -q '^layout: *stream'"
check "  ... and kept its mode 640" test "$(fmode "$T/target.img")" = 640
check "  ... no temporary file left" no_tmp "$T"
ln -s missing.img "$T/dangling.img"
"$XSR" convert "$T/a.img" "$T/dangling.img" 2>"$T/e"; rc=$?
check "convert through a dangling symlink is refused (exit 3), nothing created" \
	bash -c "[ $rc -eq 3 ] && [ ! -e '$T/missing.img' ] && [ -L '$T/dangling.img' ]"
check "convert --to seekable onto a FIFO is a usage error" bash -c "'$XSR' convert --to seekable '$T/a.img' '$T/fifo' 2>/dev/null; [ \$? -eq 2 ] && [ -p '$T/fifo' ]"

# --- Finding 4: new images are 0600 less the umask; a replaced file keeps its mode. ---
check "new image under umask 022 is 0600" bash -c "umask 022; '$XSR' synth --mem 4M --vcpus 1 '$T/m1.img' && [ \$(stat -c %a '$T/m1.img') = 600 ]"
check "new image under umask 077 is 0600" bash -c "umask 077; '$XSR' synth --mem 4M --vcpus 1 '$T/m2.img' && [ \$(stat -c %a '$T/m2.img') = 600 ]"
check "new image under umask 0277 is 0400" bash -c "umask 0277; '$XSR' synth --mem 4M --vcpus 1 '$T/m3.img' && [ \$(stat -c %a '$T/m3.img') = 400 ]"
for m in 640 604 600 666; do
	cp "$T/a.img" "$T/r$m.img" && chmod $m "$T/r$m.img"
	check "replacing a file of mode $m keeps $m (convert)" bash -c "umask 022; '$XSR' convert --to stream '$T/a.img' '$T/r$m.img' && [ \$(stat -c %a '$T/r$m.img') = $m ]"
done
chmod 640 "$T/r640.img"
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
	cp "$T/a.img" "$T/owned.img" && chown nobody "$T/owned.img" && chmod 640 "$T/owned.img"
	want=$(stat -c '%U:%G %a' "$T/owned.img")
	check "replacing another user's file (as root) keeps owner, group and mode ($want)" \
		bash -c "'$XSR' convert --to stream '$T/a.img' '$T/owned.img' && [ \"\$(stat -c '%U:%G %a' '$T/owned.img')\" = '$want' ]"
fi
check "replacing a file keeps its mode (synth)" bash -c "'$XSR' synth --mem 4M --vcpus 1 '$T/r640.img' && [ \$(stat -c %a '$T/r640.img') = 640 ]"
check "a streamed image written to a FIFO-free new file via import keeps 0600" bash -c "umask 022; '$XSR' convert --to stream '$T/a.img' '$T/s.img' && '$XSR' import '$T/s.img' '$T/imp.img' 2>/dev/null; [ ! -e '$T/imp.img' ] || [ \$(stat -c %a '$T/imp.img') = 600 ]"

# --- Finding 5: SIGINT, SIGTERM, SIGHUP remove the temporary file and exit 128+N. ---
# Job control on, so that background jobs keep SIGINT (a non-interactive
# shell would start them with it ignored, and an ignored signal stays ignored).
set -m
sigtest() { # SIG CODE
	local d="$T/sig-$1" rc i
	mkdir -p "$d"
	# Signals ignored on entry stay ignored (nohup, a CI runner that starts
	# jobs in the background), and xsr keeps an ignored signal ignored (see
	# the nohup check below): give the child the default dispositions.
	env --default-signal=INT,TERM,HUP "$XSR" synth --mem 8G --vcpus 1 "$d/big.img" 2>/dev/null &
	local pid=$!
	for i in $(seq 1 200); do # wait until the temporary file holds data
		local f
		f=$(ls -A "$d" | grep xsr-tmp | head -1)
		[ -n "$f" ] && [ "$(stat -c %b "$d/$f" 2>/dev/null || echo 0)" -gt 4096 ] && break
		sleep 0.05
	done
	kill -"$1" "$pid"
	wait "$pid"; rc=$?
	check "SIG$1 during a long write: exit $2 (got $rc)" test "$rc" -eq "$2"
	check "SIG$1 during a long write: no temporary file and no image left" bash -c "[ -z \"\$(ls -A '$d')\" ]"
}
sigtest INT 130
sigtest TERM 143
sigtest HUP 129
set +m
cp "$T/a.img" "$T/keep.img"
d="$T/sig-keep"; mkdir -p "$d"; cp "$T/a.img" "$d/big.img"; before=$(md5sum <"$d/big.img")
set -m
env --default-signal=INT,TERM,HUP "$XSR" convert --to stream "$T/a.img" "$d/big.img" 2>/dev/null &
pid=$!; sleep 0.02; kill -TERM $pid; wait $pid; rc=$?
set +m
# The signal may land before, during or after the write.  Before or during,
# the earlier file stays; after the rename (a loaded machine) the new image
# is complete and exit 143 or 0 reports when it came.  Never a torn file or
# a stray temporary one.
check "SIGTERM while replacing a file: the earlier file or the complete new one, nothing else left" \
	bash -c "{ [ $rc -eq 143 ] || [ $rc -eq 0 ]; } && [ \"\$(ls -A '$d')\" = big.img ] &&
		{ [ \"\$(md5sum <'$d/big.img')\" = '$before' ] ||
		  { '$XSR' verify -q '$d/big.img' && '$XSR' info '$d/big.img' | grep -q '^layout: *stream'; }; }"
# The signal is sent once xsr has made its temporary file, which is when it
# installs its handlers (a fixed sleep raced the subshell's trap on a loaded
# machine, and could also land before the handlers were there to test).
check "nohup: an ignored SIGHUP stays ignored" bash -c "
	d='$T/sig-nohup'; mkdir -p \$d
	(trap '' HUP; exec '$XSR' synth --mem 1G --vcpus 1 \$d/x.img) & pid=\$!
	for i in \$(seq 1 400); do ls -A \$d | grep -q xsr-tmp && break; sleep 0.02; done
	ls -A \$d | grep -q xsr-tmp || echo 'note: the temporary file was not seen'
	kill -HUP \$pid 2>/dev/null; wait \$pid && '$XSR' verify -q \$d/x.img"

# --- Finding 6: every verb that prints fails (exit 3) when stdout cannot be written. ---
"$XSR" convert --to stream "$T/a.img" "$T/a.stream"
full() { # description, then the command; stdout goes to /dev/full
	local d=$1; shift
	"$@" >/dev/full 2>"$T/full.err"; local rc=$?
	if [ $rc -eq 3 ] && grep -qi 'space\|writ' "$T/full.err"; then ok "stdout on /dev/full: $d -> exit 3"; else
		bad "stdout on /dev/full: $d -> exit $rc, want 3"; sed 's/^/     /' "$T/full.err" | head -5; fi
}
full "xsr --help" "$XSR" --help
full "xsr --version" "$XSR" --version
for v in synth info verify convert cat-page vm save restore core migrate receive import export; do
	full "xsr $v --help" "$XSR" $v --help
done
full "info" "$XSR" info "$T/a.img"
full "info (stream)" "$XSR" info "$T/a.stream"
full "info --json" "$XSR" info --json "$T/a.img"
full "info --vcpu 1" "$XSR" info --vcpu 1 "$T/a.img"
full "info --json --vcpu 0" "$XSR" info --json --vcpu 0 "$T/a.img"
full "verify" "$XSR" verify "$T/a.img"
full "verify (stream on stdin)" bash -c "'$XSR' verify - < '$T/a.stream'"
full "cat-page" "$XSR" cat-page "$T/a.img" 0x101
for v in ls diff dump; do
	full "xsr $v --help" "$XSR" $v --help
done
full "ls" "$XSR" ls "$T/a.img"
full "ls --json (stream)" "$XSR" ls --json "$T/a.stream"
full "diff --json" "$XSR" diff --json "$T/a.img" "$T/a.stream"
full "dump" "$XSR" dump --paddr 0x100000 --len 64K "$T/a.img"
full "dump --hex" "$XSR" dump --hex --paddr 0x100000 --len 64K "$T/a.img"
full "synth --json" "$XSR" synth --mem 4M --vcpus 1 --json "$T/j.img"
full "synth --check" "$XSR" synth --mem 8M --vcpus 2 --zero-fraction 0.3 --check "$T/a.img"
full "synth to -" "$XSR" synth --mem 4M --vcpus 1 -
full "convert to -" "$XSR" convert "$T/a.img" -
G=$ROOT/tests/xen/golden/xen417-rigu.save.zst
if [ -f "$G" ] && command -v zstd >/dev/null; then
	zstd -q -d -c "$G" >"$T/rigu.save"
	"$XSR" import "$T/rigu.save" "$T/rigu.img"
	full "import to -" "$XSR" import "$T/rigu.save" -
	full "export to -" "$XSR" export "$T/rigu.img" -
	full "export --format xc-core to -" "$XSR" export --format xc-core "$T/rigu.img" -
	check "import - > FILE (stdout write-only on a file) makes an intact image" \
		bash -c "'$XSR' import '$T/rigu.save' - > '$T/rigu.out' && '$XSR' verify -q '$T/rigu.out'"
else
	echo "skip - golden Xen save or zstd missing: import/export to /dev/full not run"
fi
# migrate and receive --json (no /dev/kvm needed): receive --to-file takes a captured
# `xsr migrate --compress zstd` stream (the migrate-recv fuzz seed) from a plain TCP
# client on loopback, port 0 (the kernel picks a free one), and succeeds: only its JSON
# line is lost.  The guest is kept in the file (it was committed before stdout failed).
# migrate --json without a VMM fails, and its JSON error object goes to /dev/full too.
full "migrate --json (no VMM: the error object)" "$XSR" migrate vm:"$T/no.sock" tcp:127.0.0.1:1 --json
rm -f "$T/recv.img" "$T/recv.log"
timeout 60 "$XSR" receive tcp:127.0.0.1:0 --to-file "$T/recv.img" --once --json >/dev/full 2>"$T/recv.log" &
rpid=$!
for _ in $(seq 100); do grep -q "listening on" "$T/recv.log" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$T/recv.log" | head -n1)
[ -n "$port" ] && python3 - "$port" "$ROOT/tests/fuzz/migrate-recv/seeds/kvm-4m-2v-zstd" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.sendall(open(sys.argv[2], "rb").read())
s.shutdown(socket.SHUT_WR)
try:
    while s.recv(65536):
        pass
except OSError:
    pass
EOF
wait $rpid; rc=$?
if [ $rc -eq 3 ] && grep -qi 'writing stdout' "$T/recv.log" && "$XSR" verify -q "$T/recv.img"; then
	ok "stdout on /dev/full: receive --json (a migration received) -> exit 3, the image kept intact"
else
	bad "stdout on /dev/full: receive --json -> exit $rc, want 3"; sed 's/^/     /' "$T/recv.log" | head -5
fi
check "stdout closed and never written: not an error" bash -c "'$XSR' synth --mem 4M --vcpus 1 '$T/c.img' >&-"

# --- Finding 10: text from an image is escaped on the terminal and in JSON. ---
if [ "$(id -u)" = 0 ] && unshare -u true 2>/dev/null; then
	# The producer's host name is uname -n: set one with escapes in a private UTS namespace.
	unshare -u python3 -c '
import socket, subprocess, sys
socket.sethostname(b"h\x1b]0;pwned\x07\x1b[2J\x7f\xff\xc2\x9b\\x\xc3\xa9")
sys.exit(subprocess.run([sys.argv[1], "synth", "--mem", "4M", "--vcpus", "1", sys.argv[2]]).returncode)' \
		"$XSR" "$T/esc.img"
	"$XSR" info "$T/esc.img" >"$T/esc.txt"
	check "info: no ESC, BEL, DEL or C1 octet reaches stdout" bash -c "! LC_ALL=C grep -q \$'[\x1b\x07\x7f\x9b]' '$T/esc.txt'"
	check "info: they are shown as \\xHH, a backslash doubled, UTF-8 kept" \
		grep -qF "'h\\x1b]0;pwned\\x07\\x1b[2J\\x7f\\xff\\xc2\\x9b\\\\x"$'\xc3\xa9'"'" "$T/esc.txt"
	"$XSR" info --json "$T/esc.img" >"$T/esc.json"
	check "info --json is valid JSON (python3 -m json.tool)" python3 -m json.tool "$T/esc.json"
	check "info --json: no raw control octet, host escaped" bash -c "! LC_ALL=C grep -q \$'[\x1b\x07\x7f\x9b]' '$T/esc.json' && grep -qF '\"host\": \"h\\u001b]0;pwned\\u0007\\u001b[2J\\u007f\\u00ff\\u00c2\\u009b\\\\x' '$T/esc.json'"
	"$XSR" convert --to stream "$T/esc.img" "$T/esc.stream"
	"$XSR" info "$T/esc.stream" >"$T/esc2.txt"
	check "info on the stream: escaped the same way" bash -c "! LC_ALL=C grep -q \$'[\x1b\x07]' '$T/esc2.txt' && grep -q 'pwned' '$T/esc2.txt'"
else
	echo "skip - escape tests need root and unshare -u (to set a host name)"
fi
if command -v script >/dev/null; then
	for v in "synth --mem 4M --vcpus 1 -" "convert $T/a.img -"; do
		script -qc "'$XSR' $v; echo rc=\$?" /dev/null >"$T/tty.out" 2>&1 </dev/null
		check "xsr $v on a terminal: refused (exit 3), no image octets" \
			bash -c "grep -q 'rc=3' '$T/tty.out' && grep -q 'terminal' '$T/tty.out' && [ \$(stat -c %s '$T/tty.out') -lt 1000 ]"
	done
else
	echo "skip - script(1) missing: image to a terminal not tried"
fi
check "error messages escape what they quote" bash -c "'$XSR' info \"\$(printf '$T/no\\033[2Jsuch')\" 2>'$T/e'; ! grep -q \$'\\x1b' '$T/e' && grep -qF 'no\\x1b[2Jsuch' '$T/e'"

# --- Finding 11: stdout redirected to a regular file (write-only). ---
check "synth - > FILE makes an intact image" bash -c "'$XSR' synth --mem 8M --vcpus 2 - > '$T/o1.img' && '$XSR' verify -q '$T/o1.img'"
check "convert IN - > FILE makes an intact image" bash -c "'$XSR' convert '$T/a.img' - > '$T/o2.img' && '$XSR' verify -q '$T/o2.img'"
check "convert IN - >> FILE (append) makes an intact image" bash -c "rm -f '$T/o3.img'; '$XSR' convert '$T/a.img' - >> '$T/o3.img' && '$XSR' verify -q '$T/o3.img'"
# A link to /proc/self/fd/1 of our own, as /dev/stdout is (never the real one: an
# xsr that replaced symbolic links would replace it).
ln -s /proc/self/fd/1 "$T/stdout"
check "convert IN LINK-TO-STDOUT > FILE makes an intact image, the link stays" \
	bash -c "'$XSR' convert '$T/a.img' '$T/stdout' > '$T/o4.img' && '$XSR' verify -q '$T/o4.img' && [ -L '$T/stdout' ]"

# --- Finding 12: the smaller defects. ---
for s in 99999999999999999999 18446744073709551616 -1 ' -1' 0x1ffffffffffffffff ''; do
	check "--seed '$s' is refused (exit 2)" bash -c "'$XSR' synth --mem 4M --vcpus 1 --seed '$s' '$T/seed.img' 2>/dev/null; [ \$? -eq 2 ] && [ ! -e '$T/seed.img' ]"
done
check "--seed 18446744073709551615 (2^64-1) is accepted" "$XSR" synth --mem 4M --vcpus 1 --seed 18446744073709551615 "$T/seed.img"
# The same class in the other verbs' numbers: strtoul() wraps '-N' and saturates on overflow.
for args in "migrate --max-downtime -1 vm:$T/none tcp:127.0.0.1:1" \
	"migrate --max-downtime 99999999999999999999999 vm:$T/none tcp:127.0.0.1:1" \
	"receive --max-vcpus -18446744073709551615 tcp:127.0.0.1:0 --to-file $T/none.img" \
	"core --paging --vcpu -18446744073709551615 vm:$T/none $T/none.img"; do
	check "xsr $args: a usage error (exit 2)" bash -c "timeout 10 '$XSR' $args >/dev/null 2>&1; [ \$? -eq 2 ]"
done
check "--vcpus 99999999999999999999 is refused (exit 2)" bash -c "'$XSR' synth --mem 4M --vcpus 99999999999999999999 '$T/x.img' 2>/dev/null; [ \$? -eq 2 ]"
for lay in "" --stream; do
	"$XSR" synth --mem 8M --vcpus 2 --zero-fraction 0.3 $lay --json "$T/js.img" >"$T/js.json"
	check "synth $lay --json: \"bytes\" is the file's size" \
		python3 -c "import json,os,sys; j=json.load(open(sys.argv[1])); assert int(j['bytes'])==os.path.getsize(sys.argv[2]), (j['bytes'], os.path.getsize(sys.argv[2]))" "$T/js.json" "$T/js.img"
	"$XSR" synth --mem 8M --vcpus 2 --zero-fraction 0.3 --check "$T/js.img" >"$T/chk$lay.out"
	check "synth --check ($lay): every one of the 2048 pages counted" grep -q ': 2048 pages' "$T/chk$lay.out"
done
check "synth --check of the wrong seed still fails (exit 1)" bash -c "'$XSR' synth --mem 8M --vcpus 2 --zero-fraction 0.3 --seed 9 --check '$T/js.img' 2>/dev/null; [ \$? -eq 1 ]"
cp "$T/a.img" "$T/integ.img"
off=$(readelf -SW "$T/integ.img" | awk '$2 == ".xsr.integrity" {print $5}')
printf '\x55' | dd of="$T/integ.img" bs=1 seek=$((0x$off + 8)) conv=notrunc 2>/dev/null
"$XSR" verify "$T/integ.img" 2>"$T/integ.err"; rc=$?
check "a flipped INTEGRITY byte: verify exits 1" test $rc -eq 1
check "  ... and says so once" test "$(grep -c 'integrity' "$T/integ.err")" -eq 1
mkdir -p "$T/ro" && chmod 555 "$T/ro"
if [ "$(id -u)" != 0 ]; then
	"$XSR" convert "$T/a.img" "$T/ro/x.img" 2>"$T/e"
	check "a failed create names the output, not the temporary file" bash -c "grep -q '$T/ro/x.img' '$T/e' && ! grep -q 'xsr-tmp' '$T/e'"
fi
"$XSR" convert "$T/a.img" - 2>"$T/e" >/dev/full
check "a write error on - names the output" grep -q -- '-> -' "$T/e"
check "synth --compress zstd FILE writes a (compressed) stream" bash -c "'$XSR' synth --mem 8M --vcpus 1 --compress zstd '$T/z.img' && '$XSR' info '$T/z.img' | grep -q '^layout: *stream'"
check "convert --compress zstd FILE writes a stream" bash -c "'$XSR' convert --compress zstd '$T/a.img' '$T/z2.img' && '$XSR' info '$T/z2.img' | grep -q '^layout: *stream'"
check "convert --to seekable --compress zstd is a usage error" bash -c "'$XSR' convert --to seekable --compress zstd '$T/a.img' '$T/z3.img' 2>/dev/null; [ \$? -eq 2 ] && [ ! -e '$T/z3.img' ]"
check "no temporary file left anywhere in the test directory" bash -c "! find '$T' -name '*xsr-tmp*' | grep -q ."

summary

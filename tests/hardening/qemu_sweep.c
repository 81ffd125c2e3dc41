/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * In-process corruption and truncation sweeps over QEMU migration streams
 * and `virsh save` files (run by tests/hardening/qemu-sweep.sh, which also
 * sends a sample through `xsr import`; spawning it for each variant would
 * take minutes).
 *
 *   qemu-sweep FILE...
 *
 * Each FILE is a QEMU stream ("QEVM") or a virsh save file ("LibvirtQemud")
 * and goes through xsr_qemu_import_mem or xsr_libvirt_import_mem.  Every
 * octet is flipped (XOR 0xff, one variant per octet) and the file is cut
 * at every length from 0 to its size - 1, each variant in a buffer of
 * exactly its size (ASan sees a read past the end).  A variant must:
 *
 *  - import, and the image written must open and verify intact; or
 *  - be refused with one of the codes a damaged input gets (XSR_E_FORMAT,
 *    XSR_E_TRUNCATED, XSR_E_UNSUPPORTED, XSR_E_LIMIT) and a message; a
 *    format or truncation message must name an offset ("offset 0x...").
 *
 * A cut file must be refused (the VMDESCRIPTION, or the compressed
 * stream's end, is where the file ends).  A crash or hang kills the run,
 * which the script reports.  At the end, the most memory the process held
 * (getrusage) is printed for the script to bound.
 *
 * Prints "ok"/"FAIL" lines, "stats: FILE flips N imported I refused R",
 * "stats: FILE cuts N refused R", "maxrss KIB" and "N passed, M failed".
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <xsrelf/libvirt.h>
#include <xsrelf/qemu.h>
#include <xsrelf/reader.h>

static int passed, failed, shown;
static int out_fd;
static const char *tmpdir;

static void result(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void result(int ok, const char *fmt, ...)
{
	va_list ap;
	printf("%s - ", ok ? "ok  " : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	ok ? passed++ : failed++;
}

static uint8_t *load(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	rewind(f);
	uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
	if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(b);
		return NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return b;
}

/* One variant: 1 imported (and verified), 0 refused cleanly, -1 wrong (reported, at most 20 shown). */
static int one(const char *name, const char *what, size_t at, const uint8_t *buf, size_t len, int libvirt)
{
	char err[1024] = "";
	if (ftruncate(out_fd, 0) < 0 || lseek(out_fd, 0, SEEK_SET) < 0)
		abort();
	int rc;
	if (libvirt) {
		struct xsr_libvirt_import_opts o = {.qemu = {.max_ram = 1u << 20}, .tmpdir = tmpdir, .max_stream = 16u << 20};
		rc = xsr_libvirt_import_mem(buf, len, out_fd, &o, NULL, err, sizeof(err));
	} else {
		struct xsr_qemu_import_opts o = {.max_ram = 1u << 20};
		rc = xsr_qemu_import_mem(buf, len, out_fd, &o, NULL, err, sizeof(err));
	}
	const char *why = NULL;
	if (rc == 0) {
		struct xsr_image *img;
		if (xsr_image_open(&img, out_fd, err, sizeof(err)) < 0) {
			why = "imported, but the image does not open";
		} else {
			if (xsr_image_verify(img, NULL, NULL) < 0) {
				snprintf(err, sizeof(err), "%s", xsr_image_error(img));
				why = "imported, but the image does not verify";
			}
			xsr_image_close(img);
		}
		if (!why)
			return 1;
	} else if (rc != XSR_E_FORMAT && rc != XSR_E_TRUNCATED && rc != XSR_E_UNSUPPORTED && rc != XSR_E_LIMIT) {
		why = "refused with a code a damaged input does not get";
	} else if (!err[0]) {
		why = "refused without a message";
	} else if ((rc == XSR_E_FORMAT || rc == XSR_E_TRUNCATED) && !strstr(err, "offset 0x")) {
		why = "refused with a message that names no offset";
	} else {
		return 0;
	}
	if (shown++ < 20)
		result(0, "%s %s %zu: %s (%d): %s", name, what, at, why, rc, err);
	else
		failed++;
	return -1;
}

static void sweep(const char *path)
{
	size_t len;
	uint8_t *orig = load(path, &len);
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	if (!orig || len < 16) {
		result(0, "%s: cannot read it", path);
		free(orig);
		return;
	}
	int libvirt = !memcmp(orig, "LibvirtQemud", 12);
	result(one(name, "intact", 0, orig, len, libvirt) == 1, "%s: the intact file imports and verifies", name);
	size_t imported = 0, refused = 0, wrong = 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t *b = malloc(len);
		memcpy(b, orig, len);
		b[i] ^= 0xff;
		int r = one(name, "flip at", i, b, len, libvirt);
		free(b);
		r > 0 ? imported++ : r == 0 ? refused++ : wrong++;
	}
	printf("stats: %s flips %zu imported %zu refused %zu\n", name, len, imported, refused);
	result(!wrong, "%s: %zu octets flipped: %zu imported and verified, %zu refused cleanly", name, len, imported, refused);
	size_t cut_ok = 0;
	wrong = 0;
	for (size_t n = 0; n < len; n++) {
		uint8_t *b = malloc(n ? n : 1);
		memcpy(b, orig, n);
		int r = one(name, "cut at", n, b, n, libvirt);
		free(b);
		if (r == 0)
			cut_ok++;
		else if (r > 0 && shown++ < 20)
			result(0, "%s cut at %zu: imported (a cut file must be refused)", name, n);
		else
			wrong++;
	}
	printf("stats: %s cuts %zu refused %zu\n", name, len, cut_ok);
	result(cut_ok == len, "%s: cut at each of its %zu lengths: %zu refused cleanly", name, len, cut_ok);
	free(orig);
}

int main(int argc, char **argv)
{
	setenv("XSR_NO_HASH_THREAD", "1", 1);
	tmpdir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NULL;
	if ((out_fd = memfd_create("qemu-sweep-out", MFD_CLOEXEC)) < 0) {
		perror("memfd_create");
		return 2;
	}
	for (int i = 1; i < argc; i++)
		sweep(argv[i]);
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("maxrss %ld\n", ru.ru_maxrss);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

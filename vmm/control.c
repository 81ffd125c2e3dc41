/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Client side of the VMM control protocol (see vmm.h) and a tiny JSON reader. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm.h"
#include "../util/err.h"

#define CTL_MAX_FDS 4

/* The client prints nothing: the reason goes to @err (util_fail), the verb says it. */
static int ctl_connect(const char *sock, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(sock) >= sizeof(sa.sun_path)) {
		return util_fail(err, errlen, -1, "control socket path '%s' is longer than %zu octets", sock,
				 sizeof(sa.sun_path) - 1);
	}
	strcpy(sa.sun_path, sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return util_fail(err, errlen, -1, "socket: %s", strerror(errno));
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		if (e == ENOENT)
			return util_fail(err, errlen, -1, "no VMM control socket at %s (is the VM running?)", sock);
		if (e == ECONNREFUSED)
			return util_fail(err, errlen, -1, "nothing listens on %s (stale socket: the VMM has exited)",
					 sock);
		return util_fail(err, errlen, -1, "cannot connect to %s: %s", sock, strerror(e));
	}
	return fd;
}

int vmm_ctl_request(const char *sock, const char *req, const int *fds, int nfds, char **reply,
		    char *err, size_t errlen)
{
	char line[1024];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * CTL_MAX_FDS)];
	} cm;
	struct iovec iov;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	size_t cap = 4096, len = 0;
	char *buf;
	int fd, n;

	*reply = NULL;
	if (nfds < 0 || nfds > CTL_MAX_FDS)
		return util_fail(err, errlen, -1, "%d descriptors for one request (at most %d)", nfds, CTL_MAX_FDS);
	n = snprintf(line, sizeof(line), "%s\n", req);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		return util_fail(err, errlen, -1, "control request too long");
	}
	fd = ctl_connect(sock, err, errlen);
	if (fd < 0)
		return -1;
	iov.iov_base = line;
	iov.iov_len = (size_t)n;
	if (nfds) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) != n) {
		util_fail(err, errlen, -1, "sending to %s: %s", sock, strerror(errno));
		close(fd);
		return -1;
	}

	buf = malloc(cap);
	if (!buf) {
		close(fd);
		util_fail(err, errlen, -1, "out of memory");
		return -1;
	}
	for (;;) {
		ssize_t got;

		if (len + 1 >= cap) {
			char *nb = cap < (1u << 20) ? realloc(buf, cap * 2) : NULL;

			if (!nb) {
				util_fail(err, errlen, -1, "reply from %s too long", sock);
				goto fail;
			}
			buf = nb;
			cap *= 2;
		}
		got = read(fd, buf + len, cap - len - 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			util_fail(err, errlen, -1, "reading the reply from %s: %s", sock, strerror(errno));
			goto fail;
		}
		if (got == 0)
			break;
		len += (size_t)got;
		if (memchr(buf, '\n', len))
			break;
	}
	close(fd);
	fd = -1;
	buf[len] = 0;
	if (!len) {
		util_fail(err, errlen, -1, "the VMM at %s closed the connection without a reply (see %s.log)",
			  sock, sock);
		goto fail;
	}
	int ok = 0;
	if (vmm_json_bool(buf, "ok", &ok) < 0 || !ok) {
		char *msg = vmm_json_str_dup(buf, "error");

		util_fail(err, errlen, -1, "%s", msg ? msg : buf);
		free(msg);
		*reply = buf;
		return -1;
	}
	*reply = buf;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return -1;
}

/* Value start for "key": in a flat JSON object, or NULL. */
static const char *json_value(const char *js, const char *key)
{
	size_t kl = strlen(key);

	for (const char *p = js; (p = strchr(p, '"')); p++) {
		if (!strncmp(p + 1, key, kl) && p[kl + 1] == '"') {
			const char *v = p + kl + 2;

			while (*v == ' ')
				v++;
			if (*v != ':')
				continue;
			v++;
			while (*v == ' ')
				v++;
			return v;
		}
	}
	return NULL;
}

int vmm_json_u64(const char *js, const char *key, uint64_t *out)
{
	const char *v = json_value(js, key);
	char *end;

	/* a 64-bit value may come as a string, "123" or "0x7b" (xsr(1), JSON OUTPUT) */
	if (v && *v == '"')
		v++;
	if (!v || *v < '0' || *v > '9')
		return -1;
	errno = 0;
	*out = strtoull(v, &end, 0);
	return errno ? -1 : 0;
}

int vmm_json_bool(const char *js, const char *key, int *out)
{
	const char *v = json_value(js, key);

	if (v && !strncmp(v, "true", 4))
		*out = 1;
	else if (v && !strncmp(v, "false", 5))
		*out = 0;
	else
		return -1;
	return 0;
}

char *vmm_json_str_dup(const char *js, const char *key)
{
	const char *v = json_value(js, key);
	char *out, *o;

	if (!v || *v != '"')
		return NULL;
	out = o = malloc(strlen(v) + 1);
	if (!out)
		return NULL;
	for (v++; *v && *v != '"'; v++) {
		if (*v == '\\' && v[1]) {
			v++;
			*o++ = *v == 'n' ? '\n' : *v == 't' ? '\t' : *v;
		} else {
			*o++ = *v;
		}
	}
	*o = 0;
	return out;
}

int vmm_json_u64_array(const char *js, const char *key, uint64_t *out, int max)
{
	const char *v = json_value(js, key);
	int n = 0;

	if (!v || *v != '[')
		return -1;
	for (v++;;) {
		char *end;

		while (*v == ' ' || *v == ',')
			v++;
		if (*v == ']')
			return n;
		int quoted = *v == '"';
		v += quoted;
		if (*v < '0' || *v > '9')
			return -1;
		uint64_t x = strtoull(v, &end, 0);
		if (quoted && *end++ != '"')
			return -1;
		if (n < max)
			out[n] = x;
		n++;
		v = end;
	}
}

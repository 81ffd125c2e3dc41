/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The bench's reference for migration throughput: a plain loopback TCP
 * copy of N octets, a sender thread writing 1 MiB send()s from one buffer
 * and a receiver thread reading recv()s of up to 1 MiB into one buffer.
 * Nothing is checked or placed: the cost of moving the bytes through the
 * kernel and no more.  Prints the seconds from connect to the last octet
 * received.
 *
 *   tcpcopy N
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF (1u << 20)

static uint64_t total;
static int lfd;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *sink(void *arg)
{
	char *buf = malloc(BUF);
	uint64_t got = 0;
	int c = accept(lfd, NULL, NULL);

	(void)arg;
	if (c < 0 || !buf)
		exit(1);
	while (got < total) {
		ssize_t n = recv(c, buf, BUF, 0);

		if (n <= 0)
			exit(1);
		got += (uint64_t)n;
	}
	close(c);
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	pthread_t t;
	char *buf = malloc(BUF);
	double t0;
	int s;

	if (argc != 2 || !buf) {
		fprintf(stderr, "usage: tcpcopy OCTETS\n");
		return 2;
	}
	total = strtoull(argv[1], NULL, 0);
	for (unsigned i = 0; i < BUF; i++)
		buf[i] = (char)(i * 131 + 7);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &al) < 0)
		return 1;
	pthread_create(&t, NULL, sink, NULL);
	s = socket(AF_INET, SOCK_STREAM, 0);
	t0 = now();
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
		return 1;
	for (uint64_t left = total; left;) {
		ssize_t n = send(s, buf, left < BUF ? left : BUF, 0);

		if (n <= 0)
			return 1;
		left -= (uint64_t)n;
	}
	pthread_join(t, NULL);
	printf("%.6f\n", now() - t0);
	close(s);
	return 0;
}

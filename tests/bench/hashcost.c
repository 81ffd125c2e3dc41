/* Time XXH3-64 over N synthetic pages: the checksum part of a save. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <xsrelf/xsrelf.h>

int synth_page(uint64_t seed, double zero_fraction, uint64_t pfn, uint8_t page[4096]);

int main(int argc, char **argv)
{
	uint64_t pages = argc > 1 ? strtoull(argv[1], NULL, 0) : 262144;
	uint8_t *buf = malloc(1024 * 4096);
	struct timespec a, b;
	uint64_t sink = 0, ns = 0;
	for (uint64_t done = 0; done < pages; done += 1024) {
		for (int i = 0; i < 1024; i++)
			synth_page(1, 0, done + (uint64_t)i, buf + (size_t)i * 4096);
		clock_gettime(CLOCK_MONOTONIC, &a);
		for (int i = 0; i < 1024; i++)
			sink ^= xsr_hash(buf + (size_t)i * 4096, 4096);
		clock_gettime(CLOCK_MONOTONIC, &b);
		ns += (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000ull + (uint64_t)(b.tv_nsec - a.tv_nsec);
	}
	printf("%.6f %llx\n", ns / 1e9, (unsigned long long)sink);
	return 0;
}

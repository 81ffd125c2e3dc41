/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * How a KVM VM comes to be inside the VMM: one builder for xsr vm start
 * (the test guest), xsr restore (an image, whole or lazily) and xsr receive
 * (a migration stream).  They differ only in what fills the VM.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../backends/kvm.h"
#include "vmm.h"

int vmm_build_kvm(struct xsr_vmm *v, const struct xsr_vmm_load *l, char *msg, size_t msglen)
{
	struct xsr_domain_info info;
	int r = kvm_open(&v->be, msg, msglen);

	if (r < 0)
		return r;
	kvm_set_log(v->be, v->log);
	if (l->paused) {
		/* Held from before the vCPU threads exist: they park at once. */
		v->be->ops->pause(v->be);
		v->user_paused = true;
	}
	r = l->load(v, l->ctx, msg, msglen);
	if (r < 0)
		return r;
	if (!v->mem_bytes && v->be->ops->describe(v->be, &info) == 0) {
		for (uint32_t i = 0; i < info.nr_runs; i++)
			v->mem_bytes += info.runs[i].count << XSR_PAGE_SHIFT;
	}
	/* Images from other producers have no counters to show; that is fine. */
	if (!v->counters_gpa && vmm_parse_config(v, kvm_config(v->be)) < 0)
		fprintf(v->log, "%s: no xsr VMM config in the image: status shows no counters\n",
			l->what);
	return 0;
}

/* The data mode: fill @g->fill of the memory above 4 MiB before the guest starts. */
static int fill_memory(struct xsr_vmm *v, const struct xsr_vmm_guest *g, char *msg, size_t msglen)
{
	uint64_t len, x = UINT64_C(0x9e3779b97f4a7c15);
	uint8_t *mem = kvm_mem(v->be, &len);

	v->dirty_mbps = g->dirty_mbps;
	if (g->fill <= 0)
		return 0;
	if (!mem || len <= XSR_GUEST_MIN_MEM)
		return snprintf(msg, msglen, "--fill needs more than %" PRIu64 " MiB of memory", XSR_GUEST_MIN_MEM >> 20),
		       XSR_E_INVAL;
	v->fill_from = XSR_GUEST_MIN_MEM >> XSR_PAGE_SHIFT; /* a slot: the guest lives below */
	v->fill_pages = (uint64_t)(g->fill * (double)((len - XSR_GUEST_MIN_MEM) >> XSR_PAGE_SHIFT));
	for (uint64_t n = 0; n < v->fill_pages; n++)
		vmm_data_page(v, mem, n, &x);
	fprintf(v->log, "start: data mode: %" PRIu64 " pages from slot %" PRIu64 " hold data\n", v->fill_pages,
		v->fill_from);
	return 0;
}

int vmm_load_guest(struct xsr_vmm *v, void *arg, char *msg, size_t msglen)
{
	const struct xsr_vmm_guest *g = arg;
	struct xsr_memrun runs[2];
	struct xsr_domain_info info = {.nr_vcpus = g->vcpus, .runs = runs};
	struct xsr_guest_info gi;
	int r;

	r = vmm_guest_runs(g->mem, runs, &info.nr_runs, msg, msglen);
	if (r < 0)
		return r;
	r = v->be->ops->create(v->be, &info);
	if (r < 0) {
		snprintf(msg, msglen, "%s", v->be->ops->error(v->be));
		return r;
	}
	r = vmm_guest_load(v->be, g->path, g->vcpus, &gi, msg, msglen);
	if (r < 0)
		return r;
	v->mem_bytes = g->mem;
	if ((r = fill_memory(v, g, msg, msglen)) < 0)
		return r;
	v->counters_gpa = gi.counters_gpa;
	v->errors_gpa = gi.errors_gpa;
	v->nr_counters = gi.nr_counters;
	/* What a restore needs to find the counters again without the ELF. */
	char *cfg = NULL;
	size_t cfg_len = 0;
	FILE *f = open_memstream(&cfg, &cfg_len);

	if (!f) {
		snprintf(msg, msglen, "out of memory");
		return XSR_E_NOMEM;
	}
	fprintf(f, "{\"vmm\":\"xsr\",\"mem\":%" PRIu64 ",\"vcpus\":%u,\"guest\":", g->mem, g->vcpus);
	vmm_json_str(f, g->path);
	fprintf(f, ",\"counters_gpa\":%" PRIu64 ",\"errors_gpa\":%" PRIu64 ",\"nr_counters\":%u}",
		gi.counters_gpa, gi.errors_gpa, gi.nr_counters);
	fclose(f);
	r = kvm_set_config(v->be, cfg);
	free(cfg);
	if (r == 0)
		r = v->be->ops->start(v->be);
	if (r < 0)
		snprintf(msg, msglen, "%s", v->be->ops->error(v->be));
	return r;
}

int vmm_load_image(struct xsr_vmm *v, void *arg, char *msg, size_t msglen)
{
	struct xsr_vmm_image *im = arg;
	int r;

	memset(&im->st, 0, sizeof(im->st));
	if (im->lazy) {
		r = lazy_restore(v->be, im->fd, v->log, &v->lazy, &im->st, msg, msglen);
		if (r == 0)
			im->fd = -1; /* the lazy handle reads it until the prefetch ends */
		return r;
	}
	struct xsr_restore_opts o = {.progress = im->progress, .progress_ctx = im->progress_ctx};

	r = restore_guest(v->be, im->fd, &o, &im->st, msg, msglen);
	close(im->fd); /* every octet is in guest memory now */
	im->fd = -1;
	return r;
}

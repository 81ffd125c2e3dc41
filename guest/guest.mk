# The test guest: freestanding x86-64, linked at 0xffffffff80100000, loaded
# at guest-physical 1 MiB by the VMM (vmm/loader.c) or by QEMU's -kernel,
# which enters its PVH entry (guest/entry.S).  Its own flags: none of
# the host CFLAGS (-fPIC, sanitizers) make sense in a guest.
GUEST_MAX_VCPUS := 8
GUEST_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -ffreestanding -fno-pic -fno-pie \
                -mcmodel=kernel -mno-red-zone -mgeneral-regs-only -fno-stack-protector \
                -fno-asynchronous-unwind-tables -fcf-protection=none -fno-builtin \
                -DGUEST_MAX_VCPUS=$(GUEST_MAX_VCPUS)
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,-T,guest/guest.ld -Wl,--build-id=none \
                 -Wl,-z,max-page-size=4096 -Wl,-z,noexecstack

bin/xsr-guest.elf: guest/entry.S guest/guest.c guest/guest.ld guest/guest.mk
	@mkdir -p bin
	$(CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -o $@ guest/entry.S guest/guest.c

guest:: bin/xsr-guest.elf

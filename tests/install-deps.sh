#!/bin/bash
# Install the Debian 12 packages xsrelf needs to build and test (idempotent).
# Needs root for apt-get; prints what is missing otherwise.
set -euo pipefail
PKGS=(gcc make pkg-config libelf-dev libxen-dev libcriterion-dev libzstd-dev liblz4-dev
      libxxhash-dev elfutils binutils gdb crash python3 xxd jq bc zstd qemu-system-x86
      zlib1g-dev libbz2-dev liblzma-dev liblzo2-dev gzip bzip2 xz-utils lzop
      libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients python3-drgn ${XSR_EXTRA_PKGS:-})
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: not root; run: sudo apt-get install ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# wait for another apt/dpkg instead of failing; retry what the network may drop
APT=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
for i in 1 2 3; do
	apt-get "${APT[@]}" update -qq && apt-get "${APT[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null && exit 0
	echo "install-deps: apt-get failed (try $i of 3)" >&2
	sleep $((5 * i))
done
exit 1

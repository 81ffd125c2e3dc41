# SPDX-License-Identifier: LGPL-2.1-or-later
"""gdb commands for xsrelf images (docs/xsrelf-format.md).

Load with `source gdb-scripts/xsrelf.py` once a core is open (`gdb -c IMAGE`,
or `gdb GUEST.elf -c IMAGE`).  Commands:

    xsr info                     sections, producer, vCPUs of the image
    xsr vcpu N                   full state of vCPU N (.xsr.vcpu)
    xsr virt ADDR [--vcpu N]     walk N's page tables, print every level
    xsr read-virt ADDR LEN [--vcpu N]   hex dump through that walk
    xsr p2m PFN                  machine frame from .xsr.p2m
    xsr file [PATH]              show or choose the image file explicitly

The commands read the image file itself with plain Python (no third-party
modules): guest-physical memory comes from the PT_LOADs by p_paddr (or, in a
paging-view core, from the memory map and page slots; in a Xen PV image laid
out for crash, where p_paddr is a machine address, by p_vaddr, each p_paddr
checked against the image's p2m tree), never through gdb's memory, which is
addressed by p_vaddr.

Importing this file without gdb (python3 -c 'import xsrelf') gives the
constants only; tests/spec/check-spec.sh uses that to compare them with
format.h and the spec.
"""

import bisect
import os
import re
import struct

try:
    import gdb
except ImportError:  # plain Python: constants only
    gdb = None

# --------------------------------------------------------------------------
# Constants: the Python half of libxsrelf/include/xsrelf/format.h.  Keep in
# step with it; tests/spec/check-spec.sh fails when they disagree.
# --------------------------------------------------------------------------
XSR_CONSTANTS = {
    "XSR_MAGIC": b"XSRELF\0\0",
    "XSR_MAGIC_LEN": 8,
    "XSR_VERSION_MAJOR": 1,
    "XSR_VERSION_MINOR": 0,
    "XSR_OFF_STREAMED": 0xFFFFFFFFFFFFFFFF,
    "XSR_PAGE_SHIFT": 12,
    "XSR_PAGE_SIZE": 4096,
    "XSR_LAYOUT_SEEKABLE": 1,
    "XSR_LAYOUT_STREAM": 2,
    "XSR_KIND_SAVE": 1,
    "XSR_KIND_CORE": 2,
    "XSR_KIND_MIGRATION": 3,
    "XSR_FF_PAGING_VIEW": 0x1,
    "XSR_FF_XEN_MACHINE_PADDR": 0x2,
    "XSR_FF_KNOWN": 0x3,
    "XSR_EHDR_SIZE": 64,
    "XSR_HEADER_END": 128,
    "XSR_SHT_BASE": 0x80000000,
    "XSR_SHT_OPTIONAL": 0x40000000,
    "XSR_SHT_CODE_MASK": 0x0000FFFF,
    "XSR_SEC_END": 0x00,
    "XSR_SEC_NOTES": 0x01,
    "XSR_SEC_MEMMAP": 0x02,
    "XSR_SEC_PRODUCER": 0x03,
    "XSR_SEC_CONFIG": 0x04,
    "XSR_SEC_VCPU": 0x05,
    "XSR_SEC_P2M": 0x06,
    "XSR_SEC_PAGES": 0x07,
    "XSR_SEC_INDEX": 0x08,
    "XSR_SEC_DOMCTX": 0x09,
    "XSR_SEC_XENSTORE": 0x0A,
    "XSR_SEC_EMULATOR": 0x0B,
    "XSR_SEC_PASSTHRU": 0x0C,
    "XSR_SEC_STRTAB": 0x0D,
    "XSR_SEC_INTEGRITY": 0x0E,
    "XSR_SEC_VMCOREINFO": 0x0F,
    "XSR_SEC_MIG_BEGIN": 0x10,
    "XSR_SEC_MIG_ROUND": 0x11,
    "XSR_SEC_POSTCOPY_BEGIN": 0x12,
    "XSR_SEC_POSTCOPY_PFNS": 0x13,
    "XSR_SEC_POSTCOPY_TRANSITION": 0x14,
    "XSR_SEC_XEN_P2M_TREE": 0x15,
    "XSR_MIG_POSTCOPY": 0x1,
    "XSR_MIG_ROUND_PAUSED": 0x1,
    "XSR_SEC__COUNT": 0x16,
    "XSR_IDX_DATA": 0x1,
    "XSR_IDX_XEN_TYPE_SHIFT": 28,
    "XSR_IDX_XEN_TYPE_MASK": 0xF0000000,
    "XSR_IDX_KNOWN_FLAGS": 0xF0000001,
    "XSR_PFN_MASK": 0x000FFFFFFFFFFFFF,
    "XSR_PFN_ZERO": 1 << 52,
    "XSR_PFN_RESERVED": 0x0FE0000000000000,
    "XSR_PFN_XEN_TYPE_SHIFT": 60,
    "XSR_MAX_PFN": 0x000FFFFFFFFFFFFF,
    "XSR_COMPRESS_NONE": 0,
    "XSR_COMPRESS_ZSTD": 1,
    "XSR_COMPRESS_LZ4": 2,
    "XSR_DOMCTX_IGNORE": 0x1,
    "XSR_DOMCTX_ALL_VCPUS": 0xFFFFFFFF,
    "XSR_DC_KVM_CLOCK": 1,
    "XSR_DC_SHARED_INFO": 2,
    "XSR_DC_TSC_INFO": 3,
    "XSR_DC_HVM_CONTEXT": 4,
    "XSR_DC_HVM_PARAMS": 5,
    "XSR_DC_CPUID_POLICY": 6,
    "XSR_DC_MSR_POLICY": 7,
    "XSR_DC_PV_INFO": 8,
    "XSR_DC_IRQCHIP": 9,
    "XSR_DC__COUNT": 10,
    "XSR_HASH_XXH3_64": 1,
    "XSR_VCPU_HAVE_SREGS": 0x01,
    "XSR_VCPU_HAVE_FPU": 0x02,
    "XSR_VCPU_HAVE_XSAVE": 0x04,
    "XSR_VCPU_HAVE_MSRS": 0x08,
    "XSR_VCPU_HAVE_LAPIC": 0x10,
    "XSR_VCPU_HAVE_DEBUG": 0x20,
    "XSR_VCPU_HAVE_EVENTS": 0x40,
    "XSR_VCPU_KNOWN": 0x7F,
    "XSR_PT_ORIGIN_XL_HEADER": 1,
    "XSR_PT_ORIGIN_LIBXL_HEADER": 2,
    "XSR_PT_ORIGIN_LIBXL_RECORD": 3,
    "XSR_PT_ORIGIN_LIBXC_HEADER": 4,
    "XSR_PT_ORIGIN_LIBXC_RECORD": 5,
    "XSR_PT_ORIGIN_XC_CORE": 6,
    "XSR_PT_ORIGIN_QEMU_HEADER": 7,
    "XSR_PT_ORIGIN_QEMU_SECTION": 8,
    "XSR_PT_ORIGIN_QEMU_RAM": 9,
    "XSR_PT_ORIGIN_LIBVIRT_HEADER": 10,
    "XSR_PT_ORIGIN_QEMU_DUMP": 11,
    "XSR_PT_PAGES": 0x1,
    "XSR_XS_MAGIC": 0x53587378,
    "XSR_XS_VERSION": 1,
    "XSR_XS_PERM_READ": 1,
    "XSR_XS_PERM_WRITE": 2,
    "XSR_XS_MAX_PATH": 3072,
    "XSR_XS_MAX_VALUE": 4096,
    "XSR_XS_MAX_PERMS": 1024,
    "XSR_XS_MAX_NODES": 65536,
    "XSR_PT_KNOWN_FLAGS": 0x1,
    "XSR_NT_PRSTATUS": 1,
    "XSR_PRSTATUS_SIZE": 336,
    "XSR_PRSTATUS_REG_OFF": 112,
    "XSR_PRSTATUS_PID_OFF": 32,
    "XSR_NOTE_NAME": b"CORE",
    "XSR_NOTE_SIZE": 356,
    "XSR_VMCI_NOTE_NAME": b"VMCOREINFO",
    "XSR_VMCI_NOTE_HDR": 24,
    "XSR_MAX_VMCOREINFO": 1048576,
    "XSR_QEMU_NOTE_NAME": b"QEMU",
    "XSR_QEMU_CPUSTATE_SIZE": 440,
    "XSR_QEMU_NOTE_SIZE": 460,
    "XSR_XEN_NOTE_NAME": b"Xen",
    "XSR_NT_XEN_CRASH_INFO": 0x1000001,
    "XSR_XEN_CRASH_INFO_SIZE": 80,
    "XSR_XEN_NOTE_SIZE": 96,
    "XSR_XEN_NO_MFN": 0xFFFFFFFFFFFFFFFF,
    "XSR_XEN_P2M_PER_PAGE": 512,
    "XSR_XEN_P2M_MAX_FL": 512,
    "XSR_MAX_VCPUS": 4096,
    "XSR_MAX_RUNS": 65533,
    "XSR_MAX_SECTIONS": 65280,
    "XSR_MAX_RECORD": 128 << 20,
    "XSR_MAX_BATCH": 1024,
    "XSR_MAX_CONFIG": 16 << 20,
    "XSR_MAX_PAGES": 1 << 36,
    "XSR_MAX_MSRS": 1024,
    "XSR_MAX_XSAVE": 16384,
}

# sizeof(struct X) for every struct in format.h.
XSR_SIZEOF = {
    "xsr_file_header": 64,
    "xsr_record_header": 64,
    "xsr_record_trailer": 8,
    "xsr_memrun": 16,
    "xsr_producer": 240,
    "xsr_p2m_entry": 16,
    "xsr_index_entry": 16,
    "xsr_page_batch": 16,
    "xsr_domctx_desc": 16,
    "xsr_integrity": 64,
    "xsr_end": 32,
    "xsr_x86_segment": 16,
    "xsr_x86_dtable": 16,
    "xsr_msr": 16,
    "xsr_x86_vcpu": 1064,
    "xsr_mig_begin": 32,
    "xsr_mig_round": 32,
    "xsr_mig_pfns": 8,
    "xsr_passthru_hdr": 16,
    "xsr_xs_head": 16,
    "xsr_xs_node": 8,
    "xsr_xs_perm": 8,
    "xsr_xen_p2m_tree": 64,
}

# offsetof() of the fields this script decodes.
XSR_OFFSETOF = {
    "xsr_file_header": {
        "magic": 0, "version_major": 8, "version_minor": 10, "layout": 12,
        "kind": 13, "page_shift": 14, "flags": 16, "nr_vcpus": 20,
        "sentinel": 24, "nr_pages": 32, "producer_version": 40,
        "checksum": 56,
    },
    "xsr_producer": {
        "format_major": 0, "format_minor": 2, "producer_version": 8,
        "producer": 16, "producer_version_str": 48, "hypervisor": 80,
        "hypervisor_version": 112, "host": 176,
    },
    "xsr_x86_segment": {"base": 0, "limit": 8, "selector": 12, "attr": 14},
    "xsr_x86_dtable": {"base": 0, "limit": 8},
    "xsr_msr": {"index": 0, "value": 8},
    "xsr_memrun": {"pfn": 0, "count": 8},
    "xsr_p2m_entry": {"pfn": 0, "mfn": 8},
    "xsr_xen_p2m_tree": {"xen_major": 0, "xen_minor": 4, "nr_pfns": 8, "fll_mfn": 16,
                         "nr_frame_lists": 24, "nr_leaves": 28},
    "xsr_x86_vcpu": {
        "vcpu_id": 0, "valid": 4, "gpr": 8, "rip": 136, "rflags": 144,
        "cs": 152, "ds": 168, "es": 184, "fs": 200, "gs": 216, "ss": 232,
        "tr": 248, "ldt": 264, "gdt": 280, "idt": 296, "cr0": 312,
        "cr2": 320, "cr3": 328, "cr4": 336, "cr8": 344, "efer": 352,
        "apic_base": 360, "xcr0": 368, "dr": 376, "mp_state": 440,
        "xsave_len": 444, "nr_msrs": 448, "lapic_len": 452, "fxsave": 456,
        "events": 968, "reserved": 1032,
    },
}

C = XSR_CONSTANTS
SEC_NAMES = {
    C["XSR_SEC_END"]: "end", C["XSR_SEC_NOTES"]: "notes",
    C["XSR_SEC_MEMMAP"]: "memmap", C["XSR_SEC_PRODUCER"]: "producer",
    C["XSR_SEC_CONFIG"]: "config", C["XSR_SEC_VCPU"]: "vcpu",
    C["XSR_SEC_P2M"]: "p2m", C["XSR_SEC_PAGES"]: "pages",
    C["XSR_SEC_INDEX"]: "index", C["XSR_SEC_DOMCTX"]: "domctx",
    C["XSR_SEC_XENSTORE"]: "xenstore", C["XSR_SEC_EMULATOR"]: "emulator",
    C["XSR_SEC_PASSTHRU"]: "passthru", C["XSR_SEC_STRTAB"]: "strtab",
    C["XSR_SEC_INTEGRITY"]: "integrity", C["XSR_SEC_VMCOREINFO"]: "vmcoreinfo",
    C["XSR_SEC_MIG_BEGIN"]: "mig-begin", C["XSR_SEC_MIG_ROUND"]: "mig-round",
    C["XSR_SEC_POSTCOPY_BEGIN"]: "postcopy-begin", C["XSR_SEC_POSTCOPY_PFNS"]: "postcopy-pfns",
    C["XSR_SEC_POSTCOPY_TRANSITION"]: "postcopy-transition",
    C["XSR_SEC_XEN_P2M_TREE"]: "xen-p2m-tree",
}
KIND_NAMES = {1: "save", 2: "core", 3: "migration"}
SHT_NOTE, SHT_STRTAB = 7, 3
PT_LOAD, PT_NOTE = 1, 4
GPR_NAMES = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
             "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]
SEG_NAMES = ["cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt"]
MSR_NAMES = {0x10: "TSC", 0x1b: "APIC_BASE", 0x174: "SYSENTER_CS",
             0x175: "SYSENTER_ESP", 0x176: "SYSENTER_EIP", 0x277: "PAT",
             0xc0000080: "EFER", 0xc0000081: "STAR", 0xc0000082: "LSTAR",
             0xc0000083: "CSTAR", 0xc0000084: "FMASK", 0xc0000100: "FS_BASE",
             0xc0000101: "GS_BASE", 0xc0000102: "KERNEL_GS_BASE",
             0xc0000103: "TSC_AUX"}

# x86-64 paging.
CR0_PG = 1 << 31
CR4_PAE = 1 << 5
CR4_LA57 = 1 << 12
EFER_LMA = 1 << 10
EFER_NXE = 1 << 11
PTE_P, PTE_RW, PTE_US, PTE_A, PTE_D, PTE_PS, PTE_G = 1, 2, 4, 0x20, 0x40, 0x80, 0x100
PTE_NX = 1 << 63
PTE_ADDR = 0x000FFFFFFFFFF000  # bits 51..12
MAX_READ_VIRT = 1 << 20


class XsrError(Exception):
    """A problem with the image or the arguments, shown as one message."""


def _cstr(b):
    return b.split(b"\0", 1)[0].decode("utf-8", "replace")


class Image:
    """A seekable xsrelf image opened for reading (never written)."""

    def __init__(self, path):
        self.path = path
        try:
            self.f = open(path, "rb")
        except OSError as e:
            raise XsrError("%s: %s" % (path, e.strerror))
        self.size = os.fstat(self.f.fileno()).st_size
        hdr = self.read(0, C["XSR_HEADER_END"], "the file header")
        if hdr[:4] != b"\x7fELF":
            raise XsrError("%s: offset 0x0: not an ELF file" % path)
        if hdr[64:72] != C["XSR_MAGIC"]:
            raise XsrError("%s: offset 0x40: no XSRELF file header (not an xsrelf image)" % path)
        if hdr[4] != 2 or hdr[5] != 1:
            raise XsrError("%s: offset 0x4: not ELF64 little-endian" % path)
        (self.e_type, self.e_machine, _, _, self.e_phoff, self.e_shoff, _, _,
         phentsize, self.e_phnum, shentsize, self.e_shnum,
         self.e_shstrndx) = struct.unpack_from("<HHIQQQIHHHHHH", hdr, 16)
        (self.version_major, self.version_minor, self.layout, self.kind,
         self.page_shift, _, self.flags, self.nr_vcpus, sentinel,
         self.nr_pages, self.producer_version) = struct.unpack_from(
             "<HHBBBBIIQQQ", hdr, 72)
        if self.version_major != C["XSR_VERSION_MAJOR"]:
            raise XsrError("%s: offset 0x48: format version %d.%d, this script reads %d.x"
                           % (path, self.version_major, self.version_minor,
                              C["XSR_VERSION_MAJOR"]))
        if self.layout != C["XSR_LAYOUT_SEEKABLE"]:
            raise XsrError("%s: a streamed image has no offsets; convert it first: "
                           "xsr convert %s OUT --layout seekable" % (path, path))
        if phentsize != 56 or shentsize != 64 or self.e_phnum < 1:
            raise XsrError("%s: offset 0x36: bad program/section header sizes" % path)
        self.paging_view = bool(self.flags & C["XSR_FF_PAGING_VIEW"])
        self.xen_machine = bool(self.flags & C["XSR_FF_XEN_MACHINE_PADDR"])
        self._m2p = None
        self._load_phdrs()
        self._load_shdrs()
        self._load_memory()

    def read(self, off, n, what):
        if off < 0 or n < 0 or off > self.size or n > self.size - off:
            raise XsrError("%s: %s at 0x%x (+%d) lies past the end of the file (%d octets)"
                           % (self.path, what, off, n, self.size))
        self.f.seek(off)
        b = self.f.read(n)
        if len(b) != n:
            raise XsrError("%s: short read of %s at 0x%x" % (self.path, what, off))
        return b

    def _load_phdrs(self):
        raw = self.read(self.e_phoff, 56 * self.e_phnum, "the program header table")
        self.phdrs = []
        for i in range(self.e_phnum):
            (p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz,
             p_align) = struct.unpack_from("<IIQQQQQQ", raw, 56 * i)
            self.phdrs.append(dict(type=p_type, flags=p_flags, offset=p_offset,
                                   vaddr=p_vaddr, paddr=p_paddr, filesz=p_filesz))

    def _load_shdrs(self):
        if self.e_shnum == 0 or self.e_shstrndx >= self.e_shnum:
            raise XsrError("%s: offset 0x3c: no section header table" % self.path)
        raw = self.read(self.e_shoff, 64 * self.e_shnum, "the section header table")
        self.sections = []
        for i in range(self.e_shnum):
            (name, typ, _, _, off, size, _, info, _, entsize) = struct.unpack_from(
                "<IIQQQQIIQQ", raw, 64 * i)
            if typ == SHT_NOTE:
                code = C["XSR_SEC_NOTES"]
            elif typ == SHT_STRTAB:
                code = C["XSR_SEC_STRTAB"]
            elif typ & C["XSR_SHT_BASE"]:
                code = typ & C["XSR_SHT_CODE_MASK"]
            else:
                code = None
            self.sections.append(dict(index=i, name_off=name, type=typ, code=code,
                                      offset=off, size=size, info=info, entsize=entsize))
        st = self.sections[self.e_shstrndx]
        if st["size"] > 1 << 20:
            raise XsrError("%s: .shstrtab of %d octets is over the 1 MiB limit"
                           % (self.path, st["size"]))
        strtab = self.read(st["offset"], st["size"], "the section name table")
        for s in self.sections:
            s["name"] = _cstr(strtab[s["name_off"]:]) if s["name_off"] < len(strtab) else "?"

    def _load_memory(self):
        """Guest-physical memory map: sorted (paddr, length, file offset)."""
        self.phys = []
        if self.xen_machine:
            self._load_xen_memory()
        elif not self.paging_view:
            for p in self.phdrs[1:]:
                if p["type"] == PT_LOAD and p["filesz"]:
                    self.phys.append((p["paddr"], p["filesz"], p["offset"]))
        else:
            # PT_LOADs are virtual mappings: use the memory map and the slots.
            mm = self.find(C["XSR_SEC_MEMMAP"])
            pg = self.find(C["XSR_SEC_PAGES"])
            if mm is None or pg is None:
                raise XsrError("%s: paging view without .xsr.memmap/.xsr.pages" % self.path)
            body = self.body(mm)
            slot = 0
            for i in range(len(body) // 16):
                pfn, count = struct.unpack_from("<QQ", body, 16 * i)
                self.phys.append((pfn << 12, count << 12, pg["offset"] + (slot << 12)))
                slot += count
        self.phys.sort()
        for (a, n, off) in self.phys:
            if off > self.size or n > self.size - off:
                raise XsrError("%s: memory at 0x%x (+0x%x) lies past the end of the file"
                               % (self.path, a, n))

    def _load_xen_memory(self):
        """Xen PV for crash: p_vaddr is guest-physical, p_paddr the machine
        address; the last PT_LOAD is the p2m tree itself (not guest memory)."""
        t = self.find(C["XSR_SEC_XEN_P2M_TREE"])
        if t is None:
            raise XsrError("%s: Xen machine-address image without .xsr.xen-p2m-tree" % self.path)
        b = self.body(t)
        o = XSR_OFFSETOF["xsr_xen_p2m_tree"]
        hsz = XSR_SIZEOF["xsr_xen_p2m_tree"]
        (nr_pfns, fll) = struct.unpack_from("<QQ", b, o["nr_pfns"])
        (nfl, nleaf) = struct.unpack_from("<II", b, o["nr_frame_lists"])
        leaves = hsz + (1 + nfl) * 4096
        if len(b) != hsz + (1 + nfl + nleaf) * 4096:
            raise XsrError("section %s: %d octets for %d frame lists and %d leaves"
                           % (t["name"], len(b), nfl, nleaf))
        loads = [p for p in self.phdrs[1:] if p["type"] == PT_LOAD]
        if not loads or loads[-1]["paddr"] != fll << 12:
            raise XsrError("%s: the last PT_LOAD is not the p2m tree at machine frame 0x%x" % (self.path, fll))
        for p in loads[:-1]:
            pfn, mfn = p["vaddr"] >> 12, p["paddr"] >> 12
            for k in (0, (p["filesz"] >> 12) - 1):  # both ends: loads are runs in pfn and mfn
                if pfn + k >= nr_pfns or struct.unpack_from("<Q", b, leaves + 8 * (pfn + k))[0] != mfn + k:
                    raise XsrError("%s: PT_LOAD of pfn 0x%x: p_paddr 0x%x disagrees with the p2m tree"
                                   % (self.path, pfn + k, (mfn + k) << 12))
            self.phys.append((p["vaddr"], p["filesz"], p["offset"]))

    def find(self, code, info=None):
        for s in self.sections[1:]:
            if s["code"] == code and (info is None or s["info"] == info):
                return s
        return None

    def body(self, s, limit=C["XSR_MAX_RECORD"]):
        if s["size"] > limit:
            raise XsrError("section %s: %d octets, over the limit %d" % (s["name"], s["size"], limit))
        return self.read(s["offset"], s["size"], "section " + s["name"])

    def read_phys(self, paddr, n):
        """n octets of guest-physical memory at paddr (may span regions)."""
        out = b""
        while n > 0:
            r = self._region(paddr)
            if r is None:
                raise XsrError("guest-physical address 0x%x is not in the image's memory" % paddr)
            base, length, off = r
            k = min(n, base + length - paddr)
            out += self.read(off + paddr - base, k, "guest-physical 0x%x" % paddr)
            paddr += k
            n -= k
        return out

    def _region(self, paddr):
        lo, hi = 0, len(self.phys)
        while lo < hi:
            mid = (lo + hi) // 2
            base, length, _ = self.phys[mid]
            if paddr < base:
                hi = mid
            elif paddr - base >= length:
                lo = mid + 1
            else:
                return self.phys[mid]
        return None

    def machine_frames(self):
        """A Xen PV core's inverse p2m, (mfns, pfns) sorted by mfn, or None.

        Only a core has page tables naming machine frames (xl dump-core,
        xsr core DOMID); a save's were normalised to pfns by libxc, and
        only Xen PV images have a P2M at all (see convert.c).
        """
        if self._m2p is None:
            self._m2p = False
            s = self.find(C["XSR_SEC_P2M"])
            if self.kind == C["XSR_KIND_CORE"] and s is not None:
                b = self.body(s)
                pairs = sorted((m, p) for p, m in struct.iter_unpack("<QQ", b[:len(b) - len(b) % 16]))
                self._m2p = ([m for m, _ in pairs], [p for _, p in pairs])
        return self._m2p or None

    def mfn_to_pfn(self, mfn):
        """The pfn of machine frame mfn through the inverse p2m, or None."""
        mfns, pfns = self.machine_frames()
        i = bisect.bisect_left(mfns, mfn)
        return pfns[i] if i < len(mfns) and mfns[i] == mfn else None

    def producer(self):
        s = self.find(C["XSR_SEC_PRODUCER"])
        if s is None or s["size"] != XSR_SIZEOF["xsr_producer"]:
            return None
        b = self.body(s)
        o = XSR_OFFSETOF["xsr_producer"]
        fmaj, fmin = struct.unpack_from("<HH", b, o["format_major"])
        (pver,) = struct.unpack_from("<Q", b, o["producer_version"])
        return dict(format="%d.%d" % (fmaj, fmin), version=pver,
                    producer=_cstr(b[o["producer"]:o["producer"] + 32]),
                    producer_version=_cstr(b[o["producer_version_str"]:o["producer_version_str"] + 32]),
                    hypervisor=_cstr(b[o["hypervisor"]:o["hypervisor"] + 32]),
                    hypervisor_version=_cstr(b[o["hypervisor_version"]:o["hypervisor_version"] + 64]),
                    host=_cstr(b[o["host"]:o["host"] + 64]))

    def vcpu(self, n):
        if n < 0 or n >= self.nr_vcpus:
            raise XsrError("vCPU %d: the image has vCPUs 0..%d" % (n, self.nr_vcpus - 1))
        s = self.find(C["XSR_SEC_VCPU"], n)
        if s is None:
            raise XsrError("no .xsr.vcpu section for vCPU %d in this image" % n)
        b = self.body(s)
        return decode_vcpu(b, "section %s (vCPU %d) at 0x%x" % (s["name"], n, s["offset"]))


def decode_vcpu(b, where):
    o = XSR_OFFSETOF["xsr_x86_vcpu"]
    fixed = XSR_SIZEOF["xsr_x86_vcpu"]
    if len(b) < fixed:
        raise XsrError("%s: %d octets, shorter than the fixed %d" % (where, len(b), fixed))
    u32 = lambda off: struct.unpack_from("<I", b, off)[0]
    u64 = lambda off: struct.unpack_from("<Q", b, off)[0]
    v = dict(vcpu_id=u32(o["vcpu_id"]), valid=u32(o["valid"]))
    v["gpr"] = list(struct.unpack_from("<16Q", b, o["gpr"]))
    for k in ("rip", "rflags", "cr0", "cr2", "cr3", "cr4", "cr8", "efer", "apic_base", "xcr0"):
        v[k] = u64(o[k])
    for k in SEG_NAMES:
        base, limit, sel, attr = struct.unpack_from("<QIHH", b, o[k])
        v[k] = dict(base=base, limit=limit, selector=sel, attr=attr)
    for k in ("gdt", "idt"):
        base, limit = struct.unpack_from("<QI", b, o[k])
        v[k] = dict(base=base, limit=limit)
    v["dr"] = list(struct.unpack_from("<8Q", b, o["dr"]))
    for k in ("mp_state", "xsave_len", "nr_msrs", "lapic_len"):
        v[k] = u32(o[k])
    if v["xsave_len"] > C["XSR_MAX_XSAVE"] or v["nr_msrs"] > C["XSR_MAX_MSRS"] or v["lapic_len"] not in (0, 1024):
        raise XsrError("%s: xsave_len, nr_msrs or lapic_len over its limit" % where)
    a8 = lambda x: (x + 7) & ~7
    want = fixed + a8(v["xsave_len"]) + 16 * v["nr_msrs"] + a8(v["lapic_len"])
    if len(b) != want:
        raise XsrError("%s: %d octets, the counts in it say %d" % (where, len(b), want))
    m = fixed + a8(v["xsave_len"])
    v["msrs"] = [(struct.unpack_from("<I", b, m + 16 * i)[0], struct.unpack_from("<Q", b, m + 16 * i + 8)[0])
                 for i in range(v["nr_msrs"])]
    return v


def _flags_str(e):
    s = ["P"]
    s.append("RW" if e & PTE_RW else "RO")
    s.append("U" if e & PTE_US else "S")
    if e & PTE_A:
        s.append("A")
    if e & PTE_D:
        s.append("D")
    if e & PTE_PS:
        s.append("PS")
    if e & PTE_G:
        s.append("G")
    if e & PTE_NX:
        s.append("NX")
    return " ".join(s)


def walk(img, v, va):
    """Translate va with vCPU v's page tables.

    Returns dict(levels=[(name, index, entry_paddr, entry)], phys, page_size,
    writable, user, nx, la57, paging, machine).  Raises XsrError naming the
    level on a non-present entry or a table outside guest memory; at most 5
    reads, so a hostile table (loops included) cannot make it hang.  In a
    Xen PV core the entries name machine frames: each is translated to its
    pfn through .xsr.p2m (machine=True), as the C walker does.
    """
    m2p = img.machine_frames()

    def pfn_of(frame, name, idx, e):
        if not m2p:
            return frame
        pfn = img.mfn_to_pfn(frame)
        if pfn is None:
            raise XsrError("%s[%d] = 0x%016x names machine frame 0x%x, which .xsr.p2m maps to no pfn "
                           "(a frame of Xen or of another domain)" % (name, idx, e, frame), res)
        return pfn

    res = dict(levels=[], paging=True, la57=False, machine=bool(m2p))
    if not v["cr0"] & CR0_PG:
        res.update(paging=False, phys=va, page_size=0, writable=True, user=True, nx=False)
        return res
    if not (v["efer"] & EFER_LMA and v["cr4"] & CR4_PAE):
        raise XsrError("vCPU %d is not in long mode (EFER 0x%x, CR4 0x%x): only 4- and 5-level "
                       "paging are supported" % (v["vcpu_id"], v["efer"], v["cr4"]))
    la57 = bool(v["cr4"] & CR4_LA57)
    res["la57"] = la57
    vbits = 57 if la57 else 48
    top = va >> (vbits - 1)
    if top not in (0, (1 << (64 - vbits + 1)) - 1):
        raise XsrError("0x%x is not canonical for %d-level paging (bits 63..%d must equal bit %d)"
                       % (va, 5 if la57 else 4, vbits - 1, vbits - 1))
    names = ["PML5E", "PML4E", "PDPTE", "PDE", "PTE"]
    shifts = [48, 39, 30, 21, 12]
    if not la57:
        names, shifts = names[1:], shifts[1:]
    nxe = bool(v["efer"] & EFER_NXE)
    table = v["cr3"] & PTE_ADDR
    if m2p and img._region(table) is None and img.mfn_to_pfn(table >> 12) is not None:
        table = img.mfn_to_pfn(table >> 12) << 12  # a CR3 left as a machine frame
    writable, user, nx = True, True, False
    for name, shift in zip(names, shifts):
        idx = (va >> shift) & 0x1FF
        ea = table + 8 * idx
        try:
            (e,) = struct.unpack("<Q", img.read_phys(ea, 8))
        except XsrError:
            where = "CR3" if not res["levels"] else res["levels"][-1][0]
            raise XsrError("%s[%d] at guest-physical 0x%x: the table (from %s) is outside guest memory"
                           % (name, idx, ea, where), res)
        res["levels"].append((name, idx, ea, e))
        if not e & PTE_P:
            raise XsrError("0x%x: not mapped: %s[%d] = 0x%016x is not present" % (va, name, idx, e), res)
        writable = writable and bool(e & PTE_RW)
        user = user and bool(e & PTE_US)
        nx = nx or (nxe and bool(e & PTE_NX))
        if e & PTE_PS and shift in (30, 21):
            size = 1 << shift
            frame = ((e & PTE_ADDR & ~(size - 1)) | (va & (size - 1))) >> 12
            res.update(phys=(pfn_of(frame, name, idx, e) << 12) | (va & 0xFFF), page_size=size)
            break
        if e & PTE_PS and shift > 30:
            raise XsrError("%s[%d] = 0x%016x has the reserved PS bit set" % (name, idx, e), res)
        if shift == 12:
            res.update(phys=(pfn_of((e & PTE_ADDR) >> 12, name, idx, e) << 12) | (va & 0xFFF), page_size=4096)
            break
        table = pfn_of((e & PTE_ADDR) >> 12, name, idx, e) << 12
    res.update(writable=writable, user=user, nx=nx)
    return res


def _size_str(n):
    return {4096: "4 KiB", 2 << 20: "2 MiB", 1 << 30: "1 GiB"}.get(n, "%d" % n)


if gdb is not None:

    _state = {"path": None, "img": None, "stamp": None}

    def _core_path():
        if _state["path"]:
            return _state["path"]
        # gdb 13 has no Progspace.core_filename: ask `info target`.
        out = gdb.execute("info target", to_string=True)
        m = re.search(r"Local core dump file:\s*\n\s*`(.*)', file type", out)
        if not m:
            raise XsrError("no core file loaded: start gdb with -c IMAGE, or say `xsr file IMAGE`")
        return m.group(1)

    def _image():
        path = _core_path()
        try:
            st = os.stat(path)
        except OSError as e:
            raise XsrError("%s: %s" % (path, e.strerror))
        stamp = (path, st.st_size, st.st_mtime_ns)
        if _state["img"] is None or _state["stamp"] != stamp:
            _state["img"] = Image(path)
            _state["stamp"] = stamp
        return _state["img"]

    def _int(s, what):
        try:
            return int(s, 0)
        except ValueError:
            pass
        try:
            val = gdb.parse_and_eval(s)
            return int(val) & 0xFFFFFFFFFFFFFFFF
        except (gdb.error, ValueError, TypeError) as e:
            raise XsrError("%s %r: not a number or expression (%s)" % (what, s, e))

    def _addr(s):
        a = _int(s, "address")
        if a < 0 or a >= 1 << 64:
            raise XsrError("address %s is outside 0..2^64-1" % s)
        return a

    def _default_vcpu(img):
        t = gdb.selected_thread()
        if t is not None and t.ptid[1] and 1 <= t.ptid[1] <= img.nr_vcpus:
            return t.ptid[1] - 1  # pr_pid = vCPU id + 1
        return 0

    def _take_vcpu(argv, img):
        if "--vcpu" in argv:
            i = argv.index("--vcpu")
            if i + 1 >= len(argv):
                raise XsrError("--vcpu needs a number")
            n = _int(argv[i + 1], "--vcpu")
            del argv[i:i + 2]
            return n
        return _default_vcpu(img)

    class _Cmd(gdb.Command):
        usage = ""

        def invoke(self, arg, from_tty):
            try:
                self.run(gdb.string_to_argv(arg))
            except XsrError as e:
                raise gdb.GdbError("xsr: %s" % e.args[0])

    class XsrPrefix(gdb.Command):
        """xsrelf image commands: xsr info | vcpu N | virt ADDR | read-virt ADDR LEN | p2m PFN | file [PATH]."""

        def __init__(self):
            super().__init__("xsr", gdb.COMMAND_DATA, gdb.COMPLETE_NONE, True)

    class XsrFile(_Cmd):
        """xsr file [PATH]: show the image the xsr commands read, or set it."""

        def __init__(self):
            super().__init__("xsr file", gdb.COMMAND_DATA, gdb.COMPLETE_FILENAME)

        def run(self, argv):
            if len(argv) > 1:
                raise XsrError("usage: xsr file [PATH]")
            if argv:
                _state["path"] = os.path.abspath(argv[0])
                _state["img"] = None
            img = _image()
            print("xsr: reading %s" % img.path)

    class XsrInfo(_Cmd):
        """xsr info: layout, producer, sections and vCPUs of the loaded image."""

        def __init__(self):
            super().__init__("xsr info", gdb.COMMAND_DATA)

        def run(self, argv):
            if argv:
                raise XsrError("usage: xsr info")
            img = _image()
            print("file:      %s" % img.path)
            print("layout:    seekable, kind %s, format %d.%d%s" % (
                KIND_NAMES.get(img.kind, str(img.kind)), img.version_major, img.version_minor,
                ", paging view" if img.paging_view else ""))
            pr = img.producer()
            if pr:
                pv = pr["version"]
                print("producer:  %s %s (%d.%d.%d) on '%s'; hypervisor %s %s" % (
                    pr["producer"], pr["producer_version"], pv >> 32, (pv >> 16) & 0xFFFF,
                    pv & 0xFFFF, pr["host"], pr["hypervisor"], pr["hypervisor_version"]))
            print("vcpus:     %d" % img.nr_vcpus)
            print("pages:     %d populated" % img.nr_pages)
            print("segments:  %d PT_LOAD" % (len(img.phdrs) - 1))
            print("sections:  %d" % (len(img.sections) - 1))
            print("  %-3s %-18s %-10s %-4s %18s %14s" % ("idx", "name", "type", "vcpu", "offset", "size"))
            for s in img.sections[1:]:
                code = s["code"]
                t = SEC_NAMES.get(code, "0x%x" % s["type"]) if code is not None else "0x%x" % s["type"]
                if code is not None and s["type"] & C["XSR_SHT_OPTIONAL"]:
                    t += "?"
                vc = str(s["info"]) if code == C["XSR_SEC_VCPU"] else "-"
                print("  %-3d %-18s %-10s %-4s 0x%016x %14d" % (s["index"], s["name"], t, vc,
                                                             s["offset"], s["size"]))
            for n in range(img.nr_vcpus):
                try:
                    v = img.vcpu(n)
                    print("vcpu %d:    rip 0x%016x rsp 0x%016x cr3 0x%x" % (n, v["rip"], v["gpr"][6], v["cr3"]))
                except XsrError as e:
                    print("vcpu %d:    %s" % (n, e.args[0]))

    class XsrVcpu(_Cmd):
        """xsr vcpu N: full state of vCPU N from its .xsr.vcpu section."""

        def __init__(self):
            super().__init__("xsr vcpu", gdb.COMMAND_DATA)

        def run(self, argv):
            if len(argv) != 1:
                raise XsrError("usage: xsr vcpu N")
            img = _image()
            v = img.vcpu(_int(argv[0], "vCPU"))
            print("vCPU %d (valid 0x%x)" % (v["vcpu_id"], v["valid"]))
            for i in range(0, 16, 4):
                print("  " + "  ".join("%-6s 0x%016x" % (GPR_NAMES[k], v["gpr"][k]) for k in range(i, i + 4)))
            print("  rip    0x%016x  rflags 0x%016x" % (v["rip"], v["rflags"]))
            print("  cr0    0x%016x  cr2    0x%016x  cr3    0x%016x" % (v["cr0"], v["cr2"], v["cr3"]))
            print("  cr4    0x%016x  cr8    0x%016x  efer   0x%016x" % (v["cr4"], v["cr8"], v["efer"]))
            print("  apic_base 0x%x  xcr0 0x%x  mp_state %d" % (v["apic_base"], v["xcr0"], v["mp_state"]))
            for k in SEG_NAMES:
                s = v[k]
                print("  %-3s sel 0x%04x base 0x%016x limit 0x%08x attr 0x%04x"
                      % (k, s["selector"], s["base"], s["limit"], s["attr"]))
            print("  gdt base 0x%016x limit 0x%x   idt base 0x%016x limit 0x%x"
                  % (v["gdt"]["base"], v["gdt"]["limit"], v["idt"]["base"], v["idt"]["limit"]))
            d = v["dr"]
            print("  dr0-3 0x%x 0x%x 0x%x 0x%x  dr6 0x%x  dr7 0x%x" % (d[0], d[1], d[2], d[3], d[6], d[7]))
            print("  xsave %d octets, lapic %d octets, %d MSRs" % (v["xsave_len"], v["lapic_len"], v["nr_msrs"]))
            for idx, val in v["msrs"]:
                print("    msr 0x%08x = 0x%016x  %s" % (idx, val, MSR_NAMES.get(idx, "")))

    def _print_walk(res, va):
        for name, idx, ea, e in res["levels"]:
            print("  %-5s[%3d] @ 0x%012x = 0x%016x  %s"
                  % (name, idx, ea, e, _flags_str(e) if e & PTE_P else "not present"))

    class XsrVirt(_Cmd):
        """xsr virt ADDR [--vcpu N]: walk vCPU N's page tables (default: the selected thread's vCPU)."""

        def __init__(self):
            super().__init__("xsr virt", gdb.COMMAND_DATA, gdb.COMPLETE_EXPRESSION)

        def run(self, argv):
            img = _image()
            n = _take_vcpu(argv, img)
            if len(argv) != 1:
                raise XsrError("usage: xsr virt ADDR [--vcpu N]")
            va = _addr(argv[0])
            v = img.vcpu(n)
            if not v["cr0"] & CR0_PG:
                print("vCPU %d: paging is off (CR0.PG = 0)" % n)
                print("virtual 0x%x -> physical 0x%x (identity)" % (va, va))
                return
            print("vCPU %d: CR3 0x%x, %d-level paging%s%s" % (
                n, v["cr3"], 5 if v["cr4"] & CR4_LA57 else 4,
                ", NX enabled" if v["efer"] & EFER_NXE else "",
                "; entries name machine frames, read through .xsr.p2m (Xen PV core)"
                if img.machine_frames() else ""))
            try:
                res = walk(img, v, va)
            except XsrError as e:
                if len(e.args) > 1:
                    _print_walk(e.args[1], va)
                raise
            _print_walk(res, va)
            print("virtual 0x%x -> physical 0x%x (%s page, %s, %s%s)" % (
                va, res["phys"], _size_str(res["page_size"]), "RW" if res["writable"] else "RO",
                "user" if res["user"] else "supervisor", ", NX" if res["nx"] else ""))

    class XsrReadVirt(_Cmd):
        """xsr read-virt ADDR LEN [--vcpu N]: hex dump of guest-virtual memory through the page tables."""

        def __init__(self):
            super().__init__("xsr read-virt", gdb.COMMAND_DATA, gdb.COMPLETE_EXPRESSION)

        def run(self, argv):
            img = _image()
            n = _take_vcpu(argv, img)
            if len(argv) != 2:
                raise XsrError("usage: xsr read-virt ADDR LEN [--vcpu N]")
            va = _addr(argv[0])
            ln = _int(argv[1], "length")
            if ln <= 0 or ln > MAX_READ_VIRT:
                raise XsrError("length %d: need 1..%d" % (ln, MAX_READ_VIRT))
            if va + ln > 1 << 64:
                raise XsrError("0x%x + %d wraps past the top of the address space" % (va, ln))
            v = img.vcpu(n)
            data = b""
            a = va
            while a < va + ln:
                k = min(va + ln - a, 4096 - (a & 0xFFF))
                res = walk(img, v, a)
                data += img.read_phys(res["phys"], k)
                a += k
            for off in range(0, ln, 16):
                chunk = data[off:off + 16]
                hx = " ".join("%02x" % c for c in chunk)
                asc = "".join(chr(c) if 32 <= c < 127 else "." for c in chunk)
                print("0x%016x: %-47s  %s" % (va + off, hx, asc))

    class XsrP2m(_Cmd):
        """xsr p2m PFN: the machine frame of PFN from .xsr.p2m (Xen PV images)."""

        def __init__(self):
            super().__init__("xsr p2m", gdb.COMMAND_DATA)

        def run(self, argv):
            if len(argv) != 1:
                raise XsrError("usage: xsr p2m PFN")
            pfn = _int(argv[0], "pfn")
            img = _image()
            s = img.find(C["XSR_SEC_P2M"])
            if s is None:
                print("xsr: this image has no .xsr.p2m section (no pfn -> mfn map: "
                      "the hypervisor did not have one)")
                return
            if s["size"] % 16:
                raise XsrError("section %s: %d octets is not a whole number of entries" % (s["name"], s["size"]))
            off, left = s["offset"], s["size"]
            while left:
                k = min(left, 16 << 16)
                b = img.read(off, k, "section " + s["name"])
                for i in range(0, k, 16):
                    p, m = struct.unpack_from("<QQ", b, i)
                    if p == pfn:
                        print("pfn 0x%x -> mfn 0x%x" % (pfn, m))
                        return
                off += k
                left -= k
            print("pfn 0x%x: not in .xsr.p2m (%d entries)" % (pfn, s["size"] // 16))

    XsrPrefix()
    XsrFile()
    XsrInfo()
    XsrVcpu()
    XsrVirt()
    XsrReadVirt()
    XsrP2m()

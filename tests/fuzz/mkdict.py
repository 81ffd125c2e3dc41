#!/usr/bin/env python3
# Writes the libFuzzer dictionaries (tests/fuzz/xsrelf.dict, tests/fuzz/xen-import/dict,
# tests/fuzz/libvirt-import/dict):
# record and section types as they lie on disk, the magics, and the lengths
# and counts where the limits and the arithmetic live.  Why: see
# tests/fuzz/README.md.  Rerun after adding a type; the output is committed.
import struct

def e(v, n):  # little-endian n-octet value as a dictionary string
    return '"' + ''.join('\\x%02x' % c for c in v.to_bytes(n, 'little')) + '"'

def b(s):
    return '"' + ''.join('\\x%02x' % c for c in s) + '"'

BASE, OPT = 0x80000000, 0x40000000
names = ['end', 'notes', 'memmap', 'producer', 'config', 'vcpu', 'p2m', 'pages', 'index', 'domctx',
         'xenstore', 'emulator', 'passthru', 'strtab', 'integrity', 'vmcoreinfo', 'mig_begin',
         'mig_round', 'postcopy_begin', 'postcopy_pfns', 'postcopy_transition', 'xen_p2m_tree']
out = ['# xsrelf record/section types (sh_type, little-endian), written by tests/fuzz/mkdict.py']
for code, n in enumerate(names):
    out.append('sht_%s=%s' % (n, e(BASE | code, 4)))
    out.append('sht_%s_opt=%s' % (n, e(BASE | OPT | code, 4)))
out += ['sht_note=%s' % e(4, 4), 'sht_strtab=%s' % e(3, 4), 'sht_unknown_opt=%s' % e(BASE | OPT | 0x7777, 4)]
out += ['magic_elf=%s' % b(b'\x7fELF\x02\x01\x01'), 'magic_xsrelf=%s' % b(b'XSRELF\0\0'),
        'streamed=%s' % e(0xffffffffffffffff, 8), 'note_core=%s' % b(b'CORE\0\0\0\0'),
        'note_vmcoreinfo=%s' % b(b'VMCOREINFO\0\0')]
# Lengths and counts at the limits, and values that wrap a sum (finding 1 of issue 15).
for name, v, n in [('len_wrap24', 2**64 - 24, 8), ('len_max64', 2**64 - 1, 8), ('len_half64', 2**63, 8),
                   ('len_wrap4096', 2**64 - 4096, 8), ('pages_max', 2**36, 8), ('pages_max1', 2**36 + 1, 8),
                   ('pfn_max', 0x000fffffffffffff, 8), ('pfn_zero', 1 << 52, 8), ('record_max', 128 << 20, 8),
                   ('batch_max', 1024, 4), ('batch_max1', 1025, 4), ('u32_max', 2**32 - 1, 4),
                   ('u32_wrap', 2**32 - 8, 4), ('xsave_max', 16384, 4), ('msrs_max', 1024, 4),
                   ('vcpus_max', 4096, 4), ('runs_max', 65533, 4), ('lapic', 1024, 4)]:
    out.append('%s=%s' % (name, e(v, n)))
open('tests/fuzz/xsrelf.dict', 'w').write('\n'.join(out) + '\n')

xen = ['# Xen libxc/libxl record types and magics, written by tests/fuzz/mkdict.py']
for v in list(range(0x00, 0x17)):
    xen.append('xc_rt_%02x=%s' % (v, e(v, 4)))
xen += ['xc_rt_optional=%s' % e(0x80000000, 4), 'xc_marker=%s' % e(2**64 - 1, 8),
        'xc_ident=%s' % b(b'XENF'), 'xl_magic=%s' % b(b'Xen saved domain, xl format\n \0 \r'),
        'xl_byteorder=%s' % e(0x01020304, 4), 'libxl_ident=%s' % b(b'LibxlFmt'),
        'core_note_xen=%s' % b(b'Xen\0'), 'core_hdr=%s' % e(0x2000001, 4), 'core_ver=%s' % e(0x2000002, 4),
        'core_magic=%s' % e(0xF00FEBED, 8), 'core_magic_hvm=%s' % e(0xF00FEBEE, 8),
        'sec_pages=%s' % b(b'.xen_pages'), 'sec_p2m=%s' % b(b'.xen_p2m'), 'sec_pfn=%s' % b(b'.xen_pfn'),
        'sec_prstatus=%s' % b(b'.xen_prstatus'), 'sec_note=%s' % b(b'.note.Xen'),
        'rec_len_max=%s' % e(128 << 20, 4), 'u32_max=%s' % e(2**32 - 1, 4), 'u64_wrap=%s' % e(2**64 - 8, 8)]
open('tests/fuzz/xen-import/dict', 'w').write('\n'.join(xen) + '\n')

# libvirt save files (tests/fuzz/libvirt-import): the header's magics and fields, the four
# compressors' magics, and the QEMU stream's tokens (qemu-import/dict) for the raw payload.
lv = ['# libvirt save header, compressor magics and the QEMU stream tokens, written by tests/fuzz/mkdict.py',
      'lv_magic=%s' % b(b'LibvirtQemudSave'), 'lv_partial=%s' % b(b'LibvirtQemudPart')]
for v in range(0, 8):
    lv.append('lv_u32_%d=%s' % (v, e(v, 4)))
lv += ['lv_u32_max=%s' % e(2**32 - 1, 4), 'lv_data_max=%s' % e(16 << 20, 4), 'lv_data_max1=%s' % e((16 << 20) + 1, 4),
       'lv_be_version2=%s' % b(b'\0\0\0\2'), 'xml_name=%s' % b(b'<name>'), 'xml_uuid=%s' % b(b'<uuid>'),
       'gz_magic=%s' % b(b'\x1f\x8b\x08'), 'bz_magic=%s' % b(b'BZh9'), 'bz_block=%s' % b(b'\x31\x41\x59\x26\x53\x59'),
       'bz_eos=%s' % b(b'\x17\x72\x45\x38\x50\x90'), 'xz_magic=%s' % b(b'\xfd7zXZ\0'), 'xz_footer=%s' % b(b'YZ'),
       'lzop_magic=%s' % b(b'\x89LZO\0\r\n\x1a\n'), 'lzop_version=%s' % b(b'\x10\x40'),
       'lzop_block_max=%s' % b((64 << 20).to_bytes(4, 'big')), 'lzop_block_max1=%s' % b(((64 << 20) + 1).to_bytes(4, 'big'))]
lv += [l for l in open('tests/fuzz/qemu-import/dict').read().splitlines() if l and not l.startswith('#')]
open('tests/fuzz/libvirt-import/dict', 'w').write('\n'.join(lv) + '\n')

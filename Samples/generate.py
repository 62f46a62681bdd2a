#!/usr/bin/env python3
"""Writes the synthetic sample streams in this folder, byte for byte the same on
every run (the .zst files depend on the zstd CLI, 1.5.x here).

Usage: Samples/generate.py [OUTPUT_DIR]   (default: the folder of this script)

A state stream is [be32 length][bytes] repeated, ended by a zero length. This
script frames by hand on purpose: it is a second, independent writer of the
format that statetool's own tests check against.
"""
import os
import struct
import subprocess
import sys


def frame(chunks, terminator=True):
    out = b"".join(struct.pack(">I", len(c)) + c for c in chunks)
    return out + (b"\0\0\0\0" if terminator else b"")


def payload():
    lines = [b"sample payload line %04d: the back-end state of a virtio-fs device\n" % i for i in range(140)]
    return b"".join(lines)


def split(data, sizes):
    chunks, pos = [], 0
    for size in sizes:
        chunks.append(data[pos:pos + size])
        pos += size
    assert pos == len(data), (pos, len(data))
    return chunks


def zstd(raw_path, out_path):
    subprocess.run(["zstd", "-q", "-19", "--check", "-f", raw_path, "-o", out_path], check=True)


def migration_file(fs_state, net_state):
    """A small QEMU migration file (format version 3) holding two back-end
    states: a vhost-user-fs device's and a vhost-user net device's, the latter
    inside its virtio-net section as QEMU 10.0 writes it."""
    be32 = lambda v: struct.pack(">I", v)
    be64 = lambda v: struct.pack(">Q", v)
    name = lambda s: bytes([len(s)]) + s
    header = lambda kind, sid, idstr, instance, version: bytes([kind]) + be32(sid) + name(idstr) + be32(instance) + be32(version)
    footer = lambda sid: b"\x7e" + be32(sid)
    page = 4096
    out = b"QEVM" + be32(3)
    out += b"\x07" + be32(11) + b"pc-q35-10.0"                      # configuration
    out += header(0x01, 0, b"ram", 0, 4)                               # RAM START: the block list
    out += be64(4 * page | 0x04) + name(b"pc.ram") + be64(4 * page) + be64(0x10) + footer(0)
    guest_page = (b"guest memory may hold anything, even \x05\x15vhost-user-fs-backend\0\0\0\0" * 64)[:page]
    out += b"\x02" + be32(0)                                           # RAM PART: one page, three zero pages
    out += be64(0 | 0x08) + name(b"pc.ram") + guest_page
    for address in (1, 2, 3):
        out += be64(address * page | 0x02 | 0x20) + b"\0"
    out += be64(0x10) + footer(0)
    out += b"\x03" + be32(0) + be64(0x10) + footer(0)                    # RAM END
    out += b"\x08" + struct.pack(">HH", 0x0B, 0)                       # SWITCHOVER_START
    timer = be64(0x1234) + be64(0) + be64(0x5678)
    out += header(0x04, 1, b"timer", 0, 2) + timer + footer(1)
    virtio = b"\0" * 40                                                # stands in for virtio_save's output
    fs_subsection = b"\x05" + name(b"vhost-user-fs-backend") + be32(0)
    out += header(0x04, 2, b"0000:00:04.0/vhost-user-fs", 0, 0) + virtio + fs_subsection + fs_state + footer(2)
    net_subsection = b"\x05" + name(b"virtio-net-device/backend") + be32(0)
    out += header(0x04, 3, b"0000:00:03.0/virtio-net", 0, 11) + virtio + net_subsection + net_state + b"\0" * 12 + footer(3)
    out += b"\x00"                                                       # EOF
    description = (
        '{"page_size": %d, "devices": ['
        '{"name": "timer", "instance_id": 0, "vmsd_name": "timer", "version": 2, "fields": ['
        '{"name": "cpu_ticks_offset", "type": "int64", "size": 8}, {"name": "unused", "type": "unused_buffer", "size": 8}, '
        '{"name": "cpu_clock_offset", "type": "int64", "size": 8}]}, '
        '{"name": "0000:00:04.0/vhost-user-fs", "instance_id": 0, "vmsd_name": "vhost-user-fs", "version": 0, '
        '"fields": [{"name": "virtio", "type": "virtio", "size": %d}], "subsections": [{"vmsd_name": "vhost-user-fs-backend", '
        '"version": 0, "fields": [{"name": "back-end", "type": "virtio-fs back-end state", "size": %d}]}]}, '
        '{"name": "0000:00:03.0/virtio-net", "instance_id": 0, "vmsd_name": "virtio-net", "version": 11, '
        '"fields": [{"name": "virtio", "type": "virtio", "size": %d}]}]}'
    ) % (page, len(virtio), len(fs_state), len(virtio) + len(net_subsection) + len(net_state) + 12)
    return out + b"\x06" + be32(len(description)) + description.encode()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    data = payload()
    good_chunks = split(data, [4096, 4096, len(data) - 8192])
    good = frame(good_chunks)
    files = {
        "good.state": good,
        "missing-terminator.state": frame(good_chunks, terminator=False),
        "truncated-length.state": frame(good_chunks, terminator=False) + b"\0\0",
        # The second chunk declares 4 GiB - 16 bytes and the input ends 10 bytes in.
        "truncated-chunk.state": frame(good_chunks[:1], terminator=False)
        + struct.pack(">I", 0xFFFFFFF0) + data[:10],
        "trailing-data.state": good + b"junk after the end marker\n",
        "two-devices.mig": migration_file(good, frame([b"vhost-user net back-end state\n"])),
    }
    for name, content in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(content)

    good_path = os.path.join(out, "good.state")
    zstd(good_path, good_path + ".zst")

    # A 2 MiB chunk: QEMU never writes more than 1 MiB at once (a warning).
    oversized_raw = os.path.join(out, "oversized-chunk.state")
    with open(oversized_raw, "wb") as f:
        f.write(frame([data * (2 * 1024 * 1024 // len(data)) + data[: 2 * 1024 * 1024 % len(data)]]))
    zstd(oversized_raw, oversized_raw + ".zst")
    os.remove(oversized_raw)

    # good.state.zst with the last byte of its content checksum flipped.
    with open(good_path + ".zst", "rb") as f:
        damaged = bytearray(f.read())
    damaged[-1] ^= 0xFF
    with open(os.path.join(out, "compression-error.state.zst"), "wb") as f:
        f.write(damaged)


if __name__ == "__main__":
    main()

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

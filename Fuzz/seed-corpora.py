#!/usr/bin/env python3
"""Writes the hand-made seeds of the fuzz corpora (Fuzz/Corpus/TARGET/seed-*).

Usage: Fuzz/seed-corpora.py   (run from anywhere; needs the fixtures beside the repository)

StateStreamReader's seeds are copies of Samples/; the others are built here: vhost-user
message sequences for each role, zstd control prefixes, small migration files, and small
virtiofsd payloads (V1, V2, every location kind) plus the first inodes of the real s1-A state.
Inputs found by fuzzing are added next to them as crash-* or regression-* files.
"""
import gzip
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "Fuzz", "Corpus")


def write(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "seed-" + name), "wb") as f:
        f.write(data)


def message(request, flags, payload=b""):
    return struct.pack("<III", request, flags, len(payload)) + payload


def u64(value):
    return struct.pack("<Q", value)


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def string(text):
    return varint(len(text)) + text


def main():
    # vhost-user: role byte (0 decode, 1 back-end, 2 front-end), then what the peer sends.
    requests = [message(1, 1), message(15, 1), message(16, 1, u64(0x80000 | 8)), message(17, 1),
                message(36, 1), message(3, 1), message(42, 9, struct.pack("<II", 0, 0)), message(43, 1)]
    write("VhostUserMessages", "decode-requests", b"\x00" + b"".join(requests))
    write("VhostUserMessages", "backend-init", b"\x01" + b"".join(requests))
    write("VhostUserMessages", "backend-bad-flags", b"\x01" + message(1, 5) + message(15, 1))
    replies = [message(1, 5, u64(1 << 30 | 1 << 32)), message(15, 5, u64(0x80000 | 1 | 1 << 15)),
               message(17, 5, u64(2)), message(36, 5, u64(32)), message(1, 5, u64(1 << 30)),
               message(42, 5, u64(0x100)), message(43, 5, u64(0))]
    write("VhostUserMessages", "frontend-replies", b"\x02" + b"".join(replies))
    write("VhostUserMessages", "frontend-no-device-state", b"\x02" + message(1, 5, u64(1 << 30)) + message(15, 5, u64(1)))

    # zstd: four control bytes (damage kind, chunk size, level, where), then the payload.
    with open(os.path.join(ROOT, "Samples", "good.state"), "rb") as f:
        good = f.read()
    for kind in range(5):
        write("ZstdStream", "kind-%d" % kind, bytes([kind, 17, 2, 99]) + good[:3000])
    write("ZstdStream", "empty-payload", bytes([0, 0, 0, 0]))

    # Migration files: the two-device sample, cut and damaged.
    with open(os.path.join(ROOT, "Samples", "two-devices.mig"), "rb") as f:
        mig = f.read()
    write("MigrationFile", "two-devices", mig)
    write("MigrationFile", "two-devices-cut-in-ram", mig[:200])
    write("MigrationFile", "two-devices-cut-in-state", mig[:6000])
    write("MigrationFile", "two-devices-no-description", mig[:13976])
    write("StateReplacement", "two-devices", mig)
    write("StateReplacement", "two-devices-cut-in-state", mig[:6000])
    write("StateReplacement", "two-devices-no-description", mig[:13976])
    damaged = bytearray(mig)
    damaged[13807] ^= 0xFF  # the footer after the vhost-user-fs state
    write("MigrationFile", "two-devices-bad-footer", bytes(damaged))
    # Reading from the end: the sample (placed whole), each damage that makes it walk instead.
    write("TailPlacement", "two-devices", mig)
    write("TailPlacement", "two-devices-bad-footer", bytes(damaged))
    write("TailPlacement", "two-devices-cut-in-ram", mig[:200])
    write("TailPlacement", "two-devices-cut-in-state", mig[:6000])
    write("TailPlacement", "two-devices-no-description", mig[:13976])
    lying = bytearray(mig)
    lying[4299] ^= 0x01  # the footer before the first placed section: no 0x7e there
    write("TailPlacement", "two-devices-no-footer-before", bytes(lying))

    # virtiofsd payloads: V1 and V2 with every location kind, by hand.
    handle = varint(27) + varint(3) + varint(3) + b"\xde\xad\x01"
    inodes = (varint(5) + varint(1) + varint(3) + b"\x00\x00"
              + varint(2) + varint(1) + b"\x01" + varint(1) + string(b"dir") + b"\x01" + handle
              + varint(300) + varint(1) + b"\x02\x00"
              + varint(301) + varint(1) + b"\x03" + string(b"dir/file") + b"\x00"
              + varint(70000) + varint(1) + b"\x04" + handle + b"\x00")
    handles = varint(1) + varint(9) + varint(301) + b"\x00" + varint(0x8000 << 1)
    body = inodes + varint(70001) + handles + varint(10) + b"\x01\x00\x01\x00"
    write("VirtiofsdState", "v1-every-location", b"\x00" + body)
    write("VirtiofsdState", "v2-every-location", b"\x01" + body + varint(2) + varint(27) + string(b".") + varint(5) + string(b"sub"))
    # The real s1-A state cut down to its first inodes, re-counted.
    state = os.path.join(ROOT, "..", "shared", "fixtures", "qemu-virtiofsd", "state", "s1-A-running.state")
    with open(state, "rb") as f:
        framed = f.read()
    payload, position = b"", 0
    while True:
        (length,) = struct.unpack(">I", framed[position:position + 4])
        position += 4
        if length == 0:
            break
        payload += framed[position:position + length]
        position += length
    write("VirtiofsdState", "s1-A-payload-head", payload[:4096])
    real = [b"\x01" + varint(3)]
    position = 3  # after the version tag and the two-byte inode count
    for _ in range(3):
        start = position
        for _ in range(2):  # id, refcount
            while payload[position] & 0x80:
                position += 1
            position += 1
        tag = payload[position]
        position += 1
        if tag == 1:
            while payload[position] & 0x80:
                position += 1
            position += 1
            length = payload[position]
            position += 1 + length
        position += 1  # no file handle in s1
        real.append(payload[start:position])
    write("VirtiofsdState", "s1-A-three-inodes", b"".join(real) + varint(5399) + varint(0) + varint(1084) + b"\x00\x01\x00\x00" + varint(0))

    # libvirt save images, after their magic: the header's words, the XML, the QEMU stream.
    xml = b"<domain type='qemu'><name>seed</name><uuid>00000000-0000-4000-8000-000000000000</uuid></domain>\0"
    cookie = b"<cookie/>\0"
    data = xml + cookie + bytes(64)

    def save_image(fmt, stream, version=2, order="<", data_len=None):
        words = [version, len(data) if data_len is None else data_len, 1, fmt, len(xml)] + [0] * 14
        return struct.pack(order + "19I", *words) + data + stream
    write("SaveImage", "raw-two-devices", save_image(0, mig))
    write("SaveImage", "gzip-two-devices", save_image(1, gzip.compress(mig, mtime=0)))
    write("SaveImage", "big-endian-cut", save_image(0, mig[:300], order=">"))
    write("SaveImage", "lying-data-len", save_image(0, mig[:100], data_len=0x7FFFFFFF))
    write("SaveImage", "version-one", save_image(0, mig[:5000], version=1))

    # FieldDecoder: 8 bytes choose the description, the rest is the section body.
    body = bytes(range(64)) * 4
    write("FieldDecoder", "scalars", bytes([0, 1, 2, 3, 4, 5, 6, 7]) + body)
    write("FieldDecoder", "struct-subsection-arrays", bytes([0x8F, 0x4F, 0x23, 0x35, 0x0F, 0x46, 0x50, 0x0A]) + body)
    write("FieldDecoder", "nullptr-and-capability", bytes([7, 7, 10, 7, 0, 0, 0, 0]) + b"000\x03abc" + body)
    # The real vhost-user-fs virtio field (QEMU 10.0, s1-A), whole: the virtio decoder's input.
    fixture = os.path.join(ROOT, "Tests", "Fixtures", "qemu-virtiofsd", "migration", "s1-A-running.mig.zst")
    if os.path.exists(fixture):
        import subprocess
        mig_bytes = subprocess.run(["zstd", "-d", "-c", fixture], check=True, stdout=subprocess.PIPE).stdout
        write("FieldDecoder", "s1-A-virtio", bytes([8] * 8) + mig_bytes[63851279:63851279 + 45619])

    for name in sorted(os.listdir(os.path.join(ROOT, "Samples"))):
        if name.endswith(".state") or name.endswith(".zst"):
            shutil.copy(os.path.join(ROOT, "Samples", name), os.path.join(CORPUS, "StateStreamReader", name))


if __name__ == "__main__":
    main()

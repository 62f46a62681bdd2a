import CZstd
import StateStream

/// The zstd path: the input's tail is framed and compressed with libzstd
/// (checksummed), then damaged as its first bytes say (a byte flipped, the
/// frame cut, garbage appended, a skippable frame in front), and read back:
/// - undamaged, the reader returns exactly the framed stream;
/// - damaged, it ends with a problem whose offset lies within the compressed
///   input (or reads a stream that is still exactly the original), never a
///   crash; damage to the magic itself makes the input raw, which the reader's
///   own target covers.
enum ZstdStreamTarget {
    static func run(_ bytes: [UInt8]) throws {
        guard bytes.count >= 4 else { return }
        let control = bytes.prefix(4).map(Int.init)
        let payload = Array(bytes.dropFirst(4))
        let chunkSize = control[1] % 64 + 1
        var framed: [UInt8] = []
        for start in stride(from: 0, to: payload.count, by: chunkSize) {
            let chunk = payload[start..<min(payload.count, start + chunkSize)]
            framed += StateStreamWriter.lengthField(UInt32(chunk.count)) + chunk
        }
        framed += StateStreamFormat.terminator
        var compressed = compress(framed, level: Int32(control[2] % 5 + 1))
        // Damage that leaves the zstd magic in place must still be read as zstd.
        var magicIntact = true
        switch control[0] % 5 {
        case 0:
            break
        case 1:
            let index = (control[3] * 257 + control[2]) % compressed.count
            compressed[index] ^= UInt8(control[1] | 1)
            magicIntact = index >= 4
        case 2:
            compressed.removeLast(control[3] % compressed.count + 1)
            magicIntact = compressed.count >= 4
        case 3:
            compressed += Array(payload.prefix(control[3] % 16 + 1))
        default:
            compressed = [0x5A, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 1, 2, 3] + compressed
        }
        let readSizes: (Int) -> Int = { call in (call * 31 + control[3]) % 4096 + 1 }
        let events = try ReaderEvents.read(compressed, readSizes: readSizes, bufferSize: 4 + control[2] % 200)
        try check(events.compression == .zstd || !magicIntact, "compressed input not detected as zstd")
        if control[0] % 5 == 0 || control[0] % 5 == 4 {
            try check(events.valid && events.reencoded == framed, "an intact zstd stream does not read back exactly")
        } else if events.valid {
            try check(events.reencoded == framed, "a damaged zstd stream read as a different valid stream")
        }
    }

    private static func compress(_ bytes: [UInt8], level: Int32) -> [UInt8] {
        let context = ZSTD_createCCtx()!
        defer { ZSTD_freeCCtx(context) }
        ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)
        ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1)
        var out = [UInt8](repeating: 0, count: ZSTD_compressBound(bytes.count))
        let size = out.withUnsafeMutableBytes { destination in
            bytes.withUnsafeBytes { source in
                ZSTD_compress2(context, destination.baseAddress, destination.count, source.baseAddress, source.count)
            }
        }
        precondition(ZSTD_isError(size) == 0, "libzstd failed to compress")
        return Array(out.prefix(size))
    }
}

import StateStream

/// The zstd path: the input's tail is framed (`PayloadFramer`) and compressed
/// (`ZstdCompressingSink`: libzstd, checksummed), then damaged as its first bytes say (a byte flipped, the
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
        let framedSink = ByteArraySink()
        var framer = PayloadFramer(chunkSize: control[1] % 64 + 1, sink: framedSink)
        try framer.append(payload[...])
        try framer.finish()
        let framed = framedSink.bytes
        let compressedSink = ByteArraySink()
        let compressor = try ZstdCompressingSink(compressedSink, level: Int32(control[2] % 5 + 1))
        try compressor.write(framed)
        try compressor.finish()
        var compressed = compressedSink.bytes
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
}

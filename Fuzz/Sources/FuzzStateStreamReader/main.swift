import Glibc
import StateStream

/// Feeds the state-stream reader arbitrary bytes with varied read sizes and
/// buffer sizes, and checks what it reports, not just that it survives:
/// - problem offsets lie within the input (framed offsets within the framed
///   bytes, compressed offsets within the compressed input);
/// - a raw input the reader accepts re-encodes, chunk by chunk, to the same bytes;
/// - the reader's events are consistent (payload adds up to each chunk's length).
@_cdecl("LLVMFuzzerTestOneInput")
func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // The first byte picks the read pattern and buffer size, so every split is reachable.
    let seed = Int(bytes.first ?? 0)
    let scale = [1, 1, 17, 4099][seed % 4]
    let readSizes: (Int) -> Int = { call in ((call * 7 + seed) % 13 + 1) * scale }
    let bufferSize = 4 + seed % 61
    do {
        let input = try StateStreamInput(source: ByteArraySource(bytes, readSizes: readSizes))
        var reader = StateStreamReader(input: input, bufferSize: bufferSize)
        let sink = Collector()
        var writer = StateStreamWriter(sink: sink)
        var current: Chunk?
        var bodyBytes: UInt64 = 0
        var valid = true
        while let event = try reader.next() {
            switch event {
            case .chunkStart(let chunk):
                precondition(current == nil, "chunk started inside a chunk")
                current = chunk
                bodyBytes = 0
                try writer.writeChunkHeader(length: chunk.length)
            case .payload(let piece):
                precondition(current != nil, "payload outside a chunk")
                bodyBytes += UInt64(piece.count)
                try piece.withUnsafeBytes { buffer in
                    Result { () throws(OutputError) in try writer.writeChunkBody(buffer) }
                }.get()
            case .chunkEnd(let chunk):
                precondition(chunk == current && bodyBytes == UInt64(chunk.length), "chunk body does not add up")
                current = nil
            case .terminator(let offset):
                precondition(offset <= reader.framedBytesRead, "terminator beyond the input")
            case .problem(let problem):
                if problem.offsetIsCompressed {
                    precondition(problem.offset <= UInt64(size), "compressed offset beyond the input")
                } else {
                    precondition(problem.offset <= reader.framedBytesRead, "offset beyond the input")
                }
                if problem.severity == .error { valid = false }
            }
        }
        if valid && input.compression == .none {
            try writer.finish()
            precondition(sink.bytes == bytes, "an accepted stream does not re-encode to the same bytes")
        }
    } catch {
        preconditionFailure("in-memory input threw \(error)")
    }
    return 0
}

final class Collector: ByteSink {
    var bytes: [UInt8] = []
    func write(_ buffer: UnsafeRawBufferPointer) throws(OutputError) { bytes += buffer }
    func finish() throws(OutputError) {}
}

/// libFuzzer's driver, for an entry point of our own (SwiftPM names the
/// executable's entry point itself, so libFuzzer's `main` cannot be used).
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

var argc = CommandLine.argc
var argv = CommandLine.unsafeArgv
exit(runFuzzerDriver(&argc, &argv, fuzz))

import LibvirtSaveImage
import MigrationFile
import StateStream

/// A libvirt save image fed arbitrary bytes after a valid magic (so that the
/// fuzzer spends its time in the header, the XML and the stream), a byte at a
/// time and whole, with and without its size known:
/// - both ways give the same image or the same problem, at an offset within the input;
/// - a header read writes back as the bytes it was read from;
/// - the XML held is exactly `data_len` bytes, and the stream starts at `92 + data_len`;
/// - the stream inside is walked, its offsets within the image.
enum SaveImageTarget {
    static func run(_ input: [UInt8]) throws {
        let bytes = Array("LibvirtQemudSave".utf8) + input
        let whole = open(ByteArraySource(bytes), fileSize: UInt64(bytes.count))
        let trickled = open(ByteArraySource(bytes, maximumReadSize: 1), fileSize: nil)
        switch (whole, trickled) {
        case (.failure(let problem), _):
            try check(problem.offset <= bytes.count, "\(problem) lies beyond the input")
            if case .failure(let other) = trickled, other.kind != problem.kind {
                // Only the size check differs: a pipe has no size to check data_len against.
                try check(problem.kind == .badHeader && problem.offset == 20, "whole: \(problem), a byte at a time: \(other)")
            }
        case (.success(let image), .success(let again)):
            try check(image.header == again.header && image.data == again.data, "the image read differently a byte at a time")
            try check(image.header.bytes == Array(bytes.prefix(SaveImageHeader.byteCount)), "the header does not write back as read")
            try check(image.data.count == Int(image.header.dataLength), "the XML held is not data_len bytes")
            let (_, stream) = try SaveImage.open(ByteArraySource(bytes), fileSize: UInt64(bytes.count))
            try check(stream.baseOffset == image.header.streamOffset, "the stream does not start at 92 + data_len")
            try MigrationFileReader(input: stream).walk { event in
                if case .problem(let problem) = event, problem.offsetBase == .input {
                    try check(problem.offset >= stream.baseOffset, "\(problem) lies before the stream")
                }
            }
        case (.success, .failure(let problem)):
            throw InvariantViolation("whole it reads, a byte at a time: \(problem)")
        }
    }

    private static func open(_ source: ByteArraySource, fileSize: UInt64?) -> Result<SaveImage, SaveImageProblem> {
        do {
            return .success(try SaveImage.open(source, fileSize: fileSize).image)
        } catch let problem as SaveImageProblem {
            return .failure(problem)
        } catch {
            return .failure(SaveImageProblem(.badHeader, at: 0, "\(error)"))
        }
    }
}

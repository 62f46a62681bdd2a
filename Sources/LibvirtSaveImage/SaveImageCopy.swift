import MigrationFile
import StateStream
import SystemPackage

/// Writing a save image with its QEMU stream changed: libvirt's header and XML
/// as they were (`data_len` and the cookie kept), then the new stream, stored
/// as the image's own format says (raw, or compressed afresh with the same
/// library: the result decompresses with the format's own tool).
extension SaveImage {
    /// Where the QEMU stream of a copy goes, once the header and XML are written.
    public struct CopyDestination {
        /// For `StateReplacement.replace(in:device:selecting:with:to:strategy:observe:)`:
        /// the file itself for a raw image (so untouched ranges are copied in the
        /// kernel), else a compressor writing into it.
        public let output: StateReplacement.Output
        /// The compressor, to finish after the stream is written; `nil` for raw.
        public let compressor: (any ByteSink)?
    }

    /// Writes the header and XML into `file` and returns where the QEMU stream goes.
    public func beginCopy(in file: OutputFile) throws(OutputError) -> CopyDestination {
        try file.write(header.bytes + data)
        let compression = header.format.compression
        guard compression != .none else {
            return CopyDestination(output: .file(file), compressor: nil)
        }
        let compressor = try compression.compressor(into: file)!
        return CopyDestination(output: .sink(compressor), compressor: compressor)
    }

    /// Reads back a copy written through ``beginCopy(in:)`` and checks that
    /// its header and XML are this image's, byte for byte.
    ///
    /// - Returns: The copy's QEMU stream, for checking it in turn.
    /// - Throws: ``SaveImageProblem`` when the copy is not this image's.
    public func checkCopy(_ written: FileDescriptor) throws -> StateStreamInput {
        let size = UInt64(try written.stat().size)
        let (copy, stream) = try SaveImage.open(FileDescriptorSource(written, closesOnDeinit: false), file: written, fileSize: size)
        guard copy.header == header, copy.data == data else {
            throw SaveImageProblem(.badHeader, at: 0, "the written image's header or XML differs from the original's")
        }
        return stream
    }
}

import LibvirtSaveImage
import StateStream

/// A migration file as the commands that read one take it: a QEMU migration
/// file (raw or compressed), or a libvirt save image around one, told apart
/// by the image's magic.
struct MigrationInput {
    /// The QEMU migration stream, decompressed; for a save image its offsets
    /// count bytes of the image, libvirt's header included.
    let stream: StateStreamInput
    /// libvirt's header and XML, for a save image.
    let saveImage: SaveImage?

    /// Opens `path` (`-` for standard input), or reports why it cannot be read:
    /// exit status 2 for an unreadable file, 1 for a save image whose header or
    /// XML is not what libvirt writes.
    static func open(_ path: String) throws -> MigrationInput {
        try sniffing(path) { file, source, isSaveImage in
            guard isSaveImage else { return MigrationInput(stream: try StateStreamInput(source: source, file: file), saveImage: nil) }
            let size = file.regularFileSize
            let (image, stream) = try SaveImage.open(source, file: size == nil ? nil : file.fileDescriptor, fileSize: size)
            return MigrationInput(stream: stream, saveImage: image)
        }
    }

    /// The header and XML of the save image at `path`, without reading its
    /// QEMU stream; `nil` for a file that is no save image.
    static func saveImage(at path: String) throws -> SaveImage? {
        try sniffing(path) { file, source, isSaveImage in
            isSaveImage ? try SaveImage.read(source, fileSize: file.regularFileSize) : nil
        }
    }

    /// Opens `path`, reads enough to tell a save image by its magic, and hands
    /// `body` the file, a source that serves it from its first byte, and the
    /// verdict; failures become the command's (a bad image: status 1).
    private static func sniffing<Result>(
        _ path: String, _ body: (FileDescriptorSource, PrefixedSource, Bool) throws -> Result
    ) throws -> Result {
        do {
            let file = try FileDescriptorSource(path: path)
            let leading = try file.readPrefix(SaveImageHeader.magicPrefix.count)
            return try body(file, PrefixedSource(prefix: leading, rest: file), SaveImageHeader.recognises(leading))
        } catch let problem as SaveImageProblem {
            throw CommandFailure(.invalid, "\(path): error: \(problem)")
        } catch {
            throw CommandSupport.fail(error, file: path)
        }
    }

    /// How the file is stored, for reports: the stream's compression.
    var compression: Compression { stream.compression }
}

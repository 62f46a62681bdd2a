import LibvirtSaveImage
import MigrationFile
import StateStream

/// An input as every command takes it: opened once, told apart once.
///
/// One rule tells what it is, from its first bytes after decompression
/// (zstd, gzip, bzip2 or xz, by their magic): a QEMU migration file (`QEVM`),
/// a libvirt save image (`LibvirtQemudSave` or `LibvirtQemudPart`, whose QEMU
/// stream is then opened through the image's header), or anything else, which
/// is a chunk-framed state stream or a back-end's bare payload. Neither magic
/// is a chunk length QEMU writes (it never frames a chunk above 1 MiB; `QEVM`
/// would declare 1,363,498,573 bytes, `Libv` 1,281,974,902), so no state
/// stream is taken for one. Whether the rest is a stream or a payload takes
/// reading it whole (``LoadedPayload``), which only commands that load a
/// payload do.
///
/// ```swift
/// let input = try Input.open("guest.save")
/// switch input.kind {
/// case .migrationFile, .saveImage: ...   // input.stream is the QEMU stream
/// case .stream: ...                      // a state stream or a payload
/// }
/// ```
public struct Input {
    /// What an input is.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// A QEMU migration file, raw or compressed.
        case migrationFile = "migration-file"
        /// A libvirt save image: libvirt's header and XML around a QEMU migration stream.
        case saveImage = "save-image"
        /// A chunk-framed state stream or a back-end's bare payload.
        case stream

        /// The one rule: what an input whose first ``Input/prefixLength``
        /// bytes (after decompression) are `prefix` is. A save image is never
        /// compressed as a whole: libvirt compresses only the stream inside.
        public init(prefix: [UInt8], compression: Compression) {
            if compression == .none, SaveImageHeader.recognises(prefix) {
                self = .saveImage
            } else if MigrationFormat.startsWithMagic(prefix) {
                self = .migrationFile
            } else {
                self = .stream
            }
        }

        /// What it is, for messages: `a QEMU migration file (QEVM magic)`.
        public var phrase: String {
            switch self {
            case .migrationFile: return "a QEMU migration file (QEVM magic)"
            case .saveImage: return "a libvirt save image (LibvirtQemud magic)"
            case .stream: return "a state stream or payload"
            }
        }
    }

    /// The input as the user named it (`-` for standard input).
    public let path: String
    /// What it is.
    public let kind: Kind
    /// What to read, from its first byte: the QEMU migration stream of a
    /// migration file or a save image (for a save image its offsets count
    /// bytes of the image, libvirt's header included), the decompressed bytes
    /// otherwise.
    public let stream: StateStreamInput
    /// libvirt's header and XML, for a save image.
    public let saveImage: SaveImage?

    /// How the input is stored: its compression (for a save image, its stream's).
    public var compression: Compression { stream.compression }

    /// Whether the input is a pipe or another file that can be read only once.
    public var isPipe: Bool { stream.regularFileSize == nil }

    /// How many leading bytes tell the kinds apart (the longer magic is libvirt's).
    public static let prefixLength = SaveImageHeader.magicPrefix.count

    /// Opens `path` (`-` for standard input) and tells what it is.
    ///
    /// - Parameters:
    ///   - path: The file to read, or `-` for standard input.
    ///   - savedStream: For a save image, whether to open its QEMU
    ///     stream too (`false` reads its header and XML only, and ``stream``
    ///     then serves the image from its first byte).
    /// - Throws: ``InputFailure``: the file cannot be opened or read, or a save
    ///   image's header or XML is not what libvirt writes.
    public static func open(_ path: String, savedStream: Bool = true) throws(InputFailure) -> Input {
        let file: FileDescriptorSource
        do {
            file = try FileDescriptorSource(path: path)
        } catch {
            throw .unreadable(path: path, error)
        }
        return try open(file, file: file, named: path, savedStream: savedStream)
    }

    /// Tells what `source` is, read from its first byte, as ``open(_:savedStream:)``
    /// tells a file's; `file` is the source itself when it is a file
    /// (offsets can then be read again), and `path` names it in messages.
    ///
    /// - Throws: ``InputFailure``.
    public static func open(
        _ source: any ByteSource, file: FileDescriptorSource?, named path: String, savedStream: Bool = true
    ) throws(InputFailure) -> Input {
        do {
            let (prefix, input) = try StateStreamInput(source: source, file: file).readingAhead(prefixLength)
            let kind = Kind(prefix: prefix, compression: input.compression)
            if kind == .saveImage {
                let size = file?.regularFileSize
                guard savedStream else {
                    let image = try SaveImage.read(input.framedSource, fileSize: size)
                    return Input(path: path, kind: .saveImage, stream: input, saveImage: image)
                }
                let (image, stream) = try SaveImage.open(input.framedSource, file: size == nil ? nil : file?.fileDescriptor, fileSize: size)
                return Input(path: path, kind: .saveImage, stream: stream, saveImage: image)
            }
            return Input(path: path, kind: kind, stream: input, saveImage: nil)
        } catch let problem as SaveImageProblem {
            throw .badSaveImage(path: path, problem)
        } catch let error as InputError {
            throw .unreadable(path: path, error)
        } catch {
            throw .unreadable(path: path, .readFailed(.ioError))
        }
    }

    /// Opens `path` as a state stream, refusing a migration file or a save
    /// image with what it is and the commands that read it.
    ///
    /// - Throws: ``InputFailure``, ``InputFailure/notAStateStream(path:_:)`` among them.
    public static func openStream(_ path: String) throws(InputFailure) -> StateStreamInput {
        let (prefix, input): ([UInt8], StateStreamInput)
        do {
            (prefix, input) = try StateStreamInput(path: path).readingAhead(prefixLength)
        } catch {
            throw .unreadable(path: path, error)
        }
        let kind = Kind(prefix: prefix, compression: input.compression)
        guard kind == .stream else { throw .notAStateStream(path: path, kind) }
        return input
    }
}

/// Why an input cannot be taken.
public enum InputFailure: Error, Sendable, CustomStringConvertible {
    /// The file cannot be opened or read.
    case unreadable(path: String, InputError)
    /// A save image's header or XML is not what libvirt writes.
    case badSaveImage(path: String, SaveImageProblem)
    /// A command that reads a state stream was handed a migration file or a
    /// save image.
    case notAStateStream(path: String, Input.Kind)

    /// The input the failure is about.
    public var path: String {
        switch self {
        case .unreadable(let path, _), .badSaveImage(let path, _), .notAStateStream(let path, _): return path
        }
    }

    /// `path: error: ...`, as standard error shows it.
    public var description: String {
        switch self {
        case .unreadable(let path, let error): return "\(path): error: \(error)"
        case .badSaveImage(let path, let problem): return "\(path): error: \(problem)"
        case .notAStateStream(let path, let kind):
            return "\(path): error: not-a-state-stream at offset 0: \(kind.phrase), not a state stream: "
                + "statetool extract \(path) writes the back-end states it holds as streams, statetool migration ls \(path) "
                + "lists it; diff --semantic, preflight and retarget read it as it is"
        }
    }
}

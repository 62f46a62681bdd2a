import MigrationFile
import StateStream

/// `extract`: the back-end states a migration file or save image holds,
/// written to files as chunk-framed streams (or bare payloads) while the file
/// is read once. Each output is written to a temporary file, read back and
/// checked, and only then put in place; a broken state is written (cut to its
/// complete chunks) only when salvaging.
public struct StateExtraction {
    /// Where the states go.
    public enum Destination: Sendable, Hashable {
        /// One file, for the one state (`-` for standard output).
        case file(String)
        /// One file per device in this folder, named by ``fileName(for:form:)``.
        case directory(String)
    }

    /// What is written of each state.
    public enum Form: Sendable, Hashable {
        /// The state stream as it is in the file, terminator included.
        case stream
        /// Its payload: the chunk bodies, concatenated.
        case payload
    }

    /// The migration file or save image.
    public let input: Input
    /// Where the states go.
    public let destination: Destination
    /// What is written of each state.
    public var form = Form.stream
    /// Only the state of this device (idstr or section id).
    public var device: String?
    /// Whether a broken state's complete chunks are written, without a terminator.
    public var salvage = false
    /// How the file is read.
    public var strategy = ReadingStrategy.placeFromEnd

    /// An extraction of `input`'s states to `destination`.
    public init(_ input: Input, to destination: Destination) {
        self.input = input
        self.destination = destination
    }

    /// One state and what became of it.
    public struct Extracted: Sendable {
        /// Where the state is in the file.
        public let location: BackEndStateLocation
        /// Where it was written.
        public let path: String
        /// Whether the state ended with its terminator.
        public let isComplete: Bool
        /// Chunks of it read to their end.
        public let completeChunks: Int
        /// Bytes written of those chunks (payload bytes only for ``Form/payload``).
        public let completeBytes: UInt64
        /// Whether it was put in place: complete, or salvaged.
        public let written: Bool
    }

    /// What the file held and what was written.
    public struct Result: Sendable {
        /// The file's sections and states, with each written state's output.
        public let report: MigrationFileReport
        /// Every state of the wanted device(s), in file order.
        public let extracted: [Extracted]
    }

    /// Why an extraction fails; nothing of it is put in place.
    public enum Failure: Error, CustomStringConvertible {
        /// One output file was named and a second device holds a state too.
        case severalDevices(first: String, second: String)
        /// A written state does not read back as what was written.
        case readBackDiffers(path: String)
        /// The file cannot be read.
        case input(InputError)
        /// An output cannot be written.
        case output(OutputError)

        /// What is wrong, in one line.
        public var description: String {
            switch self {
            case .severalDevices(let first, let second):
                return "several devices hold back-end state (\(first), \(second)): pick one with --device, or leave out -o to write one file each"
            case .readBackDiffers(let path): return "\(path) does not read back as the state written"
            case .input(let error): return "\(error)"
            case .output(let error): return "\(error)"
            }
        }
    }

    /// A device's file name in a destination folder: its idstr with `/` made
    /// `_` (never a path out of the folder), `.state` or `.payload`.
    public static func fileName(for section: SectionIdentity, form: Form) -> String {
        var name = String(section.name.map { $0 == "/" ? "_" : $0 })
        if name.isEmpty || name == "." || name == ".." { name = "section-\(section.id)" }
        return name + (form == .payload ? ".payload" : ".state")
    }

    /// Reads the file and writes its states.
    ///
    /// - Parameter progress: Called with the bytes of the file read so far.
    public func extract(progress: (UInt64) -> Void = { _ in }) throws(Failure) -> Result {
        var outputs: [StateOutput] = []
        var current: StateOutput?
        let survey: MigrationFileSurvey
        do {
            let stream = input.stream
            survey = try MigrationFileSurvey.survey(MigrationFileReader(input: stream, strategy: strategy)) { event in
                switch event {
                case .progress(let bytes):
                    progress(stream.compressedBytesRead ?? bytes)
                case .backEndStateStart(let location):
                    current = nil
                    guard device.map(location.section.matches) ?? true else { return }
                    if case .file = destination, let first = outputs.first {
                        throw Failure.severalDevices(first: first.location.section.name, second: location.section.name)
                    }
                    current = try StateOutput(location: location, path: path(for: location), form: form, protecting: input.path)
                    outputs.append(current!)
                case .backEndState(let streamEvent):
                    try current?.write(streamEvent)
                default:
                    break
                }
            }
            for output in outputs where output.isComplete || salvage {
                try output.commit()
            }
        } catch let failure as Failure {
            throw failure
        } catch let error as InputError {
            throw .input(error)
        } catch let error as OutputError {
            throw .output(error)
        } catch {
            throw .input(.readFailed(.ioError))
        }
        var report = MigrationFileReport(file: input.path, input: input, survey: survey)
        let extracted = outputs.map { output in
            Extracted(
                location: output.location, path: output.path, isComplete: output.isComplete, completeChunks: output.completeChunks,
                completeBytes: output.completeBytes, written: output.isComplete || salvage)
        }
        for state in extracted where state.written {
            report.outputs[state.location.section.id] = state.path
        }
        return Result(report: report, extracted: extracted)
    }

    private func path(for location: BackEndStateLocation) -> String {
        switch destination {
        case .file(let path): return path
        case .directory(let folder): return folder + "/" + Self.fileName(for: location.section, form: form)
        }
    }
}

/// One extracted state on its way to its output file.
private final class StateOutput {
    let location: BackEndStateLocation
    let path: String
    private let file: OutputFile
    private let sink: BufferedSink
    private var writer: StateStreamWriter?
    private(set) var isComplete = false
    /// Bytes and chunks written of the chunks read to their end.
    private(set) var completeBytes: UInt64 = 0
    private(set) var completeChunks = 0
    /// Payload bytes written of the chunks read to their end.
    private var completePayloadBytes: UInt64 = 0

    /// Opens `path` for the state at `location`, framed or payload only.
    init(location: BackEndStateLocation, path: String, form: StateExtraction.Form, protecting input: String) throws(OutputError) {
        self.location = location
        self.path = path
        file = try OutputFile(path: path, protecting: [input])
        sink = BufferedSink(file)
        writer = form == .stream ? StateStreamWriter(sink: sink) : nil
    }

    func write(_ event: StreamEvent) throws(OutputError) {
        switch event {
        case .chunkStart(let chunk):
            try writer?.writeChunkHeader(length: chunk.length)
        case .payload(let bytes):
            try bytes.withUnsafeBytes { buffer in
                Result { () throws(OutputError) in
                    if writer != nil { try writer!.writeChunkBody(buffer) } else { try sink.write(buffer) }
                }
            }.get()
        case .chunkEnd(let chunk):
            completeChunks += 1
            completePayloadBytes += UInt64(chunk.length)
            completeBytes += writer == nil ? UInt64(chunk.length) : chunk.framedLength
        case .terminator:
            if writer != nil { try writer!.finish() } else { try sink.finish() }
            isComplete = true
        case .problem:
            break
        }
    }

    /// Reads the output back and checks it, then renames it into place; a
    /// broken state is cut to its complete chunks first.
    func commit() throws {
        if !isComplete {
            try sink.finish()
            if file.bytesWritten > completeBytes { try file.truncate(to: completeBytes) }
        }
        if let readBack = try file.openForReadingBack() {
            let source = FileDescriptorSource(readBack, closesOnDeinit: true)
            if writer != nil {
                let analysis = try StreamAnalysis.analyze(StateStreamInput(source: source), computeDigest: false)
                // A salvaged state has no terminator: its complete chunks are all it must hold.
                let framingChecks = isComplete ? analysis.error == nil : analysis.validPrefixLength == completeBytes
                guard framingChecks, analysis.chunkCount == completeChunks, analysis.payloadBytes == completePayloadBytes else {
                    throw StateExtraction.Failure.readBackDiffers(path: path)
                }
            } else if source.regularFileSize != completeBytes {
                throw StateExtraction.Failure.readBackDiffers(path: path)
            }
        }
        try file.commit()
    }
}

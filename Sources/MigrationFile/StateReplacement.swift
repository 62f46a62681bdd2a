import Crypto
import StateStream
import SystemPackage

/// The back-end state to put into a migration file in place of the one it holds.
public enum ReplacementState {
    /// A chunk-framed stream, copied as it is and checked as it is copied:
    /// a broken one fails the replacement.
    case stream(StateStreamInput)
    /// A bare payload, framed in chunks of `chunkSize` bytes as it is copied.
    case payload(any ByteSource, chunkSize: Int)
    /// A payload made from the old one, framed in chunks of `chunkSize`
    /// bytes: the old payload (at most `maximumOldPayload` bytes) is collected
    /// as the walk reads it, so the file is read once, even from a pipe.
    case derived(maximumOldPayload: Int, chunkSize: Int, ([UInt8]) throws -> [UInt8])

    /// Writes the framed stream to `sink` (which is not finished).
    ///
    /// - Returns: Its framed length and the SHA-256 of its payload.
    func write(to sink: any ByteSink, oldPayload: [UInt8]) throws -> (length: UInt64, payloadSHA256: String) {
        let counter = CountingSink(sink)
        switch self {
        case .stream(let input):
            let analysis = try StreamAnalysis.analyze(input, computeDigest: true, copyingFramedBytesTo: counter)
            if let problem = analysis.error { throw StateReplacement.Failure.brokenState(problem) }
            return (counter.count, analysis.payloadSHA256 ?? "")
        case .payload(let source, let chunkSize):
            return try Self.frame(source, chunkSize: chunkSize, to: counter)
        case .derived(_, let chunkSize, let derive):
            return try Self.frame(ByteArraySource(try derive(oldPayload)), chunkSize: chunkSize, to: counter)
        }
    }

    /// Frames `payload` into `counter`, hashing it on the way.
    private static func frame(_ payload: any ByteSource, chunkSize: Int, to counter: CountingSink) throws -> (length: UInt64, payloadSHA256: String) {
        let hashing = HashingSource(payload)
        _ = try StreamTransforms.frame(payload: hashing, chunkSize: chunkSize, to: counter)
        return (counter.count, hashing.hexDigest)
    }

    /// How much of the old payload to collect: none unless it is derived from.
    var oldPayloadLimit: Int? {
        if case .derived(let maximum, _, _) = self { return maximum }
        return nil
    }
}

/// Hashes what is read through it.
private final class HashingSource: ByteSource {
    private let source: any ByteSource
    private var hash = SHA256()

    init(_ source: any ByteSource) { self.source = source }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(InputError) -> Int {
        let count = try source.read(into: buffer)
        hash.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        return count
    }

    var hexDigest: String { hash.finalize().hexString }
}

/// Passes writes on and counts them; finishing it finishes nothing, so a
/// stream can be written into the middle of a larger output.
private final class CountingSink: ByteSink {
    private let destination: any ByteSink
    private(set) var count: UInt64 = 0

    init(_ destination: any ByteSink) { self.destination = destination }

    func write(_ bytes: UnsafeRawBufferPointer) throws(OutputError) {
        try destination.write(bytes)
        count += UInt64(bytes.count)
    }

    func finish() throws(OutputError) {}
}

/// Copies a migration file with one device's back-end state replaced: every
/// other byte as it is, except the JSON description, whose sizes are updated
/// so that they stay true (the `back-end` field of `vhost-user-fs-backend`;
/// for `virtio-net`, the `virtio` field that holds the subsection) and its
/// record's length.
///
/// One pass, bounded memory: the file is walked with ``MigrationFileReader``
/// (so a broken file is refused, at the offset where it breaks) and copied
/// behind the walk, a few MiB back. From a regular uncompressed file into a
/// regular output file, the untouched ranges are copied inside the kernel
/// (`copy_file_range`); otherwise they pass through a window of the walk's
/// reads. Only the JSON description, after the EOF marker, is held whole.
public enum StateReplacement {
    /// Where the copy goes.
    public enum Output {
        /// Any sink (standard output, a compressor): bytes pass through the process.
        case sink(any ByteSink)
        /// A file: untouched ranges of a regular uncompressed input are copied
        /// in the kernel.
        case file(OutputFile)
    }

    /// Why a file cannot be rewritten; nothing of the output is usable.
    public enum Failure: Error, CustomStringConvertible {
        /// No back-end state, or none of that device.
        case noState(device: String?)
        /// Several devices hold one and none was picked.
        case severalStates(String, String)
        /// The migration file is broken.
        case brokenFile(MigrationProblem)
        /// The new state stream is broken.
        case brokenState(StreamProblem)
        /// The JSON description cannot be updated.
        case description(String)
        /// What was written does not check out (a bug, reported rather than committed).
        case verificationFailed(String)
        /// The old payload, to derive the new one from, is larger than `limit`.
        case oldStateTooLarge(limit: Int)

        /// What went wrong, in one line; for a `.description` failure, its message as
        /// it is.
        public var description: String {
            switch self {
            case .noState(let device?): return "no back-end state of device \(device) in this migration file"
            case .noState(nil): return "no vhost-user back-end state in this migration file"
            case .severalStates(let first, let second):
                return "several devices hold back-end state (\(first), \(second)): pick one with --device"
            case .brokenFile(let problem): return "broken migration file: \(problem)"
            case .brokenState(let problem): return "broken new state: \(problem)"
            case .description(let message): return message
            case .verificationFailed(let message): return "the written file does not check out: \(message); nothing written"
            case .oldStateTooLarge(let limit): return "the back-end state is more than \(limit >> 20) MiB: too large to decode"
            }
        }
    }

    /// What was replaced.
    public struct Summary: Sendable {
        /// Where the replaced state sits in the input.
        public let location: BackEndStateLocation
        /// Framed bytes of the old and the new stream.
        public let oldLength: UInt64
        /// Framed bytes of the new stream.
        public let newLength: UInt64
        /// Each size changed in the JSON description: its path, old and new value.
        public let descriptionChanges: [DescriptionChange]
        /// Bytes copied inside the kernel, not through the process.
        public let copiedInKernel: UInt64
        /// The file offset of the JSON description's record in the output, if any.
        public let descriptionOffset: UInt64?
        /// The SHA-256 of the new state's payload.
        public let newPayloadSHA256: String
        /// How the input was read: from its end (copying what lies before the
        /// device sections unread, in the kernel) or front to back.
        public let reading: MigrationReading?
    }

    /// One size changed in the JSON description.
    public struct DescriptionChange: Hashable, Sendable, Codable {
        /// Where, e.g. `devices[30].subsections[0].fields[0].size`.
        public let path: String
        /// The size the input's description gave.
        public let old: UInt64
        /// The size the output's description gives.
        public let new: UInt64

        /// A change of the size at `path` from `old` to `new`.
        public init(path: String, old: UInt64, new: UInt64) {
            self.path = path
            self.old = old
            self.new = new
        }
    }

    /// Writes `input` to `output` with the back-end state of `device` (its
    /// idstr or section id; the only state if `nil`) replaced by `state`.
    /// The output's sink is not finished.
    ///
    /// - Parameters:
    ///   - input: The migration file to copy.
    ///   - device: The device whose state is replaced, by idstr or section id;
    ///     `nil` for the one `selects` picks.
    ///   - selects: Which state is meant when `device` is `nil`
    ///     (default: the only one; a second one fails).
    ///   - state: The new back-end state.
    ///   - output: Where the copy goes.
    ///   - strategy: How to read the input. Its device sections are placed
    ///     from the end only when the output is a file the untouched ranges are
    ///     copied into in the kernel; through a sink every byte passes the
    ///     process anyway, and the input is walked.
    ///   - observe: Called with every event of the input's walk, before the
    ///     replacement acts on it: to show progress, say.
    /// - Throws: ``Failure``, `InputError`, `OutputError`.
    public static func replace(
        in input: StateStreamInput, device: String?, selecting selects: ((BackEndStateLocation) -> Bool)? = nil,
        with state: ReplacementState, to output: Output, strategy: ReadingStrategy = .placeFromEnd,
        observe: (MigrationEvent) -> Void = { _ in }
    ) throws -> Summary {
        let kernelCopy: (FileDescriptor, OutputFile)?
        if case .file(let file) = output, input.compression == .none, let regular = input.regularFile {
            kernelCopy = (regular, file)
        } else {
            kernelCopy = nil
        }
        let sink: any ByteSink
        switch output {
        case .sink(let given): sink = given
        case .file(let file): sink = BufferedSink(file)
        }
        let window = CopyWindow(source: input.framedSource, startingAt: input.baseOffset, sink: sink, kernelCopy: kernelCopy)
        var replacement = Replacement(window: window, sink: sink, state: state, device: device, selects: selects)
        let reader = MigrationFileReader(
            input: StateStreamInput(framed: window, like: input),
            strategy: kernelCopy == nil && strategy == .placeFromEnd ? .walk(reason: "every byte is copied through the process") : strategy)
        try reader.walk { event in
            observe(event)
            try replacement.handle(event)
        }
        return try replacement.finish(reading: reader.reading)
    }

    /// One replacement under way: what the walk has found, and the copy
    /// behind it that leaves out the old state and writes the new one.
    private struct Replacement {
        let window: CopyWindow
        let sink: any ByteSink
        let state: ReplacementState
        let device: String?
        let selects: ((BackEndStateLocation) -> Bool)?
        var found: BackEndStateLocation?
        var replacing = false
        var lengths: (old: UInt64, new: UInt64) = (0, 0)
        var newPayloadSHA256 = ""
        var oldPayload: [UInt8] = []
        var described: (description: VMDescription, offset: UInt64, byteCount: UInt64)?
        /// What the file says of itself is checked as a migration ls would: sizes against the description too.
        var survey = MigrationFileSurvey()

        init(window: CopyWindow, sink: any ByteSink, state: ReplacementState, device: String?, selects: ((BackEndStateLocation) -> Bool)?) {
            self.window = window
            self.sink = sink
            self.state = state
            self.device = device
            self.selects = selects
        }

        mutating func handle(_ event: MigrationEvent) throws {
            survey.record(event)
            switch event {
            case .backEndStateStart(let location):
                guard device.map(location.section.matches) ?? selects?(location) ?? true else { return }
                if let found { throw Failure.severalStates(found.section.name, location.section.name) }
                try window.emit(upTo: location.streamOffset)
                window.mode = .discarding
                found = location
                replacing = true
            case .backEndStateEnd(let location, let length) where replacing:
                try window.discard(upTo: location.streamOffset + length)
                try window.flushSink()
                let written = try state.write(to: sink, oldPayload: oldPayload)
                lengths = (length, written.length)
                newPayloadSHA256 = written.payloadSHA256
                oldPayload = []
                try window.flushSink()
                window.mode = .copying
                replacing = false
            case .backEndState(.payload(let piece)) where replacing:
                guard let limit = state.oldPayloadLimit else { return }
                guard oldPayload.count + piece.count <= limit else { throw Failure.oldStateTooLarge(limit: limit) }
                oldPayload += piece
            case .endOfFile(let offset):
                try window.emit(upTo: offset + 1)
                window.mode = .holding
            case .description(let description, let offset, let byteCount):
                described = (description, offset, byteCount)
            case .problem(let problem) where problem.severity == .error:
                throw Failure.brokenFile(problem)
            default:
                break
            }
        }

        /// After the walk: refuses a broken file or one without the state,
        /// writes the description with its sizes edited, and sums up.
        mutating func finish(reading: MigrationReading?) throws -> Summary {
            survey.finish()
            if let problem = survey.error { throw Failure.brokenFile(problem) }
            guard let found else { throw Failure.noState(device: device) }
            var changes: [DescriptionChange] = []
            var descriptionOffset: UInt64?
            if let described {
                let held = try window.held(from: described.offset, count: described.byteCount)
                let edited = try edit(
                    json: Array(held.dropFirst(5)), description: described.description, location: found,
                    delta: Int64(lengths.new) - Int64(lengths.old), changes: &changes)
                descriptionOffset = described.offset + lengths.new - lengths.old
                try sink.write([MigrationFormat.RecordType.description.rawValue] + bigEndian(UInt32(edited.count)))
                try sink.write(edited)
            } else {
                try window.emitHeld()
            }
            try window.flushSink()
            return Summary(
                location: found, oldLength: lengths.old, newLength: lengths.new, descriptionChanges: changes,
                copiedInKernel: window.copiedInKernel, descriptionOffset: descriptionOffset, newPayloadSHA256: newPayloadSHA256,
                reading: reading)
        }
    }

    /// Reads a file written by ``replace(in:device:selecting:with:to:strategy:observe:)``
    /// and checks it: no problem at all, every size the JSON description gives
    /// true, and the replaced device's state exactly the new one (length and
    /// payload digest).
    ///
    /// - Parameters:
    ///   - written: The file written.
    ///   - summary: What the replacement that wrote it returned.
    ///   - strategy: How to read it: by default every byte. Where the
    ///     input was read from its end, the output may be too: what lies before
    ///     its device sections is the kernel's copy of the input's bytes.
    /// - Returns: The survey of the written file.
    /// - Throws: ``Failure/verificationFailed(_:)``, or `InputError`.
    public static func verify(
        _ written: StateStreamInput, against summary: Summary,
        strategy: ReadingStrategy = .walk(reason: "a written file is checked whole")
    ) throws -> MigrationFileSurvey {
        var hash = SHA256()
        var inState = false
        let reader = MigrationFileReader(input: written, strategy: strategy)
        let survey = try MigrationFileSurvey.survey(reader) { event in
            switch event {
            case .backEndStateStart(let location): inState = location.section == summary.location.section
            case .backEndState(.payload(let piece)) where inState: hash.update(data: piece)
            case .backEndStateEnd: inState = false
            default: break
            }
        }
        if let problem = survey.problems.first { throw Failure.verificationFailed("the written file has a problem: \(problem)") }
        guard let state = survey.backEndStates.first(where: { $0.location.section == summary.location.section }) else {
            throw Failure.verificationFailed("the written file holds no state of \(summary.location.section.name)")
        }
        guard state.length == summary.newLength, hash.finalize().hexString == summary.newPayloadSHA256 else {
            throw Failure.verificationFailed("the state of \(summary.location.section.name) in the written file is not the new one")
        }
        return survey
    }

    /// The description's JSON with the sizes that hold the state changed by `delta`.
    private static func edit(
        json: [UInt8], description: VMDescription, location: BackEndStateLocation, delta: Int64,
        changes: inout [DescriptionChange]
    ) throws -> [UInt8] {
        guard let deviceIndex = description.deviceIndex(for: location.section) else {
            throw Failure.description("the JSON description does not describe \(location.section.name)")
        }
        let device = description.devices[deviceIndex]
        var path: [DescriptionEdit.Step] = [.key("devices"), .index(deviceIndex)]
        let old: UInt64
        if location.subsection == .vhostUserFS {
            guard let subsection = device.subsections.firstIndex(where: { $0.vmsdName == location.subsection.name }),
                let field = device.subsections[subsection].fields.firstIndex(where: { $0.name == "back-end" })
            else { throw Failure.description("the JSON description of \(device.name) has no back-end field") }
            path += [.key("subsections"), .index(subsection), .key("fields"), .index(field), .key("size")]
            old = device.subsections[subsection].fields[field].size
        } else {
            guard let field = device.fields.firstIndex(where: { $0.name == "virtio" }) else {
                throw Failure.description("the JSON description of \(device.name) has no virtio field")
            }
            path += [.key("fields"), .index(field), .key("size")]
            old = device.fields[field].size
        }
        guard delta != 0 else { return json }
        do {
            let edited = try DescriptionEdit.adding(delta, toNumberAt: path, in: json, expected: old)
            changes.append(.init(path: DescriptionEdit.describe(path).dropFirst().description, old: old, new: UInt64(Int64(old) + delta)))
            return edited
        } catch {
            throw Failure.description(error.description)
        }
    }

    private static func bigEndian(_ value: UInt32) -> [UInt8] {
        value.bytes(endianness: .big)
    }
}

/// The walk's source, which copies what the walk has read to the output a few
/// MiB behind it: far enough back that no event can still name an earlier
/// offset (the walk buffers at most two MiB ahead of what it reports).
private final class CopyWindow: ByteSource {
    enum Mode {
        /// Bytes left behind the walk go to the output.
        case copying
        /// Bytes left behind the walk are dropped (the old state).
        case discarding
        /// Everything is kept (the description, after the EOF marker).
        case holding
    }

    static let reserve: UInt64 = 8 << 20

    private let source: any ByteSource
    private let sink: any ByteSink
    /// When set, nothing is kept in memory: ranges are copied from the file itself.
    private let kernelCopy: (input: FileDescriptor, output: OutputFile)?
    var mode = Mode.copying
    /// Bytes read and not yet copied or dropped are `bytes[head...]`, the
    /// first of them at file offset `start`.
    private var bytes: [UInt8] = []
    private var head = 0
    private var start: UInt64 = 0
    /// The file offset after the last byte read.
    private var end: UInt64 = 0
    private(set) var copiedInKernel: UInt64 = 0

    /// Copies from `source`, whose first byte is at file offset `offset`.
    init(source: any ByteSource, startingAt offset: UInt64, sink: any ByteSink, kernelCopy: (FileDescriptor, OutputFile)?) {
        self.source = source
        start = offset
        end = offset
        self.sink = sink
        self.kernelCopy = kernelCopy.map { (input: $0.0, output: $0.1) }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(InputError) -> Int {
        let count = try source.read(into: buffer)
        if kernelCopy == nil { bytes += UnsafeRawBufferPointer(rebasing: buffer[..<count]) }
        end += UInt64(count)
        // Copying inside the kernel holds nothing: ranges are copied whole, at the events that end them.
        guard kernelCopy == nil, mode != .holding, end > start + Self.reserve else { return count }
        do {
            if mode == .copying { try emit(upTo: end - Self.reserve) } else { try discard(upTo: end - Self.reserve) }
        } catch {
            throw .copyFailed(error)
        }
        return count
    }

    /// Whether skipping reads: always without a kernel copy (the bytes are
    /// copied or dropped through the process), else as the file does.
    var skipReads: Bool { kernelCopy == nil || source.skipReads }

    /// When ranges are copied from the file itself, passes over bytes without
    /// reading them (a mapped-ram file's pages): the copy of their range comes
    /// at the next event. Otherwise they are read, to be copied or dropped.
    func skip(_ count: UInt64) throws(InputError) -> UInt64 {
        guard kernelCopy != nil else { return try skipByReading(count) }
        let skipped = try source.skip(count)
        end += skipped
        return skipped
    }

    /// Copies the bytes before file offset `offset` to the output.
    func emit(upTo offset: UInt64) throws(OutputError) {
        guard offset > start else { return }
        precondition(offset <= end, "copying bytes not yet read")
        let count = offset - start
        if let kernelCopy {
            try flushSink()
            try kernelCopy.output.appendRange(of: kernelCopy.input, offset: start, count: count)
            copiedInKernel += count
        } else {
            try sink.write(bytes[head..<head + Int(count)])
        }
        drop(count)
    }

    /// Drops the bytes before file offset `offset`.
    func discard(upTo offset: UInt64) throws(OutputError) {
        guard offset > start else { return }
        drop(offset - start)
    }

    private func drop(_ count: UInt64) {
        start += count
        guard kernelCopy == nil else { return }
        head += Int(count)
        if head >= 16 << 20 || head * 2 >= bytes.count {
            bytes.removeFirst(head)
            head = 0
        }
    }

    /// The `count` bytes from file offset `offset`, which must not have been
    /// copied or dropped (the description's record); read again from the file
    /// when copying inside the kernel.
    func held(from offset: UInt64, count: UInt64) throws -> [UInt8] {
        if let kernelCopy {
            var record = [UInt8](repeating: 0, count: Int(count))
            let read = try record.withUnsafeMutableBytes { try kernelCopy.input.read(fromAbsoluteOffset: Int64(offset), into: $0) }
            guard read == record.count else { throw StateReplacement.Failure.description("the JSON description could not be read again") }
            return record
        }
        precondition(offset >= start && offset + count <= end, "the description is held")
        let from = head + Int(offset - start)
        return Array(bytes[from..<from + Int(count)])
    }

    /// Copies everything not yet copied to the output (what follows the EOF
    /// marker, when there is no description to change).
    func emitHeld() throws(OutputError) {
        try emit(upTo: end)
    }

    /// Writes out what the output's buffer holds, before a copy that bypasses it.
    func flushSink() throws(OutputError) {
        if let buffered = sink as? BufferedSink { try buffered.flush() }
    }
}

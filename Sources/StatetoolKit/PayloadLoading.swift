import MigrationFile
import StateStream

/// A back-end's payload read from whatever holds it: a state stream, a bare
/// payload, or a whole QEMU migration file.
public struct LoadedPayload: Sendable {
    /// What the input turned out to be.
    public enum Origin: Hashable, Sendable {
        /// A chunk-framed state stream.
        case stateStream
        /// The payload itself, unframed.
        case payload
        /// A migration file: the state of this device.
        case migrationFile(device: String)
    }

    /// The payload: the stream with its framing taken off.
    public let bytes: [UInt8]
    /// What the input turned out to be.
    public let origin: Origin
    /// How a migration file was read (from its end or front to back); `nil` for other inputs.
    public var reading: MigrationReading?
    /// Where the state's stream starts in a migration file or save image
    /// (its first chunk's length); `nil` for other inputs.
    public var streamOffset: UInt64?

    /// The largest payload loaded into memory to decode (virtiofsd's are about
    /// 50 bytes per inode: 240 KiB for 5,000 files).
    public static let maximumSize = 1 << 30

    /// Why an input cannot be loaded as a payload.
    public enum Failure: Error, Hashable, Sendable, CustomStringConvertible {
        /// The input is larger than ``LoadedPayload/maximumSize``.
        case tooLarge
        /// The state stream is broken.
        case brokenStream(StreamProblem)
        /// The migration file holds no vhost-user-fs state (of that device).
        case noState(device: String?)
        /// The migration file is broken before its state ends.
        case brokenMigrationFile(MigrationProblem)

        /// Why, in one line, with the stream's or file's problem where there is one.
        public var description: String {
            switch self {
            case .tooLarge: return "more than \(LoadedPayload.maximumSize >> 20) MiB: too large to decode"
            case .brokenStream(let problem): return "broken state stream: \(problem)"
            case .noState(let device?): return "no back-end state of device \(device) in this migration file"
            case .noState(nil): return "no vhost-user-fs back-end state in this migration file"
            case .brokenMigrationFile(let problem): return "broken migration file: \(problem)"
            }
        }
    }

    /// Loads the payload `input` holds: from a migration file or a save
    /// image, the state of the device `device` names (idstr or section id),
    /// else the first of `subsection`'s kind; from anything else, read whole,
    /// a valid chunk stream's bodies, or bytes that are no stream but a
    /// registered back-end's bare payload (``BackEnds/isBarePayload(_:)``).
    ///
    /// - Parameters:
    ///   - input: The input, opened.
    ///   - device: In a migration file or a save image, the device whose state
    ///     to load (idstr or section id); ignored for other inputs.
    ///   - subsection: Without `device`, the kind of back-end state wanted
    ///     from a migration file: the first of that kind (vhost-user-fs by
    ///     default), or with `nil` the first of any kind.
    ///   - orAnyKind: Without `device`, when the file holds no state of
    ///     `subsection`'s kind, its first state of any kind (read in the same
    ///     walk: a pipe is read once).
    ///   - strategy: How to read a migration file (from its end where that
    ///     checks out, by default); ``reading`` says how it was read.
    /// - Throws: ``Failure``, or `InputError` when the input cannot be read.
    public static func load(
        from input: Input, device: String? = nil,
        subsection: BackEndStateSubsection? = .vhostUserFS, orAnyKind: Bool = false,
        strategy: ReadingStrategy = .placeFromEnd
    ) throws -> LoadedPayload {
        switch input.kind {
        case .migrationFile, .saveImage:
            return try fromMigrationFile(input.stream, device: device, subsection: subsection, orAnyKind: orAnyKind && device == nil, strategy: strategy)
        case .stream:
            return try load(streamOrPayload: input.stream)
        }
    }

    /// Loads what `input`, known to be no migration file, holds: a valid
    /// chunk stream's bodies, or a registered back-end's bare payload.
    ///
    /// - Throws: ``Failure``, or `InputError` when the input cannot be read.
    public static func load(streamOrPayload input: StateStreamInput) throws -> LoadedPayload {
        try fromStreamOrPayload(source: input.framedSource)
    }

    /// Whether a back-end state at `location` is the one to load: the one
    /// `device` names (idstr or section id), or without it the first
    /// vhost-user-fs state.
    public static func isWanted(
        _ location: BackEndStateLocation, device: String?, subsection: BackEndStateSubsection? = .vhostUserFS
    ) -> Bool {
        device.map(location.section.matches) ?? subsection.map { location.subsection == $0 } ?? true
    }

    private static func fromMigrationFile(
        _ input: StateStreamInput, device: String?, subsection: BackEndStateSubsection?, orAnyKind: Bool, strategy: ReadingStrategy
    ) throws -> LoadedPayload {
        /// Ends the walk once the state is read: the rest of the file is not needed.
        struct Found: Error {}
        var bytes: [UInt8] = []
        var found: String?
        var streamOffset: UInt64?
        var collecting = false
        /// The first state of another kind, kept until one of the wanted kind starts
        /// (dropped if it is too large to keep: only the first is ever taken).
        var other: (bytes: [UInt8], device: String, streamOffset: UInt64, complete: Bool)?
        var otherStarted = false
        var collectingOther = false
        var failure: Failure?
        let reader = MigrationFileReader(input: input, strategy: strategy)
        do {
            try reader.walk { event in
                switch event {
                case .backEndStateStart(let location) where found == nil:
                    if isWanted(location, device: device, subsection: subsection) {
                        found = location.section.name
                        streamOffset = location.streamOffset
                        collecting = true
                        other = nil
                        collectingOther = false
                    } else if orAnyKind && !otherStarted {
                        other = ([], location.section.name, location.streamOffset, false)
                        otherStarted = true
                        collectingOther = true
                    }
                case .backEndState(.payload(let piece)) where collecting:
                    guard bytes.count + piece.count <= maximumSize else {
                        failure = .tooLarge
                        throw Found()
                    }
                    bytes += piece
                case .backEndState(.payload(let piece)) where collectingOther:
                    // Too large a state of another kind is no fallback; the wanted one may follow.
                    guard (other?.bytes.count ?? 0) + piece.count <= maximumSize else {
                        other = nil
                        collectingOther = false
                        break
                    }
                    other?.bytes += piece
                case .backEndStateEnd where collectingOther:
                    collectingOther = false
                    other?.complete = true
                case .backEndStateEnd where collecting:
                    collecting = false
                    throw Found()
                case .problem(let problem) where problem.severity == .error:
                    failure = .brokenMigrationFile(problem)
                default:
                    break
                }
            }
        } catch is Found {}
        if let failure { throw failure }
        if found == nil, let other, other.complete {
            return LoadedPayload(bytes: other.bytes, origin: .migrationFile(device: other.device), reading: reader.reading, streamOffset: other.streamOffset)
        }
        guard let found else { throw Failure.noState(device: device) }
        return LoadedPayload(bytes: bytes, origin: .migrationFile(device: found), reading: reader.reading, streamOffset: streamOffset)
    }

    private static func fromStreamOrPayload(source: any ByteSource) throws -> LoadedPayload {
        var whole: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let read = try buffer.withUnsafeMutableBytes { bytes in
                Result { () throws(InputError) in try source.read(into: bytes) }
            }.get()
            if read == 0 { break }
            guard whole.count + read <= maximumSize else { throw Failure.tooLarge }
            whole += buffer.prefix(read)
        }
        let payload = ByteArraySink()
        let analysis = try StreamTransforms.extractPayload(of: StateStreamInput(source: ByteArraySource(whole)), to: payload)
        if let problem = analysis.error {
            // Bytes that are no stream but a state are the payload itself.
            guard BackEnds.isBarePayload(whole) else { throw Failure.brokenStream(problem) }
            return LoadedPayload(bytes: whole, origin: .payload)
        }
        return LoadedPayload(bytes: payload.bytes, origin: .stateStream)
    }
}

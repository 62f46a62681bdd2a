import FoundationEssentials
import StateStream

/// What statetool shows of a virtiofsd payload: a summary, and with --decode
/// every inode and handle; as text or as the `virtiofsd` JSON object.
///
/// The state is kept compact (``CompactVirtiofsdState``), and the JSON object
/// can be written piece by piece (``writeJSON(format:write:)``), so a state
/// of a million inodes is shown in a few tens of MiB.
public struct VirtiofsdReport: DecodedBackEndState, StreamedJSONObject {
    /// The decoded state, kept compact.
    public let compact: CompactVirtiofsdState

    /// The report of `state`.
    public init(_ state: VirtiofsdState) {
        self.compact = CompactVirtiofsdState(state)
    }

    /// The report of a state kept compact.
    public init(_ state: CompactVirtiofsdState) {
        self.compact = state
    }

    /// The decoded state, as values (built when asked for).
    public var state: VirtiofsdState { compact.state }

    /// Every inode's path relative to the shared directory (built when asked for).
    public var paths: InodePaths { InodePaths(compact) }

    /// The state `decoder` decoded from a whole payload: `nil` if the payload
    /// does not begin like a virtiofsd state, the decoding error if it does
    /// but is not one.
    public static func recognize(_ decoder: inout VirtiofsdStateDecoder) -> Result<VirtiofsdReport, VirtiofsdDecodingError>? {
        guard decoder.beginsLikeState else { return nil }
        return Result { () throws(VirtiofsdDecodingError) in VirtiofsdReport(try decoder.finishCompact()) }
    }

    /// Location kinds with their counts, e.g. `root 1, path 5221`.
    public var locationCounts: [(String, Int)] {
        var counts = [Int](repeating: 0, count: VirtiofsdState.Location.Kind.allCases.count)
        for position in 0..<compact.inodeCount {
            counts[VirtiofsdState.Location.Kind.allCases.firstIndex(of: compact.kind(at: position))!] += 1
        }
        return zip(VirtiofsdState.Location.Kind.allCases, counts).compactMap { $1 > 0 ? ($0.rawValue, $1) : nil }
    }

    /// The negotiated options in words, `none` when none is set.
    public var optionNames: String {
        let options = compact.options
        let names = [
            (options.writeback, "writeback"), (options.announceSubmounts, "announce_submounts"),
            (options.posixACL, "posix_acl"), (options.supplementaryGroupExtension, "sup_group_extension"),
        ].filter(\.0).map(\.1)
        return names.isEmpty ? "none" : names.joined(separator: ", ")
    }

    /// The summary lines, label and value.
    public var summary: [(label: String, value: String)] {
        let kinds = locationCounts.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
        let withHandle = compact.recordedFileHandleCount
        var lines: [(label: String, value: String)] = [
            ("virtiofsd", "state V\(compact.version.number): \(compact.inodeCount) inodes (\(kinds)), \(compact.handleCount) open handles"),
            ("next ids", "inode \(compact.nextInode), handle \(compact.nextHandle)"),
            ("options", optionNames),
        ]
        if withHandle > 0 { lines.append(("file handles", "\(withHandle) inodes carry one to verify")) }
        if compact.version == .v2 {
            let mounts = compact.mountPaths.sorted { $0.mountID < $1.mountID }.map { "\($0.mountID) -> \($0.path)" }
            lines.append(("mount paths", mounts.isEmpty ? "none" : mounts.joined(separator: ", ")))
        }
        let problems = compact.consistencyProblems()
        if !problems.isEmpty { lines.append(("inconsistent", "\(problems.count) problems: \(problems[0])")) }
        return lines
    }

    /// Every inode and handle, one per line.
    public var listing: String {
        let paths = self.paths
        var text = "inodes\n        id  refcount  kind         path\n"
        for position in 0..<compact.inodeCount {
            let inode = compact.inode(at: position)
            text += TextFormat.padded(inode.id, to: 10) + TextFormat.padded(inode.refcount, to: 10) + "  "
                + TextFormat.padded(inode.location.kind.rawValue, to: 13) + paths.display(inode.id)
            if let handle = inode.fileHandle { text += "  [handle \(handle.handleType):\(handle.bytes.hexString)]" }
            text += "\n"
        }
        text += "handles\n        id     inode  flags                       path\n"
        for position in 0..<compact.handleCount {
            let handle = compact.handle(at: position)
            text += TextFormat.padded(handle.id, to: 10) + TextFormat.padded(handle.inode, to: 10) + "  "
                + TextFormat.padded(OpenFlags.describe(handle.flags), to: 28) + paths.display(handle.inode) + "\n"
        }
        return text
    }

    /// The differences by meaning to `other`, a virtiofsd state too.
    public func differences(to other: any DecodedBackEndState) -> [StateDifference]? {
        guard let other = other as? VirtiofsdReport else { return nil }
        return state.differences(to: other.state)
    }

    // MARK: JSON

    private enum Key: String, CodingKey {
        case version, inodeCount, handleCount, nextInode, nextHandle, options, mountPaths, locationKinds
        case inodes, handles, consistencyProblems
    }

    private struct Inode: Encodable {
        let id: UInt64
        let refcount: UInt64
        let kind: String
        let path: Nullable<String>
        let parent: Nullable<UInt64>
        let fileHandle: Nullable<String>
    }

    private struct Handle: Encodable {
        let id: UInt64
        let inode: UInt64
        let flags: Int32
        let flagNames: String
        let path: Nullable<String>
    }

    private struct MountPath: Encodable {
        let mountID: UInt64
        let path: String
    }

    private func inodeRecord(at position: Int, paths: InodePaths) -> Inode {
        let inode = compact.inode(at: position)
        return Inode(
            id: inode.id, refcount: inode.refcount, kind: inode.location.kind.rawValue, path: Nullable(paths.path(inode.id)),
            parent: Nullable(compact.parent(at: position)), fileHandle: Nullable(inode.fileHandle.map { "\($0.handleType):\($0.bytes.hexString)" }))
    }

    private func handleRecord(at position: Int, paths: InodePaths) -> Handle {
        let handle = compact.handle(at: position)
        return Handle(id: handle.id, inode: handle.inode, flags: handle.flags, flagNames: OpenFlags.describe(handle.flags), path: Nullable(paths.path(handle.inode)))
    }

    private var mountPathRecords: [MountPath] {
        compact.mountPaths.sorted { $0.mountID < $1.mountID }.map { MountPath(mountID: $0.mountID, path: $0.path) }
    }

    /// Encodes the `virtiofsd` object of `inspect --json`.
    public func encode(to encoder: any Encoder) throws {
        let paths = self.paths
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(compact.version.number, forKey: .version)
        try container.encode(compact.inodeCount, forKey: .inodeCount)
        try container.encode(compact.handleCount, forKey: .handleCount)
        try container.encode(compact.nextInode, forKey: .nextInode)
        try container.encode(compact.nextHandle, forKey: .nextHandle)
        try container.encode(compact.options, forKey: .options)
        try container.encode(mountPathRecords, forKey: .mountPaths)
        try container.encode(Dictionary(uniqueKeysWithValues: locationCounts), forKey: .locationKinds)
        try container.encode((0..<compact.inodeCount).map { inodeRecord(at: $0, paths: paths) }, forKey: .inodes)
        try container.encode((0..<compact.handleCount).map { handleRecord(at: $0, paths: paths) }, forKey: .handles)
        try container.encode(compact.consistencyProblems().map { FindingRecord($0, id: $0.id) }, forKey: .consistencyProblems)
    }

    /// Inodes and handles formatted this many at a time when streamed.
    private static let batch = 4096

    /// Writes the `virtiofsd` object as ``encode(to:)`` does with sorted
    /// keys, piece by piece: the inodes and handles a batch at a time, each
    /// batch formatted by `format` (a JSON encoder with sorted keys) and
    /// handed to `write`, so that memory does not grow with the state.
    public func writeJSON(format: (any Encodable) throws -> [UInt8], write: ([UInt8]) throws -> Void) throws {
        let paths = self.paths
        func key(_ name: Key, first: Bool = false) throws { try write(Array("\(first ? "{" : ",")\"\(name.rawValue)\":".utf8)) }
        func array<Record: Encodable>(count: Int, _ record: (Int) -> Record) throws {
            try write([UInt8(ascii: "[")])
            var start = 0
            while start < count {
                let end = min(start + Self.batch, count)
                let formatted = try format((start..<end).map(record))
                // `[a,b]` without its brackets, after a comma for every batch but the first.
                if start > 0 { try write([UInt8(ascii: ",")]) }
                try write(Array(formatted.dropFirst().dropLast()))
                start = end
            }
            try write([UInt8(ascii: "]")])
        }
        try key(.consistencyProblems, first: true)
        try write(try format(compact.consistencyProblems().map { FindingRecord($0, id: $0.id) }))
        try key(.handleCount)
        try write(try format(compact.handleCount))
        try key(.handles)
        try array(count: compact.handleCount) { handleRecord(at: $0, paths: paths) }
        try key(.inodeCount)
        try write(try format(compact.inodeCount))
        try key(.inodes)
        try array(count: compact.inodeCount) { inodeRecord(at: $0, paths: paths) }
        try key(.locationKinds)
        try write(try format(Dictionary(uniqueKeysWithValues: locationCounts)))
        try key(.mountPaths)
        try write(try format(mountPathRecords))
        try key(.nextHandle)
        try write(try format(compact.nextHandle))
        try key(.nextInode)
        try write(try format(compact.nextInode))
        try key(.options)
        try write(try format(compact.options))
        try key(.version)
        try write(try format(compact.version.number))
        try write([UInt8(ascii: "}")])
    }
}

/// virtiofsd's payload: one postcard-encoded `PassthroughFs` (V1 or V2),
/// recognised by its version byte and a first inode that is the root.
public struct VirtiofsdBackEnd: BackEndFormat {
    /// A virtiofsd format.
    public init() {}

    /// `virtiofsd`.
    public var name: String { "virtiofsd" }

    /// A decoder that keeps the state's inodes and handles as they stream by.
    public func makeDecoder() -> any BackEndPayloadDecoder { Decoder() }

    /// Whether `bytes` begin like a virtiofsd state.
    public func isBarePayload(_ bytes: [UInt8]) -> Bool { VirtiofsdState.looksLikeState(bytes) }

    private struct Decoder: BackEndPayloadDecoder {
        var decoder = VirtiofsdStateDecoder(compactWithTotalLength: nil)

        mutating func feed(_ bytes: ArraySlice<UInt8>) { decoder.feed(bytes) }

        mutating func finish() -> Result<any DecodedBackEndState, BackEndDecodingFailure>? {
            VirtiofsdReport.recognize(&decoder).map { result in
                result.map { $0 as any DecodedBackEndState }.mapError { BackEndDecodingFailure($0) }
            }
        }
    }
}

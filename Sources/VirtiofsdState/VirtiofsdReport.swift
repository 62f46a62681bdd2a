import FoundationEssentials
import StateStream

/// What statetool shows of a virtiofsd payload: a summary, and with --decode
/// every inode and handle; as text or as the `virtiofsd` JSON object.
public struct VirtiofsdReport: DecodedBackEndState {
    /// The decoded state.
    public let state: VirtiofsdState
    /// Every inode's path relative to the shared directory.
    public let paths: InodePaths

    /// The report of `state`.
    public init(_ state: VirtiofsdState) {
        self.state = state
        self.paths = InodePaths(state)
    }

    /// The state `decoder` decoded from a whole payload: `nil` if the payload
    /// does not begin like a virtiofsd state, the decoding error if it does
    /// but is not one.
    public static func recognize(_ decoder: inout VirtiofsdStateDecoder) -> Result<VirtiofsdReport, VirtiofsdDecodingError>? {
        guard decoder.beginsLikeState else { return nil }
        return Result { () throws(VirtiofsdDecodingError) in VirtiofsdReport(try decoder.finish()) }
    }

    /// Location kinds with their counts, e.g. `root 1, path 5221`.
    public var locationCounts: [(String, Int)] {
        var counts: [VirtiofsdState.Location.Kind: Int] = [:]
        for inode in state.inodes { counts[inode.location.kind, default: 0] += 1 }
        return VirtiofsdState.Location.Kind.allCases.compactMap { kind in counts[kind].map { (kind.rawValue, $0) } }
    }

    /// The negotiated options in words, `none` when none is set.
    public var optionNames: String {
        let options = state.options
        let names = [
            (options.writeback, "writeback"), (options.announceSubmounts, "announce_submounts"),
            (options.posixACL, "posix_acl"), (options.supplementaryGroupExtension, "sup_group_extension"),
        ].filter(\.0).map(\.1)
        return names.isEmpty ? "none" : names.joined(separator: ", ")
    }

    /// The summary lines, label and value.
    public var summary: [(label: String, value: String)] {
        let kinds = locationCounts.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
        let withHandle = state.inodes.filter { $0.fileHandle != nil }.count
        var lines: [(label: String, value: String)] = [
            ("virtiofsd", "state V\(state.version.number): \(state.inodes.count) inodes (\(kinds)), \(state.handles.count) open handles"),
            ("next ids", "inode \(state.nextInode), handle \(state.nextHandle)"),
            ("options", optionNames),
        ]
        if withHandle > 0 { lines.append(("file handles", "\(withHandle) inodes carry one to verify")) }
        if state.version == .v2 {
            let mounts = state.mountPaths.sorted { $0.mountID < $1.mountID }.map { "\($0.mountID) -> \($0.path)" }
            lines.append(("mount paths", mounts.isEmpty ? "none" : mounts.joined(separator: ", ")))
        }
        let problems = state.consistencyProblems()
        if !problems.isEmpty { lines.append(("inconsistent", "\(problems.count) problems: \(problems[0])")) }
        return lines
    }

    /// Every inode and handle, one per line.
    public var listing: String {
        var text = "inodes\n        id  refcount  kind         path\n"
        for inode in state.inodes {
            text += TextFormat.padded(inode.id, to: 10) + TextFormat.padded(inode.refcount, to: 10) + "  "
                + TextFormat.padded(inode.location.kind.rawValue, to: 13) + paths.display(inode.id)
            if let handle = inode.fileHandle { text += "  [handle \(handle.handleType):\(handle.bytes.hexString)]" }
            text += "\n"
        }
        text += "handles\n        id     inode  flags                       path\n"
        for handle in state.handles {
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

    private func path(_ id: UInt64) -> String? {
        if case .path(let path)? = paths.resolutions[id] { return path }
        return nil
    }

    /// Encodes the `virtiofsd` object of `inspect --json`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(state.version.number, forKey: .version)
        try container.encode(state.inodes.count, forKey: .inodeCount)
        try container.encode(state.handles.count, forKey: .handleCount)
        try container.encode(state.nextInode, forKey: .nextInode)
        try container.encode(state.nextHandle, forKey: .nextHandle)
        try container.encode(state.options, forKey: .options)
        try container.encode(
            state.mountPaths.sorted { $0.mountID < $1.mountID }.map { MountPath(mountID: $0.mountID, path: $0.path) },
            forKey: .mountPaths)
        try container.encode(Dictionary(uniqueKeysWithValues: locationCounts), forKey: .locationKinds)
        try container.encode(state.inodes.map { inode in
            var parent: UInt64?
            if case .path(let id, _) = inode.location { parent = id }
            return Inode(
                id: inode.id, refcount: inode.refcount, kind: inode.location.kind.rawValue, path: Nullable(path(inode.id)),
                parent: Nullable(parent), fileHandle: Nullable(inode.fileHandle.map { "\($0.handleType):\($0.bytes.hexString)" }))
        }, forKey: .inodes)
        try container.encode(state.handles.map { handle in
            Handle(id: handle.id, inode: handle.inode, flags: handle.flags, flagNames: OpenFlags.describe(handle.flags), path: Nullable(path(handle.inode)))
        }, forKey: .handles)
        try container.encode(state.consistencyProblems().map { FindingRecord($0, id: $0.id) }, forKey: .consistencyProblems)
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
        var decoder = VirtiofsdStateDecoder()

        mutating func feed(_ bytes: ArraySlice<UInt8>) { decoder.feed(bytes) }

        mutating func finish() -> Result<any DecodedBackEndState, BackEndDecodingFailure>? {
            VirtiofsdReport.recognize(&decoder).map { result in
                result.map { $0 as any DecodedBackEndState }.mapError { BackEndDecodingFailure($0) }
            }
        }
    }
}

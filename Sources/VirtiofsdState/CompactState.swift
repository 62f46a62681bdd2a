/// Unsigned 64-bit values kept in 4 bytes each while they fit 32 bits (ids,
/// refcounts and offsets of a virtiofsd state almost always do), the rare
/// larger one aside by position.
public struct CompactColumn: Sendable, Hashable {
    private var narrow: [UInt32] = []
    private var wide: [Int: UInt64] = [:]

    /// An empty column.
    public init() {}

    /// How many values it holds.
    public var count: Int { narrow.count }

    /// Appends `value`.
    public mutating func append(_ value: UInt64) {
        if value < UInt64(UInt32.max) {
            narrow.append(UInt32(value))
        } else {
            wide[narrow.count] = value
            narrow.append(UInt32.max)
        }
    }

    /// The value at `position`.
    public subscript(position: Int) -> UInt64 {
        let value = narrow[position]
        return value == UInt32.max ? wide[position] ?? UInt64(UInt32.max) : UInt64(value)
    }

    /// The bytes it holds, for memory budgets: 4 a value, and the larger ones aside.
    public var bytesUsed: Int { narrow.capacity * 4 + wide.capacity * 16 }
}

/// A virtiofsd state kept as columns of fixed-width integers, for states of
/// a million inodes: about 21 bytes an inode and its name's bytes, against
/// some 80 for ``VirtiofsdState/Inode`` values. Rare parts (full paths, file
/// handles) are kept aside by position.
///
/// ``VirtiofsdStateDecoder/finishCompact()`` gives one; ``inode(at:)`` and
/// ``handle(at:)`` give back the values, ``state`` the whole state.
public struct CompactVirtiofsdState: Sendable {
    /// Which serialization the source wrote.
    public var version = VirtiofsdState.Version.v1
    /// The id the source would give its next inode.
    public var nextInode: UInt64 = 0
    /// The id the source would give its next handle.
    public var nextHandle: UInt64 = 0
    /// What the source negotiated with the guest.
    public var options = VirtiofsdState.NegotiatedOptions(writeback: false, announceSubmounts: false, posixACL: false, supplementaryGroupExtension: false)
    /// V2's map in payload order; empty for V1.
    public var mountPaths: [VirtiofsdState.MountPath] = []

    private var ids = CompactColumn()
    private var refcounts = CompactColumn()
    /// A path inode's parent; 0 for the other kinds.
    private var parents = CompactColumn()
    private var offsets = CompactColumn()
    /// The location kind's tag (0 root ... 4 file handle).
    private var kinds: [UInt8] = []
    /// Where each name (or full path) ends in ``names``; the next starts there.
    private var nameEnds = CompactColumn()
    private var names: [UInt8] = []
    private var locationHandles: [Int: VirtiofsdState.FileHandle] = [:]
    private var recordedHandles: [Int: VirtiofsdState.FileHandle] = [:]

    private var handleIDs = CompactColumn()
    private var handleInodes = CompactColumn()
    private var handleOffsets = CompactColumn()
    private var handleFlags: [Int32] = []

    /// An empty state.
    public init() {}

    /// `state` kept compact.
    public init(_ state: VirtiofsdState) {
        version = state.version
        nextInode = state.nextInode
        nextHandle = state.nextHandle
        options = state.options
        mountPaths = state.mountPaths
        for inode in state.inodes { append(inode) }
        for handle in state.handles { append(handle) }
    }

    /// How many inodes it holds.
    public var inodeCount: Int { ids.count }
    /// How many handles it holds.
    public var handleCount: Int { handleIDs.count }

    /// Appends `inode`.
    public mutating func append(_ inode: VirtiofsdState.Inode) {
        let position = ids.count
        ids.append(inode.id)
        refcounts.append(inode.refcount)
        offsets.append(UInt64(inode.payloadOffset))
        switch inode.location {
        case .root: kinds.append(0)
        case .path(let parent, let name):
            kinds.append(1)
            parents.append(parent)
            names += name.utf8
        case .invalid: kinds.append(2)
        case .fullPath(let path):
            kinds.append(3)
            names += path.utf8
        case .fileHandle(let handle):
            kinds.append(4)
            locationHandles[position] = handle
        }
        if parents.count == position { parents.append(0) }
        nameEnds.append(UInt64(names.count))
        if let handle = inode.fileHandle { recordedHandles[position] = handle }
    }

    /// Appends `handle`.
    public mutating func append(_ handle: VirtiofsdState.Handle) {
        handleIDs.append(handle.id)
        handleInodes.append(handle.inode)
        handleOffsets.append(UInt64(handle.payloadOffset))
        handleFlags.append(handle.flags)
    }

    /// The id of the inode at `position`.
    public func id(at position: Int) -> UInt64 { ids[position] }

    /// The location kind of the inode at `position`.
    public func kind(at position: Int) -> VirtiofsdState.Location.Kind {
        VirtiofsdState.Location.Kind.allCases[Int(kinds[position])]
    }

    /// The parent of the inode at `position`, if it is located by path.
    public func parent(at position: Int) -> UInt64? { kinds[position] == 1 ? parents[position] : nil }

    /// Where the inode at `position` is encoded in the payload.
    public func payloadOffset(at position: Int) -> Int { Int(offsets[position]) }

    /// Whether the inode at `position` carries a file handle to verify.
    public func hasRecordedFileHandle(at position: Int) -> Bool { recordedHandles[position] != nil }

    /// How many inodes carry a file handle to verify.
    public var recordedFileHandleCount: Int { recordedHandles.count }

    /// The name (or full path) of the inode at `position`.
    public func name(at position: Int) -> String {
        let start = position == 0 ? 0 : Int(nameEnds[position - 1])
        return String(decoding: names[start..<Int(nameEnds[position])], as: UTF8.self)
    }

    /// The inode at `position`, as a value.
    public func inode(at position: Int) -> VirtiofsdState.Inode {
        let location: VirtiofsdState.Location
        switch kinds[position] {
        case 0: location = .root
        case 1: location = .path(parent: parents[position], name: name(at: position))
        case 2: location = .invalid
        case 3: location = .fullPath(name(at: position))
        default: location = .fileHandle(locationHandles[position] ?? VirtiofsdState.FileHandle(mountID: 0, handleType: 0, bytes: []))
        }
        return VirtiofsdState.Inode(
            id: ids[position], refcount: refcounts[position], location: location, fileHandle: recordedHandles[position],
            payloadOffset: payloadOffset(at: position))
    }

    /// The handle at `position`, as a value.
    public func handle(at position: Int) -> VirtiofsdState.Handle {
        VirtiofsdState.Handle(
            id: handleIDs[position], inode: handleInodes[position], flags: handleFlags[position], payloadOffset: Int(handleOffsets[position]))
    }

    /// The whole state, as values.
    public var state: VirtiofsdState {
        VirtiofsdState(
            version: version, inodes: (0..<inodeCount).map(inode(at:)), nextInode: nextInode,
            handles: (0..<handleCount).map(handle(at:)), nextHandle: nextHandle, options: options, mountPaths: mountPaths)
    }

    /// The bytes its inodes and handles take, for memory budgets.
    public var bytesUsed: Int {
        [ids, refcounts, parents, offsets, nameEnds, handleIDs, handleInodes, handleOffsets].reduce(0) { $0 + $1.bytesUsed }
            + kinds.capacity + names.capacity + handleFlags.capacity * 4
            + (locationHandles.count + recordedHandles.count) * 64
    }

    /// What makes the state unloadable on any destination, as
    /// ``VirtiofsdState/consistencyProblems()`` finds it.
    public func consistencyProblems() -> [ConsistencyProblem] {
        ConsistencyCheck(
            inodeIndex: InodeIndex(ids: (0..<inodeCount).map { ids[$0] }), kind: { kind(at: $0) }, parent: { parent(at: $0) },
            inodeOffset: { payloadOffset(at: $0) },
            handleIndex: InodeIndex(ids: (0..<handleCount).map { handleIDs[$0] }), handleInode: { handleInodes[$0] },
            handleOffset: { Int(handleOffsets[$0]) }
        ).problems()
    }
}

import Dispatch

/// What `retarget` is asked to change in a state so that a destination's
/// shared directory takes it.
public struct RetargetRequest: Hashable, Sendable {
    /// Files or directories that moved inside the shared directory, applied in order.
    public var renames: [Rename]
    /// Drop each inode that would still fail, everything under it, and the
    /// handles open on them.
    public var dropMissing: Bool
    /// Drop the file handles the source recorded (`--migration-verify-handles`),
    /// so that the destination finds the files by path alone.
    public var stripFileHandles: Bool
    /// The shared directory the state was saved from (`--handles-to-paths
    /// SOURCE_DIR`), still there: each inode located by file handle is opened
    /// by its handle on that directory's file system and becomes a path inode
    /// at the path found under it. `nil` leaves file-handle inodes as they are.
    public var handlesToPaths: String?

    /// A request; by default, one that changes nothing.
    public init(renames: [Rename] = [], dropMissing: Bool = false, stripFileHandles: Bool = false, handlesToPaths: String? = nil) {
        self.renames = renames
        self.dropMissing = dropMissing
        self.stripFileHandles = stripFileHandles
        self.handlesToPaths = handlesToPaths
    }
}

/// A file or directory that moved inside the shared directory: the inode at
/// path ``old`` is given ``new``'s parent and last name; everything under it follows.
public struct Rename: Hashable, Sendable, CustomStringConvertible {
    /// A path relative to the shared directory, normalised (no `.`, no empty
    /// components, no leading or trailing `/`).
    public let old: String
    /// Where it is now: a path relative to the shared directory, normalised
    /// as ``old`` is.
    public let new: String

    /// Parses `OLD=NEW`.
    ///
    /// - Throws: ``RetargetError/badPath(_:)`` for a missing `=` or a path that
    ///   is empty, `.`, or holds `..`.
    public init(parsing argument: String) throws(RetargetError) {
        guard let equals = argument.firstIndex(of: "=") else { throw .badPath(argument) }
        try self.init(old: String(argument[..<equals]), new: String(argument[argument.index(after: equals)...]))
    }

    /// A rename of `old` to `new`, both normalised.
    ///
    /// - Throws: ``RetargetError/badPath(_:)`` for a path that is empty, `.`, or
    ///   holds `..`.
    public init(old: String, new: String) throws(RetargetError) {
        self.old = try Self.normalised(old)
        self.new = try Self.normalised(new)
    }

    /// `OLD=NEW`, as ``init(parsing:)`` reads it.
    public var description: String { "\(old)=\(new)" }

    /// `path` relative to the shared directory, without `.` components and
    /// slashes at either end; the root itself and `..` are refused.
    static func normalised(_ path: String) throws(RetargetError) -> String {
        let components = path.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        guard !components.isEmpty, !components.contains("..") else { throw .badPath(path) }
        return components.joined(separator: "/")
    }
}

/// Why `retarget` refuses, leaving nothing written.
public enum RetargetError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A rename path is empty, the root, or climbs out with `..`.
    case badPath(String)
    /// A rename's OLD is no path the state holds.
    case renameSourceNotInState(String)
    /// A rename's NEW has a parent the state does not hold.
    case renameParentNotInState(new: String, parent: String)
    /// A rename's NEW is a path the state already holds.
    case renameTargetInState(String)
    /// A directory would move under itself.
    case renameIntoItself(old: String, new: String)
    /// The shared directory could not be opened.
    case preflight(PreflightError)
    /// Something would still fail, and dropping was not asked for.
    case wouldFail(PreflightReport)
    /// The load would fail whatever is dropped: duplicate ids, broken parent
    /// chains, or the root's file handle.
    case unloadable(PreflightReport)
    /// The state built does not check out; a bug, reported rather than written.
    case verificationFailed(String)
    /// `--handles-to-paths`: the file handle of inode `id` does not resolve
    /// under the source directory `source` (it opens a file outside it, or
    /// nothing), and dropping was not asked for.
    case fileHandleNotInSource(id: UInt64, source: String, resolution: FileHandleResolution)
    /// Inodes located by file handle would open files outside the destination's
    /// shared directory: the load would succeed and serve the guest those files.
    case fileHandlesOutsideShare(PreflightReport)

    /// Why, in one line, naming the option that would help where one would.
    public var description: String {
        switch self {
        case .badPath(let path): return "\(path): not a path inside the shared directory (OLD=NEW, relative, no ..)"
        case .renameSourceNotInState(let path): return "--rename: the state holds no inode at \(path)"
        case .renameParentNotInState(let new, let parent):
            return "--rename: the state holds no directory \(parent) to put \(new) in (NEW's parent must be a directory the state holds, or the root)"
        case .renameTargetInState(let path): return "--rename: the state already holds an inode at \(path)"
        case .renameIntoItself(let old, let new): return "--rename: \(old) cannot move under itself to \(new)"
        case .preflight(let error): return error.description
        case .wouldFail(let report):
            return "\(report.failingInodes.count) inodes would still be invalid on the destination, \(report.failingHandles.count) open handles would fail (--drop-missing drops them)"
        case .unloadable(let report):
            let hint = report.fatalProblems.contains(where: \.isCuredByStrippingFileHandles) ? " (--strip-file-handles drops the recorded file handles)" : ""
            return "the load would fail whatever is dropped: " + report.fatalProblems.map(\.description).joined(separator: "; ") + hint
        case .verificationFailed(let what): return "the new state does not check out: \(what); nothing written"
        case .fileHandleNotInSource(let id, let source, let resolution):
            let why: String
            switch resolution {
            case .outsideShare(let found): why = "opens \(found), outside \(source)"
            case .stale(let failure): why = "does not open on the file system of \(source): \(failure)"
            case .unchecked(let errno): why = "cannot be opened by statetool: \(errno) (opening by file handle needs CAP_DAC_READ_SEARCH)"
            case .resolving(let path): why = "resolves to \(path)"
            }
            return "--handles-to-paths: the file handle of inode \(id) \(why) (--drop-missing drops it)"
        case .fileHandlesOutsideShare(let report):
            let outside = report.fileHandlesOutsideShare
            let first = outside.first.map { inode -> String in
                if case .outsideShare(let found) = inode.resolution { return ", inode \(inode.id) at \(found) first" }
                return ""
            } ?? ""
            return "\(outside.count) inodes located by file handle resolve outside the shared directory\(first): "
                + "the load would serve the guest those files (--handles-to-paths SOURCE_DIR turns them into path inodes)"
        }
    }
}

/// A state changed by ``Retargeting/retarget(_:sharedDirectory:request:)``, with every change it made.
public struct RetargetResult: Sendable {
    /// An inode given a new parent and name.
    public struct Renamed: Hashable, Sendable {
        /// The inode's id.
        public let id: UInt64
        /// The rename's old path.
        public let oldPath: String
        /// The rename's new path.
        public let newPath: String

        /// A renamed inode from its id and the rename's paths.
        public init(id: UInt64, oldPath: String, newPath: String) {
            self.id = id
            self.oldPath = oldPath
            self.newPath = newPath
        }
    }

    /// An inode taken out of the state.
    public struct DroppedInode: Hashable, Sendable {
        /// The inode's id.
        public let id: UInt64
        /// Its path in the original state.
        public let path: String
        /// Why: preflight's reason, or the dropped inode it was under.
        public let reason: String

        /// A dropped inode from its id, path and reason.
        public init(id: UInt64, path: String, reason: String) {
            self.id = id
            self.path = path
            self.reason = reason
        }
    }

    /// A handle taken out with its inode.
    public struct DroppedHandle: Hashable, Sendable {
        /// The handle's id.
        public let id: UInt64
        /// The id of the inode it was open on.
        public let inode: UInt64
        /// That inode's path in the original state.
        public let path: String
        /// Its open(2) flags.
        public let flags: Int32

        /// A dropped handle from its fields.
        public init(id: UInt64, inode: UInt64, path: String, flags: Int32) {
            self.id = id
            self.inode = inode
            self.path = path
            self.flags = flags
        }
    }

    /// A surviving inode whose refcount changed: one reference per child that
    /// moved away or was dropped, or moved in.
    public struct RefcountChange: Hashable, Sendable {
        /// The inode's id.
        public let id: UInt64
        /// Its path in the new state.
        public let path: String
        /// Its refcount in the original state.
        public let old: UInt64
        /// Its refcount in the new state.
        public let new: UInt64

        /// A change of the refcount of inode `id` from `old` to `new`.
        public init(id: UInt64, path: String, old: UInt64, new: UInt64) {
            self.id = id
            self.path = path
            self.old = old
            self.new = new
        }
    }

    /// A dropped inode whose parent survives, with everything dropped under it:
    /// a lost subtree in one line.
    public struct DroppedTree: Hashable, Sendable {
        /// The id of the tree's top inode.
        public let id: UInt64
        /// Its path in the original state.
        public let path: String
        /// Why it was dropped: preflight's reason.
        public let reason: String
        /// Dropped inodes under it (not counting itself).
        public let descendants: Int
        /// Dropped handles on it and under it.
        public let handles: Int

        /// A dropped tree from its top inode and its counts.
        public init(id: UInt64, path: String, reason: String, descendants: Int, handles: Int) {
            self.id = id
            self.path = path
            self.reason = reason
            self.descendants = descendants
            self.handles = handles
        }
    }

    /// An inode located by file handle, made a path inode: its handle opened
    /// on the source directory's file system, the file found at ``path`` under it.
    public struct ConvertedInode: Hashable, Sendable {
        /// The inode's id.
        public let id: UInt64
        /// Where its handle led, relative to the source directory.
        public let path: String
        /// The inode it now names as parent: the deepest inode of the state
        /// at a directory above ``path`` (the root when there is none).
        public let parent: UInt64
        /// Its name in that parent: the rest of ``path`` (several components
        /// when the directories between are not inodes of the state).
        public let name: String

        /// A converted inode from its fields.
        public init(id: UInt64, path: String, parent: UInt64, name: String) {
            self.id = id
            self.path = path
            self.parent = parent
            self.name = name
        }
    }

    /// The new state's encoding, verified against the original payload,
    /// when ``Retargeting/retarget(_:sharedDirectory:request:verifyingAgainst:)``
    /// was given it; `nil` otherwise.
    public var encoded: [UInt8]?
    /// The state as it was given.
    public let original: VirtiofsdState
    /// The state to write.
    public let state: VirtiofsdState
    /// The inodes renamed, rename by rename.
    public let renamed: [Renamed]
    /// In the original's order.
    public let droppedInodes: [DroppedInode]
    /// The handles dropped with their inodes.
    public let droppedHandles: [DroppedHandle]
    /// The surviving inodes whose refcount changed, in the new state's order.
    public let refcountChanges: [RefcountChange]
    /// The dropped inodes as lost subtrees, one per top.
    public let droppedTrees: [DroppedTree]
    /// Inodes whose recorded file handle was dropped (`--strip-file-handles`):
    /// their identity is no longer verified on the destination.
    public let strippedFileHandles: Int
    /// Inodes located by file handle that could not be opened by handle, left as they are.
    public let uncheckedInodes: [UInt64]
    /// Inodes located by file handle made path inodes (`--handles-to-paths`).
    public let convertedInodes: [ConvertedInode]
    /// The new state checked against the shared directory.
    public let check: PreflightReport

    /// Whether anything changed.
    public var changesState: Bool { !state.hasSameContent(as: original) }
}

/// Changes a virtiofsd state as little as possible so that a destination's
/// shared directory takes it: renames, dropped file handles, dropped inodes.
///
/// The order is fixed: renames, then file handles, then a pre-flight check of
/// the result against the directory (``PreflightCheck``); what would still
/// fail is dropped only when asked, and the result is checked again. Inode and
/// handle order, ids, `next_inode`, `next_handle`, the negotiated options,
/// V2's mount paths and the version are kept.
public enum Retargeting {
    /// Applies `request` to `original`, checked against the shared directory
    /// at `sharedDirectory`, and returns the new state with every change made.
    ///
    /// - Throws: ``RetargetError``: a rename that does not apply to the state;
    ///   ``RetargetError/preflight(_:)`` when the directory cannot be opened;
    ///   ``RetargetError/unloadable(_:)`` when the load would fail whatever is
    ///   dropped; ``RetargetError/wouldFail(_:)`` when inodes would fail and
    ///   ``RetargetRequest/dropMissing`` is off;
    ///   ``RetargetError/verificationFailed(_:)`` when the result still fails.
    ///
    /// - Parameter originalPayload: The payload `original` was decoded from:
    ///   when given, the new state's encoding is verified against it
    ///   (``RetargetResult/verify(written:original:)``), on a second core
    ///   while the new state is checked, and kept in ``RetargetResult/encoded``.
    public static func retarget(
        _ original: VirtiofsdState, sharedDirectory: String, request: RetargetRequest, verifyingAgainst originalPayload: [UInt8]? = nil
    ) throws(RetargetError) -> RetargetResult {
        var state = original
        var dropped = Dropping(state: state, paths: InodePaths(original))
        var converted: [RetargetResult.ConvertedInode] = []
        if let source = request.handlesToPaths {
            converted = try HandleConversion.convert(&dropped, source: source, dropMissing: request.dropMissing)
            state = dropped.state
        }
        var renamed: [RetargetResult.Renamed] = []
        for rename in request.renames {
            renamed += try apply(rename, to: &state)
        }
        var stripped = 0
        if request.stripFileHandles {
            for index in state.inodes.indices where state.inodes[index].fileHandle != nil {
                state.inodes[index].fileHandle = nil
                stripped += 1
            }
        }
        let (report, opens) = try check(state, in: sharedDirectory, reusing: nil)
        guard report.fatalProblems.isEmpty else { throw .unloadable(report) }
        // Dropping does not cure a handle that opens a file outside: converting it to a path does.
        guard report.fileHandlesOutsideShare.isEmpty else { throw .fileHandlesOutsideShare(report) }
        dropped.state = state
        // A state with nothing failing is checked already; one with drops is checked again.
        var final = report
        var encoded: [UInt8]?
        let reopenFailures = report.failingHandles.filter { $0.cause != .inodeInvalid }
        if !report.failingInodes.isEmpty || !reopenFailures.isEmpty {
            guard request.dropMissing else { throw .wouldFail(report) }
            dropped.drop(report.failingInodes)
            dropped.drop(handles: reopenFailures)
            state = dropped.state
            // What is left is checked again; the files the first check opened at the same parent and name are
            // not opened twice. Its encoding is verified meanwhile, on the other core.
            let changed = state
            nonisolated(unsafe) var checked: Result<PreflightReport, RetargetError>?
            nonisolated(unsafe) var verified: Result<[UInt8], RetargetError>?
            DispatchQueue.concurrentPerform(iterations: originalPayload == nil ? 1 : 2) { part in
                if part == 0 {
                    checked = Result { () throws(RetargetError) in try check(changed, in: sharedDirectory, reusing: opens).report }
                } else if let originalPayload {
                    verified = Result { () throws(RetargetError) in try encodingVerified(changed, original: original, originalPayload: originalPayload) }
                }
            }
            final = try checked!.get()
            encoded = try verified?.get()
        }
        guard final.isClean else {
            throw .verificationFailed("the pre-flight check still fails: " + (final.failingInodes.first?.reason ?? final.fatalProblems.first?.description ?? "handles"))
        }
        if encoded == nil, let originalPayload { encoded = try encodingVerified(state, original: original, originalPayload: originalPayload) }
        return RetargetResult(
            encoded: encoded,
            original: original, state: state, renamed: renamed, droppedInodes: dropped.droppedInodes,
            droppedHandles: dropped.droppedHandles, refcountChanges: refcountChanges(from: original, to: state),
            droppedTrees: dropped.trees, strippedFileHandles: stripped, uncheckedInodes: final.uncheckedInodes, convertedInodes: converted,
            check: final)
    }

    /// The encoding of `state`, verified against `originalPayload`, which `original` was decoded from.
    private static func encodingVerified(
        _ state: VirtiofsdState, original: VirtiofsdState, originalPayload: [UInt8]
    ) throws(RetargetError) -> [UInt8] {
        let encoded = state.encoded()
        try RetargetResult.verify(state, written: encoded, original: original, originalPayload: originalPayload)
        return encoded
    }

    private static func check(
        _ state: VirtiofsdState, in directory: String, reusing earlier: ProbedOpens?
    ) throws(RetargetError) -> (report: PreflightReport, opens: ProbedOpens) {
        do {
            return try PreflightCheck.check(state, sharedDirectory: directory, reusing: earlier)
        } catch {
            throw .preflight(error)
        }
    }

    /// Moves every inode at `rename.old` under `rename.new`'s parent, with its last name.
    private static func apply(_ rename: Rename, to state: inout VirtiofsdState) throws(RetargetError) -> [RetargetResult.Renamed] {
        let paths = InodePaths(state)
        let moving = paths.ids(at: rename.old)
        guard !moving.isEmpty else { throw .renameSourceNotInState(rename.old) }
        guard paths.ids(at: rename.new).isEmpty else { throw .renameTargetInState(rename.new) }
        let (parentPath, name) = split(rename.new)
        let parents = parentPath == "." ? [VirtiofsdState.rootID] : paths.ids(at: parentPath)
        guard let newParent = parents.first else { throw .renameParentNotInState(new: rename.new, parent: parentPath) }
        if parentPath == rename.old || parentPath.hasPrefix(rename.old + "/") {
            throw .renameIntoItself(old: rename.old, new: rename.new)
        }
        let index = Dictionary(state.inodes.indices.map { (state.inodes[$0].id, $0) }, uniquingKeysWith: { first, _ in first })
        var changes: [RetargetResult.Renamed] = []
        for id in moving {
            guard let position = index[id] else { continue }
            switch state.inodes[position].location {
            case .path(let oldParent, _):
                state.inodes[position].location = .path(parent: newParent, name: name)
                if oldParent != newParent {
                    if let old = index[oldParent] { state.inodes[old].refcount = state.inodes[old].refcount.subtractingSaturated(1) }
                    if let new = index[newParent] { state.inodes[new].refcount += 1 }
                }
            case .fullPath:
                state.inodes[position].location = .fullPath(rename.new)
            case .root, .invalid, .fileHandle:
                continue
            }
            changes.append(.init(id: id, oldPath: rename.old, newPath: rename.new))
        }
        return changes
    }

    /// The parent path (`.` for the root) and last name of a normalised path.
    private static func split(_ path: String) -> (parent: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        return (String(path[..<slash]), String(path[path.index(after: slash)...]))
    }

    private static func refcountChanges(from original: VirtiofsdState, to state: VirtiofsdState) -> [RetargetResult.RefcountChange] {
        let before = InodeIndex(original)
        let paths = InodePaths(state)
        return state.inodes.compactMap { inode in
            guard let position = before.position(of: inode.id) else { return nil }
            let old = original.inodes[position].refcount
            guard old != inode.refcount else { return nil }
            return .init(id: inode.id, path: paths.display(inode.id), old: old, new: inode.refcount)
        }
    }
}

/// Takes failing inodes, everything under them and their handles out of a state.
struct Dropping {
    var state: VirtiofsdState
    let paths: InodePaths
    var droppedInodes: [RetargetResult.DroppedInode] = []
    var droppedHandles: [RetargetResult.DroppedHandle] = []
    var trees: [RetargetResult.DroppedTree] = []

    init(state: VirtiofsdState, paths: InodePaths) {
        self.state = state
        self.paths = paths
    }

    /// Drops the handles that would fail to reopen though their inodes load.
    mutating func drop(handles failures: [PreflightReport.HandleFailure]) {
        let failing = Set(failures.map(\.id))
        for handle in state.handles where failing.contains(handle.id) {
            droppedHandles.append(.init(id: handle.id, inode: handle.inode, path: paths.display(handle.inode), flags: handle.flags))
        }
        state.handles.removeAll { failing.contains($0.id) }
    }

    /// Drops each failing inode and everything under it, with their handles.
    /// The state has no fatal problem (its ids are unique, its parents held
    /// and its chains loop-free): parents are found by position, and whether
    /// an inode is under a failing one is walked once per inode.
    mutating func drop(_ failures: [PreflightReport.InodeFailure]) {
        drop(failures.map { ($0.id, $0.reason) })
    }

    /// Drops each inode `(id, reason)`, everything under it and the handles on
    /// them (called again after file-handle inodes are converted: its trees add up).
    mutating func drop(_ failures: [(id: UInt64, reason: String)]) {
        let index = InodeIndex(state)
        let count = state.inodes.count
        let parentOf: [Int] = state.inodes.map { inode in
            if case .path(let parent, _) = inode.location { return index.position(of: parent) ?? -1 }
            return -1
        }
        // Each failing inode with preflight's reason, then everything under it.
        var failing: [UInt64: String] = [:]
        for failure in failures where failing[failure.id] == nil { failing[failure.id] = failure.reason }
        // 0 not known yet, 1 dropped, 2 kept.
        var verdicts = [UInt8](repeating: 0, count: count)
        var walk: [Int] = []
        for start in 0..<count where verdicts[start] == 0 {
            var current = start
            var verdict: UInt8 = 2
            while true {
                if verdicts[current] != 0 {
                    verdict = verdicts[current]
                    break
                }
                if failing[state.inodes[current].id] != nil {
                    verdicts[current] = 1
                    verdict = 1
                    break
                }
                walk.append(current)
                guard parentOf[current] >= 0, walk.count <= count else { break }
                current = parentOf[current]
            }
            for position in walk { verdicts[position] = verdict }
            walk.removeAll(keepingCapacity: true)
        }
        func reason(_ position: Int) -> String {
            let id = state.inodes[position].id
            if let reason = failing[id] { return reason }
            let parent = state.inodes[parentOf[position]].id
            return "under \(paths.display(parent)) (inode \(parent))"
        }
        // A tree's top is a dropped inode whose parent survives (or that has none).
        func top(of position: Int) -> Int {
            var current = position
            var steps = 0
            while parentOf[current] >= 0, verdicts[parentOf[current]] == 1, steps <= count {
                current = parentOf[current]
                steps += 1
            }
            return current
        }
        var tops: [Int] = []
        var descendants: [Int: Int] = [:]
        var references: [Int: UInt64] = [:]
        for position in 0..<count where verdicts[position] == 1 {
            let inode = state.inodes[position]
            droppedInodes.append(.init(id: inode.id, path: paths.display(inode.id), reason: reason(position)))
            if parentOf[position] >= 0, verdicts[parentOf[position]] != 1 { references[parentOf[position], default: 0] += 1 }
            let root = top(of: position)
            if root == position { tops.append(root) } else { descendants[root, default: 0] += 1 }
        }
        var handleCounts: [Int: Int] = [:]
        for handle in state.handles {
            guard let position = index.position(of: handle.inode), verdicts[position] == 1 else { continue }
            droppedHandles.append(.init(id: handle.id, inode: handle.inode, path: paths.display(handle.inode), flags: handle.flags))
            handleCounts[top(of: position), default: 0] += 1
        }
        trees += tops.map { position in
            let id = state.inodes[position].id
            return .init(id: id, path: paths.display(id), reason: reason(position), descendants: descendants[position] ?? 0, handles: handleCounts[position] ?? 0)
        }
        for (position, count) in references {
            state.inodes[position].refcount = state.inodes[position].refcount.subtractingSaturated(count)
        }
        var kept: [VirtiofsdState.Inode] = []
        kept.reserveCapacity(count - droppedInodes.count)
        for position in 0..<count where verdicts[position] != 1 { kept.append(state.inodes[position]) }
        state.inodes = kept
        state.handles.removeAll { handle in index.position(of: handle.inode).map { verdicts[$0] == 1 } ?? false }
    }
}

extension UInt64 {
    fileprivate func subtractingSaturated(_ other: UInt64) -> UInt64 { self >= other ? self - other : 0 }
}

// MARK: - Verifying what was written

extension RetargetResult {
    /// Checks the bytes written for ``state`` against the original payload:
    /// they decode to exactly the intended state, and every inode and handle
    /// that was not changed is encoded byte for byte as in the original.
    ///
    /// - Throws: ``RetargetError/verificationFailed(_:)`` naming the first difference.
    public func verify(written payload: [UInt8], original originalPayload: [UInt8]) throws(RetargetError) {
        try Self.verify(state, written: payload, original: original, originalPayload: originalPayload)
    }

    /// ``verify(written:original:)`` of `state`, changed from `original`.
    static func verify(
        _ state: VirtiofsdState, written payload: [UInt8], original: VirtiofsdState, originalPayload: [UInt8]
    ) throws(RetargetError) {
        let decoded: VirtiofsdState
        do {
            decoded = try VirtiofsdState(decoding: payload)
        } catch {
            throw .verificationFailed("what was written does not decode: \(error)")
        }
        guard decoded.hasSameContent(as: state) else { throw .verificationFailed("what was written decodes to another state") }
        let before = InodeIndex(original)
        var writer = PostcardWriter()
        for (index, inode) in decoded.inodes.enumerated() {
            guard let position = before.position(of: inode.id) else { continue }
            let old = original.inodes[position]
            guard old.refcount == inode.refcount, old.location == inode.location,
                old.fileHandle == inode.fileHandle
            else { continue }
            // Where both are followed by another inode, their encodings are the bytes up to it:
            // compared with each other directly (what was written is the encoder's own).
            if index + 1 < decoded.inodes.count, position + 1 < original.inodes.count {
                let length = decoded.inodes[index + 1].payloadOffset - inode.payloadOffset
                guard original.inodes[position + 1].payloadOffset - old.payloadOffset == length,
                    Self.slice(originalPayload, at: old.payloadOffset, count: length) == Self.slice(payload, at: inode.payloadOffset, count: length)
                else { throw .verificationFailed("inode \(inode.id) is not byte for byte as in the original") }
                continue
            }
            writer.reset()
            VirtiofsdState.encode(inode, into: &writer)
            let bytes = writer.bytes
            guard Self.slice(originalPayload, at: old.payloadOffset, count: bytes.count) == bytes[...],
                Self.slice(payload, at: inode.payloadOffset, count: bytes.count) == bytes[...]
            else { throw .verificationFailed("inode \(inode.id) is not byte for byte as in the original") }
        }
        let handlesBefore = InodeIndex(ids: original.handles.map(\.id))
        for handle in decoded.handles {
            guard let position = handlesBefore.position(of: handle.id) else { throw .verificationFailed("handle \(handle.id) is new") }
            let old = original.handles[position]
            let bytes = VirtiofsdState.encoded(handle)
            guard Self.slice(originalPayload, at: old.payloadOffset, count: bytes.count) == bytes[...],
                Self.slice(payload, at: handle.payloadOffset, count: bytes.count) == bytes[...]
            else { throw .verificationFailed("handle \(handle.id) is not byte for byte as in the original") }
        }
    }

    private static func slice(_ bytes: [UInt8], at offset: Int, count: Int) -> ArraySlice<UInt8> {
        guard offset >= 0, offset + count <= bytes.count else { return [] }
        return bytes[offset..<offset + count]
    }
}

extension VirtiofsdState {
    /// Whether the state says what `other` says, wherever either was read
    /// (``content`` equal, without copying either).
    func hasSameContent(as other: VirtiofsdState) -> Bool {
        guard version == other.version, nextInode == other.nextInode, nextHandle == other.nextHandle, options == other.options,
            mountPaths == other.mountPaths, inodes.count == other.inodes.count, handles.count == other.handles.count
        else { return false }
        for (mine, theirs) in zip(inodes, other.inodes) {
            guard mine.id == theirs.id, mine.refcount == theirs.refcount, mine.location == theirs.location, mine.fileHandle == theirs.fileHandle
            else { return false }
        }
        for (mine, theirs) in zip(handles, other.handles) {
            guard mine.id == theirs.id, mine.inode == theirs.inode, mine.flags == theirs.flags else { return false }
        }
        return true
    }
}

/// Where each inode of a state is, as a path relative to the shared directory:
/// parent chains followed up to the root.
///
/// Built in one pass that marks which chains resolve (O(n), one byte an
/// inode beside the state's own inodes, which it shares); each path is joined
/// when it is asked for, so a state of a million inodes costs no million strings.
public struct InodePaths: Sendable {
    /// What an inode's location comes to.
    public enum Resolution: Hashable, Sendable {
        /// A path relative to the shared directory (`.` for the root).
        case path(String)
        /// A file handle: no path in the state.
        case fileHandle(VirtiofsdState.FileHandle)
        /// The source sent the inode as invalid.
        case invalid
        /// Its parent chain loops, or names an inode the state does not hold.
        case unresolved
    }

    /// What a chain comes to, by inode position.
    private enum Chain: UInt8 {
        case unknown = 0, walking, toPath, toNoPath, unresolved
    }

    private let inodes: any InodeLocations
    private let index: InodeIndex
    private let chains: [Chain]

    /// Follows every inode's parent chain in `state`.
    public init(_ state: VirtiofsdState) {
        self.init(state.inodes, index: InodeIndex(state))
    }

    /// Follows every inode's parent chain in `state`, kept compact.
    public init(_ state: CompactVirtiofsdState) {
        self.init(state, index: InodeIndex(ids: (0..<state.inodeCount).map(state.id(at:))))
    }

    init(_ inodes: any InodeLocations, index: InodeIndex) {
        self.inodes = inodes
        self.index = index
        var chains = [Chain](repeating: .unknown, count: inodes.count)
        var walk: [Int] = []
        for start in 0..<inodes.count where chains[start] == .unknown {
            // Walk up until a known chain, a non-path location, a missing parent or a repeat.
            var current = start
            var outcome = Chain.unresolved
            while true {
                if chains[current] != .unknown {
                    outcome = chains[current] == .walking ? .unresolved : chains[current]
                    break
                }
                guard let parent = inodes.parent(at: current) else {
                    chains[current] = Self.base(inodes.kind(at: current))
                    outcome = chains[current]
                    break
                }
                chains[current] = .walking
                walk.append(current)
                guard let next = index.position(of: parent) else {
                    outcome = .unresolved
                    break
                }
                current = next
            }
            // A child resolves to a path only under a parent that does.
            let linked: Chain = outcome == .toPath ? .toPath : .unresolved
            for position in walk { chains[position] = linked }
            walk.removeAll(keepingCapacity: true)
        }
        self.chains = chains
    }

    private static func base(_ kind: VirtiofsdState.Location.Kind) -> Chain {
        switch kind {
        case .root, .fullPath: return .toPath
        case .invalid, .fileHandle: return .toNoPath
        case .path: return .unresolved
        }
    }

    /// What inode `id`'s location comes to; `nil` for an id the state does not hold.
    public func resolution(_ id: UInt64) -> Resolution? {
        guard let position = index.position(of: id) else { return nil }
        return resolution(at: position)
    }

    /// By inode id (built when asked for: prefer ``resolution(_:)`` or ``path(_:)``).
    public var resolutions: [UInt64: Resolution] {
        var all: [UInt64: Resolution] = [:]
        for position in 0..<inodes.count where all[inodes.id(at: position)] == nil {
            all[inodes.id(at: position)] = resolution(at: position)
        }
        return all
    }

    private func resolution(at position: Int) -> Resolution {
        switch chains[position] {
        case .toNoPath:
            if let handle = inodes.locationFileHandle(at: position) { return .fileHandle(handle) }
            return .invalid
        case .unresolved, .unknown, .walking:
            return .unresolved
        case .toPath:
            return .path(path(at: position))
        }
    }

    /// The path of the inode at `position`, whose chain resolves to one.
    private func path(at position: Int) -> String {
        var names: [String] = []
        var current = position
        while let parent = inodes.parent(at: current), let next = index.position(of: parent) {
            names.append(inodes.name(at: current))
            current = next
        }
        var path = inodes.kind(at: current) == .fullPath ? inodes.name(at: current) : "."
        for name in names.reversed() { path = path == "." ? name : path + "/" + name }
        return path
    }

    /// The path of inode `id` relative to the shared directory, or `nil` for
    /// one the state gives none (located by file handle, invalid, unresolved,
    /// or not in the state).
    public func path(_ id: UInt64) -> String? {
        guard let position = index.position(of: id), chains[position] == .toPath else { return nil }
        return path(at: position)
    }

    /// The path of inode `id`, or a bracketed word for one without.
    public func display(_ id: UInt64) -> String {
        switch resolution(id) {
        case .path(let path)?: return path
        case .fileHandle?: return "<file handle>"
        case .invalid?: return "<invalid>"
        case .unresolved?: return "<unresolved>"
        case nil: return "<no inode \(id)>"
        }
    }

    /// The ids of the inodes whose parent chain resolves to `path`, ascending.
    func ids(at path: String) -> [UInt64] {
        var found: [UInt64] = []
        for position in 0..<inodes.count where chains[position] == .toPath && index.position(of: inodes.id(at: position)) == position {
            if self.path(at: position) == path { found.append(inodes.id(at: position)) }
        }
        return found.sorted()
    }
}

/// Inodes as ``InodePaths`` reads them, by position: kept as values or compact.
protocol InodeLocations: Sendable {
    var count: Int { get }
    func id(at position: Int) -> UInt64
    func kind(at position: Int) -> VirtiofsdState.Location.Kind
    /// The parent of a path inode; `nil` for the other kinds.
    func parent(at position: Int) -> UInt64?
    /// The name of a path inode, the path of a full-path one.
    func name(at position: Int) -> String
    /// The file handle of an inode located by one.
    func locationFileHandle(at position: Int) -> VirtiofsdState.FileHandle?
}

extension [VirtiofsdState.Inode]: InodeLocations {
    func id(at position: Int) -> UInt64 { self[position].id }
    func kind(at position: Int) -> VirtiofsdState.Location.Kind { self[position].location.kind }
    func parent(at position: Int) -> UInt64? {
        if case .path(let parent, _) = self[position].location { return parent }
        return nil
    }
    func name(at position: Int) -> String {
        switch self[position].location {
        case .path(_, let name): return name
        case .fullPath(let path): return path
        default: return ""
        }
    }
    func locationFileHandle(at position: Int) -> VirtiofsdState.FileHandle? {
        if case .fileHandle(let handle) = self[position].location { return handle }
        return nil
    }
}

extension CompactVirtiofsdState: InodeLocations {
    var count: Int { inodeCount }
    func locationFileHandle(at position: Int) -> VirtiofsdState.FileHandle? {
        guard kind(at: position) == .fileHandle, case .fileHandle(let handle) = inode(at: position).location else { return nil }
        return handle
    }
}

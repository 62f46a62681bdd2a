import StateStream

/// Something in a decoded state that virtiofsd would refuse to load whatever
/// the destination holds, located by the payload offset of the inode or handle.
public struct ConsistencyProblem: PayloadFinding, Hashable {
    /// The stable kinds, as scripts match them.
    public enum Kind: String, Hashable, Sendable, Codable {
        /// Two inodes share an id ("Double-use of FUSE inode ID").
        case duplicateInode = "duplicate-inode"
        /// No inode with the root id, or the root id with another location.
        case badRoot = "bad-root"
        /// A parent id names no inode in the state.
        case missingParent = "missing-parent"
        /// A parent chain comes back to itself.
        case parentCycle = "parent-cycle"
        /// A handle names an inode the state does not hold ("Inode N not found").
        case handleOnMissingInode = "handle-on-missing-inode"
        /// Two handles share an id.
        case duplicateHandle = "duplicate-handle"
    }

    /// What kind of problem this is.
    public let kind: Kind
    /// The inode or handle concerned.
    public let id: UInt64
    /// Where the inode or handle is encoded in the payload.
    public let payloadOffset: Int
    /// What is wrong, in one sentence without the offset.
    public let message: String


}

extension VirtiofsdState {
    /// What makes the state unloadable on any destination: duplicate ids, a bad
    /// root, parent chains that loop or point at missing inodes, handles on
    /// missing inodes.
    public func consistencyProblems() -> [ConsistencyProblem] {
        ConsistencyCheck(
            inodeIndex: InodeIndex(self), kind: { inodes[$0].location.kind },
            parent: { if case .path(let parent, _) = inodes[$0].location { parent } else { nil } },
            inodeOffset: { inodes[$0].payloadOffset },
            handleIndex: InodeIndex(ids: handles.map(\.id)), handleInode: { handles[$0].inode }, handleOffset: { handles[$0].payloadOffset }
        ).problems()
    }
}

/// The consistency rules, over a state's columns however they are kept: the
/// inodes' ids, kinds, parents and offsets, the handles' ids, inodes and offsets.
///
/// It takes O(n log n) time and a byte or two an inode: ids are found through
/// ``InodeIndex``, and parent cycles are found in one walk of the parent graph.
struct ConsistencyCheck {
    let inodeIndex: InodeIndex
    let kind: (Int) -> VirtiofsdState.Location.Kind
    let parent: (Int) -> UInt64?
    let inodeOffset: (Int) -> Int
    let handleIndex: InodeIndex
    let handleInode: (Int) -> UInt64
    let handleOffset: (Int) -> Int

    func problems() -> [ConsistencyProblem] {
        var problems: [ConsistencyProblem] = []
        let count = inodeIndex.count
        var hasRoot = false
        for position in 0..<count {
            let id = inodeIndex[position]
            let first = inodeIndex.position(of: id) == position
            if !first {
                problems.append(ConsistencyProblem(kind: .duplicateInode, id: id, payloadOffset: inodeOffset(position), message: "inode id \(id) used twice"))
            }
            hasRoot = hasRoot || id == VirtiofsdState.rootID
            let isRoot = kind(position) == .root
            if isRoot != (id == VirtiofsdState.rootID) {
                problems.append(ConsistencyProblem(
                    kind: .badRoot, id: id, payloadOffset: inodeOffset(position),
                    message: isRoot ? "inode \(id) has the root location but not the root id" : "the root inode has a \(kind(position).rawValue) location"))
            }
        }
        if count > 0 && !hasRoot {
            problems.append(ConsistencyProblem(kind: .badRoot, id: VirtiofsdState.rootID, payloadOffset: 0, message: "no root inode (id 1)"))
        }
        let onCycle = cycleMembers()
        for position in 0..<count {
            guard let parent = parent(position) else { continue }
            let id = inodeIndex[position]
            guard inodeIndex.contains(parent) else {
                problems.append(ConsistencyProblem(
                    kind: .missingParent, id: id, payloadOffset: inodeOffset(position),
                    message: "inode \(id) names parent \(parent), which the state does not hold"))
                continue
            }
            // A cycle through this inode: following parents from its parent comes back to it.
            let loops = inodeIndex.position(of: id) == position ? onCycle[position] : reaches(id, from: parent)
            if loops {
                problems.append(ConsistencyProblem(
                    kind: .parentCycle, id: id, payloadOffset: inodeOffset(position),
                    message: "the parent chain of inode \(id) loops back to it"))
            }
        }
        for position in 0..<handleIndex.count {
            let id = handleIndex[position]
            if handleIndex.position(of: id) != position {
                problems.append(ConsistencyProblem(kind: .duplicateHandle, id: id, payloadOffset: handleOffset(position), message: "handle id \(id) used twice"))
            }
            let inode = handleInode(position)
            if !inodeIndex.contains(inode) {
                problems.append(ConsistencyProblem(
                    kind: .handleOnMissingInode, id: id, payloadOffset: handleOffset(position),
                    message: "handle \(id) is open on inode \(inode), which the state does not hold"))
            }
        }
        return problems
    }

    /// The inode after `position` in the parent graph: its parent's first inode.
    private func next(_ position: Int) -> Int? {
        parent(position).flatMap(inodeIndex.position(of:))
    }

    /// Which inodes (first of their id) lie on a cycle of two or more in the
    /// parent graph: the parent chain from each comes back to it.
    private func cycleMembers() -> [Bool] {
        let count = inodeIndex.count
        // 0 not visited, 1 on the walk in progress, 2 done.
        var visits = [UInt8](repeating: 0, count: count)
        var onCycle = [Bool](repeating: false, count: count)
        var walk: [Int] = []
        for start in 0..<count where visits[start] == 0 && inodeIndex.position(of: inodeIndex[start]) == start {
            var current: Int? = start
            while let position = current, visits[position] == 0 {
                visits[position] = 1
                walk.append(position)
                current = next(position)
            }
            if let position = current, visits[position] == 1, let cycleStart = walk.lastIndex(of: position), walk.count - cycleStart >= 2 {
                for member in walk[cycleStart...] { onCycle[member] = true }
            }
            for position in walk { visits[position] = 2 }
            walk.removeAll(keepingCapacity: true)
        }
        return onCycle
    }

    /// Whether the parent chain from inode `start` reaches `id` before it
    /// repeats itself (for an inode whose id an earlier inode has).
    private func reaches(_ id: UInt64, from start: UInt64) -> Bool {
        guard start != id, var current = inodeIndex.position(of: start) else { return false }
        for _ in 0...inodeIndex.count {
            guard let up = parent(current) else { return false }
            if up == id { return true }
            guard let next = inodeIndex.position(of: up) else { return false }
            current = next
        }
        return false
    }
}

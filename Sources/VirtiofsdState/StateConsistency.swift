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
        var problems: [ConsistencyProblem] = []
        var byID: [UInt64: Inode] = [:]
        for inode in inodes {
            if byID[inode.id] != nil {
                problems.append(ConsistencyProblem(kind: .duplicateInode, id: inode.id, payloadOffset: inode.payloadOffset, message: "inode id \(inode.id) used twice"))
            } else {
                byID[inode.id] = inode
            }
            let isRoot = inode.location == .root
            if isRoot != (inode.id == Self.rootID) {
                problems.append(ConsistencyProblem(
                    kind: .badRoot, id: inode.id, payloadOffset: inode.payloadOffset,
                    message: isRoot ? "inode \(inode.id) has the root location but not the root id" : "the root inode has a \(inode.location.kind.rawValue) location"))
            }
        }
        if !inodes.isEmpty && byID[Self.rootID] == nil {
            problems.append(ConsistencyProblem(kind: .badRoot, id: Self.rootID, payloadOffset: 0, message: "no root inode (id 1)"))
        }
        for inode in inodes {
            guard case .path(let parent, _) = inode.location else { continue }
            if byID[parent] == nil {
                problems.append(ConsistencyProblem(
                    kind: .missingParent, id: inode.id, payloadOffset: inode.payloadOffset,
                    message: "inode \(inode.id) names parent \(parent), which the state does not hold"))
                continue
            }
            // A cycle through this inode: following parents comes back to it.
            var seen: Set<UInt64> = [inode.id]
            var current = parent
            while let next = byID[current], case .path(let up, _) = next.location {
                guard seen.insert(current).inserted else { break }
                if up == inode.id {
                    problems.append(ConsistencyProblem(
                        kind: .parentCycle, id: inode.id, payloadOffset: inode.payloadOffset,
                        message: "the parent chain of inode \(inode.id) loops back to it"))
                    break
                }
                current = up
            }
        }
        var handleIDs: Set<UInt64> = []
        for handle in handles {
            if !handleIDs.insert(handle.id).inserted {
                problems.append(ConsistencyProblem(kind: .duplicateHandle, id: handle.id, payloadOffset: handle.payloadOffset, message: "handle id \(handle.id) used twice"))
            }
            if byID[handle.inode] == nil {
                problems.append(ConsistencyProblem(
                    kind: .handleOnMissingInode, id: handle.id, payloadOffset: handle.payloadOffset,
                    message: "handle \(handle.id) is open on inode \(handle.inode), which the state does not hold"))
            }
        }
        return problems
    }
}

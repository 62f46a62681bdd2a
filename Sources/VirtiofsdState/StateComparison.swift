import StateStream

extension StateDifference.Subject {
    /// An inode, keyed by its path (or file handle).
    public static let inode = Self(rawValue: "inode")
    /// An open handle, keyed by its id.
    public static let handle = Self(rawValue: "handle")
    /// An entry of V2's mount-path map.
    public static let mountPath = Self(rawValue: "mount-path")
}

extension VirtiofsdState {
    /// How `other` differs from this state, by meaning: the same guest view
    /// serialised in another order or with other ids where ids carry no meaning
    /// compares equal.
    public func differences(to other: VirtiofsdState) -> [StateDifference] {
        fieldDifferences(to: other) + inodeDifferences(to: other) + handleDifferences(to: other) + mountPathDifferences(to: other)
    }

    /// The version, the next ids and the negotiated options.
    private func fieldDifferences(to other: VirtiofsdState) -> [StateDifference] {
        var differences: [StateDifference] = []
        func field<Value: Equatable & CustomStringConvertible>(_ name: String, _ old: Value, _ new: Value) {
            if old != new { differences.append(.init(subject: .field, change: .changed, key: name, detail: "\(old) -> \(new)")) }
        }
        field("version", "V\(version.number)", "V\(other.version.number)")
        field("next_inode", nextInode, other.nextInode)
        field("next_handle", nextHandle, other.nextHandle)
        field("writeback", options.writeback, other.options.writeback)
        field("announce_submounts", options.announceSubmounts, other.options.announceSubmounts)
        field("posix_acl", options.posixACL, other.options.posixACL)
        field("sup_group_extension", options.supplementaryGroupExtension, other.options.supplementaryGroupExtension)
        return differences
    }

    /// Inodes matched by path (or file handle): removed, changed, added.
    private func inodeDifferences(to other: VirtiofsdState) -> [StateDifference] {
        var differences: [StateDifference] = []
        let oldInodes = keyedInodes(), newInodes = other.keyedInodes()
        for (key, inode) in oldInodes.sorted(by: { $0.key < $1.key }) {
            guard let counterpart = newInodes[key] else {
                differences.append(.init(subject: .inode, change: .removed, key: key, detail: "id \(inode.id), refcount \(inode.refcount)"))
                continue
            }
            var changes: [String] = []
            if inode.id != counterpart.id { changes.append("id \(inode.id) -> \(counterpart.id)") }
            if inode.refcount != counterpart.refcount { changes.append("refcount \(inode.refcount) -> \(counterpart.refcount)") }
            if inode.fileHandle != counterpart.fileHandle { changes.append("recorded file handle differs") }
            if !changes.isEmpty {
                differences.append(.init(subject: .inode, change: .changed, key: key, detail: changes.joined(separator: ", ")))
            }
        }
        for (key, inode) in newInodes.sorted(by: { $0.key < $1.key }) where oldInodes[key] == nil {
            differences.append(.init(subject: .inode, change: .added, key: key, detail: "id \(inode.id), refcount \(inode.refcount)"))
        }
        return differences
    }

    /// Handles matched by id: the path they are open on and their flags.
    private func handleDifferences(to other: VirtiofsdState) -> [StateDifference] {
        var differences: [StateDifference] = []
        let oldPaths = InodePaths(self), newPaths = InodePaths(other)
        let oldHandles = Dictionary(handles.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let newHandles = Dictionary(other.handles.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for id in Set(oldHandles.keys).union(newHandles.keys).sorted() {
            switch (oldHandles[id], newHandles[id]) {
            case (let old?, nil):
                differences.append(.init(subject: .handle, change: .removed, key: "\(id)", detail: "on \(oldPaths.display(old.inode)), \(OpenFlags.describe(old.flags))"))
            case (nil, let new?):
                differences.append(.init(subject: .handle, change: .added, key: "\(id)", detail: "on \(newPaths.display(new.inode)), \(OpenFlags.describe(new.flags))"))
            case (let old?, let new?):
                var changes: [String] = []
                let oldPath = oldPaths.display(old.inode), newPath = newPaths.display(new.inode)
                if oldPath != newPath { changes.append("on \(oldPath) -> \(newPath)") }
                if old.flags != new.flags { changes.append("\(OpenFlags.describe(old.flags)) -> \(OpenFlags.describe(new.flags))") }
                if !changes.isEmpty { differences.append(.init(subject: .handle, change: .changed, key: "\(id)", detail: changes.joined(separator: ", "))) }
            case (nil, nil):
                break
            }
        }
        return differences
    }

    /// V2's mount paths, compared as a set.
    private func mountPathDifferences(to other: VirtiofsdState) -> [StateDifference] {
        let oldMounts = Set(mountPaths), newMounts = Set(other.mountPaths)
        return oldMounts.subtracting(newMounts).sorted(by: { $0.mountID < $1.mountID }).map {
            .init(subject: .mountPath, change: .removed, key: "\($0.mountID)", detail: $0.path)
        } + newMounts.subtracting(oldMounts).sorted(by: { $0.mountID < $1.mountID }).map {
            .init(subject: .mountPath, change: .added, key: "\($0.mountID)", detail: $0.path)
        }
    }

    /// Inodes by what identifies them across states: the path, else the file
    /// handle, else (invalid or unresolved) the id.
    private func keyedInodes() -> [String: Inode] {
        let paths = InodePaths(self)
        var keyed: [String: Inode] = [:]
        for inode in inodes {
            let key: String
            switch paths.resolution(inode.id) {
            case .path(let path)?: key = path
            case .fileHandle(let handle)?: key = "<file handle \(handle.mountID):\(handle.handleType):\(handle.bytes.hexString)>"
            default: key = "<\(inode.location.kind.rawValue) inode \(inode.id)>"
            }
            if keyed[key] == nil { keyed[key] = inode }
        }
        return keyed
    }
}

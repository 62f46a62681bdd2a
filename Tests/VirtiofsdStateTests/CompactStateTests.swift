import Testing
import VirtiofsdState

/// The compact form a state of a million inodes is kept in (inspect), and the
/// lookups that replace dictionaries of ids (preflight, retarget).
@Suite struct CompactStateTests {
    /// A tree as a guest leaves it: directories of files, ids ascending, names
    /// `d00012`/`f00034` (6 bytes).
    static func tree(directories: Int, files: Int) -> VirtiofsdState {
        var inodes = [VirtiofsdState.Inode(id: 1, refcount: UInt64(directories + 1), location: .root, payloadOffset: 2)]
        var handles: [VirtiofsdState.Handle] = []
        var id: UInt64 = 2
        for directory in 0..<directories {
            let parent = id
            inodes.append(.init(id: parent, refcount: UInt64(files + 1), location: .path(parent: 1, name: "d\(String(directory + 100_000).dropFirst())"), payloadOffset: Int(id) * 14))
            id += 1
            for file in 0..<files {
                inodes.append(.init(id: id, refcount: 1, location: .path(parent: parent, name: "f\(String(file + 100_000).dropFirst())"), payloadOffset: Int(id) * 14))
                if file == 0 { handles.append(.init(id: UInt64(handles.count + 1), inode: id, flags: 0o100002, payloadOffset: Int(id) * 14 + 1)) }
                id += 1
            }
        }
        return VirtiofsdState(
            version: .v2, inodes: inodes, nextInode: id, handles: handles, nextHandle: UInt64(handles.count + 1),
            options: .init(writeback: true, announceSubmounts: false, posixACL: false, supplementaryGroupExtension: false),
            mountPaths: [.init(mountID: 7, path: "sub")])
    }

    @Test func aCompactStateGivesBackTheStateItKeeps() throws {
        let payload = Self.tree(directories: 30, files: 40).encoded()
        let state = try VirtiofsdState(decoding: payload)
        var decoder = VirtiofsdStateDecoder(compactWithTotalLength: nil)
        for start in stride(from: 0, to: payload.count, by: 1000) { decoder.feed(payload[start..<min(start + 1000, payload.count)]) }
        let compact = try decoder.finishCompact()
        #expect(compact.inodeCount == 1 + 30 * 41)
        #expect(compact.handleCount == 30)
        #expect(compact.state == state)
        #expect(CompactVirtiofsdState(state).state == state)
        #expect(compact.consistencyProblems() == state.consistencyProblems())
        let paths = InodePaths(compact), valuePaths = InodePaths(state)
        #expect(paths.path(1 + 41 * 3 + 1 + 5) == "d00003/f00004")
        #expect(state.inodes.allSatisfy { paths.resolution($0.id) == valuePaths.resolution($0.id) })
    }

    /// Memory that does not grow faster than the state: the compact store takes
    /// the same bytes an inode (its fixed-width columns, 21 bytes, and its
    /// 6-byte name, with at most a doubling's slack) at 50,000 and at 400,000
    /// inodes, where `VirtiofsdState.Inode` values take some 80.
    @Test(arguments: [(500, 99), (4000, 99)])
    func theCompactStoreTakesAFixedNumberOfBytesAnInode(directories: Int, files: Int) {
        let compact = CompactVirtiofsdState(Self.tree(directories: directories, files: files))
        let perInode = Double(compact.bytesUsed) / Double(compact.inodeCount)
        #expect(perInode >= 27 && perInode <= 2 * 27 + 1, "\(perInode) bytes an inode")
    }

    @Test func idsThatDoNotAscendAreFoundAtTheirFirstInode() {
        let state = VirtiofsdState(
            version: .v1,
            inodes: [
                .init(id: 1, refcount: 3, location: .root, payloadOffset: 2), .init(id: 9, refcount: 1, location: .path(parent: 4, name: "b"), payloadOffset: 7),
                .init(id: 4, refcount: 2, location: .path(parent: 1, name: "a"), payloadOffset: 12),
                .init(id: 9, refcount: 1, location: .path(parent: 1, name: "c"), payloadOffset: 17),
            ],
            nextInode: 10, handles: [], nextHandle: 1, options: .init(writeback: false, announceSubmounts: false, posixACL: false, supplementaryGroupExtension: false))
        let paths = InodePaths(state)
        #expect(paths.path(9) == "a/b")
        #expect(paths.path(4) == "a")
        #expect(paths.resolution(5) == nil)
        #expect(paths.display(5) == "<no inode 5>")
        #expect(state.consistencyProblems().map(\.description) == ["duplicate-inode at payload offset 17: inode id 9 used twice"])
    }

    @Test func parentCyclesAreFoundInOneWalk() {
        // 2 -> 3 -> 2 loop; 4 hangs under the loop; 5 is its own parent (virtiofsd's loader says nothing of it either).
        let state = VirtiofsdState(
            version: .v1,
            inodes: [
                .init(id: 1, refcount: 1, location: .root, payloadOffset: 2), .init(id: 2, refcount: 1, location: .path(parent: 3, name: "a"), payloadOffset: 7),
                .init(id: 3, refcount: 1, location: .path(parent: 2, name: "b"), payloadOffset: 12),
                .init(id: 4, refcount: 1, location: .path(parent: 2, name: "c"), payloadOffset: 17),
                .init(id: 5, refcount: 1, location: .path(parent: 5, name: "d"), payloadOffset: 22),
            ],
            nextInode: 6, handles: [], nextHandle: 1, options: .init(writeback: false, announceSubmounts: false, posixACL: false, supplementaryGroupExtension: false))
        #expect(state.consistencyProblems().map(\.description) == [
            "parent-cycle at payload offset 7: the parent chain of inode 2 loops back to it",
            "parent-cycle at payload offset 12: the parent chain of inode 3 loops back to it",
        ])
        let paths = InodePaths(state)
        #expect([2, 3, 4, 5].map { paths.resolution($0) } == Array(repeating: .unresolved, count: 4))
    }
}

import Foundation
import TestSupport
import Testing
import VirtiofsdState

/// `Retargeting` on hand-built V1 and V2 states against a small shared directory:
/// `a/f1`, `a/f2`, `b/`, `c`; the state also names `gone/x/y`, which is missing.
@Suite final class RetargetingTests {
    typealias State = VirtiofsdState
    let scratch: ScratchDirectory
    var share: URL { scratch.url }

    init() throws {
        scratch = try ScratchDirectory("retarget")
        for directory in ["a", "b"] {
            try FileManager.default.createDirectory(at: share.appendingPathComponent(directory), withIntermediateDirectories: true)
        }
        for file in ["a/f1", "a/f2", "c"] { try Data(file.utf8).write(to: share.appendingPathComponent(file)) }
    }

    /// The state, encoded and decoded again so that payload offsets are real.
    static func state(_ version: State.Version, fileHandleInode: Bool = false, recordedHandles: Bool = false) throws -> (State, [UInt8]) {
        let handle = State.FileHandle(mountID: 27, handleType: 1, bytes: [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef])
        var inodes: [State.Inode] = [
            .init(id: 1, refcount: 6, location: .root),
            .init(id: 2, refcount: 3, location: .path(parent: 1, name: "a")),
            .init(id: 3, refcount: 1, location: .path(parent: 2, name: "f1")),
            .init(id: 4, refcount: 2, location: .path(parent: 2, name: "f2")),
            .init(id: 5, refcount: 1, location: .path(parent: 1, name: "b")),
            .init(id: 6, refcount: 2, location: .path(parent: 1, name: "gone")),
            .init(id: 7, refcount: 2, location: .path(parent: 6, name: "x")),
            .init(id: 8, refcount: 1, location: .path(parent: 7, name: "y")),
            .init(id: 10, refcount: 1, location: .path(parent: 1, name: "c")),
        ]
        if fileHandleInode { inodes.append(.init(id: 9, refcount: 1, location: .fileHandle(handle))) }
        if recordedHandles {
            for index in inodes.indices { inodes[index].fileHandle = handle }
        }
        let state = State(
            version: version, inodes: inodes, nextInode: 40,
            handles: [.init(id: 20, inode: 3, flags: 0o100000), .init(id: 21, inode: 7, flags: 0o100002), .init(id: 22, inode: 8, flags: 0)],
            nextHandle: 50, options: .init(writeback: false, announceSubmounts: true, posixACL: false, supplementaryGroupExtension: false),
            mountPaths: version == .v2 ? [.init(mountID: 27, path: ".")] : [])
        let payload = state.encoded()
        return (try State(decoding: payload), payload)
    }

    @Test(arguments: [State.Version.v1, .v2])
    func droppingTakesTheSubtreeItsHandlesAndOneReferencePerChild(version: State.Version) throws {
        let (state, payload) = try Self.state(version, fileHandleInode: version == .v2)
        let result = try Retargeting.retarget(state, sharedDirectory: share.path, request: .init(dropMissing: true))
        // V2's file-handle inode 9 is stale here (a made-up handle): dropped too, with no parent to release.
        #expect(result.state.inodes.map(\.id) == [1, 2, 3, 4, 5, 10])
        #expect(result.state.handles.map(\.id) == [20])
        #expect(result.droppedInodes.map(\.id) == (version == .v2 ? [6, 7, 8, 9] : [6, 7, 8]))
        #expect(result.droppedInodes.map(\.path) == (version == .v2 ? ["gone", "gone/x", "gone/x/y", "<file handle>"] : ["gone", "gone/x", "gone/x/y"]))
        #expect(result.droppedInodes.first?.reason == "Opening gone: No such file or directory")
        #expect(result.droppedHandles.map(\.id) == [21, 22])
        let gone = RetargetResult.DroppedTree(id: 6, path: "gone", reason: "Opening gone: No such file or directory", descendants: 2, handles: 2)
        let stale = RetargetResult.DroppedTree(id: 9, path: "<file handle>", reason: "Opening file handle: Stale file handle", descendants: 0, handles: 0)
        #expect(result.droppedTrees == (version == .v2 ? [gone, stale] : [gone]))
        #expect(result.refcountChanges == [.init(id: 1, path: ".", old: 6, new: 5)])
        #expect(result.uncheckedInodes == [])
        #expect(result.state.version == version)
        #expect(result.state.nextInode == 40 && result.state.nextHandle == 50)
        #expect(result.state.options == state.options)
        #expect(result.state.mountPaths == state.mountPaths)
        #expect(result.check.isClean)

        let written = result.state.encoded()
        try result.verify(written: written, original: payload)
        #expect(written.first == UInt8(version.rawValue))
        // Everything after the root inode, up to the dropped inode 6, is the original's bytes.
        let kept = payload[state.inodes[1].payloadOffset..<state.inodes[5].payloadOffset]
        let new = try State(decoding: written)
        #expect(written[new.inodes[1].payloadOffset..<new.inodes[5].payloadOffset] == kept)
    }

    @Test func withoutDropMissingTheFailuresAreReported() throws {
        let (state, _) = try Self.state(.v2)
        let error = #expect(throws: RetargetError.self) {
            try Retargeting.retarget(state, sharedDirectory: share.path, request: .init())
        }
        guard case .wouldFail(let report)? = error else {
            Issue.record("expected wouldFail, got \(String(describing: error))")
            return
        }
        #expect(report.failingInodes.map(\.id) == [6, 7, 8])
        #expect(report.failingHandles.map(\.id) == [21, 22])
    }

    @Test func renameMovesADirectoryIntoAnotherParentAndItsChildrenFollow() throws {
        try FileManager.default.moveItem(at: share.appendingPathComponent("a"), to: share.appendingPathComponent("b/a2"))
        let (state, payload) = try Self.state(.v1)
        let result = try Retargeting.retarget(
            state, sharedDirectory: share.path, request: .init(renames: [try Rename(parsing: "a=b/a2")], dropMissing: true))
        #expect(result.renamed == [.init(id: 2, oldPath: "a", newPath: "b/a2")])
        #expect(result.state.inodes[1].location == .path(parent: 5, name: "a2"))
        #expect(result.refcountChanges == [
            .init(id: 1, path: ".", old: 6, new: 4),  // a moved away, gone dropped
            .init(id: 5, path: "b", old: 1, new: 2),
        ])
        #expect(result.state.handles.map(\.id) == [20])
        try result.verify(written: result.state.encoded(), original: payload)
        let paths = InodePaths(result.state)
        #expect(paths.display(3) == "b/a2/f1")
        #expect(paths.display(4) == "b/a2/f2")
    }

    @Test func renameInTheSameParentKeepsRefcounts() throws {
        try FileManager.default.moveItem(at: share.appendingPathComponent("c"), to: share.appendingPathComponent("d"))
        let (state, _) = try Self.state(.v2)
        let result = try Retargeting.retarget(state, sharedDirectory: share.path, request: .init(renames: [try Rename(parsing: "./c/=d")], dropMissing: true))
        #expect(result.renamed == [.init(id: 10, oldPath: "c", newPath: "d")])
        #expect(result.refcountChanges == [.init(id: 1, path: ".", old: 6, new: 5)])
    }

    @Test func renameRefusals() throws {
        let (state, _) = try Self.state(.v2)
        func refusal(_ rename: String) -> RetargetError? {
            do {
                _ = try Retargeting.retarget(state, sharedDirectory: share.path, request: .init(renames: [try Rename(parsing: rename)], dropMissing: true))
                return nil
            } catch {
                return error
            }
        }
        #expect(refusal("nothing=b/x") == .renameSourceNotInState("nothing"))
        #expect(refusal("a=b") == .renameTargetInState("b"))
        #expect(refusal("a=nowhere/a") == .renameParentNotInState(new: "nowhere/a", parent: "nowhere"))
        #expect(refusal("a=a/f1/a") == .renameIntoItself(old: "a", new: "a/f1/a"))
        #expect(refusal("a=../a") == .badPath("../a"))
        #expect(refusal("a") == .badPath("a"))
        #expect(refusal(".=x") == .badPath("."))
    }

    /// A file handle that cannot be read on the destination (procfs exports
    /// none: `name_to_handle_at` fails with EOPNOTSUPP) is no mismatch: the
    /// problem names the call's error, and stripping the handles is the hint.
    @Test func aFileHandleThatCannotBeReadIsSaidSo() throws {
        let (state, _) = try Self.state(.v2, recordedHandles: true)
        let report = try PreflightCheck.check(state, sharedDirectory: "/proc")
        #expect(report.fatalProblems.map(\.kind.rawValue) == ["root-file-handle-unreadable"])
        #expect(report.fatalProblems.map(\.id) == [1])
        #expect(report.fatalProblems.map(\.description) == [
            "Inode 1: cannot read its file handle to compare it with the source's: Operation not supported"
        ])
        let error = #expect(throws: RetargetError.self) {
            try Retargeting.retarget(state, sharedDirectory: "/proc", request: .init(dropMissing: true))
        }
        #expect(error?.description.hasSuffix("(--strip-file-handles drops the recorded file handles)") == true)
    }

    @Test func strippingFileHandlesLetsACopyTakeTheState() throws {
        let (state, payload) = try Self.state(.v2, recordedHandles: true)
        let error = #expect(throws: RetargetError.self) {
            try Retargeting.retarget(state, sharedDirectory: share.path, request: .init(dropMissing: true))
        }
        guard case .unloadable(let report)? = error else {
            Issue.record("expected unloadable, got \(String(describing: error))")
            return
        }
        #expect(report.fatalProblems.map(\.kind.rawValue) == ["root-file-handle-differs"])
        #expect(report.fatalProblems.map(\.description) == ["Inode 1 is not the same inode as in the migration source: File handle differs"])
        let result = try Retargeting.retarget(state, sharedDirectory: share.path, request: .init(dropMissing: true, stripFileHandles: true))
        #expect(result.strippedFileHandles == 9)
        #expect(result.state.inodes.allSatisfy { $0.fileHandle == nil })
        try result.verify(written: result.state.encoded(), original: payload)
    }

    @Test func verificationFindsBytesThatAreNotTheIntendedState() throws {
        let (state, payload) = try Self.state(.v2)
        let result = try Retargeting.retarget(state, sharedDirectory: share.path, request: .init(dropMissing: true))
        var written = result.state.encoded()
        // Inode 2's refcount (3) follows its id: make it 4.
        let offset = try State(decoding: written).inodes[1].payloadOffset + 1
        #expect(written[offset] == 3)
        written[offset] = 4
        #expect(throws: RetargetError.verificationFailed("what was written decodes to another state")) {
            try result.verify(written: written, original: payload)
        }
        #expect(throws: RetargetError.self) { try result.verify(written: Array(written.dropLast()), original: payload) }
    }

    /// A kept inode whose original bytes are not what the encoder writes (a
    /// refcount as a two-byte varint, `0x81 0x00`, still 1): the kept inodes
    /// are compared with the original byte for byte, the one in the middle by
    /// its span up to the next inode, the last by its encoding.
    @Test(arguments: [2, 8])
    func verificationFindsAKeptInodeNotWrittenAsInTheOriginal(position: Int) throws {
        let (state, canonical) = try Self.state(.v1)
        let inode = state.inodes[position]
        #expect(inode.refcount == 1 && (position == 8 || state.inodes[position + 1].id == inode.id + 1))
        let refcountOffset = inode.payloadOffset + 1
        #expect(canonical[refcountOffset] == 1)
        let original = Array(canonical[..<refcountOffset]) + [0x81, 0x00] + Array(canonical[(refcountOffset + 1)...])
        let decoded = try State(decoding: original)
        #expect(decoded.content == state.content)
        let result = try Retargeting.retarget(decoded, sharedDirectory: share.path, request: .init(dropMissing: true))
        #expect(result.state.inodes.contains { $0.id == inode.id })
        #expect(throws: RetargetError.verificationFailed("inode \(inode.id) is not byte for byte as in the original")) {
            try result.verify(written: result.state.encoded(), original: original)
        }
    }
}


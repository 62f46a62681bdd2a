import Foundation
import Glibc
import SystemPackage
import TestSupport
import Testing
import VirtiofsdState

/// `PreflightCheck` at library level, on the hand-built states of `RetargetingTests`.
@Suite final class PreflightTests {
    let scratch: ScratchDirectory
    var share: URL { scratch.url }

    init() throws {
        scratch = try ScratchDirectory("preflight")
        for directory in ["a", "b"] {
            try FileManager.default.createDirectory(at: share.appendingPathComponent(directory), withIntermediateDirectories: true)
        }
        for file in ["a/f1", "a/f2", "c"] { try Data(file.utf8).write(to: share.appendingPathComponent(file)) }
    }

    @Test func failuresInLoadOrderWithTheirCauses() throws {
        let (state, _) = try RetargetingTests.state(.v2, fileHandleInode: true)
        let report = try PreflightCheck.check(state, sharedDirectory: share.path)
        #expect(!report.isClean)
        // With mount paths the root loads first, swapped out for the last inode, 9: its made-up
        // file handle (ext4 type 1, inode 0x67452301) opens nothing on this file system.
        #expect(report.failingInodes.map(\.id) == [9, 6, 7, 8])
        #expect(
            report.failingInodes.map(\.cause) == [
                .fileHandleStale(.openFailed(.staleNFSFileHandle)), .openFailed(.noSuchFileOrDirectory), .parentInvalid(6), .parentInvalid(7),
            ])
        #expect(report.failingInodes.map(\.path) == ["<file handle>", "gone", "gone/x", "gone/x/y"])
        #expect(report.failingInodes.first?.reason == "Opening file handle: Stale file handle")
        #expect(report.fileHandleInodes == [.init(id: 9, resolution: .stale(.openFailed(.staleNFSFileHandle)))])
        #expect(report.failingHandles.map(\.id) == [21, 22])
        #expect(report.uncheckedInodes == [])
        #expect(report.fatalProblems.isEmpty)
    }

    @Test func namesAreOpenedAsVirtiofsdOpensThemAndInvalidInodesFail() throws {
        var (state, _) = try RetargetingTests.state(.v1)
        state.inodes.removeAll { [6, 7, 8].contains($0.id) }
        state.handles.removeAll { $0.inode == 7 || $0.inode == 8 }
        state.inodes.append(.init(id: 30, refcount: 1, location: .path(parent: 1, name: "a/f1")))
        state.inodes.append(.init(id: 31, refcount: 1, location: .invalid))
        let report = try PreflightCheck.check(state, sharedDirectory: share.path)
        // A name holding `/` is opened as virtiofsd opens it: a/f1 is there.
        #expect(report.failingInodes.map(\.id) == [31])
        #expect(report.failingInodes.map(\.cause) == [.sentInvalid])
        #expect(report.outsideShare.isEmpty)
    }

    @Test func whatNoDestinationLoadsIsFatal() throws {
        var (state, _) = try RetargetingTests.state(.v1)
        state.inodes.append(state.inodes[2])
        let report = try PreflightCheck.check(state, sharedDirectory: share.path)
        #expect(report.fatalProblems.contains { $0.kind.rawValue == "duplicate-inode" })
        #expect(throws: PreflightError.cannotOpenSharedDirectory(share.path + "/absent", .noSuchFileOrDirectory)) {
            try PreflightCheck.check(state, sharedDirectory: share.path + "/absent")
        }
    }

    /// A root that holds `rootRefcount` and `children` files under it, all of which exist.
    private func flatState(rootRefcount: UInt64, children: Int, handleOnRoot: Bool = false) throws -> VirtiofsdState {
        var inodes: [VirtiofsdState.Inode] = [.init(id: 1, refcount: rootRefcount, location: .root, payloadOffset: 10)]
        for index in 0..<children {
            let name = "child-\(index)"
            try Data(name.utf8).write(to: share.appendingPathComponent(name))
            inodes.append(.init(id: UInt64(2 + index), refcount: 1, location: .path(parent: 1, name: name), payloadOffset: 20 + index))
        }
        return VirtiofsdState(
            version: .v1, inodes: inodes, nextInode: UInt64(2 + children),
            handles: handleOnRoot ? [.init(id: 5, inode: 1, flags: 0o200000, payloadOffset: 900)] : [], nextHandle: 6,
            options: .init(writeback: false, announceSubmounts: false, posixACL: false, supplementaryGroupExtension: false),
            mountPaths: [])
    }

    /// virtiofsd 1.13, measured: a root with refcount 2 and 20 children is refused in both
    /// modes (`Unresolved references between serialized inodes`): each loaded child takes one
    /// of the root's references, and at zero the root leaves the inode store.
    @Test func refcountsDrainAsChildrenLoad() throws {
        let report = try PreflightCheck.check(flatState(rootRefcount: 2, children: 20), sharedDirectory: share.path)
        #expect(!report.isClean)
        #expect(report.failingInodes.isEmpty)
        #expect(report.drainedInodes == [1])
        #expect(report.fatalProblems.map(\.kind.rawValue) == ["unresolved-references"])
        #expect(report.fatalProblems.map(\.description) == [
            "Unresolved references between serialized inodes: 18 inodes wait for parents that never load "
                + "(inode 1 left the inode store when its refcount reached zero as its children loaded)"
        ])
    }

    /// Measured too: with exactly as many references as children the state loads, and the
    /// root is gone afterwards; with one more it stays.
    @Test func aRefcountUsedUpByItsLastChildLoadsButTheInodeIsGone() throws {
        let exact = try PreflightCheck.check(flatState(rootRefcount: 2, children: 2), sharedDirectory: share.path)
        #expect(exact.isClean)
        #expect(exact.fatalProblems.isEmpty)
        #expect(exact.drainedInodes == [1])
        let more = try PreflightCheck.check(flatState(rootRefcount: 21, children: 20), sharedDirectory: share.path)
        #expect(more.isClean)
        #expect(more.drainedInodes.isEmpty)
    }

    /// A handle on an inode that left the store cannot be reopened: `Inode N not found`.
    @Test func aHandleOnADrainedInodeIsFatal() throws {
        let report = try PreflightCheck.check(flatState(rootRefcount: 2, children: 2, handleOnRoot: true), sharedDirectory: share.path)
        #expect(report.fatalProblems.map(\.kind.rawValue) == ["handle-on-drained-inode"])
        #expect(report.fatalProblems.map(\.id) == [5])
        #expect(report.fatalProblems.map(\.payloadOffset) == [900])
    }

    /// Handles are reopened from their inodes with their recorded flags, as virtiofsd does:
    /// a file that became a directory fails for write flags (EISDIR) but not for reading,
    /// and a name that is now a symbolic link is no regular file or directory (EBADF).
    @Test func handlesAreReopenedWithTheirFlags() throws {
        for name in ["now-a-directory", "read-directory"] {
            try FileManager.default.createDirectory(at: share.appendingPathComponent(name), withIntermediateDirectories: true)
        }
        try FileManager.default.createSymbolicLink(atPath: share.appendingPathComponent("now-a-link").path, withDestinationPath: "c")
        let inodes: [VirtiofsdState.Inode] = [
            .init(id: 1, refcount: 9, location: .root),
            .init(id: 2, refcount: 1, location: .path(parent: 1, name: "now-a-directory")),
            .init(id: 3, refcount: 1, location: .path(parent: 1, name: "read-directory")),
            .init(id: 4, refcount: 1, location: .path(parent: 1, name: "now-a-link")),
            .init(id: 5, refcount: 1, location: .path(parent: 1, name: "c")),
        ]
        let state = VirtiofsdState(
            version: .v1, inodes: inodes, nextInode: 6,
            handles: [
                .init(id: 10, inode: 2, flags: O_WRONLY), .init(id: 11, inode: 3, flags: O_RDONLY | O_DIRECTORY),
                .init(id: 12, inode: 4, flags: O_RDONLY), .init(id: 13, inode: 5, flags: O_RDWR | O_TRUNC | O_CREAT),
            ],
            nextHandle: 14, options: .init(writeback: false, announceSubmounts: false, posixACL: false, supplementaryGroupExtension: false),
            mountPaths: [])
        let before = try Data(contentsOf: share.appendingPathComponent("c"))
        let report = try PreflightCheck.check(state, sharedDirectory: share.path)
        #expect(report.failingInodes.isEmpty)
        #expect(report.failingHandles.map(\.id) == [10, 12])
        #expect(report.failingHandles.map(\.cause) == [.reopenFailed(.isDirectory), .reopenFailed(.badFileDescriptor)])
        #expect(report.failingHandles.first?.reason == "Opening inode 2 (now-a-directory) as handle 10: Is a directory")
        // O_TRUNC and O_CREAT are never passed on: the file is as it was.
        #expect(try Data(contentsOf: share.appendingPathComponent("c")) == before)

        let result = try Retargeting.retarget(state, sharedDirectory: share.path, request: .init(dropMissing: true))
        #expect(result.droppedHandles.map(\.id) == [10, 12])
        #expect(result.droppedInodes.isEmpty)
        #expect(result.state.handles.map(\.id) == [11, 13])
        #expect(throws: RetargetError.self) { try Retargeting.retarget(state, sharedDirectory: share.path, request: .init()) }
    }

    /// Names go to openat as they are: `.` is the parent, `..` its parent, `a/f1` a path; a
    /// name that leaves the shared directory (`..` under the root, a symbolic link out) is
    /// a security finding, never opened, and so is everything under it.
    @Test func namesThatLeaveTheShareAreFoundNotOpened() throws {
        try FileManager.default.createSymbolicLink(atPath: share.appendingPathComponent("escape").path, withDestinationPath: "/etc")
        let inodes: [VirtiofsdState.Inode] = [
            .init(id: 1, refcount: 9, location: .root),
            .init(id: 2, refcount: 3, location: .path(parent: 1, name: "a")),
            .init(id: 3, refcount: 1, location: .path(parent: 2, name: ".")),
            .init(id: 4, refcount: 1, location: .path(parent: 2, name: "../c")),
            .init(id: 5, refcount: 2, location: .path(parent: 1, name: "..")),
            .init(id: 6, refcount: 1, location: .path(parent: 5, name: "etc")),
            .init(id: 7, refcount: 1, location: .path(parent: 1, name: "escape/passwd")),
            .init(id: 8, refcount: 1, location: .path(parent: 1, name: "")),
        ]
        let state = VirtiofsdState(
            version: .v1, inodes: inodes, nextInode: 9, handles: [.init(id: 1, inode: 6, flags: O_RDONLY)], nextHandle: 2,
            options: .init(writeback: false, announceSubmounts: false, posixACL: false, supplementaryGroupExtension: false), mountPaths: [])
        let report = try PreflightCheck.check(state, sharedDirectory: share.path)
        #expect(report.outsideShare.sorted() == [5, 6, 7])
        #expect(report.failingInodes.map(\.id) == [8])
        #expect(report.failingInodes.map(\.cause) == [.openFailed(.noSuchFileOrDirectory)])
        #expect(report.failingHandles.isEmpty)
    }
}

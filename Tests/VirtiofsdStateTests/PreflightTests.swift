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
        #expect(report.failingInodes.map(\.id) == [6, 7, 8])
        #expect(report.failingInodes.map(\.cause) == [.openFailed(.noSuchFileOrDirectory), .parentInvalid(6), .parentInvalid(7)])
        #expect(report.failingInodes.map(\.path) == ["gone", "gone/x", "gone/x/y"])
        #expect(report.failingHandles.map(\.id) == [21, 22])
        #expect(report.uncheckedInodes == [9])
        #expect(report.fatalProblems.isEmpty)
    }

    @Test func namesThatAreNoSingleEntryAndInvalidInodesFail() throws {
        var (state, _) = try RetargetingTests.state(.v1)
        state.inodes.removeAll { [6, 7, 8].contains($0.id) }
        state.handles.removeAll { $0.inode == 7 || $0.inode == 8 }
        state.inodes.append(.init(id: 30, refcount: 1, location: .path(parent: 1, name: "a/f1")))
        state.inodes.append(.init(id: 31, refcount: 1, location: .invalid))
        let report = try PreflightCheck.check(state, sharedDirectory: share.path)
        // In virtiofsd's order: each loaded inode is swapped with the last, so 31 comes before 30.
        #expect(report.failingInodes.map(\.id) == [31, 30])
        #expect(report.failingInodes.map(\.cause) == [.sentInvalid, .unsafeName])
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
}

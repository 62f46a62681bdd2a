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
}

import Foundation
import SystemCalls
import SystemPackage
import TestSupport
import Testing
import VirtiofsdState

/// File-handle inodes at library level: `PreflightCheck` and `Retargeting` with handles taken
/// here (`name_to_handle_at`) from an "original" share, checked against it and a copy of it.
@Suite final class FileHandleResolutionTests {
    typealias State = VirtiofsdState
    let scratch: ScratchDirectory
    var original: String { scratch.path("original") }
    var copy: String { scratch.path("copy") }

    init() throws {
        scratch = try ScratchDirectory("file-handles")
        let files = FileManager.default
        for share in [original, copy] {
            try files.createDirectory(atPath: share + "/a/b", withIntermediateDirectories: true)
            for file in ["a/b/c", "top"] { try Data(file.utf8).write(to: URL(fileURLWithPath: share + "/" + file)) }
        }
    }

    /// The file handle of `path`, as a state records it on mount 27.
    private func handle(_ path: String) throws -> State.FileHandle {
        let opened = try Files.open(path, .readOnly)
        let found = try Files.handle(of: opened.descriptor)
        return State.FileHandle(mountID: 27, handleType: found.type, bytes: found.bytes)
    }

    /// A file-handles state of `paths` in `original` (ids from 2), the root with `rootRefcount`.
    private func state(_ paths: [String], rootRefcount: UInt64 = 1, mountPath: String = ".", extra: [State.Inode] = []) throws -> State {
        var inodes: [State.Inode] = [.init(id: 1, refcount: rootRefcount, location: .root)]
        for (index, path) in paths.enumerated() {
            inodes.append(.init(id: UInt64(index + 2), refcount: 1, location: .fileHandle(try handle(original + "/" + path))))
        }
        let state = State(
            version: .v2, inodes: inodes + extra, nextInode: 100, handles: [.init(id: 7, inode: 3, flags: 0o100000)], nextHandle: 8,
            options: .init(writeback: false, announceSubmounts: false, posixACL: false, supplementaryGroupExtension: false),
            mountPaths: [.init(mountID: 27, path: mountPath)])
        return try State(decoding: state.encoded())
    }

    @Test func handlesResolveUnderTheShareTheyWereTakenIn() throws {
        let report = try PreflightCheck.check(try state(["a", "a/b/c", "top"]), sharedDirectory: original)
        #expect(report.isClean)
        // The root first, swapped out for the last (4); each loaded one swapped out for the last again.
        #expect(report.fileHandleInodes == [
            .init(id: 4, resolution: .resolving(path: "top")), .init(id: 3, resolution: .resolving(path: "a/b/c")),
            .init(id: 2, resolution: .resolving(path: "a")),
        ])
        #expect(report.failingHandles.isEmpty)
        #expect(report.descriptorsNeeded == 5)  // the root and three inodes (no inode file handles), the handle reopened
    }

    @Test func onACopyTheyOpenTheOriginalsOutsideIt() throws {
        let report = try PreflightCheck.check(try state(["a", "a/b/c", "top"]), sharedDirectory: copy)
        #expect(!report.isClean)
        #expect(report.failingInodes.isEmpty && report.failingHandles.isEmpty && report.fatalProblems.isEmpty)
        #expect(report.fileHandlesOutsideShare == [
            .init(id: 4, resolution: .outsideShare(path: original + "/top")), .init(id: 3, resolution: .outsideShare(path: original + "/a/b/c")),
            .init(id: 2, resolution: .outsideShare(path: original + "/a")),
        ])
    }

    @Test func aHardLinkUnderTheShareMakesTheFileResolveThere() throws {
        // The file's first name is outside the copy; a second one is inside it.
        try FileManager.default.linkItem(atPath: original + "/top", toPath: copy + "/a/linked")
        let report = try PreflightCheck.check(try state(["top"]), sharedDirectory: copy)
        #expect(report.fileHandleInodes == [.init(id: 2, resolution: .resolving(path: "a/linked"))])
    }

    @Test func deletedUnknownAndOverlongHandlesAreStaleInVirtiofsdsWords() throws {
        let overlong = State.Inode(id: 5, refcount: 1, location: .fileHandle(.init(mountID: 27, handleType: 1, bytes: Array(repeating: 0, count: 129))))
        let elsewhere = State.Inode(id: 6, refcount: 1, location: .fileHandle(.init(mountID: 99, handleType: 1, bytes: [1, 2, 3, 4, 5, 6, 7, 8])))
        let state = try state(["a", "a/b/c"], extra: [overlong, elsewhere])
        try FileManager.default.removeItem(atPath: original + "/a/b/c")
        let report = try PreflightCheck.check(state, sharedDirectory: original)
        #expect(report.failingInodes.map(\.id) == [6, 5, 3])
        #expect(report.failingInodes.map(\.reason) == ["Unknown mount ID 99", "File handle too long", "Opening file handle: Stale file handle"])
        #expect(report.failingHandles.map(\.id) == [7])
        #expect(report.fileHandleInodes.first { $0.id == 2 }?.resolution == .resolving(path: "a"))
    }

    @Test func aMountPathOutsideTheShareIsNotOpened() throws {
        let report = try PreflightCheck.check(try state(["top"], mountPath: ".."), sharedDirectory: original)
        #expect(report.uncheckedInodes == [2])
        #expect(report.fileHandleInodes == [.init(id: 2, resolution: .unchecked(.improperLink))])
    }

    @Test func handlesBecomePathsUnderTheDeepestInodeAboveThem() throws {
        // `a` is a file-handle inode too; `a/b` is none, so `a/b/c` becomes "b/c" in `a`.
        let original = try state(["a", "a/b/c", "top"])
        let result = try Retargeting.retarget(original, sharedDirectory: copy, request: .init(handlesToPaths: self.original))
        #expect(result.convertedInodes == [
            .init(id: 2, path: "a", parent: 1, name: "a"), .init(id: 3, path: "a/b/c", parent: 2, name: "b/c"),
            .init(id: 4, path: "top", parent: 1, name: "top"),
        ])
        #expect(result.state.inodes.map(\.location) == [.root, .path(parent: 1, name: "a"), .path(parent: 2, name: "b/c"), .path(parent: 1, name: "top")])
        // One reference per child, taken again by the load.
        #expect(result.state.inodes.map(\.refcount) == [3, 2, 1, 1])
        #expect(result.state.mountPaths.isEmpty)
        #expect(result.check.isClean)
        #expect(result.check.fileHandleInodes.isEmpty)
        try result.verify(written: result.state.encoded(), original: original.encoded())
    }

    @Test func aHandleOutsideTheSourceIsRefusedWithItsIdOrDropped() throws {
        let state = try state(["a", "top"])
        #expect(throws: RetargetError.fileHandleNotInSource(id: 2, source: copy, resolution: .outsideShare(path: original + "/a"))) {
            try Retargeting.retarget(state, sharedDirectory: copy, request: .init(handlesToPaths: self.copy))
        }
        let error = RetargetError.fileHandleNotInSource(id: 2, source: copy, resolution: .outsideShare(path: original + "/a"))
        #expect(error.description == "--handles-to-paths: the file handle of inode 2 opens \(original)/a, outside \(copy) (--drop-missing drops it)")
        let dropped = try Retargeting.retarget(state, sharedDirectory: copy, request: .init(dropMissing: true, handlesToPaths: copy))
        #expect(dropped.droppedInodes == [
            .init(id: 2, path: "<file handle>", reason: "the file handle of inode 2 opens \(original)/a, outside \(copy)"),
            .init(id: 3, path: "<file handle>", reason: "the file handle of inode 3 opens \(original)/top, outside \(copy)"),
        ])
        #expect(dropped.state.inodes.map(\.id) == [1])
        #expect(dropped.state.handles.isEmpty)
    }

    @Test func retargetWithoutTheConversionRefusesHandlesOutsideTheShare() throws {
        let state = try state(["a", "top"])
        do {
            _ = try Retargeting.retarget(state, sharedDirectory: copy, request: .init(dropMissing: true))
            Issue.record("retarget took a state whose handles open files outside the share")
        } catch {
            #expect(error.description == "2 inodes located by file handle resolve outside the shared directory, inode 3 at \(original)/top first: "
                + "the load would serve the guest those files (--handles-to-paths SOURCE_DIR turns them into path inodes)")
        }
    }

    @Test func aDestinationWithoutDACReadSearchFailsEveryHandleThatWouldOpen() throws {
        let state = try state(["a", "a/b/c"], extra: [.init(id: 6, refcount: 1, location: .fileHandle(.init(mountID: 99, handleType: 1, bytes: [1])))])
        let plain = try DestinationConfiguration(arguments: ["--sandbox=none", "--modcaps=+sys_admin"])
        #expect(!plain.opensFileHandles)
        let report = try PreflightCheck.check(state, sharedDirectory: original, destination: plain)
        #expect(report.failingInodes.map(\.id) == [6, 3, 2])
        #expect(report.failingInodes.map(\.reason) == ["Unknown mount ID 99", "Opening file handle: Operation not permitted", "Opening file handle: Operation not permitted"])
        for arguments in [["--modcaps=+dac_read_search"], ["--modcaps", "-chown:+DAC_READ_SEARCH"], ["--inode-file-handles=prefer"]] {
            let able = try DestinationConfiguration(arguments: arguments)
            #expect(able.opensFileHandles, "\(arguments)")
            #expect(try PreflightCheck.check(state, sharedDirectory: original, destination: able).failingInodes.map(\.id) == [6])
        }
        #expect(!(try DestinationConfiguration(arguments: ["--modcaps=+dac_read_search:-dac_read_search"])).opensFileHandles)
    }

    @Test func fileHandleInodesTakeTheGuestsDescriptorsAsTheyLoad() throws {
        // 609 + 1 reserved, 2 for the guest: the root and the first inode met (4) take them.
        let limited = try DestinationConfiguration(arguments: ["--modcaps=+dac_read_search", "--rlimit-nofile=612"])
        for share in [original, copy] {
            let report = try PreflightCheck.check(try state(["a", "a/b/c", "top"]), sharedDirectory: share, destination: limited)
            #expect(report.failingInodes.map(\.id) == [3, 2], "\(share)")
            #expect(report.failingInodes.map(\.reason) == ["Opening <file handle>: Too many open files in system", "Opening <file handle>: Too many open files in system"])
        }
    }
}

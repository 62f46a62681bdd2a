import Foundation
import SystemCalls
import SystemPackage
import TestSupport
import Testing

/// The typed system layer: ownership closes each descriptor once, errors name
/// their call and errno, waits are bounded.
@Suite struct SystemCallsTests {
    /// What `descriptor` refers to (`pipe:[inode]`), unique while it is open:
    /// tests running alongside may reuse the number, never the pipe.
    private func identity(_ descriptor: FileDescriptor) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(descriptor.rawValue)")
    }

    @Test func anOwnedDescriptorClosesWhenItsOwnerLetsGo() throws {
        var raw = FileDescriptor(rawValue: -1)
        var pipe: String?
        do {
            let ends = try Pipes.make()
            raw = ends.read.descriptor
            pipe = identity(raw)
            #expect(pipe?.hasPrefix("pipe:") == true)
        }
        #expect(identity(raw) != pipe)
    }

    @Test func releasingHandsTheDescriptorOnOpen() throws {
        let ends = try Pipes.make()
        let raw = ends.read.release()
        let pipe = identity(raw)
        #expect(pipe?.hasPrefix("pipe:") == true)
        try OwnedDescriptor(taking: raw).close()
        #expect(identity(raw) != pipe)
    }

    @Test func aFailedCallNamesItselfAndItsErrno() throws {
        #expect(throws: SystemCallError("open", .noSuchFileOrDirectory)) {
            _ = try Files.openPathDirectory("/nonexistent-\(UUID().uuidString)")
        }
        #expect(SystemCallError("splice", .brokenPipe).description == "splice failed: Broken pipe")
    }

    @Test func aWaitForAQuietPipeEndsAtItsTimeout() throws {
        let ends = try Pipes.make()
        #expect(try Readiness.wait(for: .readable, on: ends.read.descriptor, timeout: .milliseconds(50)) == false)
        _ = try ends.write.descriptor.writeAll([1])
        #expect(try Readiness.wait(for: .readable, on: ends.read.descriptor, timeout: .seconds(5)))
    }

    @Test func spliceMovesAFileRangeIntoAPipe() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("statetool-splice-\(UUID().uuidString)").path
        defer { try? Files.unlink(path) }
        try Data("0123456789".utf8).write(to: URL(fileURLWithPath: path))
        let file = try Files.open(path, .readOnly)
        let ends = try Pipes.make()
        var offset: Int64 = 3
        #expect(try Pipes.splice(from: file.descriptor, offset: &offset, into: ends.write.descriptor, count: 4) == 4)
        #expect(offset == 7)
        var buffer = [UInt8](repeating: 0, count: 4)
        #expect(try buffer.withUnsafeMutableBytes { try ends.read.descriptor.readSome(into: $0) } == 4)
        #expect(buffer == Array("3456".utf8))
    }

    @Test func aTableClosesWhatItReplacesAndWhatItHolds() throws {
        var second = FileDescriptor(rawValue: -1)
        var secondPipe: String?
        do {
            let table = DescriptorTable<Int>()
            let a = try Pipes.make()
            let b = try Pipes.make()
            let first = a.read.descriptor
            let firstPipe = identity(first)
            second = b.read.descriptor
            secondPipe = identity(second)
            table.insert(a.read, for: 1)
            table.insert(b.read, for: 1)
            #expect(identity(first) != firstPipe)
            #expect(table[1] == second)
            #expect(table.count == 1)
        }
        #expect(identity(second) != secondPipe)
    }

    @Test func socketsConnectListenAndAccept() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("st-\(UUID().uuidString.prefix(8)).sock").path
        defer { try? Files.unlink(path) }
        let listening = try UnixSocket.stream()
        try UnixSocket.listen(listening, at: path)
        #expect(Files.type(at: path) == .socket)
        let client = try UnixSocket.stream()
        try UnixSocket.connect(client, to: path)
        let accepted = try UnixSocket.accept(listening)
        #expect(try [UInt8](repeating: 7, count: 3).withUnsafeBytes { try UnixSocket.send(client.descriptor, $0, attaching: []) } == 3)
        var buffer = [UInt8](repeating: 0, count: 8)
        let received = try buffer.withUnsafeMutableBytes { try UnixSocket.receive(accepted.descriptor, into: $0) }
        #expect(received.count == 3)
        #expect(received.descriptors.isEmpty)
        #expect(throws: SystemCallError("connect", .fileNameTooLong)) {
            try UnixSocket.connect(try UnixSocket.stream(), to: "/" + String(repeating: "x", count: 200))
        }
    }

    @Test func aFileHandleOpensItsFileWhereverItIsOnTheFileSystem() throws {
        try ScratchDirectory.using("handles") { scratch in
            try FileManager.default.createDirectory(atPath: scratch.path("share/sub"), withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: scratch.path("elsewhere"), withIntermediateDirectories: true)
            try Data("x".utf8).write(to: scratch.url("share/sub/file"))
            let file = try Files.open(scratch.path("share/sub/file"), .readOnly)
            let handle = try Files.handle(of: file.descriptor)
            // A mount descriptor anywhere on the file system opens it, at its own place.
            let mount = try Files.open(scratch.path("elsewhere"), .readOnly)
            let opened = try Files.openPath(by: handle, onFileSystemOf: mount.descriptor)
            #expect(try Files.location(of: opened.descriptor) == scratch.path("share/sub/file"))
            #expect(try Files.identity(of: opened.descriptor) == Files.identity(of: file.descriptor))
            #expect(try Files.kind(of: opened.descriptor) == .regular)
            // An O_PATH mount descriptor cannot be used; a deleted file's handle is stale.
            let pathOnly = try Files.openPathDirectory(scratch.path("elsewhere"))
            #expect(throws: SystemCallError("open_by_handle_at", .badFileDescriptor)) {
                _ = try Files.openPath(by: handle, onFileSystemOf: pathOnly.descriptor)
            }
            try FileManager.default.removeItem(atPath: scratch.path("share/sub/file"))
            _ = consume file
            _ = consume opened
            #expect(throws: SystemCallError("open_by_handle_at", .staleNFSFileHandle)) {
                _ = try Files.openPath(by: handle, onFileSystemOf: mount.descriptor)
            }
            #expect(throws: SystemCallError("open_by_handle_at", .invalidArgument)) {
                _ = try Files.openPath(by: Files.Handle(type: handle.type, bytes: Array(repeating: 0, count: 129)), onFileSystemOf: mount.descriptor)
            }
        }
    }

    /// More pieces than one `pwritev` takes (1,024), an empty one among
    /// them, land one after the other at the offset; what was there before
    /// the offset stays, and the file position does not move.
    @Test func piecesApartInMemoryAreWrittenSideBySide() throws {
        try ScratchDirectory.using("pieces") { scratch in
            let path = scratch.path("out")
            try Data("head".utf8).write(to: scratch.url("out"))
            let source = (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
            var expected = Array("head".utf8) + [UInt8](repeating: 0, count: 6)
            try source.withUnsafeBytes { bytes in
                // Two bytes of every three, as a run's pages sit between their record headers.
                var pieces = stride(from: 0, to: bytes.count, by: 3).map { UnsafeRawBufferPointer(rebasing: bytes[$0..<$0 + 2]) }
                pieces.insert(UnsafeRawBufferPointer(rebasing: bytes[0..<0]), at: 5)
                for piece in pieces { expected += piece }
                let file = try Files.open(path, .writeOnly)
                try Files.writeAll(pieces, to: file.descriptor, at: 10)
                #expect(try file.descriptor.seek(offset: 0, from: .current) == 0)
            }
            #expect([UInt8](try Data(contentsOf: scratch.url("out"))) == expected)
        }
    }

    @Test func aDirectoryIsReadAnEntryAtATimeUntilTheCallerStops() throws {
        try ScratchDirectory.using("entries") { scratch in
            try FileManager.default.createDirectory(atPath: scratch.path("dir/sub"), withIntermediateDirectories: true)
            try Data("x".utf8).write(to: scratch.url("dir/file"))
            let directory = try Files.openPathDirectory(scratch.path("dir"))
            var entries: [Files.DirectoryEntry] = []
            try Files.forEachEntry(in: directory.descriptor) { entries.append($0); return true }
            let file = try Files.openPath("file", in: directory.descriptor), sub = try Files.openPath("sub", in: directory.descriptor)
            #expect(entries.sorted { $0.name < $1.name } == [
                .init(name: "file", inode: try Files.identity(of: file.descriptor).inode, isDirectory: false),
                .init(name: "sub", inode: try Files.identity(of: sub.descriptor).inode, isDirectory: true),
            ])
            var seen = 0
            try Files.forEachEntry(in: directory.descriptor) { _ in seen += 1; return false }
            #expect(seen == 1)
            #expect(throws: SystemCallError("open", .notDirectory)) {
                try Files.forEachEntry(in: file.descriptor) { _ in true }
            }
        }
    }
}

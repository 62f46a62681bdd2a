import Foundation
import TestSupport
import StateStream
import Testing
import VirtiofsdState

/// The payload of a fixture stream, `Tests/Fixtures/qemu-virtiofsd/state/NAME.state`.
func fixturePayload(_ name: String) throws -> [UInt8] {
    let path = Repository.fixtureState(name)
    let sink = ByteArraySink()
    _ = try StreamTransforms.extractPayload(of: StateStreamInput(path: path), to: sink)
    return sink.bytes
}

/// Postcard bytes written by hand, independently of the encoder under test.
enum Postcard {
    static func varint(_ value: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        var rest = value
        repeat {
            out.append(UInt8(rest & 0x7f) | (rest >= 0x80 ? 0x80 : 0))
            rest >>= 7
        } while rest > 0
        return out
    }

    static func string(_ text: String) -> [UInt8] { varint(UInt64(text.utf8.count)) + Array(text.utf8) }

    static func zigzag(_ value: Int32) -> [UInt8] { varint(UInt64(UInt32(bitPattern: (value << 1) ^ (value >> 31)))) }
}

@Suite struct VirtiofsdStateTests {
    struct Expected: Sendable {
        let name: String
        let inodes: Int
        let handles: Int
        let nextInode: UInt64
        let nextHandle: UInt64
        let withFileHandle: Int
        let fileHandleLocations: Int
        let mountPaths: [VirtiofsdState.MountPath]
    }

    static let captures = [
        Expected(name: "s1-A-running", inodes: 5222, handles: 200, nextInode: 5399, nextHandle: 1084, withFileHandle: 0, fileHandleLocations: 0, mountPaths: []),
        Expected(name: "s1-B-stopped-nochange", inodes: 5222, handles: 200, nextInode: 5399, nextHandle: 1084, withFileHandle: 0, fileHandleLocations: 0, mountPaths: []),
        Expected(name: "s1-C-relookup", inodes: 5222, handles: 200, nextInode: 5399, nextHandle: 1086, withFileHandle: 0, fileHandleLocations: 0, mountPaths: []),
        Expected(name: "s1-D-more-open", inodes: 5228, handles: 205, nextInode: 5405, nextHandle: 1091, withFileHandle: 0, fileHandleLocations: 0, mountPaths: []),
        Expected(name: "s1-E-resaved-on-dst", inodes: 5222, handles: 200, nextInode: 5399, nextHandle: 1084, withFileHandle: 0, fileHandleLocations: 0, mountPaths: []),
        Expected(name: "s2-verify-handles", inodes: 5222, handles: 200, nextInode: 5399, nextHandle: 1084, withFileHandle: 5222, fileHandleLocations: 0, mountPaths: []),
        Expected(name: "s3-file-handles", inodes: 5222, handles: 200, nextInode: 5399, nextHandle: 1084, withFileHandle: 0, fileHandleLocations: 5221, mountPaths: [.init(mountID: 27, path: ".")]),
    ]

    @Test(arguments: captures)
    func realStatesDecodeAndReencodeByteForByte(expected: Expected) throws {
        let payload = try fixturePayload(expected.name)
        #expect(VirtiofsdState.looksLikeState(payload))
        let state = try VirtiofsdState(decoding: payload)
        #expect(state.version == .v2)
        #expect(state.inodes.count == expected.inodes)
        #expect(state.handles.count == expected.handles)
        #expect(state.nextInode == expected.nextInode)
        #expect(state.nextHandle == expected.nextHandle)
        #expect(state.inodes.filter { $0.fileHandle != nil }.count == expected.withFileHandle)
        #expect(state.inodes.filter { $0.location.kind == .fileHandle }.count == expected.fileHandleLocations)
        #expect(state.inodes.first?.location == .root && state.inodes.first?.id == 1)
        #expect(state.mountPaths == expected.mountPaths)
        #expect(state.options == .init(writeback: false, announceSubmounts: true, posixACL: false, supplementaryGroupExtension: false))
        #expect(state.consistencyProblems() == [])
        #expect(state.encoded() == payload)
    }

    @Test func pathsFollowParentChains() throws {
        let state = try VirtiofsdState(decoding: fixturePayload("s1-A-running"))
        let paths = InodePaths(state)
        #expect(paths.display(1) == ".")
        let tree = try #require(state.inodes.first { $0.location == .path(parent: 1, name: "tree") })
        #expect(tree.refcount == 23)
        #expect(paths.display(12) == "tree/d07")
        let resolved = state.inodes.compactMap { inode -> String? in
            if case .path(let path)? = paths.resolution(inode.id) { return path } else { return nil }
        }
        #expect(resolved.count == 5222)
        #expect(resolved.filter { $0.hasPrefix("tree/d07/") || $0 == "tree/d07" }.count == 261)
        #expect(Set(state.handles.map(\.flags)) == [0x8000])
        #expect(OpenFlags.describe(0x8000) == "O_RDONLY|O_LARGEFILE")
        #expect(OpenFlags.describe(0o200000 | 0o2000000) == "O_RDONLY|O_DIRECTORY|O_CLOEXEC")
        #expect(OpenFlags.describe(2 | 0o40000000) == "O_RDWR|0x800000")
    }

    /// V1 and V2 with every location kind, written by hand.
    @Test func everyLocationKindDecodesAndRoundTrips() throws {
        let fileHandle = Postcard.varint(27) + Postcard.zigzag(-2) + Postcard.varint(3) + [0xde, 0xad, 0x01]
        let inodes: [UInt8] = Postcard.varint(5)
            + Postcard.varint(1) + Postcard.varint(3) + [0] + [0]
            + Postcard.varint(2) + Postcard.varint(1) + [1] + Postcard.varint(1) + Postcard.string("dir") + [1] + fileHandle
            + Postcard.varint(300) + Postcard.varint(1) + [2] + [0]
            + Postcard.varint(301) + Postcard.varint(1) + [3] + Postcard.string("dir/file") + [0]
            + Postcard.varint(70000) + Postcard.varint(1) + [4] + fileHandle + [0]
        let handles: [UInt8] = Postcard.varint(1) + Postcard.varint(9) + Postcard.varint(301) + [0] + Postcard.zigzag(0x8002)
        let body = inodes + Postcard.varint(70001) + handles + Postcard.varint(10) + [1, 0, 1, 0]
        let v1 = [0] + body
        let v2 = [1] + body + Postcard.varint(2) + Postcard.varint(27) + Postcard.string(".") + Postcard.varint(5) + Postcard.string("sub")

        let state1 = try VirtiofsdState(decoding: v1)
        #expect(state1.version == .v1)
        let handle = VirtiofsdState.FileHandle(mountID: 27, handleType: -2, bytes: [0xde, 0xad, 0x01])
        #expect(state1.inodes.map(\.location) == [
            .root, .path(parent: 1, name: "dir"), .invalid, .fullPath("dir/file"), .fileHandle(handle),
        ])
        #expect(state1.inodes[1].fileHandle == handle)
        #expect(state1.inodes.map(\.payloadOffset) == [2, 6, 21, 26, 40])
        #expect(state1.handles == [.init(id: 9, inode: 301, flags: 0x8002, payloadOffset: state1.handles[0].payloadOffset)])
        #expect(state1.options == .init(writeback: true, announceSubmounts: false, posixACL: true, supplementaryGroupExtension: false))
        #expect(state1.encoded() == v1)

        let state2 = try VirtiofsdState(decoding: v2)
        #expect(state2.version == .v2)
        #expect(state2.mountPaths == [.init(mountID: 27, path: "."), .init(mountID: 5, path: "sub")])
        #expect(state2.encoded() == v2)
        let paths = InodePaths(state2)
        #expect(paths.display(2) == "dir")
        #expect(paths.display(301) == "dir/file")
        #expect(paths.display(300) == "<invalid>")
        #expect(paths.display(70000) == "<file handle>")

        // The map compares as a set: the same entries in another order are no difference.
        var shuffled = state2
        shuffled.mountPaths.reverse()
        #expect(state2.differences(to: shuffled) == [])
        #expect(state2 != shuffled)
    }

    @Test func malformedPayloadsAreReportedWithTheirOffset() throws {
        func error(_ bytes: [UInt8]) -> VirtiofsdDecodingError? {
            do {
                _ = try VirtiofsdState(decoding: bytes)
                return nil
            } catch {
                return error
            }
        }
        let root: [UInt8] = [1, 1, 0, 0]  // id 1, refcount 1, RootNode, no file handle
        let tail: [UInt8] = [2, 0, 2, 0, 0, 0, 0, 0]  // next_inode, no handles, next_handle, options, empty map
        #expect(error([1, 1] + root + tail) == nil)
        #expect(error([2]).map(\.reason) == .unknownTag(2))
        #expect(error([]).map(\.reason) == .truncated)
        #expect(error([1, 1] + root).map { ($0.reason, $0.payloadOffset) } ?? (.truncated, -1) == (.truncated, 6))
        #expect(error([1, 0xff, 0xff, 0xff, 0x0f]).map { ($0.reason, $0.payloadOffset) } ?? (.truncated, -1) == (.lengthBeyondEnd(declared: 33554431, bytesLeft: 0), 1))
        #expect(error([1] + [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02]).map(\.reason) == .overlongVarint)
        #expect(error([1] + [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]).map(\.reason) == .overlongVarint)
        #expect(error([0x81, 0x80, 0x80, 0x80, 0x10]).map(\.reason) == .overlongVarint)
        #expect(error([1, 1, 1, 1, 9, 0] + tail).map { ($0.reason, $0.payloadOffset) } ?? (.truncated, -1) == (.unknownTag(9), 4))
        #expect(error([1, 1, 1, 1, 0, 2] + tail).map { ($0.reason, $0.payloadOffset) } ?? (.truncated, -1) == (.invalidOptionTag(2), 5))
        #expect(error([1, 1] + root + [2, 0, 2, 0, 5, 0, 0, 0]).map { ($0.reason, $0.payloadOffset) } ?? (.truncated, -1) == (.invalidBool(5), 10))
        #expect(error([1, 1] + root + tail + [0xaa]).map { ($0.reason, $0.payloadOffset) } ?? (.truncated, -1) == (.trailingBytes(1), 14))
        let badName: [UInt8] = [1, 2] + root + [2, 1, 1, 1, 2, 0xff, 0xfe, 0] + tail
        #expect(error(badName).map { ($0.reason, $0.payloadOffset) } ?? (.truncated, -1) == (.invalidUTF8, 10))
        // A handle source other than OpenInode.
        #expect(error([1, 1] + root + [2, 1, 5, 1, 1, 0, 2, 0, 0, 0, 0, 0]).map { ($0.reason, $0.payloadOffset) } ?? (.truncated, -1) == (.unknownTag(1), 10))
    }

    @Test func inconsistentStatesAreReported() throws {
        func inode(_ id: UInt64, _ location: VirtiofsdState.Location, at offset: Int) -> VirtiofsdState.Inode {
            .init(id: id, refcount: 1, location: location, payloadOffset: offset)
        }
        let options = VirtiofsdState.NegotiatedOptions(writeback: false, announceSubmounts: false, posixACL: false, supplementaryGroupExtension: false)
        let state = VirtiofsdState(
            version: .v2,
            inodes: [
                inode(1, .root, at: 2), inode(2, .path(parent: 3, name: "a"), at: 10), inode(3, .path(parent: 2, name: "b"), at: 20),
                inode(4, .path(parent: 99, name: "c"), at: 30), inode(4, .path(parent: 1, name: "d"), at: 40), inode(5, .root, at: 50),
            ],
            nextInode: 6, handles: [.init(id: 1, inode: 42, flags: 0, payloadOffset: 60), .init(id: 1, inode: 1, flags: 0, payloadOffset: 70)],
            nextHandle: 2, options: options)
        let problems = state.consistencyProblems()
        #expect(problems.map(\.kind) == [.duplicateInode, .badRoot, .parentCycle, .parentCycle, .missingParent, .handleOnMissingInode, .duplicateHandle])
        #expect(problems.map(\.payloadOffset) == [40, 50, 10, 20, 30, 60, 70])
        let paths = InodePaths(state)
        #expect(paths.display(2) == "<unresolved>")
        #expect(paths.display(4) == "<unresolved>")
    }

    @Test func differencesAreByMeaning() throws {
        let a = try VirtiofsdState(decoding: fixturePayload("s1-A-running"))
        let e = try VirtiofsdState(decoding: fixturePayload("s1-E-resaved-on-dst"))
        #expect(a.differences(to: e) == [])
        let d = try VirtiofsdState(decoding: fixturePayload("s1-D-more-open"))
        let changes = a.differences(to: d)
        #expect(changes.filter { $0.subject == .inode && $0.change == .added }.map(\.key) == [
            "extra", "extra/late-open-00.txt", "extra/late-open-01.txt", "extra/late-open-02.txt", "extra/late-open-03.txt", "extra/late-open-04.txt",
        ])
        #expect(changes.filter { $0.subject == .handle && $0.change == .added }.count == 5)
        #expect(changes.contains(.init(subject: .field, change: .changed, key: "next_inode", detail: "5399 -> 5405")))
    }
}

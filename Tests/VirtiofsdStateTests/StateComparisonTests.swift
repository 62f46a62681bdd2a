import Testing
import VirtiofsdState

/// File-handle inodes are keyed by their handle's bytes, two hex digits each:
/// handles `01 23` and `12 03` are two inodes, not one.
@Suite struct FileHandleKeyTests {
    @Test func handlesThatReadAlikeUnpaddedAreTwoInodes() {
        func state(_ handles: [[UInt8]]) -> VirtiofsdState {
            VirtiofsdState(
                version: .v2,
                inodes: [.init(id: 1, refcount: 1, location: .root)]
                    + handles.enumerated().map { index, bytes in
                        .init(id: UInt64(index + 2), refcount: 1, location: .fileHandle(.init(mountID: 27, handleType: 1, bytes: bytes)))
                    },
                nextInode: 10, handles: [], nextHandle: 1,
                options: .init(writeback: false, announceSubmounts: false, posixACL: false, supplementaryGroupExtension: false),
                mountPaths: [.init(mountID: 27, path: ".")])
        }
        let both = state([[0x01, 0x23], [0x12, 0x03]])
        let one = state([[0x01, 0x23]])
        let differences = one.differences(to: both)
        #expect(differences.map(\.change) == [.added])
        #expect(differences.map(\.key) == ["<file handle 27:1:1203>"])
        #expect(!both.differences(to: one).isEmpty)
    }
}

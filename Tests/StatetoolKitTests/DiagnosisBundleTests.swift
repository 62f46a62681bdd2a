import FoundationEssentials
import StateStream
import StatetoolKit
import Testing
import VirtiofsdState

/// The pieces of a forensic bundle: pseudonyms, the ustar writer and reader.
@Suite struct DiagnosisBundleTests {
    static let state = VirtiofsdState(
        version: .v2,
        inodes: [
            .init(id: 1, refcount: 2, location: .root),
            .init(id: 2, refcount: 3, location: .path(parent: 1, name: "tree")),
            .init(id: 3, refcount: 1, location: .path(parent: 2, name: "d07")),
            .init(id: 4, refcount: 1, location: .path(parent: 3, name: "my file.txt")),
            .init(id: 5, refcount: 1, location: .path(parent: 1, name: "d07")),
        ],
        nextInode: 6, handles: [.init(id: 9, inode: 4, flags: 0o2)], nextHandle: 10,
        options: .init(writeback: false, announceSubmounts: false, posixACL: false, supplementaryGroupExtension: false),
        mountPaths: [.init(mountID: 31, path: "tree/d07")])

    @Test func namesGetPseudonymsInTheOrderTheStateFirstNamesThem() {
        let pseudonyms = Pseudonyms(state: Self.state, sharedDirectory: "/srv/share/")
        #expect(pseudonyms.names == ["tree": "n1", "d07": "n2", "my file.txt": "n3"])
        let renamed = pseudonyms.apply(to: Self.state)
        #expect(renamed.inodes.map(\.location) == [
            .root, .path(parent: 1, name: "n1"), .path(parent: 2, name: "n2"), .path(parent: 3, name: "n3"), .path(parent: 1, name: "n2"),
        ])
        #expect(renamed.inodes.map(\.id) == Self.state.inodes.map(\.id))
        #expect(renamed.inodes.map(\.refcount) == Self.state.inodes.map(\.refcount))
        #expect(renamed.handles == Self.state.handles)
        #expect(renamed.mountPaths == [.init(mountID: 31, path: "n1/n2")])
    }

    @Test func textLosesEveryNameAndTheSharesPath() {
        let pseudonyms = Pseudonyms(state: Self.state, sharedDirectory: "/srv/share")
        #expect(pseudonyms.apply(to: "Opening /srv/share/tree/d07: No such file") == "Opening /shared-directory/n1/n2: No such file")
        // Another machine's share path before a name of the share is a shared directory too.
        #expect(pseudonyms.apply(to: "Inode 12: Opening /mnt/src-share/tree/d07 (os error 2)") == "Inode 12: Opening /shared-directory/n1/n2 (os error 2)")
        #expect(pseudonyms.apply(to: "tree/d07/my file.txt, \"d07\"") == "n1/n2/n3, \"n2\"")
        // Whole names only: a longer word holding one is left.
        #expect(pseudonyms.apply(to: "subtree d07x treetop") == "subtree d07x treetop")
    }

    /// A share whose names are words the diagnosis reads logs by, or numbers: in a log,
    /// replaced in paths and kept where they stand alone as words, so the bundled log
    /// reads the same; in a report (diagnosis.json, share-check.json) replaced wherever
    /// they stand.
    @Test func namesThatAreLogWordsAreKeptStandingAloneInLogsOnly() {
        var state = Self.state
        state.inodes[1].location = .path(parent: 1, name: "state")
        state.inodes[2].location = .path(parent: 2, name: "Opening")
        state.inodes[4].location = .path(parent: 1, name: "12")
        let pseudonyms = Pseudonyms(state: state, sharedDirectory: "/srv/share")
        #expect(["state", "Opening", "my file.txt", "12"].map { pseudonyms.names[$0] } == ["n1", "n2", "n3", "n4"])
        let line = "Migration failed: Failed to load state: Inode 12: Opening /srv/share/state/Opening: No such file or directory (os error 2)"
        #expect(
            pseudonyms.apply(to: line, as: .log)
                == "Migration failed: Failed to load state: Inode 12: Opening /shared-directory/n1/n2: No such file or directory (os error 2)")
        #expect(pseudonyms.apply(to: "Opening state/Opening/my file.txt", as: .log) == "Opening n1/n2/n3")
        #expect(pseudonyms.apply(to: "Invalid inode 12 indexed: Opening 12/state (os error 2)", as: .log) == "Invalid inode 12 indexed: Opening n4/n1 (os error 2)")
        // Not standing as a word of a sentence: replaced in a log too.
        #expect(pseudonyms.apply(to: "Opening inode 5 (state) as handle", as: .log) == "Opening inode 5 (n1) as handle")
        // In a report every name is replaced wherever it stands.
        #expect(pseudonyms.apply(to: "state (inode 7), 12 more") == "n1 (inode 7), n4 more")
    }

    /// Names with other characters (a space) are found whole, the longest first,
    /// through their first run of name characters, and only where they stand whole.
    @Test func namesWithSpacesAreReplacedWhole() {
        var pseudonyms = Pseudonyms(state: nil, sharedDirectory: nil)
        pseudonyms.add("My Documents")
        pseudonyms.add("My Documents Old")
        pseudonyms.add("(1)")
        pseudonyms.add("01 - Song.mp3")
        #expect(pseudonyms.apply(to: "/x/My Documents Old/01 - Song.mp3 and My Documents, (1)") == "/shared-directory/n2/n4 and n1, n3")
        #expect(pseudonyms.apply(to: "My Documentsx MyDocuments") == "My Documentsx MyDocuments")
    }

    /// The shared directory's path is replaced as given when absolute and as
    /// resolved, only where it stands as a path; a relative one only as resolved.
    @Test func theSharesPathIsReplacedAsAPathOnly() throws {
        let pseudonyms = Pseudonyms(state: nil, sharedDirectory: "Tests")
        let absolute = FileManager.default.currentDirectoryPath + "/Tests"
        #expect(pseudonyms.apply(to: "source=\(absolute)/x, Tests, Testsuite, \(absolute)suite")
            == "source=/shared-directory/x, Tests, Testsuite, \(absolute)suite")
    }

    @Test func tarMembersReadBackWithTheirSizesAndBytes() throws {
        let sink = ByteArraySink()
        var writer = TarWriter(into: sink)
        try writer.add(name: "manifest.json", bytes: Array("{}\n".utf8))
        try writer.add(name: "state/x.state", bytes: [UInt8](repeating: 7, count: 1000))
        try writer.finish()
        #expect(sink.bytes.count == 512 + 512 + 512 + 1024 + 1024)
        // The checksum field as GNU tar writes it: six octal digits, NUL, space.
        #expect(Array(sink.bytes[148..<156]) == Array(String(sink.bytes.prefix(512).enumerated().reduce(0) { $0 + (148..<156 ~= $1.offset ? 32 : Int($1.element)) }, radix: 8).paddedOctal.utf8) + [0, 0x20])
        var reader = TarReader(ByteArraySource(sink.bytes, maximumReadSize: 100))
        let first = try #require(try reader.next())
        #expect(first == TarReader.Member(name: "manifest.json", size: 3, offset: 0))
        #expect(try reader.body(of: first, limit: 10) == Array("{}\n".utf8))
        let second = try #require(try reader.next())
        #expect(second == TarReader.Member(name: "state/x.state", size: 1000, offset: 1024))
        #expect(try reader.next() == nil)
    }

    @Test func aCutArchiveIsRefusedWithTheOffsetWhereItEnds() throws {
        let sink = ByteArraySink()
        var writer = TarWriter(into: sink)
        try writer.add(name: "manifest.json", bytes: [UInt8](repeating: 0x20, count: 600))
        var reader = TarReader(ByteArraySource(Array(sink.bytes.prefix(700))))
        let member = try #require(try reader.next())
        #expect(throws: TarArchiveError(offset: 700, message: "the archive ends 412 bytes early")) { try reader.body(of: member, limit: 1000) }
        var corrupt = sink.bytes
        corrupt[0] ^= 1
        var second = TarReader(ByteArraySource(corrupt))
        #expect(throws: TarArchiveError(offset: 0, message: "tar header checksum does not match")) { try second.next() }
    }
}

extension String {
    /// Six octal digits, zero-padded.
    fileprivate var paddedOctal: String { String(repeating: "0", count: max(0, 6 - count)) + self }
}

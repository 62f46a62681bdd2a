import Foundation
import TestSupport
import Testing
import VirtiofsdState

/// preflight's refcount rule against the real virtiofsd: each child that loads takes
/// one of its parent's references, and a parent at zero leaves the inode store. States
/// built here are replayed into virtiofsd with `--migration-on-error=abort`; preflight
/// must give the same verdict.
@Suite(.serialized) final class RealRefcountTests {
    let scratch: ScratchDirectory

    init() throws {
        try RealPeers.requireVirtiofsd()
        scratch = try ScratchDirectory("refcount")
    }

    private func path(_ name: String) -> String { scratch.path(name) }

    /// A share of `children` files and a stream whose root holds `rootRefcount` references.
    private func make(rootRefcount: UInt64, children: Int) throws -> (share: String, stream: String) {
        let share = path("share-\(rootRefcount)-\(children)")
        try FileManager.default.createDirectory(atPath: share, withIntermediateDirectories: true)
        var inodes: [VirtiofsdState.Inode] = [.init(id: 1, refcount: rootRefcount, location: .root)]
        for index in 0..<children {
            try Data("\(index)".utf8).write(to: URL(fileURLWithPath: share + "/child-\(index)"))
            inodes.append(.init(id: UInt64(2 + index), refcount: 1, location: .path(parent: 1, name: "child-\(index)")))
        }
        let state = VirtiofsdState(
            version: .v1, inodes: inodes, nextInode: UInt64(2 + children), handles: [], nextHandle: 1,
            options: .init(writeback: false, announceSubmounts: false, posixACL: false, supplementaryGroupExtension: false),
            mountPaths: [])
        let payload = path("state-\(rootRefcount)-\(children).payload")
        try Data(state.encoded()).write(to: URL(fileURLWithPath: payload))
        let stream = path("state-\(rootRefcount)-\(children).state")
        let framed = try StatetoolRunner.run(["frame", payload, "-o", stream])
        try #require(framed.status == 0, "\(framed.stderr)")
        return (share, stream)
    }

    @Test(arguments: [(UInt64(2), 20, false), (UInt64(2), 2, true), (UInt64(21), 20, true)])
    func preflightGivesTheRealLoadersVerdict(rootRefcount: UInt64, children: Int, loads: Bool) throws {
        let (share, stream) = try make(rootRefcount: rootRefcount, children: children)
        let socket = path("vfsd-\(rootRefcount)-\(children).sock"), log = path("vfsd-\(rootRefcount)-\(children).log")
        let virtiofsd = try RealPeers.startVirtiofsd(sharedDirectory: share, socket: socket, log: log, options: ["--migration-on-error=abort"])
        defer { RealPeers.stop(virtiofsd) }
        let replay = try StatetoolRunner.run(["replay", "--socket", socket, "--backend-log", log, stream])
        #expect(replay.status == (loads ? 0 : 3), "\(replay.stdout)\(replay.stderr)")
        if !loads { #expect(replay.stderr.contains("Unresolved references between serialized inodes")) }

        let preflight = try StatetoolRunner.run(["preflight", "--json", "--shared-dir", share, stream])
        #expect(preflight.status == (loads ? 0 : 1), "\(preflight.stderr)")
        let report = try preflight.jsonObject()
        #expect(report["clean"] as? Bool == loads)
        let fatal = (report["fatalProblems"] as? [[String: Any]])?.compactMap { $0["kind"] as? String }
        #expect(fatal == (loads ? [] : ["unresolved-references"]))
        #expect(report["drainedInodes"] as? [Int] == (rootRefcount == UInt64(children) || !loads ? [1] : []))
    }
}

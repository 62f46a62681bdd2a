import Foundation
import TestSupport
import Testing

/// `replay` and `capture` against a real virtiofsd (1.13 and 1.14), with the real
/// state QEMU 10 saved from virtiofsd 1.13.
@Suite(.serialized) final class RealVirtiofsdTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("vfsd")
    }

    private func path(_ name: String) -> String { scratch.path(name) }

    private let realState = Fixtures.state("s1-A-running")

    @Test(arguments: PeerGeneration.all)
    func realStateLoadsIntoTheFixtureShare(generation: PeerGeneration) throws {
        try generation.require()
        try RealPeers.makeShare(at: scratch.url("share"))
        let virtiofsd = try generation.startVirtiofsd(sharedDirectory: path("share"), socket: path("vfsd.sock"), log: path("vfsd.log"))
        defer { RealPeers.stop(virtiofsd) }
        let result = try StatetoolRunner.run(["replay", "--socket", path("vfsd.sock"), realState])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("the back-end accepted the state (CHECK_DEVICE_STATE 0) after "))
    }

    @Test(arguments: PeerGeneration.all)
    func realStateIsRejectedWithoutTreeD07AndTheLogSaysWhy(generation: PeerGeneration) throws {
        try generation.require()
        try RealPeers.makeShare(at: scratch.url("share-broken"), broken: true)
        let virtiofsd = try generation.startVirtiofsd(sharedDirectory: path("share-broken"), socket: path("vfsd.sock"), log: path("vfsd.log"))
        defer { RealPeers.stop(virtiofsd) }
        let result = try StatetoolRunner.run(["replay", "--socket", path("vfsd.sock"), "--backend-log", path("vfsd.log"), realState])
        #expect(result.status == 3)
        #expect(result.stdout.contains("the back-end rejected the state (CHECK_DEVICE_STATE 1) after "))
        #expect(result.stderr.contains("back-end log (\(path("vfsd.log"))):"))
        #expect(result.stderr.contains("Inode 12: Opening \(path("share-broken"))/tree/d07: No such file or directory"))
    }

    @Test(arguments: PeerGeneration.all)
    func capturedStateReplaysIntoAFreshVirtiofsdAndACorruptOneDoesNot(generation: PeerGeneration) throws {
        try generation.require()
        try RealPeers.makeShare(at: scratch.url("share"))
        let source = try generation.startVirtiofsd(sharedDirectory: path("share"), socket: path("src.sock"), log: path("src.log"))
        let capture = try StatetoolRunner.run(["capture", "--socket", path("src.sock"), "-o", path("captured.state")])
        RealPeers.stop(source)
        #expect(capture.status == 0, "\(capture.stderr)")
        let inspect = try StatetoolRunner.run(["validate", "-v", path("captured.state")])
        #expect(inspect.status == 0)

        let destination = try generation.startVirtiofsd(sharedDirectory: path("share"), socket: path("dst.sock"), log: path("dst.log"))
        let replay = try StatetoolRunner.run(["replay", "--socket", path("dst.sock"), path("captured.state")])
        RealPeers.stop(destination)
        #expect(replay.status == 0, "\(replay.stderr)")

        // Byte 4 is the payload's first byte, the PassthroughFs version tag (0 or 1): 7 is no version.
        var corrupt = try Data(contentsOf: URL(fileURLWithPath: path("captured.state")))
        corrupt[4] = 7
        try corrupt.write(to: URL(fileURLWithPath: path("corrupt.state")))
        let rejecting = try generation.startVirtiofsd(sharedDirectory: path("share"), socket: path("bad.sock"), log: path("bad.log"))
        defer { RealPeers.stop(rejecting) }
        let rejected = try StatetoolRunner.run(["replay", "--socket", path("bad.sock"), path("corrupt.state")])
        #expect(rejected.status == 3)
    }
}

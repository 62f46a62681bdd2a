import Foundation
import TestSupport
import Testing

/// One generation of the real peers, as users run them: `current` is last year's (the
/// machine's QEMU 10.0 from bookworm-backports, virtiofsd 1.13 and passt from trixie,
/// libvirt 9.0), `today` this year's (QEMU 11.1, virtiofsd 1.14, passt and libvirt 12 of the
/// Debian sid root Scripts/install-peers builds, each run inside it by a wrapper of
/// `.build-peers/sid/bin` through Tests/Peers/in-root).
///
/// The real-peer suites run with both (`@Test(arguments: PeerGeneration.all)`), and
/// `GenerationMatrixTests` across them.
struct PeerGeneration: Sendable, Hashable, CustomTestStringConvertible {
    /// `current` or `today`: a word for test names and messages.
    let name: String
    let qemu: String
    let virtiofsd: String
    let passt: String
    /// The script that runs a private libvirtd of this generation (Tests/Peers/libvirt/private-libvirtd).
    let privateLibvirtd: String
    let libvirtd: String
    let virsh: String
    /// The QEMU major version, and virtiofsd's as `major.minor`, as installed.
    let qemuVersion: Int
    let virtiofsdVersion: String

    var testDescription: String { name }

    static let current = PeerGeneration(
        name: "current",
        qemu: "/usr/bin/qemu-system-x86_64",
        virtiofsd: RealPeers.virtiofsd,
        passt: RealPeers.passt,
        privateLibvirtd: LibvirtLab.privateLibvirtd,
        libvirtd: "/usr/sbin/libvirtd",
        virsh: "/usr/bin/virsh",
        qemuVersion: 10,
        virtiofsdVersion: "1.13")

    private static let sid = Repository.root.appendingPathComponent(".build-peers/sid/bin")

    static let today = PeerGeneration(
        name: "today",
        qemu: sid.appendingPathComponent("qemu-system-x86_64").path,
        virtiofsd: sid.appendingPathComponent("virtiofsd").path,
        passt: sid.appendingPathComponent("passt").path,
        privateLibvirtd: sid.appendingPathComponent("private-libvirtd").path,
        libvirtd: sid.appendingPathComponent("libvirtd").path,
        virsh: sid.appendingPathComponent("virsh").path,
        qemuVersion: 11,
        virtiofsdVersion: "1.14")

    /// Both generations, or those `STATETOOL_PEER_GENERATIONS` names (comma-separated:
    /// Scripts/test-asan runs the sanitized build against the current one only).
    static let all: [PeerGeneration] = {
        let names = ProcessInfo.processInfo.environment["STATETOOL_PEER_GENERATIONS"]?.split(separator: ",").map(String.init)
        return [current, today].filter { names?.contains($0.name) ?? true }
    }()

    /// Fails the test, saying how to get them, when this generation's peers are missing
    /// or are not the versions the tests are written for.
    func require() throws {
        for tool in [qemu, virtiofsd, passt, virsh, privateLibvirtd] {
            try #require(FileManager.default.isExecutableFile(atPath: tool), "\(tool) is missing: run Scripts/install-peers")
        }
        let qemuLine = try ProcessRunner.run(qemu, ["--version"]).stdout
        try #require(qemuLine.hasPrefix("QEMU emulator version \(qemuVersion)."), "\(name) QEMU is not \(qemuVersion): \(qemuLine)")
        let virtiofsdLine = try ProcessRunner.run(virtiofsd, ["--version"]).stdout
        try #require(virtiofsdLine.hasPrefix("virtiofsd \(virtiofsdVersion)."), "\(name) virtiofsd is not \(virtiofsdVersion): \(virtiofsdLine)")
    }

    /// The machine the fixture guest and the fresh guests use: QEMU 10.0's q35, which
    /// both generations have (a plain `q35` is pc-q35-11.1 under QEMU 11, which QEMU 10
    /// cannot load).
    static let machine = "pc-q35-10.0"

    /// The start of every test QEMU's command line: `machine` with `megabytes` of
    /// shared memfd RAM (vhost-user needs it shared), TCG, no default devices, no display.
    static func machineArguments(megabytes: Int, machine: String = machine) -> [String] {
        [
            "-machine", "\(machine),memory-backend=mem", "-m", "\(megabytes)M",
            "-object", "memory-backend-memfd,id=mem,size=\(megabytes)M,share=on",
            "-accel", "tcg", "-nodefaults", "-display", "none",
        ]
    }

    /// Starts virtiofsd serving `sharedDirectory` on `socket`, logging to `log`, and waits
    /// for its socket.
    func startVirtiofsd(sharedDirectory: String, socket: String, log: String, options: [String] = []) throws -> Process {
        try Peer.start(virtiofsd, ["--shared-dir=\(sharedDirectory)", "--socket-path=\(socket)", "--sandbox=none"] + options, log: log, waitingFor: socket)
    }

    /// Starts a fresh passt of this generation in vhost-user mode on `socket` (see
    /// `RealPeers.startPasst`).
    func startPasst(socket: String, log: String) throws -> RealPeers.Passt {
        try RealPeers.startPasst(socket: socket, log: log, executable: passt)
    }
}

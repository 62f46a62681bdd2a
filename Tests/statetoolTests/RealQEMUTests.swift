import Foundation
import TestSupport
import Testing

/// `serve` behind real QEMU (10.0 and 11.1): QEMU's own front-end saves a state
/// from it into a migration file and loads it back into a second one.
@Suite(.serialized) final class RealQEMUTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("qemu")
    }

    private func path(_ name: String) -> String { scratch.path(name) }

    private func serve(_ arguments: [String], socket: String) throws -> Process {
        try Peer.start(
            StatetoolRunner.executable.path, ["serve", "--socket", path(socket)] + arguments, log: path(socket + ".log"), waitingFor: path(socket))
    }

    /// A paused q35 machine with one vhost-user-fs device on `socket`.
    private func qemu(_ generation: PeerGeneration, socket: String, qmp: String, extra: [String] = []) throws -> Process {
        try Peer.start(generation.qemu, PeerGeneration.machineArguments(megabytes: 256) + [
            "-S",
            "-chardev", "socket,id=char0,path=\(path(socket))",
            "-device", "vhost-user-fs-pci,chardev=char0,tag=myfs",
            "-qmp", "unix:\(path(qmp)),server=on,wait=off",
        ] + extra, log: path(qmp + ".log"))
    }

    private func qmp(_ socket: String, _ arguments: [String]) throws -> Int32 {
        try Peer.python(["Tests/Peers/qmp.py", path(socket)] + arguments).status
    }

    /// Migrates a QEMU whose back-end is `serve --state PAYLOAD` to `file:`,
    /// with `capabilities` (mapped-ram, multifd) set first.
    private func migrate(on generation: PeerGeneration, serving payload: String, to file: String, capabilities: [String] = []) throws {
        let source = try serve(["--state", payload], socket: "src.sock")
        let sourceQEMU = try qemu(generation, socket: "src.sock", qmp: "src.qmp")
        let migrated = try qmp("src.qmp", ["migrate", file] + capabilities)
        _ = try qmp("src.qmp", ["quit"])
        RealPeers.stop(sourceQEMU, source)
        #expect(migrated == 0, "source migration did not complete")
    }

    /// Loads `file` into a QEMU whose back-end is `serve --record`; returns
    /// what it recorded. With `capabilities`, QEMU waits (`-incoming defer`)
    /// until they are set, as a mapped-ram file needs.
    private func load(_ file: String, on generation: PeerGeneration, capabilities: [String] = []) throws -> Data {
        let destination = try serve(["--record", path("recorded.payload")], socket: "dst.sock")
        let incoming = capabilities.isEmpty ? "file:\(file)" : "defer"
        let destinationQEMU = try qemu(generation, socket: "dst.sock", qmp: "dst.qmp", extra: ["-incoming", incoming])
        let loaded = try qmp("dst.qmp", capabilities.isEmpty ? ["wait-incoming"] : ["incoming", file] + capabilities)
        _ = try qmp("dst.qmp", ["quit"])
        RealPeers.stop(destinationQEMU, destination)
        #expect(loaded == 0, "incoming migration did not complete")
        return try Data(contentsOf: URL(fileURLWithPath: path("recorded.payload")))
    }

    @Test(arguments: PeerGeneration.all)
    func stateServedToQEMUComesBackThroughAMigrationFile(generation: PeerGeneration) throws {
        try generation.require()
        // 4 MiB of payload, served raw: QEMU frames it as it reads the pipe.
        var generator = SystemRandomNumberGenerator()
        let payload = Data((0..<(4 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        try payload.write(to: URL(fileURLWithPath: path("served.payload")))

        try migrate(on: generation, serving: path("served.payload"), to: path("vm.mig"))

        // The state QEMU wrote into the migration file comes back out of it exactly.
        let extracted = try StatetoolRunner.run(["extract", path("vm.mig"), "--payload", "-o", path("extracted.payload")])
        #expect(extracted.status == 0, "\(extracted.stderr)")
        #expect(extracted.stdout.contains("valid, JSON description says"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path("extracted.payload"))) == payload)

        #expect(try load(path("vm.mig"), on: generation) == payload)
    }

    /// `migration replace` puts a new state into a file QEMU wrote; QEMU loads
    /// the new file into a back-end that records exactly the new payload.
    /// Bytes of `path` on disk (st_blocks), and its length.
    private func usage(_ path: String) throws -> (allocated: UInt64, length: UInt64) {
        var status = stat()
        try #require(stat(path, &status) == 0)
        return (UInt64(status.st_blocks) * 512, UInt64(status.st_size))
    }

    /// QEMU's mapped-ram files (pages at fixed offsets, the file sparse), with
    /// and without multifd: read in place, replaced with their holes kept, and
    /// loaded back by QEMU.
    @Test(arguments: PeerGeneration.all, [["mapped-ram"], ["mapped-ram", "multifd"]])
    func mappedRAMFilesAreReadInPlaceAndRewrittenWithTheirHoles(generation: PeerGeneration, capabilities: [String]) throws {
        try generation.require()
        var generator = SystemRandomNumberGenerator()
        let payload = Data((0..<300_000).map { _ in UInt8.random(in: 0...255, using: &generator) })
        try payload.write(to: URL(fileURLWithPath: path("served.payload")))
        let file = path("vm.mig")
        try migrate(on: generation, serving: path("served.payload"), to: file, capabilities: capabilities)
        let original = try usage(file)
        #expect(original.length > 256 << 20, "the file does not map the guest's 256 MiB")
        #expect(original.allocated < original.length / 20, "the file is not sparse: \(original)")

        let listed = try StatetoolRunner.run(["migration", "ls", file])
        #expect(listed.status == 0, "\(listed.stderr)")
        #expect(listed.stdout.contains("capabilities mapped-ram"))
        // QEMU frames each read of the pipe as a chunk: 5 of them when every
        // read finds the pipe's 64 KiB full, more when it finds less.
        let state = try #require(
            listed.stdout.firstMatch(of: /(\d+) bytes, (\d+) chunks, 300000 payload bytes, valid, JSON description says (\d+) bytes \(matches\)/),
            "\(listed.stdout)")
        let chunks = try #require(Int(state.2))
        #expect(chunks >= 5)
        #expect(state.1 == "\(300_000 + 4 * (chunks + 1))" && state.3 == state.1)
        let extracted = try StatetoolRunner.run(["extract", file, "--payload", "-o", path("extracted.payload")])
        #expect(extracted.status == 0, "\(extracted.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path("extracted.payload"))) == payload)

        // The state replaced by itself: the same bytes, and the same holes.
        #expect(try StatetoolRunner.run(["extract", "-q", file, "-o", path("vm.state")]).status == 0)
        let same = try StatetoolRunner.run(["migration", "replace", file, "--state", path("vm.state"), "-o", path("same.mig")])
        #expect(same.status == 0, "\(same.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path("same.mig"))) == Data(contentsOf: URL(fileURLWithPath: file)))
        let copy = try usage(path("same.mig"))
        #expect(copy.allocated <= original.allocated + (64 << 10), "holes filled: \(copy) against \(original)")

        // A new 1 MiB state: QEMU loads exactly it from the rewritten file.
        let newPayload = Data((0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        try newPayload.write(to: URL(fileURLWithPath: path("new.payload")))
        let replaced = try StatetoolRunner.run(["migration", "replace", file, "--bare-state", "--state", path("new.payload"), "-o", path("new.mig")])
        #expect(replaced.status == 0, "\(replaced.stderr)")
        #expect(try usage(path("new.mig")).allocated < original.allocated + (2 << 20))
        #expect(try load(path("new.mig"), on: generation, capabilities: capabilities) == newPayload)
    }

    @Test(arguments: PeerGeneration.all)
    func qemuLoadsAReplacedStateIntoTheBackEnd(generation: PeerGeneration) throws {
        try generation.require()
        var generator = SystemRandomNumberGenerator()
        let old = Data((0..<(300 << 10)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        let new = Data((0..<(1 << 20) + 12345).map { _ in UInt8.random(in: 0...255, using: &generator) })
        try old.write(to: URL(fileURLWithPath: path("old.payload")))
        try new.write(to: URL(fileURLWithPath: path("new.payload")))

        try migrate(on: generation, serving: path("old.payload"), to: path("vm.mig"))

        let replaced = try StatetoolRunner.run([
            "migration", "replace", path("vm.mig"), "--state", path("new.payload"), "--bare-state", "--chunk-size", "64K", "-o", path("new.mig"),
        ])
        #expect(replaced.status == 0, "\(replaced.stderr)")
        #expect(replaced.stdout.contains(" -> \(new.count + 17 * 4 + 4) bytes\n"))
        let listed = try StatetoolRunner.run(["migration", "ls", path("new.mig")])
        #expect(listed.status == 0)
        #expect(listed.stdout.contains("17 chunks, \(new.count) payload bytes, valid, JSON description says \(new.count + 17 * 4 + 4) bytes (matches)"))

        #expect(try load(path("new.mig"), on: generation) == new)
    }

    @Test(arguments: PeerGeneration.all)
    func qemuRefusesToMigrateFromABackEndWithoutDeviceState(generation: PeerGeneration) throws {
        try generation.require()
        let source = try serve(["--no-device-state"], socket: "src.sock")
        let sourceQEMU = try qemu(generation, socket: "src.sock", qmp: "src.qmp")
        let migrated = try qmp("src.qmp", ["migrate", path("vm.mig")])
        _ = try qmp("src.qmp", ["quit"])
        RealPeers.stop(sourceQEMU, source)
        #expect(migrated != 0)
    }

    /// A destination back-end without DEVICE_STATE: QEMU's load fails, and
    /// diagnose reads QEMU's own line from its standard error.
    @Test(arguments: PeerGeneration.all)
    func diagnoseNamesADestinationBackEndWithoutDeviceState(generation: PeerGeneration) throws {
        try generation.require()
        try Data(repeating: 7, count: 1000).write(to: URL(fileURLWithPath: path("small.payload")))
        try migrate(on: generation, serving: path("small.payload"), to: path("vm.mig"))
        let destination = try serve(["--no-device-state"], socket: "dst.sock")
        let destinationQEMU = try qemu(generation, socket: "dst.sock", qmp: "dst.qmp", extra: ["-incoming", "file:\(path("vm.mig"))"])
        let loaded = try qmp("dst.qmp", ["wait-incoming"])
        _ = try? qmp("dst.qmp", ["quit"])
        RealPeers.stop(destinationQEMU, destination)
        #expect(loaded != 0)
        let log = try String(contentsOfFile: path("dst.qmp.log"), encoding: .utf8)
        let diagnosed = try StatetoolRunner.run(["diagnose", "--json", "--log", path("dst.qmp.log")])
        #expect(diagnosed.status == 1)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(diagnosed.stdout.utf8)) as? [String: Any], "\(diagnosed.stderr)")
        #expect(json["verdict"] as? String == "destination", "\(log)")
        #expect((json["causes"] as? [[String: Any]])?.map { $0["kind"] as? String } == ["backend-without-migration"], "\(log)\n\(diagnosed.stdout)")
    }
}

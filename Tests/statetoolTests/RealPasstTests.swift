import Foundation
import TestSupport
import Testing

/// passt, a real vhost-user net back-end with device state, behind real QEMU
/// (no guest: the virtio-net device is never started) and in front of
/// statetool's own front-end; each generation's, and across them.
@Suite(.serialized) final class RealPasstTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("passt")
    }

    private func path(_ name: String) -> String { scratch.path(name) }

    /// A paused QEMU of `generation` whose virtio-net device is on the passt at `socket`.
    private func qemu(_ generation: PeerGeneration, socket: String, qmp: String, extra: [String] = []) throws -> Process {
        try Peer.start(generation.qemu, PeerGeneration.machineArguments(megabytes: 64) + [
            "-S",
            "-chardev", "socket,id=c,path=\(path(socket))", "-netdev", "vhost-user,id=n,chardev=c",
            "-device", "virtio-net-pci,netdev=n", "-qmp", "unix:\(path(qmp)),server=on,wait=off",
        ] + extra, log: path(qmp + ".log"))
    }

    /// QEMU with a virtio-net device on passt, both of `generation`, migrates to `vm.mig`.
    private func migrateFromPasst(on generation: PeerGeneration) throws -> String {
        let passt = try generation.startPasst(socket: path("src.sock"), log: path("src.log"))
        let qemu = try qemu(generation, socket: "src.sock", qmp: "q.qmp")
        let migrated = try Peer.python(["Tests/Peers/qmp.py", path("q.qmp"), "migrate", path("vm.mig")]).status
        _ = try Peer.python(["Tests/Peers/qmp.py", path("q.qmp"), "quit"])
        RealPeers.stop(qemu)
        passt.stop()
        #expect(migrated == 0, "migration did not complete")
        return path("vm.mig")
    }

    /// Replays `stream` into a fresh passt of `generation` on `name` (a fresh socket when
    /// `nil`); returns statetool's result.
    private func replay(_ stream: String, on generation: PeerGeneration, socket name: String? = nil) throws -> StatetoolRunner.Result {
        let socket = path(name ?? "dst-\(UUID().uuidString.prefix(6)).sock")
        let passt = try generation.startPasst(socket: socket, log: socket + ".log")
        defer { passt.stop() }
        return try StatetoolRunner.run(["replay", "--socket", socket, "--backend-log", socket + ".log", "-q", stream])
    }

    /// The payload of the stream in `name`, as `statetool payload` writes it.
    ///
    /// QEMU frames each `read` of the pipe as one chunk, so how passt's writes
    /// fall into chunks depends on scheduling: one chunk of 62 bytes, or 16,
    /// 42 and 4. The payload is the same either way.
    private func payload(of name: String) throws -> [UInt8] {
        let written = try StatetoolRunner.run(["payload", path(name), "-o", path(name + ".payload")])
        #expect(written.status == 0, "\(written.stderr)")
        return try [UInt8](Data(contentsOf: URL(fileURLWithPath: path(name + ".payload"))))
    }

    /// `stream` framed from `payload`.
    private func write(_ payload: [UInt8], to name: String) throws -> String {
        try Data(StreamBytes.frame([payload])).write(to: URL(fileURLWithPath: path(name)))
        return path(name)
    }

    @Test(arguments: PeerGeneration.all)
    func passtsStateComesOutOfQEMUsFileAsACaptureGetsItAndGoesBackIn(generation: PeerGeneration) throws {
        try generation.require()
        let file = try migrateFromPasst(on: generation)
        let extracted = try StatetoolRunner.run(["extract", file, "-o", path("net.state")])
        #expect(extracted.status == 0, "\(extracted.stderr)")
        #expect((extracted.stdout + extracted.stderr).contains("0000:00:01.0/virtio-net (section 37, instance 0): virtio-net-device/backend header"))
        let payload = try self.payload(of: "net.state")
        #expect(payload.count == 62)

        // A fresh passt saves the same bytes when statetool's front-end asks it.
        let passt = try generation.startPasst(socket: path("cap.sock"), log: path("cap.log"))
        let captured = try StatetoolRunner.run(["capture", "--socket", path("cap.sock"), "-o", path("captured.state"), "-q"])
        passt.stop()
        #expect(captured.status == 0, "\(captured.stderr)")
        let capturedPayload = try self.payload(of: "captured.state")
        #expect(capturedPayload == payload)

        // inspect decodes it: version 2, no flows, the addresses as their bytes say.
        let inspected = try StatetoolRunner.run(["inspect", "--json", path("net.state")])
        #expect(inspected.status == 0)
        let json = try inspected.jsonObject()
        let passtObject = try #require(json["passt"] as? [String: Any])
        #expect(passtObject["version"] as? Int == 2)
        #expect(passtObject["compatVersion"] as? Int == 2)
        #expect((passtObject["flows"] as? [Any])?.isEmpty == true)
        let addresses = try #require(passtObject["addresses"] as? [String: String])
        let bytes = payload
        #expect(addresses["ipv4"] == bytes[48..<52].map(String.init).joined(separator: "."))
        #expect(addresses["mac"] == bytes[52..<58].map { String(format: "%02x", $0) }.joined(separator: ":"))
        #expect(json["virtiofsd"] == nil && json["virtiofsdError"] == nil)

        // Replayed into a fresh passt: taken.
        let replayed = try replay(path("net.state"), on: generation)
        #expect(replayed.status == 0, "\(replayed.stderr)")
        #expect(replayed.stdout.contains("the back-end accepted the state (CHECK_DEVICE_STATE 0)"))

        // The net state replaced by itself gives the file back byte for byte.
        let replaced = try StatetoolRunner.run(["migration", "replace", file, "--device", "0000:00:01.0/virtio-net", "--state", path("net.state"), "-o", path("same.mig")])
        #expect(replaced.status == 0, "\(replaced.stderr)")
        let same = try Data(contentsOf: URL(fileURLWithPath: path("same.mig"))) == Data(contentsOf: URL(fileURLWithPath: file))
        #expect(same)

        // diff --semantic of the file and the capture: the same by meaning.
        let diffed = try StatetoolRunner.run(["diff", "--semantic", file, path("captured.state")])
        #expect(diffed.status == 0, "\(diffed.stderr)")
        #expect(diffed.stdout == "\(file) and \(path("captured.state")): passt states are the same by meaning\n")
    }

    /// diagnose reads a passt state as passt's (not as a virtiofsd state, nor "no state"):
    /// the file QEMU wrote is restorable, its state decoding; a state cut short is
    /// damaged-state with passt's decoder's own finding.
    @Test(arguments: PeerGeneration.all)
    func diagnoseReadsAPasstStateAsPassts(generation: PeerGeneration) throws {
        try generation.require()
        let file = try migrateFromPasst(on: generation)
        let whole = try StatetoolRunner.run(["diagnose", "--json", file])
        #expect(whole.status == 0, "\(whole.stdout)\(whole.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(whole.stdout.utf8)) as? [String: Any], "\(whole.stderr)")
        #expect(json["verdict"] as? String == "restorable")
        #expect((json["causes"] as? [Any])?.isEmpty == true)
        #expect(json["device"] as? String == "0000:00:01.0/virtio-net")
        #expect((json["checked"] as? [String])?.contains { $0.hasPrefix("\(file): passt ") && $0.hasSuffix(", which decodes") } == true, "\(json["checked"] ?? "")")

        _ = try StatetoolRunner.run(["extract", file, "-o", path("net.state")])
        let cut = try write(Array(try payload(of: "net.state").prefix(30)), to: "cut.state")
        let damaged = try StatetoolRunner.run(["diagnose", "--json", cut])
        #expect(damaged.status == 1)
        let damagedJSON = try #require(try JSONSerialization.jsonObject(with: Data(damaged.stdout.utf8)) as? [String: Any], "\(damaged.stderr)")
        let causes = damagedJSON["causes"] as? [[String: Any]] ?? []
        #expect(causes.map { $0["kind"] as? String } == ["damaged-state"], "\(damaged.stdout)")
        #expect((causes.first?["summary"] as? String)?.hasPrefix("the passt state does not decode: the payload ends inside the 42 bytes of observed addresses") == true, "\(damaged.stdout)")
    }

    @Test(arguments: PeerGeneration.all)
    func passtRefusesADamagedStateAndItsLogSaysWhy(generation: PeerGeneration) throws {
        try generation.require()
        let file = try migrateFromPasst(on: generation)
        _ = try StatetoolRunner.run(["extract", file, "-o", path("net.state")])
        let payload = try self.payload(of: "net.state")

        var magic = payload
        magic[0] ^= 0xff
        var version = payload
        version.replaceSubrange(8..<16, with: [0, 0, 0, 9, 0, 0, 0, 9])
        let cases: [(name: String, payload: [UInt8], verdict: Int, log: String, inspect: String)] = [
            ("magic", magic, 22, "Invalid incoming device state", ""),
            ("version", version, 95, "Unsupported device state version: 9",
             "begins like a passt state but does not decode: unsupported-version at payload offset 8"),
            ("short", Array(payload.prefix(30)), 61, "Target migration stage: observed addresses: No data available, abort",
             "begins like a passt state but does not decode: truncated at payload offset 16: the payload ends inside the 42 bytes of observed addresses: 14 of 42 bytes present"),
        ]
        for damaged in cases {
            let stream = try write(damaged.payload, to: "\(damaged.name).state")
            let replayed = try replay(stream, on: generation, socket: "\(damaged.name).sock")
            #expect(replayed.status == 3, "\(damaged.name): \(replayed.stderr)")
            // diagnose reads passt's log and names it.
            let diagnosed = try StatetoolRunner.run(["diagnose", "--json", "--log", path("\(damaged.name).sock.log")])
            #expect(diagnosed.status == 1)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(diagnosed.stdout.utf8)) as? [String: Any], "\(diagnosed.stderr)")
            let causes = json["causes"] as? [[String: Any]] ?? []
            #expect(causes.map { $0["kind"] as? String } == ["passt-state-rejected"], "\(damaged.name): \(diagnosed.stdout)")
            #expect((causes.first?["summary"] as? String)?.hasSuffix(damaged.log) == true, "\(damaged.name): \(diagnosed.stdout)")
            #expect(json["verdict"] as? String == "destination")
            #expect(replayed.stdout.contains("the back-end rejected the state (CHECK_DEVICE_STATE \(damaged.verdict))"), "\(damaged.name)")
            #expect(replayed.stderr.contains(damaged.log), "\(damaged.name): \(replayed.stderr)")
            // statetool's decoder says as much before any passt is asked.
            let inspected = try StatetoolRunner.run(["inspect", stream])
            #expect(inspected.status == 0)
            if damaged.inspect.isEmpty {
                #expect(!inspected.stdout.contains("\npasst "), "a payload without passt's magic is left opaque")
            } else {
                #expect(inspected.stdout.contains(damaged.inspect), "\(damaged.name): \(inspected.stdout)")
            }
        }
    }

    /// A file written by one generation's QEMU and passt: its passt state replays into the
    /// other generation's passt, and the other generation's QEMU and passt restore the file.
    @Test(arguments: GenerationMatrixTests.crossings.filter { $0.source != $0.destination })
    func passtStatesCrossGenerations(crossing: GenerationMatrixTests.Crossing) throws {
        try crossing.source.require()
        try crossing.destination.require()
        let file = try migrateFromPasst(on: crossing.source)
        #expect(try StatetoolRunner.run(["extract", file, "-q", "-o", path("net.state")]).status == 0)
        let replayed = try replay(path("net.state"), on: crossing.destination)
        #expect(replayed.status == 0, "\(replayed.stderr)")

        let passt = try crossing.destination.startPasst(socket: path("dst.sock"), log: path("dst.log"))
        defer { passt.stop() }
        let qemu = try qemu(crossing.destination, socket: "dst.sock", qmp: "dst.qmp", extra: ["-incoming", "file:\(file)"])
        defer { RealPeers.stop(qemu) }
        let loaded = try Peer.python(["Tests/Peers/qmp.py", path("dst.qmp"), "wait-incoming"]).status
        #expect(loaded == 0, "QEMU: \((try? String(contentsOfFile: path("dst.qmp.log"), encoding: .utf8)) ?? "")")
    }
}

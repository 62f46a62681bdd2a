import Foundation
import TestSupport
import Testing

/// `migration show` and `migration ram` on files real QEMU (10.0 and 11.1) writes now: a
/// q35 guest with a vhost-user-fs device of 1024-entry queues and a known
/// pattern loaded into its RAM (QEMU's generic loader device), saved
/// regularly and with mapped-ram.
@Suite(.serialized) final class RealQEMUShowTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("qemu-show")
    }

    private func path(_ name: String) -> String { scratch.path(name) }

    /// Where the loader puts the pattern in guest memory (and so in the `mem` block).
    static let patternAddress = 0x10_0000

    /// Saves a paused guest to `file` with `capabilities`.
    private func save(to file: String, on generation: PeerGeneration, capabilities: [String], pattern: String) throws {
        var generator = SeededGenerator(seed: 7)
        try Data((0..<5000).map { _ in UInt8.random(in: 0...255, using: &generator) }).write(to: URL(fileURLWithPath: path("served.payload")))
        let backEnd = try Peer.start(
            StatetoolRunner.executable.path, ["serve", "--socket", path("src.sock"), "--state", path("served.payload")],
            log: path("serve.log"), waitingFor: path("src.sock"))
        // Each generation's own q35 (pc-q35-11.1 under QEMU 11): the files are its own.
        let qemu = try Peer.start(generation.qemu, PeerGeneration.machineArguments(megabytes: 256, machine: "q35") + [
            "-S",
            "-chardev", "socket,id=char0,path=\(path("src.sock"))",
            "-device", "vhost-user-fs-pci,chardev=char0,tag=myfs,queue-size=1024",
            "-device", "loader,file=\(pattern),addr=\(Self.patternAddress)",
            "-qmp", "unix:\(path("src.qmp")),server=on,wait=off",
        ], log: path("qemu.log"))
        let migrated = try Peer.python(["Tests/Peers/qmp.py", path("src.qmp"), "migrate", file] + capabilities).status
        _ = try Peer.python(["Tests/Peers/qmp.py", path("src.qmp"), "quit"])
        RealPeers.stop(qemu, backEnd)
        try #require(migrated == 0, "the migration did not complete")
    }

    @Test(arguments: PeerGeneration.all, [[], ["mapped-ram"]])
    func freshFilesDecodeAndTheirRAMComesOut(generation: PeerGeneration, capabilities: [String]) throws {
        try generation.require()
        var generator = SeededGenerator(seed: 24)
        let pattern = Data((0..<(64 << 10)).map { _ in UInt8.random(in: 1...255, using: &generator) })
        try pattern.write(to: URL(fileURLWithPath: path("pattern.bin")))
        let file = path("vm.mig")
        try save(to: file, on: generation, capabilities: capabilities, pattern: path("pattern.bin"))

        // Every device decodes through the description; the vhost-user-fs queues are 1024 long.
        let shown = try StatetoolRunner.run(["migration", "show", file, "--json", "-q"])
        #expect(shown.status == 0, "\(shown.stderr)")
        let report = try shown.jsonObject()
        let devices = try #require(report["devices"] as? [[String: Any]])
        #expect(devices.count > 20)
        for device in devices {
            #expect((device["problems"] as? [Any])?.isEmpty == true, "\(device["name"] ?? ""): \(device["problems"] ?? "")")
        }
        let fs = try #require(devices.first { ($0["name"] as? String)?.hasSuffix("/vhost-user-fs") == true })
        let virtio = try #require(fs["virtio"] as? [String: Any])
        let queues = try #require(virtio["queues"] as? [[String: Any]])
        #expect(queues.map { $0["size"] as? Int } == [1024, 1024])
        // QEMU fills the config it saves when the driver reads it: no guest ran here, so no tag yet (s1-A's says myfs).
        #expect((virtio["fileSystem"] as? [String: Any])?["tag"] as? String == "")
        #expect(virtio["status"] as? Int == 0)
        let findings = try #require(virtio["findings"] as? [[String: Any]])
        #expect(findings.map { $0["kind"] as? String } == ["virtqueue-size", "virtqueue-size"])
        #expect(findings.map { $0["severity"] as? String } == ["warning", "warning"])

        // A destination with queue-size 128 refuses it; one with 1024 takes it.
        #expect(try StatetoolRunner.run(["migration", "show", file, "--queue-size", "128", "-q"]).status == 1)
        let taken = try StatetoolRunner.run(["migration", "ls", file, "--queue-size", "1024"])
        #expect(taken.status == 0, "\(taken.stderr)")
        #expect(!taken.stderr.contains("virtqueue-size"))

        // The guest's RAM: the pattern at its address, the block 256 MiB, mostly holes.
        let folder = path("ram")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let ram = try StatetoolRunner.run(["migration", "ram", file, "-o", folder, "--block", "mem", "-q"])
        #expect(ram.status == 0, "\(ram.stderr)")
        let mem = try FileHandle(forReadingFrom: URL(fileURLWithPath: "\(folder)/mem"))
        defer { try? mem.close() }
        try mem.seek(toOffset: UInt64(Self.patternAddress))
        #expect(try mem.read(upToCount: pattern.count) == pattern)
        var status = stat()
        try #require(stat("\(folder)/mem", &status) == 0)
        #expect(status.st_size == 256 << 20)
        #expect(UInt64(status.st_blocks) * 512 < 32 << 20, "the block is not sparse: \(status.st_blocks) blocks")
    }

    /// A guest that ran (looked up its share, holds files open) saved regularly and with
    /// mapped-ram: `--used-rings` reads each virtqueue's used index from the RAM in the file
    /// (a second pass, or in place), equal to the two bytes `migration ram` gives at the
    /// used ring's address + 2, and to last_avail_idx: nothing was in flight.
    @Test(arguments: PeerGeneration.all, [[], ["mapped-ram"]])
    func aRunningGuestsUsedIndexesAreReadFromItsRAM(generation: PeerGeneration, capabilities: [String]) throws {
        try generation.require()
        let guest = try FreshGuest(in: scratch)
        try guest.boot(on: generation)
        let file = path("ran.mig")
        try guest.save(to: file, capabilities: capabilities)

        let shown = try StatetoolRunner.run(["migration", "show", file, "--used-rings", "--queue-size", "1024", "--json", "-q"])
        #expect(shown.status == 0, "\(shown.stderr)")
        let devices = try #require(try shown.jsonObject()["devices"] as? [[String: Any]])
        let fs = try #require(devices.first { ($0["name"] as? String)?.hasSuffix("/vhost-user-fs") == true })
        let queues = try #require((fs["virtio"] as? [String: Any])?["queues"] as? [[String: Any]])
        let used = queues.compactMap { $0["usedIndex"] as? Int }
        #expect(used.count == queues.count)
        #expect(used == queues.compactMap { $0["lastAvailableIndex"] as? Int })
        #expect(used.contains { $0 > 0 }, "the guest's requests went through a queue: \(used)")

        let folder = path("ran-ram")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let ram = try StatetoolRunner.run(["migration", "ram", file, "-o", folder, "--block", "mem", "-q"])
        #expect(ram.status == 0, "\(ram.stderr)")
        let mem = try FileHandle(forReadingFrom: URL(fileURLWithPath: "\(folder)/mem"))
        defer { try? mem.close() }
        for (queue, index) in zip(queues, used) {
            // A 128 MiB q35 guest's RAM is all below 4 GiB: a guest-physical address is its offset in mem.
            let address = try #require(queue["usedAddress"] as? UInt64)
            try mem.seek(toOffset: address + 2)
            let bytes = try #require(try mem.read(upToCount: 2))
            #expect(Int(bytes[0]) | Int(bytes[1]) << 8 == index)
        }
    }
}

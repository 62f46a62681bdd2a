import Foundation
import TestSupport
import Testing

/// A whole migration file or a libvirt save image given to a command that
/// reads a state stream: refused at once, named, with the command that reads it.
@Suite struct ForeignInputTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("foreign")
    }

    static let migrationFile = StatetoolRunner.sample("two-devices.mig")

    static func refusal(_ path: String, _ what: String) -> String {
        "\(path): error: not-a-state-stream at offset 0: \(what), not a state stream: statetool extract \(path) writes the back-end "
            + "states it holds as streams, statetool migration ls \(path) lists it; diff --semantic, preflight and retarget read it as it is\n"
    }

    static let qemu = "a QEMU migration file (QEVM magic)"

    /// Every command that reads a stream, with the status it documents for a
    /// broken input; none writes its output.
    @Test(arguments: [
        (["validate"], 1), (["inspect"], 1), (["inspect", "--json"], 1), (["payload", "-o", "OUT"], 1),
        (["rechunk", "-o", "OUT"], 1), (["compress", "-o", "OUT"], 1), (["decompress", "-o", "OUT"], 1),
        (["repair", "-o", "OUT"], 1), (["replay", "--socket", "SOCKET"], 1),
    ] as [([String], Int32)])
    func aMigrationFileIsNoStream(command: [String], status: Int32) throws {
        let arguments = command.map { $0 == "OUT" ? scratch.path("out") : $0 == "SOCKET" ? scratch.path("no.sock") : $0 }
        let result = try StatetoolRunner.run(arguments + [Self.migrationFile])
        #expect(result.status == status)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr == Self.refusal(Self.migrationFile, Self.qemu))
        #expect(scratch.contents.isEmpty)
    }

    /// diff exits 2 (trouble) for it, as for any broken side; migration replace
    /// refuses it as the state to put in.
    @Test func diffAndMigrationReplaceNameTheSideThatIsAFile() throws {
        let state = StatetoolRunner.sample("good.state")
        let diffed = try StatetoolRunner.run(["diff", state, Self.migrationFile])
        #expect(diffed.status == 2)
        #expect(diffed.stderr == Self.refusal(Self.migrationFile, Self.qemu))

        let replaced = try StatetoolRunner.run(["migration", "replace", Self.migrationFile, "--device", "0000:00:04.0/vhost-user-fs", "--state", Self.migrationFile, "-o", scratch.path("out.mig")])
        #expect(replaced.status == 1)
        #expect(replaced.stderr == Self.refusal(Self.migrationFile, Self.qemu))
        #expect(scratch.contents.isEmpty)
    }

    /// Compressed, and from a pipe: known by its decompressed first bytes.
    @Test func aCompressedMigrationFileFromAPipeIsNoStream() throws {
        let compressed = try ProcessRunner.run("/usr/bin/zstd", ["-q", "-c", Self.migrationFile])
        let result = try StatetoolRunner.run(["validate", "-"], stdin: compressed.stdoutBytes)
        #expect(result.status == 1)
        #expect(result.stderr == Self.refusal("-", Self.qemu))
    }

    /// libvirt's magic, either of them; the other files of the run are still checked.
    @Test(arguments: ["LibvirtQemudSave", "LibvirtQemudPart"])
    func aSaveImageIsNoStream(magic: String) throws {
        let image = scratch.path("vm.save")
        try Data(Array(magic.utf8) + [UInt8](repeating: 0, count: 76)).write(to: URL(fileURLWithPath: image))
        let good = StatetoolRunner.sample("good.state")
        let result = try StatetoolRunner.run(["validate", "-v", image, good])
        #expect(result.status == 1)
        #expect(result.stderr == Self.refusal(image, "a libvirt save image (LibvirtQemud magic)"))
        #expect(result.stdout == "\(good): valid: 3 chunks, 9380 payload bytes, none\n")
    }

    /// A stream that merely starts with a Q (a first chunk of 0x51...) is a
    /// stream: only the whole magic refuses.
    @Test func aStreamStartingLikeTheMagicIsAStream() throws {
        let path = scratch.path("q.state")
        try Data([0x51, 0x45, 0x56] + [UInt8](repeating: 0, count: 5)).write(to: URL(fileURLWithPath: path))
        let result = try StatetoolRunner.run(["validate", path])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("\(path): warning: oversized-chunk at offset 0: chunk 0 declares 1363498496 bytes"), "\(result.stderr)")
    }
}

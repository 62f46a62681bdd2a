import Foundation
import TestSupport
import Testing

/// Every `--json` output against its JSON Schema: the commands are run on real
/// inputs (the samples, the QEMU + virtiofsd captures, broken streams, migration
/// files, save images, failures and refusals) and each object they print is
/// checked by a maintained validator (python3-jsonschema, draft 2020-12) against
/// `schemas/NAME.schema.json`, which `statetool schema NAME` prints byte for byte.
@Suite final class JSONSchemaTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("schemas")
    }

    private func path(_ name: String) -> String { scratch.path(name) }

    static let schemas = Repository.root.appendingPathComponent("schemas")
    static let validator = Repository.root.appendingPathComponent("Tests/Schemas/validate.py").path
    private static func sample(_ name: String) -> String { StatetoolRunner.sample(name) }

    /// The checked-in schemas by name: `schemas/NAME.schema.json`.
    static func schemaNames() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: schemas.path)
            .filter { $0.hasSuffix(".schema.json") }
            .map { String($0.dropLast(".schema.json".count)) }
            .sorted()
    }

    // MARK: - Running and validating

    /// One run of a command with `--json`.
    struct Run: CustomStringConvertible {
        let arguments: [String]
        var stdin: Data? = nil
        /// The exit status it must end with.
        var status: Int32 = 0
        /// Whether it must print a JSON object; a failure or refusal may print none.
        var printsJSON = true
        /// Where the object goes: standard error when the command's data takes standard output.
        var onStandardError = false

        var description: String { "statetool " + arguments.joined(separator: " ") }
    }

    /// Runs each of `runs`, takes the JSON object it prints (each prints one
    /// line, or with `printsJSON` false may print nothing), and validates them all
    /// against `schemas/NAME.schema.json`; a failure shows the validator's message.
    /// Returns the objects.
    @discardableResult
    private func validate(
        _ runs: [Run], against name: String, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> [[String: Any]] {
        var lines: [String] = [], legend: [String] = [], objects: [[String: Any]] = []
        for run in runs {
            let result = try StatetoolRunner.run(run.arguments, stdin: run.stdin)
            #expect(result.status == run.status, "\(run): exit status \(result.status)\n\(result.stderr)", sourceLocation: sourceLocation)
            let output = run.onStandardError ? result.stderr : result.stdout
            let printed = output.split(separator: "\n").filter { $0.hasPrefix("{") }.map(String.init)
            if run.printsJSON {
                #expect(printed.count == 1, "\(run): \(printed.count) JSON lines\n\(output)\(result.stderr)", sourceLocation: sourceLocation)
            } else if !run.onStandardError {
                // What prints no JSON prints nothing at all on standard output.
                #expect(printed.count == result.stdout.split(separator: "\n").count, "\(run): text with --json:\n\(result.stdout)",
                        sourceLocation: sourceLocation)
            }
            for line in printed {
                // With --json a command prints one whole object or nothing, never a part of one.
                guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                    Issue.record("\(run): not a JSON object: \(line)\n\(result.stderr)", sourceLocation: sourceLocation)
                    continue
                }
                lines.append(line)
                objects.append(object)
                legend.append("  line \(lines.count): \(run)")
            }
        }
        let file = path("\(name)-\(UUID().uuidString.prefix(8)).jsonl")
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: file))
        let checked = try ProcessRunner.run("/usr/bin/python3", [Self.validator, name, file])
        #expect(
            checked.status == 0,
            "outputs not valid against schemas/\(name).schema.json (python3-jsonschema: Scripts/setup --test):\n\(checked.stdout)\(checked.stderr)\(legend.joined(separator: "\n"))",
            sourceLocation: sourceLocation)
        return objects
    }

    // MARK: - The schemas and the binary

    @Test func theSchemasAreDraft202012Schemas() throws {
        let checked = try ProcessRunner.run("/usr/bin/python3", [Self.validator, "--check-schemas"])
        #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")
        for name in try Self.schemaNames() {
            let schema = try #require(
                try JSONSerialization.jsonObject(with: Data(contentsOf: Self.schemas.appendingPathComponent("\(name).schema.json"))) as? [String: Any])
            #expect(schema["$schema"] as? String == "https://json-schema.org/draft/2020-12/schema")
            #expect(schema["$id"] as? String == "urn:statetool:\(name):1")
        }
    }

    /// The commands with `--json`, from the argument parser's own description of statetool.
    static func commandsWithJSON() throws -> [[String]] {
        let dump = try StatetoolRunner.run(["--experimental-dump-help"])
        #expect(dump.status == 0)
        let root = try #require(try dump.jsonObject()["command"] as? [String: Any])
        var found: [[String]] = []
        func walk(_ command: [String: Any], _ path: [String]) {
            let arguments = command["arguments"] as? [[String: Any]] ?? []
            let hasJSON = arguments.contains { argument in
                (argument["names"] as? [[String: Any]] ?? []).contains { $0["kind"] as? String == "long" && $0["name"] as? String == "json" }
            }
            if hasJSON { found.append(path) }
            for sub in command["subcommands"] as? [[String: Any]] ?? [] {
                walk(sub, path + [sub["commandName"] as? String ?? "?"])
            }
        }
        walk(root, [])
        return found
    }

    @Test func everyCommandWithJSONHasASchemaAndEverySchemaACommand() throws {
        let commands = try Self.commandsWithJSON()
        // Derived from the parser; the list below only guards against a command losing --json unnoticed.
        #expect(Set(commands.map { $0.joined(separator: " ") }) == [
            "inspect", "diff", "repair", "replay", "migration ls", "migration show", "migration replace", "extract", "preflight", "retarget",
            "diagnose",
        ])
        let names = try Self.schemaNames()
        for command in commands {
            let name = command.joined(separator: "-")
            #expect(names.contains(name), "statetool \(command.joined(separator: " ")) has --json but no schemas/\(name).schema.json")
            let help = try StatetoolRunner.run(["help"] + command)
            #expect(help.stdout.contains("--json"), "\(command): help shows no --json")
        }
        // common: shared definitions; bundle-manifest: the manifest.json that diagnose --bundle writes.
        let documented = Set(commands.map { $0.joined(separator: "-") } + ["common", "bundle-manifest"])
        for name in names {
            #expect(documented.contains(name), "schemas/\(name).schema.json describes no command with --json")
        }
    }

    @Test func schemaPrintsTheCheckedInFileByteForByte() throws {
        let names = try Self.schemaNames()
        #expect(names.contains("common"))
        for name in names {
            let file = try Data(contentsOf: Self.schemas.appendingPathComponent("\(name).schema.json"))
            let printed = try StatetoolRunner.run(["schema", name])
            #expect(printed.status == 0, "\(printed.stderr)")
            #expect(printed.stdoutBytes == file, "statetool schema \(name) differs from schemas/\(name).schema.json: run Scripts/schemas")
            #expect(printed.stderr.isEmpty)
        }
        for words in [["migration", "ls"], ["migration", "replace"]] {
            let printed = try StatetoolRunner.run(["schema"] + words)
            #expect(printed.status == 0)
            #expect(printed.stdoutBytes == (try Data(contentsOf: Self.schemas.appendingPathComponent("\(words.joined(separator: "-")).schema.json"))))
        }
        let list = try StatetoolRunner.run(["schema", "--list"])
        #expect(list.status == 0)
        #expect(list.stdout == names.map { $0 + "\n" }.joined())

        let unknown = try StatetoolRunner.run(["schema", "validate"])
        #expect(unknown.status == 64)
        #expect(unknown.stdout.isEmpty)
        #expect(unknown.stderr.contains("\"validate\""), "\(unknown.stderr)")
        for name in names { #expect(unknown.stderr.contains(name), "\(unknown.stderr)") }
        #expect(try StatetoolRunner.run(["schema"]).status == 64)
        #expect(try StatetoolRunner.run(["schema", "--list", "inspect"]).status == 64)

        let help = try StatetoolRunner.run(["help", "schema"])
        #expect(help.stdout.contains("\"schema\""), "the help explains the schema key")
    }

    // MARK: - Inputs written here

    /// postcard's encodings, for virtiofsd states written by hand.
    private enum Postcard {
        static func varint(_ value: UInt64) -> [UInt8] {
            var value = value, out: [UInt8] = []
            repeat {
                let low = UInt8(value & 0x7f)
                value >>= 7
                out.append(value == 0 ? low : low | 0x80)
            } while value != 0
            return out
        }

        static func zigzag(_ value: Int64) -> [UInt8] { varint(UInt64(bitPattern: (value << 1) ^ (value >> 63))) }

        static func string(_ text: String) -> [UInt8] { varint(UInt64(text.utf8.count)) + Array(text.utf8) }
    }

    /// A V1 or V2 virtiofsd payload with every location kind: the root, a path
    /// with a recorded file handle, an invalid inode, a full path, a file handle;
    /// one handle; V2's mount paths.
    static func everyLocationKind(v2: Bool) -> [UInt8] {
        let handle = Postcard.varint(27) + Postcard.zigzag(-2) + Postcard.varint(3) + [0xde, 0xad, 0x01]
        let inodes: [UInt8] = Postcard.varint(5)
            + Postcard.varint(1) + Postcard.varint(3) + [0] + [0]
            + Postcard.varint(2) + Postcard.varint(1) + [1] + Postcard.varint(1) + Postcard.string("dir") + [1] + handle
            + Postcard.varint(300) + Postcard.varint(1) + [2] + [0]
            + Postcard.varint(301) + Postcard.varint(1) + [3] + Postcard.string("dir/file") + [0]
            + Postcard.varint(70000) + Postcard.varint(1) + [4] + handle + [0]
        let handles: [UInt8] = Postcard.varint(1) + Postcard.varint(9) + Postcard.varint(301) + [0] + Postcard.zigzag(0x8002)
        let body = inodes + Postcard.varint(70001) + handles + Postcard.varint(10) + [1, 0, 1, 0]
        guard v2 else { return [0] + body }
        return [1] + body + Postcard.varint(2) + Postcard.varint(27) + Postcard.string(".") + Postcard.varint(5) + Postcard.string("sub")
    }

    /// A V2 state no destination loads: a duplicate inode id, a parent the
    /// state does not hold, a handle on a missing inode.
    static let inconsistent: [UInt8] = {
        /// An inode located by `name` in `parent`, without a file handle.
        func child(_ id: UInt64, of parent: UInt64, _ name: String) -> [UInt8] {
            Postcard.varint(id) + Postcard.varint(1) + [1] + Postcard.varint(parent) + Postcard.string(name) + [0]
        }
        var bytes: [UInt8] = [1] + Postcard.varint(4) + Postcard.varint(1) + Postcard.varint(3) + [0, 0]
        bytes += child(2, of: 1, "a") + child(2, of: 1, "b") + child(5, of: 99, "c")
        bytes += Postcard.varint(100) + Postcard.varint(1) + Postcard.varint(7) + Postcard.varint(42) + [0] + Postcard.zigzag(0)
        bytes += Postcard.varint(8) + [0, 1, 0, 0] + Postcard.varint(0)
        return bytes
    }()

    private static func be32(_ value: UInt32) -> [UInt8] { StreamBytes.bigEndian(value) }
    private static func le16(_ value: UInt16) -> [UInt8] { [UInt8(value & 0xff), UInt8(value >> 8)] }
    private static func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }
    private static func mapped(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> [UInt8] {
        [UInt8](repeating: 0, count: 10) + [0xff, 0xff, a, b, c, d]
    }

    /// A passt payload with three TCP flows (passt's tcp_tap_transfer and
    /// tcp_tap_transfer_ext): one with both queues, one with none, one the
    /// source could not dump.
    static let threeFlows: [UInt8] = {
        typealias T = JSONSchemaTests
        func flow(_ n: UInt8) -> [UInt8] {
            var bytes: [UInt8] = [2, 1]
            bytes += T.mapped(10, 0, 2, 15) + T.mapped(192, 0, 2, n) + T.le16(40000 + UInt16(n)) + T.le16(80)
            bytes += T.mapped(10, 0, 2, 2) + T.mapped(93, 184, 216, n) + T.le16(50000) + T.le16(443)
            bytes += [3, 7, 8, 0x04] + T.be32(1460) + T.be32(87380 + UInt32(n))
            bytes += [0x08, 5] + T.be16(64240) + T.be16(65535)
            let sequences: [UInt32] = [0x11111111, 0x22222222, 0x33333333, 0x44444444, 0x55555555]
            bytes += sequences.flatMap { T.be32($0 + UInt32(n)) }
            return bytes
        }
        func extended(sendQueue: UInt32, notSent: UInt32, receiveQueue: UInt32, state: UInt8 = 1) -> [UInt8] {
            let words: [UInt32] = [
                0xa0000001, 0xb0000002, sendQueue, notSent, receiveQueue,
                1448, 123456, 0xc0000003, 64000, 65535, 64512, 0xd0000004,
            ]
            return words.flatMap(T.be32) + [7, 9, state, 0x07]
        }
        let sendQueue = (0..<300).map { UInt8(truncatingIfNeeded: $0) }, receiveQueue = Array("GET / HTTP/1.1\r\n".utf8)
        var bytes: [UInt8] = PasstCommandTests.header + PasstCommandTests.addresses + T.be32(3)
        bytes += flow(1) + flow(2) + flow(3)
        bytes += extended(sendQueue: 300, notSent: 100, receiveQueue: UInt32(receiveQueue.count)) + sendQueue + receiveQueue
        bytes += extended(sendQueue: 0, notSent: 0, receiveQueue: 0)
        bytes += extended(sendQueue: 999, notSent: 0, receiveQueue: 999, state: 0)
        return bytes
    }()

    /// Writes `bytes` to the scratch file `name` and returns its path.
    private func write(_ name: String, _ bytes: some Sequence<UInt8>) throws -> String {
        try Data(bytes).write(to: scratch.url(name))
        return path(name)
    }

    /// `tool` (e.g. `gzip -c`) applied to `input`, written to `name`.
    private func compressed(_ input: String, with tool: String, to name: String) throws -> String {
        let result = try ProcessRunner.run("/bin/sh", ["-c", "\(tool) < \"$1\" > \"$2\"", "sh", input, path(name)])
        try #require(result.status == 0, "\(tool): \(result.stderr)")
        return path(name)
    }

    /// The streams the stream commands are run on: every sample, other
    /// compressions, back-end states of every kind, broken ones.
    private func streams() throws -> [String] {
        let good = Self.sample("good.state")
        return [
            "good.state", "good.state.zst", "compression-error.state.zst", "missing-terminator.state", "oversized-chunk.state.zst",
            "trailing-data.state", "truncated-chunk.state", "truncated-length.state", "virtiofsd-s1-A.state",
        ].map(Self.sample) + [
            try compressed(good, with: "/usr/bin/gzip -c", to: "good.state.gz"),
            try compressed(good, with: "/usr/bin/xz -c -T1", to: "good.state.xz"),
            try compressed(good, with: "/usr/bin/bzip2 -c", to: "good.state.bz2"),
            try write("cut.state.gz", try Data(contentsOf: URL(fileURLWithPath: path("good.state.gz"))).prefix(300)),
            try write("empty.state", [UInt8]()),
            try write("terminator-only.state", [0, 0, 0, 0]),
        ]
    }

    // MARK: - Each command

    @Test func inspect() throws {
        var runs: [Run] = []
        for stream in try streams() {
            let name = URL(fileURLWithPath: stream).lastPathComponent
            let valid = !["compression-error", "missing-terminator", "trailing-data", "truncated", "cut.state", "empty"].contains { name.contains($0) }
            runs.append(Run(arguments: ["inspect", "--json", stream], status: valid ? 0 : 1))
            runs.append(Run(arguments: ["inspect", "--json", "--chunks", stream], status: valid ? 0 : 1))
        }
        runs += [
            Run(arguments: ["inspect", "--json", "--strict", Self.sample("oversized-chunk.state.zst")], status: 1),
            Run(arguments: ["inspect", "--json", "--decode", "-"], stdin: try Data(contentsOf: URL(fileURLWithPath: Self.sample("good.state.zst")))),
        ]
        // More than 1000 warnings: the rest are counted, not listed.
        let many = try write("many.state", StreamBytes.frame([[UInt8]](repeating: [UInt8](repeating: 0x78, count: 1100), count: 1010)))
        runs.append(Run(arguments: ["inspect", "--json", "--max-chunk", "1K", many]))
        for capture in Fixtures.captures {
            runs.append(Run(arguments: ["inspect", "--json", "--decode", Fixtures.state(capture.name)]))
        }
        let real = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.state("s1-A-running"))))
        var damaged = real
        damaged[4 + 6] = 2  // inodes[0].file_handle: option tag 2
        let passt = PasstCommandTests.header + PasstCommandTests.addresses + PasstCommandTests.flowCount
        let states = [
            try write("v1.state", StreamBytes.frame([Self.everyLocationKind(v2: false)])),
            try write("v2.state", StreamBytes.frame(Self.everyLocationKind(v2: true), chunkSize: 7)),
            try write("inconsistent.state", StreamBytes.frame([Self.inconsistent])),
            try write("damaged.state", damaged),
            try write("passt.state", StreamBytes.frame([PasstCommandTests.header, PasstCommandTests.addresses, PasstCommandTests.flowCount])),
            try write("passt-flows.state", StreamBytes.frame(Self.threeFlows, chunkSize: 100)),
            try write("passt-cut.state", StreamBytes.frame([Array(passt.prefix(36))])),
        ]
        runs += states.map { Run(arguments: ["inspect", "--json", $0]) }
        runs.append(Run(arguments: ["inspect", "--json", "--chunks", "--decode", path("passt-flows.state")]))
        // A bare payload is no stream: broken, and still reported.
        runs.append(Run(arguments: ["inspect", "--json", try write("v2.payload", Self.everyLocationKind(v2: true))], status: 1))
        // Refusals and failures: no JSON.
        runs += [
            Run(arguments: ["inspect", "--json", Self.sample("two-devices.mig")], status: 1, printsJSON: false),
            Run(arguments: ["inspect", "--json", "--chunks", Self.sample("two-devices.mig")], status: 1, printsJSON: false),
            Run(arguments: ["inspect", "--json", Self.sample("absent.state")], status: 2, printsJSON: false),
        ]
        let objects = try validate(runs, against: "inspect")
        #expect(objects.contains { $0["virtiofsd"] != nil } && objects.contains { $0["virtiofsdError"] != nil })
        #expect(objects.contains { $0["passt"] != nil } && objects.contains { $0["passtError"] != nil })
        #expect(objects.contains { ($0["omittedProblems"] as? Int ?? 0) > 0 })
    }

    @Test func diff() throws {
        let state = Fixtures.state
        _ = try streams()
        let passt = try write("passt.state", StreamBytes.frame([PasstCommandTests.header + PasstCommandTests.addresses + PasstCommandTests.flowCount]))
        let split = try write("passt-split.state", StreamBytes.frame([PasstCommandTests.header, PasstCommandTests.addresses, PasstCommandTests.flowCount]))
        let flows = try write("passt-flows.state", StreamBytes.frame(Self.threeFlows, chunkSize: 100))
        let v1 = try write("v1.state", StreamBytes.frame([Self.everyLocationKind(v2: false)]))
        let v2 = try write("v2.payload", Self.everyLocationKind(v2: true))
        let migration = try Fixtures.migrationFile("s1-D-more-open")
        var runs: [Run] = [
            Run(arguments: ["diff", "--json", Self.sample("good.state"), Self.sample("good.state.zst")]),
            Run(arguments: ["diff", "--json", path("good.state.gz"), path("good.state.xz")]),
            Run(arguments: ["diff", "--json", "--framing", path("good.state.bz2"), path("terminator-only.state")], status: 1),
            Run(arguments: ["diff", "--json", Self.sample("good.state"), Self.sample("virtiofsd-s1-A.state")], status: 1),
            Run(arguments: ["diff", "--json", "--max-ranges", "0", "--context", "0", Self.sample("good.state"), Self.sample("virtiofsd-s1-A.state")], status: 1),
            Run(arguments: ["diff", "--json", state("s1-A-running"), state("s1-D-more-open")], status: 1),
            Run(arguments: ["diff", "--json", passt, flows], status: 1),
            Run(arguments: ["diff", "--json", flows, passt], status: 1),
            Run(arguments: ["diff", "--json", "-", Self.sample("good.state")], stdin: try Data(contentsOf: URL(fileURLWithPath: Self.sample("good.state.zst")))),
            Run(arguments: ["diff", "--json", "--framing", Self.sample("good.state"), Self.sample("good.state.zst")]),
            Run(arguments: ["diff", "--json", "--framing", passt, split], status: 1),
            Run(arguments: ["diff", "--json", "--framing", split, passt], status: 1),
            Run(arguments: ["diff", "--json", "--framing", state("s1-A-running"), state("s2-verify-handles")], status: 1),
            Run(arguments: ["diff", "--json", "--semantic", state("s1-A-running"), state("s1-E-resaved-on-dst")]),
            Run(arguments: ["diff", "--json", "--semantic", state("s1-A-running"), migration], status: 1),
            Run(arguments: ["diff", "--json", "--semantic", "-v", state("s1-D-more-open"), Fixtures.compressedMigrationFile], status: 1),
            Run(arguments: ["diff", "--json", "--semantic", "--full-walk", migration, Fixtures.compressedMigrationFile], status: 1),
            Run(arguments: ["diff", "--json", "--semantic", v1, v2], status: 1),
            Run(arguments: ["diff", "--json", "--semantic", passt, flows], status: 1),
            Run(arguments: ["diff", "--json", "--semantic", split, passt]),
        ]
        // Trouble: a side unreadable, broken, or of another kind. No JSON.
        runs += [
            Run(arguments: ["diff", "--json", Self.sample("good.state"), Self.sample("truncated-chunk.state")], status: 2, printsJSON: false),
            Run(arguments: ["diff", "--json", "--framing", Self.sample("good.state"), Self.sample("truncated-chunk.state")], status: 2, printsJSON: false),
            Run(arguments: ["diff", "--json", Self.sample("good.state"), Self.sample("two-devices.mig")], status: 2, printsJSON: false),
            Run(arguments: ["diff", "--json", "--semantic", passt, state("s1-A-running")], status: 2, printsJSON: false),
            Run(arguments: ["diff", "--json", "--semantic", Self.sample("good.state"), state("s1-A-running")], status: 2, printsJSON: false),
            Run(arguments: ["diff", "--json", Self.sample("good.state"), Self.sample("absent.state")], status: 2, printsJSON: false),
        ]
        try validate(runs, against: "diff")
    }

    /// The migration files `migration ls` and `extract` are run on: the sample
    /// with two devices (raw, gzip, xz, cut short), the real captures (raw and
    /// zstd), a libvirt save image around one, a state stream.
    private func migrationFiles() throws -> [(file: String, status: Int32)] {
        let two = Self.sample("two-devices.mig")
        let s1A = try Fixtures.migrationFile("s1-A-running")
        let image = path("s1-A.save")
        try LibvirtImageCommandTests.header(format: 0).write(to: URL(fileURLWithPath: image))
        let appended = try ProcessRunner.run("/bin/sh", ["-c", "cat \"$1\" >> \"$2\"", "sh", s1A, image])
        try #require(appended.status == 0)
        return [
            (two, 0),
            (try compressed(two, with: "/usr/bin/gzip -c", to: "two.mig.gz"), 0),
            (try compressed(two, with: "/usr/bin/xz -c -T1", to: "two.mig.xz"), 0),
            (try write("two-cut.mig", try Data(contentsOf: URL(fileURLWithPath: two)).prefix(5000)), 1),
            (s1A, 0),
            (try Fixtures.migrationFile("s3-file-handles"), 0),
            (Fixtures.compressedMigrationFile, 0),
            (image, 0),
            (Self.sample("good.state"), 1),
        ]
    }

    @Test func migrationLs() throws {
        var runs = try migrationFiles().map { Run(arguments: ["migration", "ls", "--json", $0.file], status: $0.status) }
        runs.append(Run(arguments: ["migration", "ls", "--json", "--queue-size", "128", Fixtures.compressedMigrationFile], status: 1))
        runs += [
            Run(arguments: ["migration", "ls", "--json", "-"], stdin: try Data(contentsOf: URL(fileURLWithPath: Self.sample("two-devices.mig")))),
            Run(arguments: ["migration", "ls", "--json", Self.sample("absent.mig")], status: 2, printsJSON: false),
        ]
        let unfinished = try write("unfinished.save", LibvirtImageCommandTests.header(format: 0, magic: "LibvirtQemudPart"))
        runs.append(Run(arguments: ["migration", "ls", "--json", unfinished], status: 1, printsJSON: false))
        try validate(runs, against: "migration-ls")
    }

    @Test func migrationShow() throws {
        var runs = try migrationFiles().map { Run(arguments: ["migration", "show", "--json", "-q", $0.file], status: $0.status) }
        let s1A = try Fixtures.migrationFile("s1-A-running")
        runs += [
            Run(arguments: ["migration", "show", "--json", "-q", "--queue-size", "128", "--device", "38", s1A], status: 1),
            Run(arguments: ["migration", "show", "--json", "-q", "-"], stdin: try Data(contentsOf: URL(fileURLWithPath: s1A))),
            Run(arguments: ["migration", "show", "--json", "-q", Self.sample("absent.mig")], status: 2, printsJSON: false),
        ]
        try validate(runs, against: "migration-show")
    }

    @Test func extract() throws {
        var runs: [Run] = []
        for (index, input) in try migrationFiles().enumerated() {
            let directory = path("out\(index)")
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            runs.append(Run(arguments: ["extract", "--json", "--directory", directory, input.file], status: input.status))
        }
        let two = Self.sample("two-devices.mig")
        runs += [
            Run(arguments: ["extract", "--json", "--salvage", "--directory", scratch.url.path, path("two-cut.mig")], status: 1),
            Run(arguments: ["extract", "--json", "--payload", "--full-walk", "-v", "--directory", scratch.url.path, two]),
            Run(arguments: ["extract", "--json", "-o", path("one.state"), "--device", "0000:00:04.0/vhost-user-fs", two]),
            Run(arguments: ["extract", "--json", "-o", path("one.state"), "--device", "9", two], status: 1),
            Run(arguments: ["extract", "--json", "--directory", scratch.url.path, "-"], stdin: try Data(contentsOf: URL(fileURLWithPath: two))),
            // Usage errors and failures: no JSON.
            Run(arguments: ["extract", "--json", "-o", path("one.state"), two], status: 64, printsJSON: false),
            Run(arguments: ["extract", "--json", "-o", "-", two], status: 64, printsJSON: false),
            Run(arguments: ["extract", "--json", "-o", path("absent/one.state"), "--device", "2", two], status: 2, printsJSON: false),
            Run(arguments: ["extract", "--json", Self.sample("absent.mig")], status: 2, printsJSON: false),
        ]
        let objects = try validate(runs, against: "extract")
        #expect(objects.contains { ($0["backEndStates"] as? [[String: Any]] ?? []).contains { $0["output"] is String } })
    }

    @Test func migrationReplace() throws {
        let two = Self.sample("two-devices.mig"), good = Self.sample("good.state")
        let s1A = try Fixtures.migrationFile("s1-A-running")
        let payload = try write("v2.payload", Self.everyLocationKind(v2: true))
        let passt = try write("passt.state", StreamBytes.frame([PasstCommandTests.header + PasstCommandTests.addresses + PasstCommandTests.flowCount]))
        let replace = { (arguments: [String]) in ["migration", "replace", "--json"] + arguments }
        try validate([
            Run(arguments: replace([two, "--device", "2", "--state", good, "-o", path("1.mig")])),
            Run(arguments: replace([two, "--device", "0000:00:03.0/virtio-net", "--state", passt, "-o", path("2.mig")])),
            Run(arguments: replace([two, "--device", "2", "--bare-state", "--chunk-size", "1K", "--state", payload, "-o", path("3.mig")])),
            Run(arguments: replace([s1A, "--state", Fixtures.state("s1-D-more-open"), "-o", path("4.mig")])),
            Run(arguments: replace(["--full-walk", s1A, "--state", Fixtures.state("s1-D-more-open"), "-o", path("5.mig")])),
            Run(arguments: replace([Fixtures.compressedMigrationFile, "--state", Fixtures.state("s1-D-more-open"), "--zstd", "-o", path("6.mig.zst")])),
            Run(arguments: replace(["-", "--device", "2", "--state", good, "-o", path("7.mig")]), stdin: try Data(contentsOf: URL(fileURLWithPath: two))),
            // Refusals: no JSON.
            Run(arguments: replace([two, "--state", good, "-o", path("x.mig")]), status: 1, printsJSON: false),
            Run(arguments: replace([two, "--device", "2", "--state", Self.sample("truncated-chunk.state"), "-o", path("x.mig")]), status: 1, printsJSON: false),
            Run(arguments: replace([good, "--state", good, "-o", path("x.mig")]), status: 1, printsJSON: false),
        ], against: "migration-replace")
    }

    /// The shares and hand-built states preflight and retarget are run on: the fixture
    /// share whole and without tree/d07, a small one, a V1 stream and a V2 payload with
    /// every location kind, and an inconsistent state.
    private func sharesAndStates() throws -> (share: URL, broken: URL, small: URL, v1: String, v2: String, inconsistent: String) {
        let share = scratch.url("share"), broken = scratch.url("broken"), small = scratch.url("small")
        if !FileManager.default.fileExists(atPath: share.path) {
            try RealPeers.makeShare(at: share)
            try RealPeers.makeShare(at: broken, broken: true)
            try FileManager.default.createDirectory(at: small.appendingPathComponent("dir"), withIntermediateDirectories: true)
        }
        let v1 = try write("v1.state", StreamBytes.frame([Self.everyLocationKind(v2: false)]))
        let v2 = try write("v2.payload", Self.everyLocationKind(v2: true))
        let inconsistent = try write("inconsistent.state", StreamBytes.frame([Self.inconsistent]))
        return (share, broken, small, v1, v2, inconsistent)
    }

    @Test func diagnose() throws {
        let (share, broken, _, _, _, inconsistent) = try sharesAndStates()
        let logs = Fixtures.directory.appendingPathComponent("logs")
        let log = { (name: String) in ["--log", logs.appendingPathComponent(name).path] }
        let objects = try validate([
            Run(arguments: ["diagnose", "--json"], status: 1),
            Run(arguments: ["diagnose", "--json", Fixtures.state("s1-A-running"), "--shared-dir", share.path]),
            Run(arguments: ["diagnose", "--json", Fixtures.state("s1-A-running"), "--shared-dir", broken.path] + log("s1-dst-fail-abort.virtiofsd.log"), status: 1),
            Run(arguments: ["diagnose", "--json"] + log("s1-dst-fail-abort.qemu-stderr.log"), status: 1),
            Run(arguments: ["diagnose", "--json"] + log("s3-dst-fail-nocaps.virtiofsd.log"), status: 1),
            Run(arguments: ["diagnose", "--json", Fixtures.state("s1-A-running"), "--shared-dir", share.path, "--destination-args=--rlimit-nofile=2000"], status: 1),
            Run(arguments: ["diagnose", "--json", inconsistent, "--shared-dir", share.path], status: 1),
            Run(arguments: ["diagnose", "--json", Self.sample("truncated-chunk.state")], status: 1),
            Run(arguments: ["diagnose", "--json", Fixtures.state("s1-A-running"), "--shared-dir", broken.path, "--fix", "-o", path("fixed.state")]),
            // Trouble: no JSON.
            Run(arguments: ["diagnose", "--json", "--log", path("absent.log")], status: 2, printsJSON: false),
        ], against: "diagnose")
        #expect(Set(objects.compactMap { $0["verdict"] as? String }) == ["unknown", "restorable", "fixable", "destination", "unrecoverable"])
    }

    @Test func preflight() throws {
        let (share, broken, small, v1, v2, inconsistent) = try sharesAndStates()
        let check = { (state: String, directory: URL) in ["preflight", "--json", state, "--shared-dir", directory.path] }
        let objects = try validate([
            Run(arguments: check(Fixtures.state("s1-A-running"), share)),
            Run(arguments: check(Fixtures.state("s1-A-running"), broken), status: 1),
            Run(arguments: check(Fixtures.state("s1-D-more-open"), broken) + ["--all"], status: 1),
            Run(arguments: check(Fixtures.state("s2-verify-handles"), share), status: 1),
            Run(arguments: check(Fixtures.state("s3-file-handles"), share), status: 1),
            Run(arguments: check(Fixtures.compressedMigrationFile, broken), status: 1),
            Run(arguments: check(try Fixtures.migrationFile("s1-A-running"), share)),
            Run(arguments: check(v1, small), status: 1),
            Run(arguments: check(v2, small), status: 1),
            Run(arguments: check(inconsistent, small), status: 1),
            Run(arguments: check("-", share), stdin: try Data(contentsOf: URL(fileURLWithPath: Fixtures.state("s1-A-running")))),
            // Trouble: no JSON.
            Run(arguments: check(Fixtures.state("s1-A-running"), scratch.url("absent")), status: 2, printsJSON: false),
            Run(arguments: check(Self.sample("good.state"), share), status: 2, printsJSON: false),
            Run(arguments: check(Self.sample("truncated-chunk.state"), share), status: 2, printsJSON: false),
        ], against: "preflight")
        #expect(objects.contains { !($0["fatalProblems"] as? [Any] ?? []).isEmpty })
        #expect(objects.contains { !($0["handleFailures"] as? [Any] ?? []).isEmpty })
    }

    @Test func repair() throws {
        var runs: [Run] = []
        for (index, stream) in try streams().enumerated() {
            runs.append(Run(arguments: ["repair", "--json", stream, "-o", path("repaired\(index).state")]))
        }
        runs += [
            Run(arguments: ["repair", "--json", "--keep-partial", Self.sample("truncated-chunk.state"), "-o", path("kept.state")]),
            Run(arguments: ["repair", "--json", "--zstd", Self.sample("trailing-data.state"), "-o", path("z.state.zst")]),
            Run(arguments: ["repair", "--json", "-", "-o", path("piped.state")], stdin: try Data(contentsOf: URL(fileURLWithPath: Self.sample("truncated-length.state")))),
            // The stream on standard output: the report on standard error.
            Run(arguments: ["repair", "--json", Self.sample("missing-terminator.state"), "-o", "-"], onStandardError: true),
            // Refusals: no JSON.
            Run(arguments: ["repair", "--json", Self.sample("two-devices.mig"), "-o", path("x.state")], status: 1, printsJSON: false),
            Run(arguments: ["repair", "--json", Self.sample("absent.state"), "-o", path("x.state")], status: 2, printsJSON: false),
        ]
        try validate(runs, against: "repair")
    }

    @Test func retarget() throws {
        let (share, broken, small, v1, v2, inconsistent) = try sharesAndStates()
        let state = Fixtures.state("s1-A-running")
        let retarget = { (input: String, directory: URL, more: [String]) in
            ["retarget", "--json", input, "--shared-dir", directory.path] + more
        }
        let objects = try validate([
            Run(arguments: retarget(state, broken, ["--drop-missing", "-o", path("1.state")])),
            Run(arguments: retarget(state, share, ["-o", path("2.state")])),
            Run(arguments: retarget(state, broken, ["--rename", "tree/d08=tree/d07x", "--drop-missing", "-o", path("3.state")])),
            Run(arguments: retarget(Fixtures.state("s2-verify-handles"), share, ["--strip-file-handles", "-o", path("4.state")])),
            Run(arguments: retarget(Fixtures.state("s3-file-handles"), share, ["--drop-missing", "-o", path("5.state")])),
            Run(arguments: retarget(try Fixtures.migrationFile("s1-A-running"), broken, ["--drop-missing", "-o", path("6.mig")])),
            Run(arguments: retarget(Fixtures.compressedMigrationFile, broken, ["--drop-missing", "--zstd", "-o", path("7.mig.zst")])),
            Run(arguments: retarget(v1, small, ["--drop-missing", "-o", path("8.state")])),
            Run(arguments: retarget(v2, small, ["--drop-missing", "-o", path("9.payload")])),
            Run(arguments: retarget("-", broken, ["--drop-missing", "-o", path("10.state")]), stdin: try Data(contentsOf: URL(fileURLWithPath: state))),
            // Refusals and trouble: no JSON, no output.
            Run(arguments: retarget(state, broken, ["-o", path("x.state")]), status: 1, printsJSON: false),
            Run(arguments: retarget(state, broken, ["--rename", "tree/nothing=tree/else", "-o", path("x.state")]), status: 1, printsJSON: false),
            Run(arguments: retarget(inconsistent, small, ["--drop-missing", "-o", path("x.state")]), status: 1, printsJSON: false),
            Run(arguments: retarget(state, scratch.url("absent"), ["-o", path("x.state")]), status: 2, printsJSON: false),
            Run(arguments: retarget(Self.sample("good.state"), share, ["-o", path("x.state")]), status: 2, printsJSON: false),
        ], against: "retarget")
        #expect(objects.contains { $0["migration"] is [String: Any] })
        #expect(!FileManager.default.fileExists(atPath: path("x.state")))
    }

    @Test func replay() throws {
        let socket = path("vu.sock")
        let realPayloadSHA256 = "6fee85a91ea77fc233220eb9aeb758055dca68b6d17e667bc5572609f1f1584b"
        let real = Self.sample("virtiofsd-s1-A.state")
        let cases: [(serve: [String]?, run: Run)] = [
            (["--expect-sha256", realPayloadSHA256], Run(arguments: ["replay", "--json", "--socket", socket, real])),
            ([], Run(arguments: ["replay", "--json", "--socket", socket, Self.sample("good.state.zst")])),
            (["--expect-sha256", realPayloadSHA256], Run(arguments: ["replay", "--json", "--socket", socket, "-"], stdin: try Data(contentsOf: URL(fileURLWithPath: real)))),
            (["--fail-check"], Run(arguments: ["replay", "--json", "--socket", socket, real], status: 3)),
            ([], Run(arguments: ["replay", "--json", "--socket", socket, "--force", Self.sample("truncated-chunk.state")])),
            // Refused before connecting, or the back-end says no: no JSON.
            (nil, Run(arguments: ["replay", "--json", "--socket", socket, Self.sample("truncated-chunk.state")], status: 1, printsJSON: false)),
            (["--reject"], Run(arguments: ["replay", "--json", "--socket", socket, real], status: 6, printsJSON: false)),
            (["--no-device-state"], Run(arguments: ["replay", "--json", "--socket", socket, real], status: 5, printsJSON: false)),
            (nil, Run(arguments: ["replay", "--json", "--socket", socket, real], status: 4, printsJSON: false)),
        ]
        var lines: [String] = []
        // Each run needs its own back-end: the runs are made here, one by one, and validated together.
        for (serve, run) in cases {
            let server = try serve.map {
                try Peer.start(StatetoolRunner.executable.path, ["serve", "--once", "--socket", socket] + $0, log: nil, waitingFor: socket)
            }
            let result = try StatetoolRunner.run(run.arguments, stdin: run.stdin)
            if let server {
                if server.isRunning { server.terminate() }
                server.waitUntilExit()
            }
            #expect(result.status == run.status, "\(run): exit status \(result.status)\n\(result.stderr)")
            let printed = result.stdout.split(separator: "\n").map(String.init)
            #expect(printed.count == (run.printsJSON ? 1 : 0), "\(run):\n\(result.stdout)\(result.stderr)")
            lines += printed
        }
        let file = path("replay.jsonl")
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: file))
        let checked = try ProcessRunner.run("/usr/bin/python3", [Self.validator, "replay", file])
        #expect(checked.status == 0, "outputs not valid against schemas/replay.schema.json:\n\(checked.stdout)\(checked.stderr)")
    }
}

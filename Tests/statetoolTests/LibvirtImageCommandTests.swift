import Foundation
import TestSupport
import Testing

/// The commands on save images built around the real s1-A migration file the
/// way libvirt lays them out (header, domain XML, cookie, 64 KiB of zeros, the
/// stream through the format's own tool).
@Suite struct LibvirtImageCommandTests {
    static let domainXML = "<domain type='qemu'>\n  <name>lab &amp; test</name>\n  <uuid>5e1f0c3a-7b2d-4e9a-9c1f-2a3b4c5d6e7f</uuid>\n</domain>\n"
    static let cookieXML = "<cookie>\n  <slirpHelper/>\n</cookie>\n"
    static var dataLength: Int { domainXML.utf8.count + 1 + cookieXML.utf8.count + 1 + 65536 }
    static var streamOffset: Int { 92 + dataLength }
    static let tools = ["raw": (0, [String]()), "gzip": (1, ["/usr/bin/gzip", "-c"]), "bzip2": (2, ["/usr/bin/bzip2", "-c"]),
                        "xz": (3, ["/usr/bin/xz", "-c", "-T1"]), "zstd": (5, ["/usr/bin/zstd", "-q", "-c"])]

    /// libvirt's header: version 2, data_len, was_running 1, format, cookieOffset.
    static func header(format: UInt32, magic: String = "LibvirtQemudSave", dataLength: UInt32? = nil) -> Data {
        var bytes = Data(magic.utf8)
        for word in [2, dataLength ?? UInt32(Self.dataLength), 1, format, UInt32(domainXML.utf8.count + 1)] + [UInt32](repeating: 0, count: 14) {
            withUnsafeBytes(of: word.littleEndian) { bytes.append(contentsOf: $0) }
        }
        return bytes + Data(domainXML.utf8) + [0] + Data(cookieXML.utf8) + [0] + Data(count: 65536)
    }

    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("images")
    }

    private func path(_ name: String) -> String { scratch.path(name) }

    /// The image of s1-A in `format`, written at `path(format.save)`.
    private func image(_ format: String) throws -> String {
        let (code, tool) = try #require(Self.tools[format])
        let migration = try Fixtures.migrationFile("s1-A-running")
        let target = path("\(format).save")
        try Self.header(format: UInt32(code)).write(to: URL(fileURLWithPath: target))
        let script = tool.isEmpty ? "cat \"$1\" >> \"$2\"" : "\(tool.joined(separator: " ")) < \"$1\" >> \"$2\""
        let written = try ProcessRunner.run("/bin/sh", ["-c", script, "sh", migration, target])
        try #require(written.status == 0, "\(written.stderr)")
        return target
    }

    @Test(arguments: ["raw", "gzip", "bzip2", "xz", "zstd"])
    func migrationLsSaysWhatTheImageIsAndCountsOffsetsFromItsStart(format: String) throws {
        let image = try image(format)
        let listed = try StatetoolRunner.run(["migration", "ls", image])
        #expect(listed.status == 0, "\(listed.stderr)")
        let lines = listed.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first == "\(image): libvirt save image, version 2, format \(format), was running: yes, domain lab & test (5e1f0c3a-7b2d-4e9a-9c1f-2a3b4c5d6e7f), XML \(Self.dataLength) bytes, QEMU stream at offset \(Self.streamOffset)")
        #expect(lines.dropFirst().first == "\(image): QEMU migration file\(format == "raw" ? "" : " (\(format))"), machine pc-q35-10.0, page size 4096")
        // The bare file's offsets, moved by where the stream starts.
        let capture = Fixtures.captures[0]
        #expect(listed.stdout.contains("stream at offset \(Int(capture.streamOffset) + Self.streamOffset)..\(Int(capture.streamEnd) + Self.streamOffset), 238472 bytes, 4 chunks, 238452 payload bytes, valid"))

        let json = try StatetoolRunner.run(["migration", "ls", "--json", image])
        let object = try #require(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let libvirt = try #require(object["libvirt"] as? [String: Any])
        #expect(libvirt["format"] as? String == format)
        #expect(libvirt["domainName"] as? String == "lab & test")
        #expect(libvirt["streamOffset"] as? Int == Self.streamOffset)
        #expect(libvirt["cookieOffset"] as? Int == Self.domainXML.utf8.count + 1)
        #expect(object["compression"] as? String == (format == "raw" ? "none" : format))

        // extract and preflight see through it; a raw image is read from its end, at the image's offsets.
        let extracted = try StatetoolRunner.run(["extract", "-q", "-v", image, "-o", path("s1-A.state")])
        #expect(extracted.status == 0, "\(extracted.stderr)")
        #expect(extracted.stderr.contains(format == "raw"
            ? "\(image): placed 3 device sections from the end, resumed at offset \(Int(capture.sectionOffset) + Self.streamOffset); read "
            : "\(image): walked front to back (\(format)-compressed input is read front to back); read "), "\(extracted.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path("s1-A.state"))) == Data(contentsOf: URL(fileURLWithPath: Fixtures.state("s1-A-running"))))
        let semantic = try StatetoolRunner.run(["diff", "--semantic", image, Fixtures.state("s1-A-running")])
        #expect(semantic.status == 0, "\(semantic.stdout)\(semantic.stderr)")
    }

    @Test(arguments: ["raw", "gzip", "bzip2", "xz", "zstd"])
    func replaceWritesAnImageInItsOwnFormat(format: String) throws {
        let image = try image(format)
        let output = path("out.save")
        let replaced = try StatetoolRunner.run([
            "migration", "replace", image, "--state", Fixtures.state("s1-D-more-open"), "-o", output,
        ])
        #expect(replaced.status == 0, "\(replaced.stderr)")
        #expect(replaced.stdout.contains("238472 -> 238644 bytes"), "\(replaced.stdout)")
        let original = try Data(contentsOf: URL(fileURLWithPath: image)), written = try Data(contentsOf: URL(fileURLWithPath: output))
        #expect(written.prefix(Self.streamOffset) == original.prefix(Self.streamOffset))
        if let (_, tool) = Self.tools[format], let program = tool.first {
            let test = try ProcessRunner.run("/bin/sh", ["-c", "tail -c +\(Self.streamOffset + 1) \"$1\" | \(program) -t", "sh", output])
            #expect(test.status == 0, "\(program) -t: \(test.stderr)")
        }
        let extracted = try StatetoolRunner.run(["extract", "-q", output, "-o", path("new.state")])
        #expect(extracted.status == 0, "\(extracted.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path("new.state"))) == Data(contentsOf: URL(fileURLWithPath: Fixtures.state("s1-D-more-open"))))

        // The state replaced by itself: a raw image comes back byte for byte.
        if format == "raw" {
            let same = try StatetoolRunner.run(["migration", "replace", image, "--state", Fixtures.state("s1-A-running"), "-o", path("same.save")])
            #expect(same.status == 0)
            #expect(try Data(contentsOf: URL(fileURLWithPath: path("same.save"))) == original)
        }
    }

    @Test func anImageFromAPipeReadsAsFromAFile() throws {
        let image = try image("xz")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: image))
        let fromFile = try StatetoolRunner.run(["migration", "ls", "--json", image])
        let fromPipe = try StatetoolRunner.run(["migration", "ls", "--json", "-"], stdin: bytes)
        #expect(fromPipe.status == 0, "\(fromPipe.stderr)")
        var piped = try #require(JSONSerialization.jsonObject(with: Data(fromPipe.stdout.utf8)) as? [String: Any])
        var filed = try #require(JSONSerialization.jsonObject(with: Data(fromFile.stdout.utf8)) as? [String: Any])
        #expect(piped.removeValue(forKey: "file") as? String == "-")
        filed.removeValue(forKey: "file")
        #expect(NSDictionary(dictionary: piped) == NSDictionary(dictionary: filed))
        let extracted = try StatetoolRunner.run(["extract", "-q", "-", "-o", path("piped.state")], stdin: bytes)
        #expect(extracted.status == 0, "\(extracted.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path("piped.state"))) == Data(contentsOf: URL(fileURLWithPath: Fixtures.state("s1-A-running"))))
    }

    @Test func libvirtXMLPrintsTheDomainOrTheCookie() throws {
        let image = try image("gzip")
        let xml = try StatetoolRunner.run(["libvirt", "xml", image])
        #expect(xml.status == 0)
        #expect(xml.stdout == Self.domainXML)
        #expect(try StatetoolRunner.run(["libvirt", "xml", "--cookie", image]).stdout == Self.cookieXML)
        // From a pipe too, and without reading the stream.
        let piped = try StatetoolRunner.run(["libvirt", "xml", "-"], stdin: Self.header(format: 6))
        #expect(piped.status == 0)
        #expect(piped.stdout == Self.domainXML)
        let notAnImage = try StatetoolRunner.run(["libvirt", "xml", Fixtures.state("s1-A-running")])
        #expect(notAnImage.status == 1)
        #expect(notAnImage.stderr == "\(Fixtures.state("s1-A-running")): error: not-a-save-image at offset 0: no LibvirtQemudSave magic\n")
    }

    @Test func brokenImagesAreRefusedWithTheirOffsetAndStatus() throws {
        let partial = path("partial.save")
        try (Self.header(format: 0, magic: "LibvirtQemudPart") + Data("QEVM".utf8)).write(to: URL(fileURLWithPath: partial))
        let unfinished = try StatetoolRunner.run(["migration", "ls", partial])
        #expect(unfinished.status == 1)
        #expect(unfinished.stderr == "\(partial): error: unfinished-save at offset 0: LibvirtQemudPart: libvirt never finished this save (it writes LibvirtQemudSave when QEMU's stream is complete)\n")

        let lying = path("lying.save")
        try Self.header(format: 0, dataLength: 0x7FFF_0000).write(to: URL(fileURLWithPath: lying))
        let size = try FileManager.default.attributesOfItem(atPath: lying)[.size] as? Int ?? 0
        let extract = try StatetoolRunner.run(["extract", lying, "-o", path("x.state")])
        #expect(extract.status == 1)
        #expect(extract.stderr == "\(lying): error: bad-header at offset 20: data_len 2147418112 puts the QEMU stream at offset 2147418204, beyond the end of the file at \(size)\n")
        #expect(!FileManager.default.fileExists(atPath: path("x.state")))

        let mismatch = path("mismatch.save")
        try (Self.header(format: 3) + Data("QEVM".utf8) + Data(count: 4)).write(to: URL(fileURLWithPath: mismatch))
        let preflight = try StatetoolRunner.run(["preflight", mismatch, "--shared-dir", "."])
        #expect(preflight.status == 1)
        #expect(preflight.stderr == "\(mismatch): error: format-mismatch at offset \(Self.streamOffset): the header says xz, but the QEMU stream begins 51 45 56 4d 00 00\n")

        let lzop = path("lzop.save")
        try (Self.header(format: 4) + Data([0x89, 0x4C, 0x5A, 0x4F, 0x00, 0x0D, 0x0A, 0x1A, 0x0A])).write(to: URL(fileURLWithPath: lzop))
        let refused = try StatetoolRunner.run(["migration", "ls", lzop])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("unsupported-format at offset 28: lzop: no maintained library reads lzop's format"))

        // A cut compressed stream: the compression error at its file offset, exit status 1.
        let image = try image("gzip")
        let cut = path("cut.save")
        let whole = try Data(contentsOf: URL(fileURLWithPath: image))
        try whole.prefix(whole.count - 100).write(to: URL(fileURLWithPath: cut))
        let listed = try StatetoolRunner.run(["migration", "ls", cut])
        #expect(listed.status == 1)
        #expect(listed.stderr.contains("compression-error at compressed offset \(Self.streamOffset): the gzip member starting at compressed offset \(Self.streamOffset) is truncated: the input ends at \(whole.count - 100)"), "\(listed.stderr)")

        // --zstd is for bare migration files: an image keeps its own format.
        let zstd = try StatetoolRunner.run(["migration", "replace", image, "--state", Fixtures.state("s1-A-running"), "--zstd", "-o", path("z.save")])
        #expect(zstd.status == 64)
        #expect(zstd.stderr.contains("a libvirt save image is written in its own format"))
    }
}

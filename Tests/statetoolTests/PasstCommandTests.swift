import Foundation
import TestSupport
import Testing

/// passt states as the commands see them, without a passt.
@Suite struct PasstCommandTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("passt-command")
    }

    /// What a fresh passt saves: magic, version 2, compat 2, its observed
    /// addresses (fd00::2, no link-local, 192.0.2.2, a broadcast MAC), no flows.
    static let header: [UInt8] = [0xb1, 0xbb, 0x1d, 0x1b, 0x0b, 0xb1, 0xd1, 0xb0, 0, 0, 0, 2, 0, 0, 0, 2]
    static let addresses: [UInt8] =
        [0xfd, 0] + [UInt8](repeating: 0, count: 13) + [2] + [UInt8](repeating: 0, count: 16) + [192, 0, 2, 2] + [UInt8](repeating: 0xff, count: 6)
    static let flowCount: [UInt8] = [0, 0, 0, 0]

    /// `chunks` framed into the stream file `name`.
    private func stream(_ name: String, chunks: [[UInt8]]) throws -> String {
        try Data(StreamBytes.frame(chunks)).write(to: scratch.url(name))
        return scratch.path(name)
    }

    private func passtObject(_ path: String) throws -> NSDictionary {
        let inspected = try StatetoolRunner.run(["inspect", "--json", path])
        #expect(inspected.status == 0, "\(inspected.stderr)")
        let json = try inspected.jsonObject()
        return try #require(json["passt"] as? NSDictionary, "\(inspected.stdout)")
    }

    /// QEMU frames each read of passt's pipe as a chunk, so the same state
    /// arrives as one chunk of 62 bytes or as 16, 42 and 4 (both seen from
    /// real QEMU and passt here): the commands see one payload either way.
    @Test func aStateSplitAcrossChunksIsTheSameState() throws {
        let whole = try stream("whole.state", chunks: [Self.header + Self.addresses + Self.flowCount])
        let split = try stream("split.state", chunks: [Self.header, Self.addresses, Self.flowCount])

        let decoded = try passtObject(split)
        #expect(decoded == (try passtObject(whole)))
        #expect(decoded["version"] as? Int == 2 && decoded["compatVersion"] as? Int == 2)
        #expect(decoded["addresses"] as? [String: String] == ["ipv6": "fd00::2", "ipv6LinkLocal": "::", "ipv4": "192.0.2.2", "mac": "ff:ff:ff:ff:ff:ff"])
        #expect((decoded["flows"] as? [Any])?.isEmpty == true)

        let payload = try StatetoolRunner.run(["payload", split, "-o", "-"])
        #expect(payload.status == 0)
        #expect([UInt8](payload.stdoutBytes) == Self.header + Self.addresses + Self.flowCount)

        let diffed = try StatetoolRunner.run(["diff", "--semantic", whole, split])
        #expect(diffed.status == 0, "\(diffed.stderr)")
        #expect(diffed.stdout == "\(whole) and \(split): passt states are the same by meaning\n")
    }

    /// A chunk boundary inside the addresses changes nothing; a payload cut
    /// there is named at the offset where the addresses end early.
    @Test func aBoundaryInsideAFieldIsNoBoundaryButAnEndIs() throws {
        let inside = try stream("inside.state", chunks: [Self.header + Self.addresses.prefix(20), Array(Self.addresses.dropFirst(20)) + Self.flowCount])
        #expect(try passtObject(inside)["addresses"] as? [String: String] == ["ipv6": "fd00::2", "ipv6LinkLocal": "::", "ipv4": "192.0.2.2", "mac": "ff:ff:ff:ff:ff:ff"])

        let cut = try stream("cut.state", chunks: [Self.header + Self.addresses.prefix(20)])
        let inspected = try StatetoolRunner.run(["inspect", cut])
        #expect(inspected.status == 0)
        #expect(inspected.stdout.contains(
            "begins like a passt state but does not decode: truncated at payload offset 16: the payload ends inside the 42 bytes of observed addresses: 20 of 42 bytes present"),
            "\(inspected.stdout)")
    }
}

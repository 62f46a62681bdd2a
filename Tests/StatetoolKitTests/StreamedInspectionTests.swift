import FoundationEssentials
import StateStream
import StatetoolKit
import TestSupport
import Testing

/// `inspect --json` writes a virtiofsd state's inodes and handles a batch at a
/// time; what it writes must be byte for byte the object encoded whole.
@Suite struct StreamedInspectionTests {
    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// The fixture's 5,222 inodes span two batches of 4,096; an opaque
    /// payload and a broken stream are written whole.
    @Test(arguments: ["Tests/Fixtures/qemu-virtiofsd/state/s1-A-running.state", "Samples/virtiofsd-s1-A.state", "Samples/good.state", "Samples/truncated-chunk.state"])
    func theStreamedObjectIsTheWholeOne(path: String) throws {
        let fullPath = Repository.root.appendingPathComponent(path).path
        let inspection = try StreamInspection.inspect(try StateStreamInput(path: fullPath), file: path)
        var streamed: [UInt8] = []
        var pieces = 0
        try inspection.writeJSON(schema: "inspect", encoder: Self.encoder) { bytes in
            streamed += bytes
            pieces += 1
        }
        let whole = Array(try Self.encoder.encode(SchemaDocument(inspection, schema: "inspect")))
        #expect(streamed == whole)
        if path.contains("virtiofsd") { #expect(pieces > 20) }
    }
}

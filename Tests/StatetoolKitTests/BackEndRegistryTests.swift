import FoundationEssentials
import MigrationFile
import StateStream
import StatetoolKit
import TestSupport
import Testing

/// A back-end that exists only in the tests: the payload of the sample's
/// vhost-user net state, `vhost-user net back-end state\n`, then words. It
/// shows that a back-end registered from outside is handled by what
/// `inspect`, `diff --semantic` and `migration ls` call, none of which names it.
struct SampleNetBackEnd: BackEndFormat {
    static let magic = Array("vhost-user net back-end state\n".utf8)

    var name: String { "sample-net" }

    func makeDecoder() -> any BackEndPayloadDecoder { Decoder() }

    func isBarePayload(_ bytes: [UInt8]) -> Bool { bytes.starts(with: Self.magic) }

    struct State: DecodedBackEndState {
        let words: [String]

        var summary: [(label: String, value: String)] { [("sample-net", "\(words.count) words after the magic")] }
        var listing: String { words.map { "  \($0)\n" }.joined() }

        func differences(to other: any DecodedBackEndState) -> [StateDifference]? {
            guard let other = other as? State else { return nil }
            return words == other.words ? [] : [StateDifference(subject: .field, change: .changed, key: "words", detail: "\(words) -> \(other.words)")]
        }
    }

    struct Decoder: BackEndPayloadDecoder {
        var bytes: [UInt8] = []
        var notOurs = false

        mutating func feed(_ slice: ArraySlice<UInt8>) {
            guard !notOurs else { return }
            bytes += slice
            if !bytes.prefix(SampleNetBackEnd.magic.count).elementsEqual(SampleNetBackEnd.magic.prefix(bytes.count)) {
                notOurs = true
                bytes = []
            }
        }

        mutating func finish() -> Result<any DecodedBackEndState, BackEndDecodingFailure>? {
            guard !notOurs, bytes.count >= SampleNetBackEnd.magic.count else { return nil }
            let words = String(decoding: bytes.dropFirst(SampleNetBackEnd.magic.count), as: UTF8.self).split(separator: " ").map(String.init)
            return .success(State(words: words))
        }
    }
}

@Suite(.serialized) final class BackEndRegistryTests {
    let scratch: ScratchDirectory

    init() throws {
        scratch = try ScratchDirectory("registry")
        BackEnds.register(SampleNetBackEnd())
    }

    deinit {
        BackEnds.unregister(named: "sample-net")
    }

    static let twoDevices = Repository.root.appendingPathComponent("Samples/two-devices.mig").path

    /// `[be32 length][payload][0]`, written to a file.
    private func stream(_ payload: [UInt8], name: String) throws -> String {
        var bytes = [UInt8]()
        withUnsafeBytes(of: UInt32(payload.count).bigEndian) { bytes += $0 }
        bytes += payload + [0, 0, 0, 0]
        let path = scratch.path(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func theRegistryListsBuiltInBackEndsThenRegisteredOnes() {
        #expect(BackEnds.all.map(\.name) == ["virtiofsd", "passt", "sample-net"])
    }

    @Test func inspectionDecodesAPayloadOfARegisteredBackEnd() throws {
        let path = try stream(SampleNetBackEnd.magic + Array("alpha beta gamma".utf8), name: "net.state")
        var recognition = PayloadRecognition()
        let analysis = try StreamAnalysis.analyze(try StateStreamInput(path: path), computeDigest: true) { _, event in
            if case .payload(let bytes) = event { recognition.feed(bytes) }
        }
        var inspection = StreamInspection(file: path, analysis: analysis, strict: false)
        inspection.payload = recognition.finish()
        #expect(inspection.payload?.backEnd == "sample-net")
        #expect(inspection.payload?.headline == "3 words after the magic")
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = String(decoding: try encoder.encode(inspection), as: UTF8.self)
        #expect(json.contains(#""sample-net":{"words":["alpha","beta","gamma"]}"#))
    }

    @Test func semanticComparisonGoesThroughTheRegisteredBackEnd() throws {
        let a = SampleNetBackEnd.magic + Array("alpha beta".utf8)
        let b = SampleNetBackEnd.magic + Array("alpha delta".utf8)
        let comparison = try SemanticComparison.compare(("a", a, nil), ("b", b, nil))
        #expect(comparison.backEnd == "sample-net")
        #expect(comparison.differences.map(\.key) == ["words"])
        #expect(comparison.differences.first?.detail == #"["alpha", "beta"] -> ["alpha", "delta"]"#)
        let same = try SemanticComparison.compare(("a", a, nil), ("a", a, nil))
        #expect(same.identical)
        // A virtiofsd state against a sample-net one: two back-ends.
        var payload = [UInt8]()
        _ = try StreamAnalysis.analyze(try StateStreamInput(path: Repository.root.appendingPathComponent("Samples/virtiofsd-s1-A.state").path), computeDigest: false) { _, event in
            if case .payload(let bytes) = event { payload += bytes }
        }
        #expect(throws: SemanticComparison.Failure.self) { try SemanticComparison.compare(("fs", payload, nil), ("net", a, nil)) }
    }

    @Test func aMigrationFileListingNamesTheRegisteredBackEnd() throws {
        var recognition = BackEndStateRecognition()
        let input = try StateStreamInput(path: Self.twoDevices)
        _ = try MigrationFileSurvey.survey(MigrationFileReader(input: input, strategy: .fullWalk)) { recognition.observe($0) }
        // The vhost-user-fs state of the sample is no state of any back-end;
        // the virtio-net one, at offset 13920, is sample-net's.
        #expect(recognition.payloads.keys.sorted() == [13920])
        #expect(recognition.payloads[13920]?.backEnd == "sample-net")
        #expect(recognition.payloads[13920]?.headline == "0 words after the magic")
    }
}

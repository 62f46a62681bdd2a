import FuzzTargets
import TestSupport
import Testing

/// The FieldDecoder fuzz target on seeded random inputs, and on its seeds cut
/// and flipped: its invariants hold on more than the corpus.
@Suite struct FieldDecoderTargetTests {
    @Test func randomInputsKeepTheInvariants() throws {
        let target = try #require(FuzzTargets.named("FieldDecoder"))
        var generator = SeededGenerator(seed: 24)
        for _ in 0..<300 {
            let count = Int.random(in: 0...600, using: &generator)
            let input = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            try target.run(input)
        }
        // Subsection markers and struct-choosing seed bytes, more often than chance gives them.
        for round in 0..<200 {
            let seed = (0..<8).map { _ in [0x0F, 0x8F, 0x2F, 0x07, 0x47, 0xE3][Int.random(in: 0..<6, using: &generator)] as UInt8 }
            let body = (0..<Int.random(in: 0...300, using: &generator)).map { _ in
                [0x05, 0x01, 0x73, 0x2F, 0x78, 0x00, 0x30, UInt8(round & 0xff)][Int.random(in: 0..<8, using: &generator)] as UInt8
            }
            try target.run(seed + body)
        }
    }
}

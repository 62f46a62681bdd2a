import Foundation
import TestSupport
import Testing

/// The samples a newcomer runs first are what `Samples/generate.py` writes.
@Suite struct SamplesTests {
    @Test func generatorReproducesTheCommittedSamples() throws {
        try ScratchDirectory.using("samples") { scratch in try generate(into: scratch.url) }
    }

    private func generate(into output: URL) throws {
        #expect(try Peer.python([StatetoolRunner.sample("generate.py"), output.path]).status == 0)
        let generated = try FileManager.default.contentsOfDirectory(atPath: output.path).sorted()
        #expect(generated == [
            "compression-error.state.zst", "good.state", "good.state.zst", "missing-terminator.state",
            "oversized-chunk.state.zst", "trailing-data.state", "truncated-chunk.state", "truncated-length.state",
            "two-devices.mig",
        ])
        for name in generated {
            let fresh = try Data(contentsOf: output.appendingPathComponent(name))
            let committed = try Data(contentsOf: URL(fileURLWithPath: StatetoolRunner.sample(name)))
            #expect(fresh == committed, "\(name) differs from what generate.py writes")
        }
    }

    @Test func realSampleIsTheFixtureCapture() throws {
        let sample = URL(fileURLWithPath: StatetoolRunner.sample("virtiofsd-s1-A.state"))
        #expect(try Data(contentsOf: sample) == Data(contentsOf: URL(fileURLWithPath: Fixtures.state("s1-A-running"))))
    }
}

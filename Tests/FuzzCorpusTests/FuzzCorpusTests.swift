import Foundation
import FuzzTargets
import Testing

/// Every input kept in `Fuzz/Corpus/TARGET` (seeds, and whatever fuzzing found)
/// goes through its target again: an input that once broke an invariant fails here.
@Suite struct FuzzCorpusTests {
    static let corpora = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/Corpus")

    @Test(arguments: FuzzTargets.all.map(\.name))
    func corpusPasses(target name: String) throws {
        let target = try #require(FuzzTargets.named(name))
        let folder = Self.corpora.appendingPathComponent(name)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(files.count >= 3, "the \(name) corpus has seeds")
        for file in files {
            let bytes = try [UInt8](Data(contentsOf: folder.appendingPathComponent(file)))
            do {
                try target.run(bytes)
            } catch {
                Issue.record("\(name)/\(file): \(error)")
            }
        }
    }
}

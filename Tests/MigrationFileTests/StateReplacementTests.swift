import Foundation
import MigrationFile
import StateStream
import TestSupport
import Testing

/// `StateReplacement` on hand-built files: the exact bytes written, through
/// memory from any split of the reads and through the kernel from a file.
@Suite struct StateReplacementTests {
    let sample = SampleMigrationFile()
    let newChunks: [[UInt8]] = [Array(repeating: 0x5A, count: 1000), [1, 2, 3]]
    var newStream: [UInt8] { MigrationFileBuilder.stream(newChunks) }

    /// Runs a replacement from memory, the file read `readSize` bytes at a time.
    func replace(
        _ file: [UInt8], device: String?, with stream: [UInt8], readSize: Int = .max
    ) throws -> (bytes: [UInt8], summary: StateReplacement.Summary) {
        let sink = ByteArraySink()
        let summary = try StateReplacement.replace(
            in: StateStreamInput(source: ByteArraySource(file, maximumReadSize: readSize)), device: device,
            with: .stream(StateStreamInput(source: ByteArraySource(stream))), to: .sink(sink))
        return (sink.bytes, summary)
    }

    /// The sample with its vhost-user-fs stream replaced by `newStream`, built by hand.
    var expectedFS: [UInt8] {
        let bytes = sample.bytes
        let json = String(decoding: bytes[(Int(sample.mark("description")) + 5)...], as: UTF8.self)
            .replacingOccurrences(of: "\"size\": \(sample.fsStream.count)}", with: "\"size\": \(newStream.count)}")
        return Array(bytes[..<Int(sample.mark("fs stream"))]) + newStream
            + Array(bytes[Int(sample.mark("fs footer"))..<Int(sample.mark("description"))])
            + [0x06] + MigrationFileBuilder.be32(UInt32(json.utf8.count)) + Array(json.utf8)
    }

    @Test(arguments: [1, 2, 3, 7, 64, 1000, Int.max])
    func theStateAndItsDescribedSizeChangeAndNothingElse(readSize: Int) throws {
        let (bytes, summary) = try replace(sample.bytes, device: "2", with: newStream, readSize: readSize)
        #expect(bytes == expectedFS)
        #expect(summary.oldLength == UInt64(sample.fsStream.count))
        #expect(summary.newLength == UInt64(newStream.count))
        #expect(summary.location.streamOffset == sample.mark("fs stream"))
        #expect(summary.descriptionChanges == [
            .init(path: "devices[1].subsections[0].fields[0].size", old: UInt64(sample.fsStream.count), new: UInt64(newStream.count))
        ])
        #expect(summary.descriptionOffset == sample.mark("description") + UInt64(newStream.count - sample.fsStream.count))
        #expect(summary.copiedInKernel == 0)
    }

    @Test(arguments: [1, 5, 1000])
    func replacingAStateByItselfIsTheIdentity(readSize: Int) throws {
        #expect(try replace(sample.bytes, device: "2", with: sample.fsStream, readSize: readSize).bytes == sample.bytes)
        #expect(try replace(sample.bytes, device: "3", with: sample.netStream, readSize: readSize).bytes == sample.bytes)
    }

    @Test func aNetStateChangesTheVirtioFieldThatHoldsIt() throws {
        let (bytes, summary) = try replace(sample.bytes, device: "0000:00:02.0/virtio-net", with: newStream)
        let oldVirtio = sample.netBefore.count + 31 + sample.netStream.count + sample.netAfter.count
        let newVirtio = oldVirtio - sample.netStream.count + newStream.count
        #expect(summary.descriptionChanges == [.init(path: "devices[2].fields[0].size", old: UInt64(oldVirtio), new: UInt64(newVirtio))])
        let survey = try MigrationFileSurvey.survey(MigrationFileReader(input: StateStreamInput(source: ByteArraySource(bytes))))
        #expect(survey.problems.isEmpty)
        #expect(survey.backEndStates.map(\.length) == [UInt64(sample.fsStream.count), UInt64(newStream.count)])
        #expect(survey.description?.devices[2].fields[0].size == UInt64(newVirtio))
    }

    /// From a regular file into a file, untouched ranges go through the kernel;
    /// the bytes are the same.
    @Test func aRegularFileIsCopiedInsideTheKernel() throws {
        try ScratchDirectory.using("replace") { scratch in try copyInsideTheKernel(scratch) }
    }

    private func copyInsideTheKernel(_ scratch: ScratchDirectory) throws {
        let input = scratch.path("in.mig"), output = scratch.path("out.mig")
        try Data(sample.bytes).write(to: URL(fileURLWithPath: input))
        let file = try OutputFile(path: output, protecting: [input])
        let summary = try StateReplacement.replace(
            in: StateStreamInput(path: input), device: "2", with: .stream(StateStreamInput(source: ByteArraySource(newStream))),
            to: .file(file))
        let readBack = try #require(try file.openForReadingBack())
        let survey = try StateReplacement.verify(StateStreamInput(source: FileDescriptorSource(readBack, closesOnDeinit: true)), against: summary)
        #expect(survey.backEndStates.count == 2)
        try file.commit()
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: output))) == expectedFS)
        // All but the old stream and the description, which the process writes.
        #expect(summary.copiedInKernel == sample.mark("description") - UInt64(sample.fsStream.count))
    }

    @Test func aDerivedStateSeesTheOldPayload() throws {
        var seen: [UInt8] = []
        let sink = ByteArraySink()
        let summary = try StateReplacement.replace(
            in: StateStreamInput(source: ByteArraySource(sample.bytes, maximumReadSize: 100)), device: "2",
            with: .derived(maximumOldPayload: 1 << 20, chunkSize: 1000) { old in
                seen = old
                return Array(repeating: 0x5A, count: 1000) + [1, 2, 3]
            }, to: .sink(sink))
        #expect(seen == sample.fsChunks.flatMap { $0 })
        #expect(sink.bytes == expectedFS)
        #expect(summary.newLength == UInt64(newStream.count))

        #expect(throws: StateReplacement.Failure.self) {
            try StateReplacement.replace(
                in: StateStreamInput(source: ByteArraySource(sample.bytes)), device: "2",
                with: .derived(maximumOldPayload: 10, chunkSize: 1000) { $0 }, to: .sink(ByteArraySink()))
        }
    }

    @Test func failures() throws {
        func failure(_ file: [UInt8], device: String?, stream: [UInt8]) -> String? {
            do {
                _ = try replace(file, device: device, with: stream)
                return nil
            } catch {
                return "\(error)"
            }
        }
        #expect(failure(sample.bytes, device: nil, stream: newStream)
            == "several devices hold back-end state (0000:00:01.0/vhost-user-fs, 0000:00:02.0/virtio-net): pick one with --device")
        #expect(failure(sample.bytes, device: "7", stream: newStream) == "no back-end state of device 7 in this migration file")
        #expect(failure(sample.bytes, device: "2", stream: Array(newStream.dropLast(4)))
            == "broken new state: missing-terminator at offset \(newStream.count - 4): input ends where a chunk length or the zero-length terminator was due")
        // A file whose description does not describe it is refused, not copied on.
        let misdescribed = SampleMigrationFile(fsStateSize: 5).bytes
        #expect(failure(misdescribed, device: "3", stream: newStream)?.hasPrefix("broken migration file: description-mismatch: 0000:00:01.0/vhost-user-fs: ") == true)
        let cut = Array(sample.bytes.prefix(Int(sample.mark("fs footer")) + 2))
        #expect(failure(cut, device: "2", stream: newStream)?.hasPrefix("broken migration file: truncated-file at offset \(cut.count): ") == true)
    }

    /// A summary that does not match what a file holds fails the check.
    @Test func verificationFindsAStateThatIsNotTheNewOne() throws {
        let (_, summary) = try replace(sample.bytes, device: "2", with: newStream)
        #expect(throws: StateReplacement.Failure.self) {
            try StateReplacement.verify(StateStreamInput(source: ByteArraySource(sample.bytes)), against: summary)
        }
    }
}

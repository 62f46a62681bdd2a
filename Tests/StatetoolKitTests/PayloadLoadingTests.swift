import Foundation
import StateStream
import Testing
import StatetoolKit
import TestSupport

/// `LoadedPayload` takes a payload from whatever holds it.
@Suite struct PayloadLoadingTests {
    static let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Samples")

    static func load(_ bytes: [UInt8], device: String? = nil) throws -> LoadedPayload {
        try LoadedPayload.load(
            from: Input.open(ByteArraySource(bytes, maximumReadSize: 333), file: nil, named: "bytes"), device: device)
    }

    @Test func aStreamAPayloadAndAMigrationFileGiveTheSamePayload() throws {
        let sink = ByteArraySink()
        _ = try StreamTransforms.extractPayload(of: StateStreamInput(path: Repository.fixtureState("s1-A-running")), to: sink)
        let payload = sink.bytes
        let stream = try [UInt8](Data(contentsOf: Self.samples.appendingPathComponent("virtiofsd-s1-A.state")))
        #expect(try Self.load(stream).bytes == payload)
        #expect(try Self.load(stream).origin == .stateStream)
        #expect(try Self.load(payload).origin == .payload)
        #expect(try Self.load(payload).bytes == payload)

        let migration = try [UInt8](Data(contentsOf: Self.samples.appendingPathComponent("two-devices.mig")))
        let fromFile = try Self.load(migration)
        #expect(fromFile.origin == .migrationFile(device: "0000:00:04.0/vhost-user-fs"))
        let good = try [UInt8](Data(contentsOf: Self.samples.appendingPathComponent("good.state")))
        #expect(try fromFile.bytes == Self.load(good).bytes)
        #expect(try Self.load(migration, device: "3").origin == .migrationFile(device: "0000:00:03.0/virtio-net"))
    }

    @Test func whatHoldsNoPayloadIsSaid() throws {
        let migration = try [UInt8](Data(contentsOf: Self.samples.appendingPathComponent("two-devices.mig")))
        #expect(throws: LoadedPayload.Failure.noState(device: "9")) { try Self.load(migration, device: "9") }
        let broken = try [UInt8](Data(contentsOf: Self.samples.appendingPathComponent("truncated-chunk.state")))
        let brokenStream = #expect(throws: LoadedPayload.Failure.self) { try Self.load(broken) }
        #expect(brokenStream.map { if case .brokenStream(.truncatedChunk) = $0 { true } else { false } } == true)
        let brokenFile = #expect(throws: LoadedPayload.Failure.self) { try Self.load(Array(migration.prefix(6000))) }
        #expect(brokenFile.map { if case .brokenMigrationFile = $0 { true } else { false } } == true)
    }
}

import Foundation
import StateStream
import SystemPackage
import TestSupport
import Testing
@testable import VhostUser

/// `FrontEnd` and `BackEnd` talking to each other in one process over a
/// socketpair, with `StateTransfer` moving the state through the pipe: the
/// library's own view of what `replay`, `capture` and `serve` do.
@Suite final class FrontEndBackEndTests {
    let scratch: ScratchDirectory
    let payload: [UInt8] = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }

    init() throws {
        scratch = try ScratchDirectory("vhost")
    }

    private func path(_ name: String) -> String { scratch.path(name) }

    /// A back-end serving `device` on one end of a socketpair, on a thread of
    /// its own; the front-end's connection is the other end.
    private func connect(to device: ReferenceDevice, behaviour: BackEndBehaviour = BackEndBehaviour()) throws -> (Connection, Thread) {
        let (frontEnd, backEndSide) = try Connection.pair(timeout: .seconds(5))
        let backEnd = BackEnd(connection: backEndSide, device: device, behaviour: behaviour)
        let thread = Thread { try? backEnd.run() }
        thread.start()
        return (frontEnd, thread)
    }

    @Test func aSavedStateComesThroughThePipeFramed() throws {
        try Data(payload).write(to: URL(fileURLWithPath: path("state.payload")))
        var device = ReferenceDevice()
        device.statePath = path("state.payload")
        let (connection, _) = try connect(to: device)
        var frontEnd = FrontEnd(connection: connection)
        try frontEnd.initialize()
        #expect(frontEnd.protocolFeatures.contains(.deviceState))
        let pipe = try frontEnd.startTransfer(.save)
        let sink = ByteArraySink()
        let received = try StateTransfer.receiveState(from: pipe, into: sink, timeout: .seconds(5))
        #expect(try frontEnd.checkDeviceState() == 0)
        #expect(received.payloadBytes == UInt64(payload.count))
        let extracted = ByteArraySink()
        let analysis = try StreamTransforms.extractPayload(of: StateStreamInput(source: ByteArraySource(sink.bytes)), to: extracted)
        #expect(analysis.error == nil)
        #expect(extracted.bytes == payload)
        #expect(analysis.chunkCount == received.chunks)
    }

    @Test func aLoadedStateIsWhatWasSent() throws {
        var device = ReferenceDevice()
        device.record = (path("recorded.payload"), .payload)
        let (connection, _) = try connect(to: device)
        var frontEnd = FrontEnd(connection: connection)
        try frontEnd.initialize()
        let pipe = try frontEnd.startTransfer(.load)
        let stream = StreamBytes.frame(payload, chunkSize: 65536)
        let sent = try StateTransfer.sendPayload(of: StateStreamInput(source: ByteArraySource(stream, maximumReadSize: 1000)), into: pipe, timeout: .seconds(5))
        #expect(sent.payloadBytes == UInt64(payload.count))
        #expect(sent.chunks == 5)
        #expect(try frontEnd.checkDeviceState() == 0)
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: path("recorded.payload")))) == payload)
    }

    @Test func aRefusedTransferAndAFailedCheckAreReported() throws {
        var refusing = BackEndBehaviour()
        refusing.rejectsTransfer = true
        let (connection, _) = try connect(to: ReferenceDevice(), behaviour: refusing)
        var frontEnd = FrontEnd(connection: connection)
        try frontEnd.initialize()
        #expect(throws: VhostUserError.self) { _ = try frontEnd.startTransfer(.load) }

        var failing = ReferenceDevice()
        failing.failsCheck = true
        let (second, _) = try connect(to: failing)
        var other = FrontEnd(connection: second)
        try other.initialize()
        let pipe = try other.startTransfer(.load)
        _ = try StateTransfer.sendPayload(of: StateStreamInput(source: ByteArraySource(StreamBytes.frame([1, 2, 3], chunkSize: 2))), into: pipe, timeout: .seconds(5))
        #expect(try other.checkDeviceState() == 1)
    }

    @Test func aBackEndWithoutDeviceStateIsRefusedAtInitialisation() throws {
        var behaviour = BackEndBehaviour()
        behaviour.offersDeviceState = false
        let (connection, _) = try connect(to: ReferenceDevice(), behaviour: behaviour)
        var frontEnd = FrontEnd(connection: connection)
        let error = #expect(throws: VhostUserError.self) { try frontEnd.initialize() }
        guard case .noDeviceState? = error else {
            Issue.record("expected noDeviceState, got \(String(describing: error))")
            return
        }
    }
}

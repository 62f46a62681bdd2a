import SystemCalls
import SystemPackage
import Testing
@testable import VhostUser

@Suite struct ConnectionTests {
    private func connectedPair(timeout: Duration = .seconds(2)) throws -> (Connection, Connection) {
        try Connection.pair(timeout: timeout)
    }

    @Test func messagesCarryFileDescriptorsThatWork() throws {
        let (a, b) = try connectedPair()
        let ends = try Pipes.make()
        let write = ends.write
        // The message owns the read end it carries: it is closed here once the message is gone.
        try a.send(Message(.setDeviceStateFD, payload: UInt32(1).bytes(endianness: .little) + UInt32(0).bytes(endianness: .little),
                           descriptors: AttachedDescriptors(ends.read)))
        let received = try #require(try b.receive(waitingFor: "a test message"))
        #expect(received.request == .setDeviceStateFD)
        #expect(received.payload == [1, 0, 0, 0, 0, 0, 0, 0])
        #expect(received.descriptors.count == 1)
        // The received descriptor is the pipe's read end.
        guard let readEnd = received.descriptors.take() else {
            Issue.record("no descriptor to take")
            return
        }
        #expect(received.descriptors.take()?.release() == nil)
        _ = try write.descriptor.writeAll(Array("ok".utf8))
        var buffer = [UInt8](repeating: 0, count: 2)
        #expect(try buffer.withUnsafeMutableBytes { try readEnd.descriptor.readSome(into: $0) } == 2)
        #expect(buffer == Array("ok".utf8))
    }

    @Test func descriptorsNotTakenCloseWithTheMessage() throws {
        let ends = try UnixSocket.pair()
        let peer = ends.second
        do {
            _ = Message(.setVringKick, descriptors: AttachedDescriptors(ends.first))
        }
        // The message's end is closed: its peer reads the end of the stream.
        #expect(try Readiness.wait(for: .readable, on: peer.descriptor, timeout: .seconds(5)))
        var buffer = [UInt8](repeating: 0, count: 1)
        #expect(try buffer.withUnsafeMutableBytes { try UnixSocket.receive(peer.descriptor, into: $0).count } == 0)
    }

    @Test func cleanEndBetweenMessagesIsNil() throws {
        let (a, b) = try connectedPair()
        // shutdown, not close: the Connection closes its descriptor itself, and a second
        // close could hit a descriptor another test running in parallel has just opened.
        try UnixSocket.shutdown(a.socket)
        #expect(try b.receive(waitingFor: "anything") == nil)
    }

    @Test func endInsideAMessageIsAHangUp() throws {
        let (a, b) = try connectedPair()
        _ = try a.socket.writeAll([1, 0, 0, 0, 1, 0])
        try UnixSocket.shutdown(a.socket)
        #expect(throws: VhostUserError.peerHungUp(waitingFor: "a reply")) { _ = try b.receive(waitingFor: "a reply") }
    }

    @Test func oversizedPayloadIsRefusedBeforeReadingIt() throws {
        let (a, b) = try connectedPair()
        _ = try a.socket.writeAll([1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 1, 0])
        #expect(throws: VhostUserError.protocolViolation("a reply: payload size 65536 is above the 4096-byte limit")) {
            _ = try b.receive(waitingFor: "a reply")
        }
    }

    @Test func silenceTimesOut() throws {
        let (a, b) = try connectedPair(timeout: .milliseconds(200))
        withExtendedLifetime(a) {
            #expect(throws: VhostUserError.timedOut(waitingFor: "a reply", seconds: 0)) { _ = try b.receive(waitingFor: "a reply") }
        }
    }
}

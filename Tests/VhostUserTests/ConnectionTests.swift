import Foundation
import SystemCalls
import TestSupport
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

    /// Messages under every split of their bytes (``SplitVerifier``): whatever
    /// the reads return, the same messages come, with the same payloads.
    @Test func everySplitOfTheBytesGivesTheSameMessages() throws {
        let messages = [
            Message(.getFeatures),
            Message(.setProtocolFeatures, payload: Message.u64Payload(0x8_8b)),
            Message(.setVringBase, payload: [0, 0, 0, 0, 7, 0, 0, 0]),
            Message.reply(to: Request.getFeatures.rawValue, payload: Message.u64Payload(1 << 30)),
        ]
        let bytes = messages.flatMap(\.encoded)
        struct Seen: Equatable {
            var requestID: UInt32
            var flags: UInt32
            var payload: [UInt8]
        }
        let disagreement = try SplitVerifier.firstDisagreement(count: bytes.count) { split -> [Seen] in
            let (a, b) = try connectedPair()
            // Write the pieces as the split cuts them; the receiver is already waiting for the first.
            let pieces = Self.pieces(of: bytes, readSizes: split.readSizes)
            let socket = a.socket
            let writer = Thread {
                for piece in pieces { _ = try? socket.writeAll(piece) }
            }
            writer.start()
            var seen: [Seen] = []
            while seen.count < messages.count, let message = try b.receive(waitingFor: "a message") {
                seen.append(Seen(requestID: message.requestID, flags: message.flags.rawValue, payload: message.payload))
            }
            withExtendedLifetime(a) {}
            return seen
        }
        #expect(disagreement == nil, "\(disagreement.map { "\($0.split)" } ?? "")")
    }

    private static func pieces(of bytes: [UInt8], readSizes: (Int) -> Int) -> [[UInt8]] {
        var pieces: [[UInt8]] = []
        var start = 0
        while start < bytes.count {
            let end = start + min(bytes.count - start, max(1, readSizes(pieces.count)))
            pieces.append(Array(bytes[start..<end]))
            start = end
        }
        return pieces
    }
}

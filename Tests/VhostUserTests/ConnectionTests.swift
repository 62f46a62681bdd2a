import Glibc
import SystemPackage
import Testing
@testable import VhostUser

@Suite struct ConnectionTests {
    private func connectedPair(timeout: Duration = .seconds(2)) throws -> (Connection, Connection) {
        var fds: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        return (Connection(socket: FileDescriptor(rawValue: fds[0]), timeout: timeout),
                Connection(socket: FileDescriptor(rawValue: fds[1]), timeout: timeout))
    }

    @Test func messagesCarryFileDescriptorsThatWork() throws {
        let (a, b) = try connectedPair()
        let ends = try Pipe.make()
        try a.send(Message(.setDeviceStateFD, payload: UInt32(1).bytes(endianness: .little) + UInt32(0).bytes(endianness: .little), fileDescriptors: [ends.read]))
        close(ends.read)
        let received = try #require(try b.receive(waitingFor: "a test message"))
        #expect(received.request == .setDeviceStateFD)
        #expect(received.payload == [1, 0, 0, 0, 0, 0, 0, 0])
        #expect(received.fileDescriptors.count == 1)
        // The received descriptor is the pipe's read end.
        #expect(write(ends.write, "ok", 2) == 2)
        var buffer = [UInt8](repeating: 0, count: 2)
        #expect(read(received.fileDescriptors[0], &buffer, 2) == 2)
        #expect(buffer == Array("ok".utf8))
        close(received.fileDescriptors[0])
        close(ends.write)
    }

    @Test func cleanEndBetweenMessagesIsNil() throws {
        let (a, b) = try connectedPair()
        // shutdown, not close: the Connection closes its descriptor itself, and a second
        // close could hit a descriptor another test running in parallel has just opened.
        shutdown(a.socket.rawValue, Int32(SHUT_RDWR))
        #expect(try b.receive(waitingFor: "anything") == nil)
    }

    @Test func endInsideAMessageIsAHangUp() throws {
        let (a, b) = try connectedPair()
        _ = try a.socket.writeAll([1, 0, 0, 0, 1, 0])
        shutdown(a.socket.rawValue, Int32(SHUT_RDWR))
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

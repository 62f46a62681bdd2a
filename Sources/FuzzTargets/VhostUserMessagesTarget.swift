import SystemCalls
import SystemPackage
import VhostUser

/// vhost-user messages from a hostile peer, through a real socket pair: the
/// input's first byte picks a role, the rest is what the peer sends before it
/// stops writing.
/// - Decoder: every message received re-encodes to exactly the bytes it came
///   from, and none is larger than the limit.
/// - Back-end (`serve`'s): it ends with an error or at the end of the input,
///   and every reply it sent is a well-formed reply.
/// - Front-end (`replay`'s): it ends with an error or a result; a negotiation it
///   accepts offers DEVICE_STATE and enables only features it understands.
/// Nothing may crash or hang: every wait is bounded.
enum VhostUserMessagesTarget {
    static func run(_ bytes: [UInt8]) throws {
        guard let role = bytes.first else { return }
        let peerBytes = Array(bytes.dropFirst().prefix(16 << 10))
        let ends: UnixSocket.Pair
        do {
            ends = try UnixSocket.pair()
        } catch {
            throw InvariantViolation("\(error)")
        }
        let peer = ends.first
        _ = try? peer.descriptor.writeAll(peerBytes)
        try? UnixSocket.shutdown(peer.descriptor, .writing)
        let connection = Connection(socket: ends.second, timeout: .milliseconds(50))
        switch role % 3 {
        case 0: try decode(connection, peerBytes)
        case 1: try serve(connection, peer: peer.descriptor)
        default: try negotiate(connection)
        }
    }

    private static func decode(_ connection: Connection, _ sent: [UInt8]) throws {
        var consumed = 0
        while let message = try? connection.receive(waitingFor: "a message") {
            try check(message.payload.count <= Message.maximumPayloadSize, "a message above the size limit was accepted")
            let encoded = message.encoded
            try check(sent.count - consumed >= encoded.count, "a message longer than what was sent")
            try check(Array(sent[consumed..<consumed + encoded.count]) == encoded, "a message does not re-encode to its bytes")
            consumed += encoded.count
        }
    }

    private static func serve(_ connection: Connection, peer: FileDescriptor) throws {
        _ = try? BackEnd(connection: connection, device: ReferenceDevice(), behaviour: BackEndBehaviour()).run()
        // Read back what the back-end replied: whole messages, each a valid reply.
        var replies: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while (try? Readiness.wait(for: .readable, on: peer, timeout: .zero)) == true,
              let count = try? buffer.withUnsafeMutableBytes({ try peer.readSome(into: $0) }), count > 0 {
            replies += buffer.prefix(count)
        }
        var position = 0
        while replies.count - position >= Message.headerSize {
            let word = { (index: Int) in replies[(position + index)...].readInteger(endianness: .little, as: UInt32.self) ?? 0 }
            try check(word(4) == MessageFlags.validReply.rawValue, "the back-end sent a reply with flags 0x\(String(word(4), radix: 16))")
            position += Message.headerSize + Int(word(8))
        }
        try check(position == replies.count, "the back-end sent a partial reply")
    }

    private static func negotiate(_ connection: Connection) throws {
        var frontEnd = FrontEnd(connection: connection)
        do {
            try frontEnd.initialize()
        } catch {
            return
        }
        try check(frontEnd.protocolFeatures.contains(.deviceState), "negotiated without DEVICE_STATE")
        try check(frontEnd.protocolFeatures.isSubset(of: .understoodByFrontEnd), "enabled features the front-end does not understand")
        _ = try? frontEnd.startTransfer(.load)  // the pipe closes as it goes
        _ = try? frontEnd.checkDeviceState()
    }
}

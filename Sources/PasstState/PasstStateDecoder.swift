import Crypto
import StateStream

/// Decodes a passt state as its payload streams by, in pieces of any size.
///
/// It keeps the flow records (O(flows)) and never a queue's bytes: those are
/// hashed as they pass. Nothing is sized by a count or length read from the
/// payload; a count or length beyond what passt accepts is refused where it
/// is read. A payload that does not begin with passt's 8-byte magic is
/// dropped at its first differing byte and costs nothing more.
///
/// ```swift
/// var decoder = PasstStateDecoder()
/// decoder.feed(piece)  // as often as the payload comes
/// if decoder.beginsLikeState { let state = try decoder.finish() }
/// ```
public struct PasstStateDecoder: Sendable {
    private enum Stage: Sendable {
        case header
        case addresses
        case count
        case flow(Int)
        case extended(Int)
        /// A flow's queue bytes, up to payload offset `end`.
        case queue(Queue, flow: Int, end: Int)
        case done
    }

    /// Which of a flow's queues: the send queue comes first.
    private enum Queue: String, Sendable {
        case send, receive
    }

    private var stage = Stage.header
    /// Bytes of the record being read.
    private var pending: [UInt8] = []
    /// Offset in the payload of the next byte fed.
    private var offset = 0
    private var header: (version: UInt32, compat: UInt32)?
    private var addresses: PasstState.ObservedAddresses?
    private var flowCount = 0
    private var flows: [PasstState.Flow] = []
    private var queueDigest = SHA256()
    /// Where the queue being read starts.
    private var queueStart = 0
    private var trailingStart: Int?
    private var notPasst = false
    /// The first error, after which nothing more is read.
    public private(set) var error: PasstDecodingError?

    /// A decoder at the payload's first byte.
    public init() {}

    /// Whether the payload so far begins with passt's magic: it is a passt
    /// state or an error in one, not some other payload.
    public var beginsLikeState: Bool { !notPasst && offset >= PasstFormat.magic.count }

    /// Feeds the next bytes of the payload.
    public mutating func feed(_ bytes: some Collection<UInt8>) {
        var rest = bytes[...]
        while !rest.isEmpty && !notPasst && error == nil {
            switch stage {
            case .queue(let queue, let index, let end):
                let piece = rest.prefix(end - offset)
                piece.withContiguousStorageIfAvailable { queueDigest.update(bufferPointer: UnsafeRawBufferPointer($0)) }
                    ?? queueDigest.update(data: Array(piece))
                rest = rest.dropFirst(piece.count)
                offset += piece.count
                if offset == end { finish(queue, of: index) }
            case .done:
                if trailingStart == nil { trailingStart = offset }
                offset += rest.count
                rest = rest.dropFirst(rest.count)
            default:
                let needed = recordSize - pending.count
                let piece = rest.prefix(needed)
                if case .header = stage, !checkMagic(piece) { return }
                pending += piece
                rest = rest.dropFirst(piece.count)
                offset += piece.count
                if pending.count == recordSize {
                    let record = pending
                    pending = []
                    parse(record, at: offset - record.count)
                }
            }
        }
    }

    /// The state, once the whole payload was fed.
    ///
    /// - Throws: The first error, or `truncated` where the payload stops short.
    public mutating func finish() throws(PasstDecodingError) -> PasstState {
        if let error { throw error }
        if let trailingStart { throw PasstDecodingError(.trailingBytes(offset - trailingStart), at: trailingStart) }
        switch stage {
        case .done:
            guard let header, let addresses else { break }
            return PasstState(version: header.version, compatVersion: header.compat, addresses: addresses, flows: flows)
        case .queue(let queue, let index, let end):
            throw PasstDecodingError(
                .truncated(what: "the \(queue.rawValue) queue of flows[\(index)]", present: offset - queueStart, needed: end - queueStart),
                at: queueStart)
        default:
            break
        }
        throw PasstDecodingError(.truncated(what: recordName, present: pending.count, needed: recordSize), at: offset - pending.count)
    }

    // MARK: - Records

    private var recordSize: Int {
        switch stage {
        case .header: return PasstFormat.headerSize
        case .addresses: return PasstFormat.addressesSize
        case .count: return PasstFormat.countSize
        case .flow: return PasstFormat.flowSize
        case .extended: return PasstFormat.extendedSize
        case .queue, .done: return 0
        }
    }

    private var recordName: String {
        switch stage {
        case .header: return "the 16-byte header"
        case .addresses: return "the 42 bytes of observed addresses"
        case .count: return "the flow count"
        case .flow(let index): return "flows[\(index)] (a 112-byte tcp_tap_transfer)"
        case .extended(let index): return "flows[\(index)]'s 52-byte tcp_tap_transfer_ext"
        case .queue, .done: return "a queue"
        }
    }

    /// Whether the header bytes so far agree with the magic; drops the payload at the first that does not.
    private mutating func checkMagic(_ piece: some Collection<UInt8>) -> Bool {
        for (index, byte) in piece.enumerated() where pending.count + index < PasstFormat.magic.count {
            if byte != PasstFormat.magic[pending.count + index] {
                notPasst = true
                pending = []
                return false
            }
        }
        return true
    }

    private mutating func parse(_ record: [UInt8], at start: Int) {
        var fields = FieldReader(record)
        switch stage {
        case .header:
            _ = fields.u64()
            let version = fields.u32(), compat = fields.u32()
            header = (version, compat)
            if version == 0 || compat == 0 {
                error = PasstDecodingError(.invalidVersion(version: version, compat: compat), at: start + 8)
            } else if !(compat...max(compat, version)).contains(PasstFormat.version) {
                error = PasstDecodingError(.unsupportedVersion(version: version, compat: compat), at: start + 8)
            }
            stage = .addresses
        case .addresses:
            addresses = PasstState.ObservedAddresses(
                ipv6: .init(fields.bytes(16)), ipv6LinkLocal: .init(fields.bytes(16)), ipv4: .init(fields.bytes(4)), mac: fields.bytes(6))
            stage = .count
        case .count:
            let count = fields.u32()
            if count > PasstFormat.maximumFlows {
                error = PasstDecodingError(.tooManyFlows(count), at: start)
                return
            }
            flowCount = Int(count)
            stage = count == 0 ? .done : .flow(0)
        case .flow(let index):
            flows.append(Self.flow(&fields, at: start))
            stage = index + 1 < flowCount ? .flow(index + 1) : .extended(0)
        case .extended(let index):
            parseExtended(&fields, of: index, at: start)
        case .queue, .done:
            break
        }
    }

    private static func flow(_ fields: inout FieldReader, at start: Int) -> PasstState.Flow {
        let interfaces = fields.bytes(2)
        let sides = (0..<2).map { _ in
            let our = fields.bytes(16), endpoint = fields.bytes(16)
            return PasstState.Side(
                ourAddress: .init(our), endpointAddress: .init(endpoint), ourPort: fields.u16(hostOrder: true), endpointPort: fields.u16(hostOrder: true))
        }
        return PasstState.Flow(
            payloadOffset: start, interfaces: interfaces, sides: sides,
            retransmissions: fields.u8(), windowScaleFromTap: fields.u8(), windowScaleToTap: fields.u8(), events: fields.u8(),
            tapMSS: fields.u32(), sendBuffer: fields.u32(), flags: fields.u8(), sequenceDuplicateAckApproximation: fields.u8(),
            windowFromTap: fields.u16(), windowToTap: fields.u16(),
            sequenceToTap: fields.u32(), sequenceAckFromTap: fields.u32(), sequenceFromTap: fields.u32(),
            sequenceAckToTap: fields.u32(), sequenceInitialFromTap: fields.u32(),
            socket: .init(
                payloadOffset: 0, sequenceSend: 0, sequenceReceive: 0, sendQueueLength: 0, notSent: 0, receiveQueueLength: 0,
                mss: 0, timestamp: 0, sendWindowLastUpdate: 0, sendWindow: 0, maximumWindow: 0, receiveWindow: 0,
                receiveWindowUpdate: 0, sendWindowScale: 0, receiveWindowScale: 0, tcpState: 0, tcpOptions: 0,
                sendQueue: .init(payloadOffset: 0, length: 0, sha256: ""), receiveQueue: .init(payloadOffset: 0, length: 0, sha256: "")))
    }

    private mutating func parseExtended(_ fields: inout FieldReader, of index: Int, at start: Int) {
        var socket = flows[index].socket
        socket.payloadOffset = start
        socket.sequenceSend = fields.u32()
        socket.sequenceReceive = fields.u32()
        socket.sendQueueLength = fields.u32()
        socket.notSent = fields.u32()
        socket.receiveQueueLength = fields.u32()
        socket.mss = fields.u32()
        socket.timestamp = fields.u32()
        socket.sendWindowLastUpdate = fields.u32()
        socket.sendWindow = fields.u32()
        socket.maximumWindow = fields.u32()
        socket.receiveWindow = fields.u32()
        socket.receiveWindowUpdate = fields.u32()
        socket.sendWindowScale = fields.u8()
        socket.receiveWindowScale = fields.u8()
        socket.tcpState = fields.u8()
        socket.tcpOptions = fields.u8()
        flows[index].socket = socket
        // A flow the source could not dump carries no queues, whatever its lengths say.
        guard socket.tcpState != 0 else {
            nextFlow(after: index)
            return
        }
        if socket.sendQueueLength > PasstFormat.maximumQueueLength {
            error = PasstDecodingError(.queueTooLong(which: "send", length: socket.sendQueueLength), at: start + 8)
        } else if socket.notSent > socket.sendQueueLength {
            error = PasstDecodingError(.notSentBeyondQueue(notSent: socket.notSent, sendQueue: socket.sendQueueLength), at: start + 12)
        } else if socket.receiveQueueLength > PasstFormat.maximumQueueLength {
            error = PasstDecodingError(.queueTooLong(which: "receive", length: socket.receiveQueueLength), at: start + 16)
        } else {
            begin(.send, of: index)
        }
    }

    // MARK: - Queues

    private mutating func begin(_ queue: Queue, of index: Int) {
        let socket = flows[index].socket
        let length = Int(queue == .send ? socket.sendQueueLength : socket.receiveQueueLength)
        queueStart = offset
        queueDigest = SHA256()
        stage = .queue(queue, flow: index, end: offset + length)
        if length == 0 { finish(queue, of: index) }
    }

    private mutating func finish(_ queue: Queue, of index: Int) {
        let data = PasstState.Flow.QueueData(
            payloadOffset: queueStart, length: offset - queueStart, sha256: queueDigest.finalize().hexString)
        switch queue {
        case .send:
            flows[index].socket.sendQueue = data
            begin(.receive, of: index)
        case .receive:
            flows[index].socket.receiveQueue = data
            nextFlow(after: index)
        }
    }

    private mutating func nextFlow(after index: Int) {
        stage = index + 1 < flowCount ? .extended(index + 1) : .done
    }
}

/// Reads the fields of one record front to back: big-endian unless asked.
private struct FieldReader {
    private let bytes: [UInt8]
    private var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func bytes(_ count: Int) -> [UInt8] {
        defer { position += count }
        return Array(bytes[position..<position + count])
    }

    mutating func u8() -> UInt8 {
        defer { position += 1 }
        return bytes[position]
    }

    mutating func u16(hostOrder: Bool = false) -> UInt16 {
        defer { position += 2 }
        return bytes[position...].readInteger(endianness: hostOrder ? .little : .big, as: UInt16.self)!
    }

    mutating func u32() -> UInt32 {
        defer { position += 4 }
        return bytes[position...].readInteger(endianness: .big, as: UInt32.self)!
    }

    mutating func u64() -> UInt64 {
        defer { position += 8 }
        return bytes[position...].readInteger(endianness: .big, as: UInt64.self)!
    }
}

extension PasstState {
    /// Decodes a whole payload.
    public init(decoding payload: some Collection<UInt8>) throws(PasstDecodingError) {
        var decoder = PasstStateDecoder()
        decoder.feed(payload)
        guard decoder.beginsLikeState else { throw PasstDecodingError(.badMagic, at: 0) }
        self = try decoder.finish()
    }
}

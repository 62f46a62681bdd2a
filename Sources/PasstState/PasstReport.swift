import StateStream

/// What statetool shows of a passt payload: a summary, and with --decode
/// every flow; as text or as the `passt` JSON object.
public struct PasstReport: DecodedBackEndState {
    /// The decoded state.
    public let state: PasstState

    /// The report of `state`.
    public init(state: PasstState) {
        self.state = state
    }

    /// The state `decoder` decoded from a whole payload: `nil` if the payload
    /// does not begin with passt's magic, the decoding error if it does but
    /// is not a state passt can load.
    public static func recognize(_ decoder: inout PasstStateDecoder) -> Result<PasstReport, PasstDecodingError>? {
        guard decoder.beginsLikeState else { return nil }
        return Result { () throws(PasstDecodingError) in PasstReport(state: try decoder.finish()) }
    }

    /// passt's name for an interface (`PIF_NONE`, `PIF_HOST`, `PIF_TAP`, `PIF_SPLICE`).
    public static func interfaceName(_ pif: UInt8) -> String {
        let names = ["none", "host", "tap", "splice"]
        return names.indices.contains(Int(pif)) ? names[Int(pif)] : "pif \(pif)"
    }

    /// The summary lines, label and value.
    public var summary: [(label: String, value: String)] {
        let addresses = state.addresses
        let flows = state.flows.count
        return [
            ("passt", "state version \(state.version) (compat \(state.compatVersion)): \(flows) TCP \(flows == 1 ? "flow" : "flows")"),
            ("addresses", "IPv6 \(addresses.ipv6), link-local \(addresses.ipv6LinkLocal), IPv4 \(addresses.ipv4), MAC \(addresses.macText)"),
        ]
    }

    /// Every flow, a few lines each.
    public var listing: String {
        var text = "flows\n"
        if state.flows.isEmpty { text += "  none\n" }
        for (index, flow) in state.flows.enumerated() {
            let socket = flow.socket
            text += "  [\(index)] \(flow.tcpStateName) at payload offset \(flow.payloadOffset)\n"
            for (name, (side, pif)) in zip(["initiating", "target"], zip(flow.sides, flow.interfaces)) {
                text += "      \(name) (\(Self.interfaceName(pif))): \(side.text)\n"
            }
            text += "      tap: seq \(flow.sequenceToTap), ack from tap \(flow.sequenceAckFromTap), seq from tap \(flow.sequenceFromTap), ack to tap \(flow.sequenceAckToTap), MSS \(flow.tapMSS), windows \(flow.windowFromTap)/\(flow.windowToTap) (scale \(flow.windowScaleFromTap)/\(flow.windowScaleToTap))\n"
            text += "      socket: seq send \(socket.sequenceSend), seq receive \(socket.sequenceReceive), MSS \(socket.mss), timestamp \(socket.timestamp), windows send \(socket.sendWindow) receive \(socket.receiveWindow) max \(socket.maximumWindow) (scale \(socket.sendWindowScale)/\(socket.receiveWindowScale))\n"
            text += "      queues: send \(socket.sendQueue.length) bytes (\(socket.notSent) not sent), receive \(socket.receiveQueue.length) bytes\n"
        }
        return text
    }

    /// The differences by meaning to `other`, a passt state too.
    public func differences(to other: any DecodedBackEndState) -> [StateDifference]? {
        guard let other = other as? PasstReport else { return nil }
        return state.differences(to: other.state)
    }

    // MARK: JSON

    private struct Addresses: Encodable {
        let ipv6: String
        let ipv6LinkLocal: String
        let ipv4: String
        let mac: String
    }

    private struct Side: Encodable {
        let interface: String
        let endpointAddress: String
        let endpointPort: UInt16
        let ourAddress: String
        let ourPort: UInt16
    }

    private struct Queue: Encodable {
        let payloadOffset: Int
        let length: Int
        let sha256: String
    }

    private struct Flow: Encodable {
        let payloadOffset: Int
        let tcpState: UInt8
        let tcpStateName: String
        let sides: [Side]
        let events: UInt8
        let flags: UInt8
        let retransmissions: UInt8
        let tapMSS: UInt32
        let sendBuffer: UInt32
        let windowFromTap: UInt16
        let windowToTap: UInt16
        let windowScaleFromTap: UInt8
        let windowScaleToTap: UInt8
        let sequenceToTap: UInt32
        let sequenceAckFromTap: UInt32
        let sequenceFromTap: UInt32
        let sequenceAckToTap: UInt32
        let sequenceInitialFromTap: UInt32
        let sequenceDuplicateAckApproximation: UInt8
        let socketPayloadOffset: Int
        let sequenceSend: UInt32
        let sequenceReceive: UInt32
        let mss: UInt32
        let timestamp: UInt32
        let sendWindowLastUpdate: UInt32
        let sendWindow: UInt32
        let maximumWindow: UInt32
        let receiveWindow: UInt32
        let receiveWindowUpdate: UInt32
        let sendWindowScale: UInt8
        let receiveWindowScale: UInt8
        let tcpOptions: UInt8
        let notSent: UInt32
        /// `null` for a flow the source skipped (TCP state 0): it dumped no queues.
        let sendQueue: Nullable<Queue>
        let receiveQueue: Nullable<Queue>
    }

    private enum Key: String, CodingKey {
        case version, compatVersion, addresses, flows
    }

    /// Encodes the `passt` object of `inspect --json`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(state.version, forKey: .version)
        try container.encode(state.compatVersion, forKey: .compatVersion)
        let addresses = state.addresses
        try container.encode(
            Addresses(ipv6: "\(addresses.ipv6)", ipv6LinkLocal: "\(addresses.ipv6LinkLocal)", ipv4: "\(addresses.ipv4)", mac: addresses.macText),
            forKey: .addresses)
        try container.encode(state.flows.map { flow in
            let socket = flow.socket
            let queue = { (data: PasstState.Flow.QueueData) in
                Nullable(socket.tcpState == 0 ? nil : Queue(payloadOffset: data.payloadOffset, length: data.length, sha256: data.sha256))
            }
            return Flow(
                payloadOffset: flow.payloadOffset, tcpState: socket.tcpState, tcpStateName: flow.tcpStateName,
                sides: zip(flow.sides, flow.interfaces).map { side, pif in
                    Side(interface: Self.interfaceName(pif), endpointAddress: "\(side.endpointAddress)", endpointPort: side.endpointPort,
                         ourAddress: "\(side.ourAddress)", ourPort: side.ourPort)
                },
                events: flow.events, flags: flow.flags, retransmissions: flow.retransmissions, tapMSS: flow.tapMSS,
                sendBuffer: flow.sendBuffer, windowFromTap: flow.windowFromTap, windowToTap: flow.windowToTap,
                windowScaleFromTap: flow.windowScaleFromTap, windowScaleToTap: flow.windowScaleToTap,
                sequenceToTap: flow.sequenceToTap, sequenceAckFromTap: flow.sequenceAckFromTap, sequenceFromTap: flow.sequenceFromTap,
                sequenceAckToTap: flow.sequenceAckToTap, sequenceInitialFromTap: flow.sequenceInitialFromTap,
                sequenceDuplicateAckApproximation: flow.sequenceDuplicateAckApproximation,
                socketPayloadOffset: socket.payloadOffset, sequenceSend: socket.sequenceSend, sequenceReceive: socket.sequenceReceive,
                mss: socket.mss, timestamp: socket.timestamp, sendWindowLastUpdate: socket.sendWindowLastUpdate,
                sendWindow: socket.sendWindow, maximumWindow: socket.maximumWindow, receiveWindow: socket.receiveWindow,
                receiveWindowUpdate: socket.receiveWindowUpdate, sendWindowScale: socket.sendWindowScale,
                receiveWindowScale: socket.receiveWindowScale, tcpOptions: socket.tcpOptions, notSent: socket.notSent,
                sendQueue: queue(socket.sendQueue), receiveQueue: queue(socket.receiveQueue))
        }, forKey: .flows)
    }
}

/// passt's payload: its 8-byte magic, then layout version 2 (passt from
/// 2025-03 on): the addresses it observed and its TCP flows.
public struct PasstBackEnd: BackEndFormat {
    /// A passt format.
    public init() {}

    /// `passt`.
    public var name: String { "passt" }

    /// A decoder that hashes queue bytes as they stream by and keeps the flows.
    public func makeDecoder() -> any BackEndPayloadDecoder { Decoder() }

    /// Whether `bytes` begin with passt's magic.
    public func isBarePayload(_ bytes: [UInt8]) -> Bool { bytes.starts(with: PasstFormat.magic) }

    private struct Decoder: BackEndPayloadDecoder {
        var decoder = PasstStateDecoder()

        mutating func feed(_ bytes: ArraySlice<UInt8>) { decoder.feed(bytes) }

        mutating func finish() -> Result<any DecodedBackEndState, BackEndDecodingFailure>? {
            PasstReport.recognize(&decoder).map { result in
                result.map { $0 as any DecodedBackEndState }.mapError { BackEndDecodingFailure($0) }
            }
        }
    }
}

import StateStream

/// What passt hands over in a migration (layout version 2): the guest
/// addresses it observed and the TCP connections it keeps alive.
public struct PasstState: Hashable, Sendable {
    /// The layout version the source wrote (the header's `version`).
    public var version: UInt32
    /// The oldest version the source says this state is compatible with.
    public var compatVersion: UInt32
    /// The guest's addresses passt observed.
    public var addresses: ObservedAddresses
    /// The migrated TCP connections, in the order the source wrote them.
    public var flows: [Flow]

    /// A state from its header's versions, addresses and flows.
    public init(version: UInt32, compatVersion: UInt32, addresses: ObservedAddresses, flows: [Flow]) {
        self.version = version
        self.compatVersion = compatVersion
        self.addresses = addresses
        self.flows = flows
    }

    /// The guest's addresses as passt saw them (all zero, or a broadcast MAC,
    /// until the guest has sent something).
    public struct ObservedAddresses: Hashable, Sendable {
        /// The guest's IPv6 address (16 bytes).
        public var ipv6: IPAddress
        /// The guest's link-local IPv6 address (16 bytes).
        public var ipv6LinkLocal: IPAddress
        /// The guest's IPv4 address (4 bytes).
        public var ipv4: IPAddress
        /// The guest's MAC address (6 bytes).
        public var mac: [UInt8]

        /// Addresses from their bytes.
        public init(ipv6: IPAddress, ipv6LinkLocal: IPAddress, ipv4: IPAddress, mac: [UInt8]) {
            self.ipv6 = ipv6
            self.ipv6LinkLocal = ipv6LinkLocal
            self.ipv4 = ipv4
            self.mac = mac
        }

        /// `aa:bb:cc:dd:ee:ff`.
        public var macText: String { mac.hexString(separator: ":") }
    }

    /// An IPv4 or IPv6 address as passt stores it.
    public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
        /// 4 bytes (IPv4) or 16 (IPv6; IPv4 inside a flow is IPv4-mapped).
        public var bytes: [UInt8]

        /// The address of `bytes`, 4 or 16 of them, in network order.
        public init(_ bytes: [UInt8]) { self.bytes = bytes }

        /// The IPv4 address an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) holds.
        public var mappedIPv4: IPAddress? {
            guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff else { return nil }
            return IPAddress(Array(bytes[12...]))
        }

        /// Dotted quad for IPv4, RFC 5952 text for IPv6 (mapped IPv4 as a dotted quad).
        public var description: String {
            if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
            if let mapped = mappedIPv4 { return mapped.description }
            let words = stride(from: 0, to: 16, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }
            // The longest run of two or more zero words becomes `::` (the first such run on a tie).
            var best: Range<Int>?
            var index = 0
            while index < words.count {
                guard words[index] == 0 else { index += 1; continue }
                var end = index
                while end < words.count && words[end] == 0 { end += 1 }
                if end - index >= 2 && end - index > (best?.count ?? 0) { best = index..<end }
                index = end
            }
            let hex = { (range: ArraySlice<UInt16>) in range.map { String($0, radix: 16) }.joined(separator: ":") }
            guard let best else { return hex(words[...]) }
            return hex(words[..<best.lowerBound]) + "::" + hex(words[best.upperBound...])
        }
    }

    /// One side of a flow, from passt's point of view.
    public struct Side: Hashable, Sendable {
        /// Our address (passt's local one on this side).
        public var ourAddress: IPAddress
        /// The endpoint's address (the remote one).
        public var endpointAddress: IPAddress
        /// Our port (passt's local one on this side).
        public var ourPort: UInt16
        /// The endpoint's port (the remote one).
        public var endpointPort: UInt16

        /// A side from its addresses and ports.
        public init(ourAddress: IPAddress, endpointAddress: IPAddress, ourPort: UInt16, endpointPort: UInt16) {
            self.ourAddress = ourAddress
            self.endpointAddress = endpointAddress
            self.ourPort = ourPort
            self.endpointPort = endpointPort
        }

        /// `endpoint:port -> our:port`, IPv6 addresses in brackets.
        public var text: String {
            func socket(_ address: IPAddress, _ port: UInt16) -> String {
                address.mappedIPv4 == nil && address.bytes.count == 16 ? "[\(address)]:\(port)" : "\(address):\(port)"
            }
            return "\(socket(endpointAddress, endpointPort)) -> \(socket(ourAddress, ourPort))"
        }
    }

    /// One migrated TCP connection: `tcp_tap_transfer`, then its extended part.
    public struct Flow: Hashable, Sendable {
        /// Where its `tcp_tap_transfer` record starts in the payload.
        public var payloadOffset: Int
        /// The interface of each side (`PIF_HOST` 1, `PIF_TAP` 2, `PIF_SPLICE` 3).
        public var interfaces: [UInt8]
        /// The initiating side, then the target side.
        public var sides: [Side]
        /// `retrans`: retransmissions so far because an ACK timed out.
        public var retransmissions: UInt8
        /// `ws_from_tap`: the window scaling factor the guest advertised.
        public var windowScaleFromTap: UInt8
        /// `ws_to_tap`: the window scaling factor advertised to the guest.
        public var windowScaleToTap: UInt8
        /// passt's connection event bits (`SOCK_ACCEPTED`, `ESTABLISHED`, FINs…).
        public var events: UInt8
        /// `tap_mss`: the MSS the guest advertised.
        public var tapMSS: UInt32
        /// `sndbuf`: the socket's send buffer in the kernel.
        public var sendBuffer: UInt32
        /// `flags`: passt's internal connection flags (`STALLED`, `LOCAL`,
        /// `ACTIVE_CLOSE`…).
        public var flags: UInt8
        /// `seq_dup_ack_approx`: the last duplicate ACK number sent to the guest
        /// (its low byte).
        public var sequenceDuplicateAckApproximation: UInt8
        /// `wnd_from_tap`: the last window the guest advertised, unscaled.
        public var windowFromTap: UInt16
        /// `wnd_to_tap`: the window advertised to the guest, unscaled.
        public var windowToTap: UInt16
        /// `seq_to_tap`: the next sequence number of segments to the guest.
        public var sequenceToTap: UInt32
        /// `seq_ack_from_tap`: the last ACK number received from the guest.
        public var sequenceAckFromTap: UInt32
        /// `seq_from_tap`: the next sequence number expected from the guest.
        public var sequenceFromTap: UInt32
        /// `seq_ack_to_tap`: the last ACK number sent to the guest.
        public var sequenceAckToTap: UInt32
        /// `seq_init_from_tap`: the guest's initial sequence number.
        public var sequenceInitialFromTap: UInt32
        /// The socket side: filled from the flow's extended record.
        public var socket: SocketState

        /// The socket side of a flow: `tcp_tap_transfer_ext` and its queues.
        public struct SocketState: Hashable, Sendable {
            /// Where its `tcp_tap_transfer_ext` record starts in the payload.
            public var payloadOffset: Int
            /// `seq_snd`: the socket's send sequence number.
            public var sequenceSend: UInt32
            /// `seq_rcv`: the socket's receive sequence number.
            public var sequenceReceive: UInt32
            /// `sndq`: bytes in the send queue, not acknowledged or not sent.
            public var sendQueueLength: UInt32
            /// `notsent`: the part of the send queue not sent yet.
            public var notSent: UInt32
            /// `rcvq`: bytes in the receive queue.
            public var receiveQueueLength: UInt32
            /// `mss`: the socket's MSS clamp.
            public var mss: UInt32
            /// `timestamp`: the RFC 7323 timestamp.
            public var timestamp: UInt32
            /// `snd_wl1`: the sequence number used in a window probe (the next one,
            /// less 1).
            public var sendWindowLastUpdate: UInt32
            /// `snd_wnd`: the socket's send window.
            public var sendWindow: UInt32
            /// `max_window`: the window clamp.
            public var maximumWindow: UInt32
            /// `rcv_wnd`: the socket's receive window.
            public var receiveWindow: UInt32
            /// `rcv_wup`: `rcv_nxt` when the last window update was sent.
            public var receiveWindowUpdate: UInt32
            /// `snd_ws`: the send window scaling factor.
            public var sendWindowScale: UInt8
            /// `rcv_ws`: the receive window scaling factor.
            public var receiveWindowScale: UInt8
            /// Linux `TCP_*` state (1 established, 8 close-wait…); 0: the source
            /// could not dump the flow, which the target drops (no queues follow).
            public var tcpState: UInt8
            /// `TCPI_OPT_*` bits: 1 timestamps, 2 SACK, 4 window scaling, 8 ECN.
            public var tcpOptions: UInt8
            /// The send queue's bytes: where they are and their SHA-256.
            public var sendQueue: QueueData
            /// The receive queue's bytes, after the send queue's: where they are and
            /// their SHA-256.
            public var receiveQueue: QueueData
        }

        /// Queue bytes are not kept: their place and digest tell them apart.
        public struct QueueData: Hashable, Sendable {
            /// Where the bytes start in the payload.
            public var payloadOffset: Int
            /// How many bytes there are.
            public var length: Int
            /// Lowercase hex SHA-256 of the bytes.
            public var sha256: String
        }

        /// Its state's name as Linux calls it.
        public var tcpStateName: String {
            let names = [1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
                         7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW_SYN_RECV"]
            if socket.tcpState == 0 { return "skipped (not dumped by the source)" }
            return names[Int(socket.tcpState)] ?? "state \(socket.tcpState)"
        }
    }
}

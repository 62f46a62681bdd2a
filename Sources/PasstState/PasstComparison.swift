import StateStream

extension StateDifference.Subject {
    /// One of the guest addresses passt observed.
    public static let address = Self(rawValue: "address")
    /// A TCP flow, keyed by its endpoints.
    public static let flow = Self(rawValue: "flow")
}

extension PasstState.Flow {
    /// What identifies a flow across two states: both sides' endpoints.
    public var key: String { sides.map(\.text).joined(separator: " | ") }

    /// Its fields by name, for comparing (offsets left out: they carry no meaning).
    var comparedFields: [(String, String)] {
        let socket = self.socket
        return [
            ("interfaces", interfaces.map(String.init).joined(separator: ",")),
            ("retransmissions", "\(retransmissions)"), ("ws_from_tap", "\(windowScaleFromTap)"), ("ws_to_tap", "\(windowScaleToTap)"),
            ("events", "0x\(String(events, radix: 16))"), ("tap_mss", "\(tapMSS)"), ("sndbuf", "\(sendBuffer)"),
            ("flags", "0x\(String(flags, radix: 16))"), ("seq_dup_ack_approx", "\(sequenceDuplicateAckApproximation)"),
            ("wnd_from_tap", "\(windowFromTap)"), ("wnd_to_tap", "\(windowToTap)"),
            ("seq_to_tap", "\(sequenceToTap)"), ("seq_ack_from_tap", "\(sequenceAckFromTap)"), ("seq_from_tap", "\(sequenceFromTap)"),
            ("seq_ack_to_tap", "\(sequenceAckToTap)"), ("seq_init_from_tap", "\(sequenceInitialFromTap)"),
            ("seq_snd", "\(socket.sequenceSend)"), ("seq_rcv", "\(socket.sequenceReceive)"),
            ("sndq", "\(socket.sendQueueLength)"), ("notsent", "\(socket.notSent)"), ("rcvq", "\(socket.receiveQueueLength)"),
            ("mss", "\(socket.mss)"), ("timestamp", "\(socket.timestamp)"),
            ("snd_wl1", "\(socket.sendWindowLastUpdate)"), ("snd_wnd", "\(socket.sendWindow)"), ("max_window", "\(socket.maximumWindow)"),
            ("rcv_wnd", "\(socket.receiveWindow)"), ("rcv_wup", "\(socket.receiveWindowUpdate)"),
            ("snd_ws", "\(socket.sendWindowScale)"), ("rcv_ws", "\(socket.receiveWindowScale)"),
            ("tcpi_state", "\(socket.tcpState)"), ("tcpi_options", "0x\(String(socket.tcpOptions, radix: 16))"),
            ("send queue", "\(socket.sendQueue.length) bytes sha256 \(socket.sendQueue.sha256.prefix(16))"),
            ("receive queue", "\(socket.receiveQueue.length) bytes sha256 \(socket.receiveQueue.sha256.prefix(16))"),
        ]
    }
}

extension PasstState {
    /// How `other` differs from this state, by meaning: the header's
    /// versions, each observed address, and flows matched by their endpoints
    /// (whatever order they were sent in), field by field.
    public func differences(to other: PasstState) -> [StateDifference] {
        var differences: [StateDifference] = []
        for (name, old, new) in [("version", version, other.version), ("compat_version", compatVersion, other.compatVersion)] where old != new {
            differences.append(.init(subject: .field, change: .changed, key: name, detail: "\(old) -> \(new)"))
        }
        let addressPairs = [
            ("ipv6", addresses.ipv6.description, other.addresses.ipv6.description),
            ("ipv6_ll", addresses.ipv6LinkLocal.description, other.addresses.ipv6LinkLocal.description),
            ("ipv4", addresses.ipv4.description, other.addresses.ipv4.description),
            ("mac", addresses.macText, other.addresses.macText),
        ]
        for (name, old, new) in addressPairs where old != new {
            differences.append(.init(subject: .address, change: .changed, key: name, detail: "\(old) -> \(new)"))
        }
        let oursByKey = keyedFlows(), theirsByKey = other.keyedFlows()
        let theirs = Dictionary(theirsByKey, uniquingKeysWith: { first, _ in first })
        let ours = Dictionary(oursByKey, uniquingKeysWith: { first, _ in first })
        for (key, flow) in oursByKey {
            guard let counterpart = theirs[key] else {
                differences.append(.init(subject: .flow, change: .removed, key: key, detail: flow.tcpStateName))
                continue
            }
            let changed = zip(flow.comparedFields, counterpart.comparedFields).filter { $0.0.1 != $0.1.1 }
                .map { "\($0.0.0) \($0.0.1) -> \($0.1.1)" }
            if !changed.isEmpty {
                differences.append(.init(subject: .flow, change: .changed, key: key, detail: changed.joined(separator: ", ")))
            }
        }
        for (key, flow) in theirsByKey where ours[key] == nil {
            differences.append(.init(subject: .flow, change: .added, key: key, detail: flow.tcpStateName))
        }
        return differences
    }

    /// Flows by their endpoints. passt's flow table holds one flow per pair
    /// of endpoints, but a payload may repeat one: the n-th flow with a key
    /// matches the n-th with that key on the other side (`KEY #2`).
    private func keyedFlows() -> [(String, Flow)] {
        var seen: [String: Int] = [:]
        return flows.map { flow in
            let count = seen[flow.key, default: 0] + 1
            seen[flow.key] = count
            return (count == 1 ? flow.key : "\(flow.key) #\(count)", flow)
        }
    }
}

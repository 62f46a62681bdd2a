import Foundation
import PasstState
import StateStream
import TestSupport
import Testing

/// passt payloads written by hand from passt's layout (migrate.c, flow.c,
/// tcp.c, tcp_conn.h), independently of the decoder.
enum PasstBytes {
    static func be32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) } }
    static func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }
    static func le16(_ value: UInt16) -> [UInt8] { [UInt8(value & 0xff), UInt8(value >> 8)] }

    static let magic: [UInt8] = [0xb1, 0xbb, 0x1d, 0x1b, 0x0b, 0xb1, 0xd1, 0xb0]

    static func header(version: UInt32 = 2, compat: UInt32 = 2) -> [UInt8] { magic + be32(version) + be32(compat) }

    /// fd00::2, no link-local, 192.0.2.2, a broadcast MAC: what a fresh passt sends.
    static let addresses: [UInt8] =
        [0xfd, 0] + [UInt8](repeating: 0, count: 13) + [2] + [UInt8](repeating: 0, count: 16) + [192, 0, 2, 2] + [UInt8](repeating: 0xff, count: 6)

    static func mapped(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> [UInt8] {
        [UInt8](repeating: 0, count: 10) + [0xff, 0xff, a, b, c, d]
    }

    /// A 112-byte tcp_tap_transfer whose every field is distinct.
    static func flow(_ n: UInt8) -> [UInt8] {
        var bytes: [UInt8] = [2, 1]  // tap side first, then host
        bytes += mapped(10, 0, 2, 15) + mapped(192, 0, 2, n) + le16(40000 + UInt16(n)) + le16(80)  // side 0: our, endpoint, ports
        bytes += mapped(10, 0, 2, 2) + mapped(93, 184, 216, n) + le16(50000) + le16(443)
        bytes += [3, 7, 8, 0x04]  // retrans, ws_from_tap, ws_to_tap, events (ESTABLISHED)
        bytes += be32(1460) + be32(87380 + UInt32(n))  // tap_mss, sndbuf
        bytes += [0x08, 5] + be16(64240) + be16(65535)  // flags, seq_dup_ack_approx, windows
        bytes += [0x11111111, 0x22222222, 0x33333333, 0x44444444, 0x55555555].flatMap { be32($0 + UInt32(n)) }
        precondition(bytes.count == 112)
        return bytes
    }

    /// A 52-byte tcp_tap_transfer_ext with the given queue lengths.
    static func extended(sendQueue: UInt32, notSent: UInt32, receiveQueue: UInt32, state: UInt8 = 1) -> [UInt8] {
        var bytes = be32(0xa0000001) + be32(0xb0000002) + be32(sendQueue) + be32(notSent) + be32(receiveQueue)
        bytes += be32(1448) + be32(123456) + be32(0xc0000003) + be32(64000) + be32(65535) + be32(64512) + be32(0xd0000004)
        bytes += [7, 9, state, 0x07]
        precondition(bytes.count == 52)
        return bytes
    }
}

@Suite struct PasstStateTests {
    @Test func aFreshPasstStateDecodes() throws {
        let payload = PasstBytes.header() + PasstBytes.addresses + PasstBytes.be32(0)
        #expect(payload.count == 62)
        let state = try PasstState(decoding: payload)
        #expect(state.version == 2)
        #expect(state.compatVersion == 2)
        #expect(state.addresses.ipv6.description == "fd00::2")
        #expect(state.addresses.ipv6LinkLocal.description == "::")
        #expect(state.addresses.ipv4.description == "192.0.2.2")
        #expect(state.addresses.macText == "ff:ff:ff:ff:ff:ff")
        #expect(state.flows.isEmpty)
    }

    static let sendQueue = (0..<300).map { UInt8(truncatingIfNeeded: $0) }
    static let receiveQueue = Array("GET / HTTP/1.1\r\n".utf8)

    /// Three flows: one with both queues, one with none, one the source could not dump.
    static let threeFlows: [UInt8] = PasstBytes.header() + PasstBytes.addresses + PasstBytes.be32(3)
        + PasstBytes.flow(1) + PasstBytes.flow(2) + PasstBytes.flow(3)
        + PasstBytes.extended(sendQueue: 300, notSent: 100, receiveQueue: UInt32(receiveQueue.count)) + sendQueue + receiveQueue
        + PasstBytes.extended(sendQueue: 0, notSent: 0, receiveQueue: 0)
        + PasstBytes.extended(sendQueue: 999, notSent: 0, receiveQueue: 999, state: 0)

    @Test func everyFieldOfEveryFlowDecodes() throws {
        let state = try PasstState(decoding: Self.threeFlows)
        #expect(state.flows.count == 3)
        let flow = state.flows[0]
        #expect(flow.payloadOffset == 62)
        #expect(flow.interfaces == [2, 1])
        #expect(flow.sides[0].text == "192.0.2.1:80 -> 10.0.2.15:40001")
        #expect(flow.sides[1].text == "93.184.216.1:443 -> 10.0.2.2:50000")
        #expect([flow.retransmissions, flow.windowScaleFromTap, flow.windowScaleToTap, flow.events] == [3, 7, 8, 4])
        #expect(flow.tapMSS == 1460)
        #expect(flow.sendBuffer == 87381)
        #expect([flow.flags, flow.sequenceDuplicateAckApproximation] == [8, 5])
        #expect([flow.windowFromTap, flow.windowToTap] == [64240, 65535])
        #expect([flow.sequenceToTap, flow.sequenceAckFromTap, flow.sequenceFromTap, flow.sequenceAckToTap, flow.sequenceInitialFromTap]
                == [0x11111112, 0x22222223, 0x33333334, 0x44444445, 0x55555556])
        let socket = flow.socket
        #expect(socket.payloadOffset == 62 + 3 * 112)
        #expect([socket.sequenceSend, socket.sequenceReceive] == [0xa0000001, 0xb0000002])
        #expect([socket.sendQueueLength, socket.notSent, socket.receiveQueueLength] == [300, 100, UInt32(Self.receiveQueue.count)])
        #expect([socket.mss, socket.timestamp] == [1448, 123456])
        #expect([socket.sendWindowLastUpdate, socket.sendWindow, socket.maximumWindow, socket.receiveWindow, socket.receiveWindowUpdate]
                == [0xc0000003, 64000, 65535, 64512, 0xd0000004])
        #expect([socket.sendWindowScale, socket.receiveWindowScale, socket.tcpState, socket.tcpOptions] == [7, 9, 1, 7])
        #expect(flow.tcpStateName == "ESTABLISHED")
        #expect(socket.sendQueue.payloadOffset == 62 + 3 * 112 + 52)
        #expect(socket.sendQueue.length == 300)
        #expect(socket.sendQueue.sha256 == Self.sendQueue.sha256Hex)
        #expect(socket.receiveQueue.payloadOffset == 62 + 3 * 112 + 52 + 300)
        #expect(socket.receiveQueue.sha256 == Self.receiveQueue.sha256Hex)
        #expect(state.flows[1].socket.payloadOffset == 62 + 3 * 112 + 52 + 300 + Self.receiveQueue.count)
        #expect(state.flows[1].socket.sendQueue.length == 0)
        // The third was not dumped: no queue bytes follow it, whatever its lengths say.
        #expect(state.flows[2].tcpStateName == "skipped (not dumped by the source)")
        #expect(state.flows[2].socket.receiveQueueLength == 999)
        #expect(state.flows[2].socket.receiveQueue.length == 0)
    }

    @Test func everySplitOfThePayloadDecodesTheSame() throws {
        let disagreement = SplitVerifier.firstDisagreement(count: Self.threeFlows.count) { split -> String in
            var decoder = PasstStateDecoder()
            var start = 0
            var reads = 0
            while start < Self.threeFlows.count {
                let end = start + min(Self.threeFlows.count - start, max(1, split.readSizes(reads)))
                decoder.feed(Self.threeFlows[start..<end])
                start = end
                reads += 1
            }
            return (try? decoder.finish()).map { "\($0)" } ?? "error \(String(describing: decoder.error))"
        }
        #expect(disagreement == nil)
    }

    /// Each malformation, at its exact payload offset with its message.
    static let malformations: [(payload: [UInt8], expected: String)] = {
        typealias B = PasstBytes
        let one = B.header() + B.addresses + B.be32(1) + B.flow(1)
        var cases: [(payload: [UInt8], expected: String)] = []
        cases.append((B.header(version: 9, compat: 9), "unsupported-version at payload offset 8: versions 9 to 9 do not take in version 2, the only one this decoder and passt read"))
        cases.append((B.header(version: 1, compat: 1), "unsupported-version at payload offset 8: versions 1 to 1 do not take in version 2, the only one this decoder and passt read (version 1 was a 2025-02 layout passt no longer reads)"))
        cases.append((B.header(version: 0, compat: 2), "invalid-version at payload offset 8: version 0, compat version 2: passt refuses a zero version"))
        cases.append((B.header() + B.addresses + B.be32(0x20000), "too-many-flows at payload offset 58: 131072 flows, more than the 131071 passt's flow table holds"))
        cases.append((Array(B.header().prefix(11)), "truncated at payload offset 0: the payload ends inside the 16-byte header: 11 of 16 bytes present"))
        let cut: [UInt8] = B.header() + B.addresses + B.be32(2) + B.flow(1) + Array(B.flow(2).prefix(40))
        cases.append((cut, "truncated at payload offset 174: the payload ends inside flows[1] (a 112-byte tcp_tap_transfer): 40 of 112 bytes present"))
        cases.append((one + B.extended(sendQueue: 0x4000001, notSent: 0, receiveQueue: 0), "queue-too-long at payload offset 182: send queue of 67108865 bytes, longer than the 67108864 passt migrates"))
        cases.append((one + B.extended(sendQueue: 10, notSent: 11, receiveQueue: 0), "not-sent-beyond-queue at payload offset 186: 11 bytes not sent of a 10-byte send queue"))
        cases.append((one + B.extended(sendQueue: 10, notSent: 0, receiveQueue: 5) + [1, 2, 3], "truncated at payload offset 226: the payload ends inside the send queue of flows[0]: 3 of 10 bytes present"))
        cases.append((B.header() + B.addresses + B.be32(0) + [0xaa, 0xbb], "trailing-bytes at payload offset 62: 2 bytes follow the last flow"))
        cases.append(([0xb1, 0xbb, 0, 0] + B.addresses, "bad-magic at payload offset 0: the payload does not begin with passt's magic b1bb1d1b0bb1d1b0"))
        return cases
    }()

    @Test(arguments: 0..<11)
    func malformationsAreReportedAtTheirOffset(index: Int) throws {
        let (payload, expected) = Self.malformations[index]
        #expect(throws: PasstDecodingError.self) { _ = try PasstState(decoding: payload) }
        do {
            _ = try PasstState(decoding: payload)
        } catch {
            #expect(error.description == expected)
        }
    }

    @Test func aHugeCountOrQueueLengthCostsNothingBeforeItIsRefused() throws {
        // A count within passt's limit but with no flows behind it: truncated at once, nothing reserved.
        var decoder = PasstStateDecoder()
        decoder.feed(PasstBytes.header() + PasstBytes.addresses + PasstBytes.be32(131071))
        #expect(throws: PasstDecodingError(.truncated(what: "flows[0] (a 112-byte tcp_tap_transfer)", present: 0, needed: 112), at: 62)) {
            _ = try decoder.finish()
        }
        // A 64 MiB receive queue declared, 1 byte present.
        let queued = PasstBytes.header() + PasstBytes.addresses + PasstBytes.be32(1) + PasstBytes.flow(1)
            + PasstBytes.extended(sendQueue: 0, notSent: 0, receiveQueue: 64 << 20) + [7]
        #expect(throws: PasstDecodingError(.truncated(what: "the receive queue of flows[0]", present: 1, needed: 64 << 20), at: 226)) {
            _ = try PasstState(decoding: queued)
        }
    }

    @Test func anotherPayloadIsDroppedAtItsFirstByte() {
        var decoder = PasstStateDecoder()
        decoder.feed([0x01, 0xbb])
        decoder.feed([UInt8](repeating: 0, count: 1 << 16))
        #expect(!decoder.beginsLikeState)
        #expect(decoder.error == nil)
    }
}


@Suite struct PasstComparisonTests {
    typealias B = PasstBytes

    static func state(flows: [[UInt8]], extended: [[UInt8]], addresses: [UInt8] = B.addresses) throws -> PasstState {
        try PasstState(decoding: B.header() + addresses + B.be32(UInt32(flows.count)) + flows.joined() + extended.joined())
    }

    @Test func flowsAreMatchedByEndpointsWhateverTheirOrder() throws {
        let empty = B.extended(sendQueue: 0, notSent: 0, receiveQueue: 0)
        let a = try Self.state(flows: [B.flow(1), B.flow(2)], extended: [empty, empty])
        let b = try Self.state(flows: [B.flow(2), B.flow(1)], extended: [empty, empty])
        #expect(a.differences(to: b).isEmpty)

        var otherAddresses = B.addresses
        otherAddresses[32..<36] = [10, 0, 2, 99]
        let queued = B.extended(sendQueue: 2, notSent: 0, receiveQueue: 0) + [1, 2]
        let c = try Self.state(flows: [B.flow(1), B.flow(3)], extended: [queued, empty], addresses: otherAddresses)
        #expect(a.differences(to: c).map(\.description) == [
            "~ address ipv4: 192.0.2.2 -> 10.0.2.99",
            "~ flow 192.0.2.1:80 -> 10.0.2.15:40001 | 93.184.216.1:443 -> 10.0.2.2:50000: sndq 0 -> 2, send queue 0 bytes sha256 e3b0c44298fc1c14 -> 2 bytes sha256 a12871fee210fb86",
            "- flow 192.0.2.2:80 -> 10.0.2.15:40002 | 93.184.216.2:443 -> 10.0.2.2:50000: ESTABLISHED",
            "+ flow 192.0.2.3:80 -> 10.0.2.15:40003 | 93.184.216.3:443 -> 10.0.2.2:50000: ESTABLISHED",
        ])
    }

    /// Found by fuzzing: two flows with the same endpoints made a state differ from itself.
    @Test func aRepeatedFlowIsMatchedInTurn() throws {
        let state = try Self.state(
            flows: [B.flow(1), B.flow(1)],
            extended: [B.extended(sendQueue: 1, notSent: 0, receiveQueue: 0) + [9], B.extended(sendQueue: 0, notSent: 0, receiveQueue: 0)])
        #expect(state.differences(to: state).isEmpty)
    }
}

extension Array where Element == UInt8 {
    var sha256Hex: String {
        // An independent digest: the command-line tool's.
        let result = try? ProcessRunner.run("/usr/bin/sha256sum", [], stdin: .init(self))
        return String(result?.stdout.prefix(64) ?? "")
    }
}

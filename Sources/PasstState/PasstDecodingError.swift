import StateStream

/// Why a payload that begins with passt's magic is not a state this decoder
/// (or passt) can load, and where: a byte offset in the payload.
public struct PasstDecodingError: Error, PayloadFinding, Hashable {
    /// What is wrong.
    public enum Reason: Hashable, Sendable {
        /// The payload does not begin with passt's magic (when it was asked to be one).
        case badMagic
        /// The payload ends inside `what`, of which `present` of `needed` bytes came.
        case truncated(what: String, present: Int, needed: Int)
        /// A version or compat version of 0, which passt refuses.
        case invalidVersion(version: UInt32, compat: UInt32)
        /// A version range that does not take in version 2.
        case unsupportedVersion(version: UInt32, compat: UInt32)
        /// More flows than passt's table holds.
        case tooManyFlows(UInt32)
        /// A queue longer than passt migrates.
        case queueTooLong(which: String, length: UInt32)
        /// More not-sent bytes than the send queue holds.
        case notSentBeyondQueue(notSent: UInt32, sendQueue: UInt32)
        /// Bytes follow the last flow.
        case trailingBytes(Int)
    }

    /// What is wrong.
    public let reason: Reason
    /// The offset in the payload where the field or record starts.
    public let payloadOffset: Int

    /// An error for `reason` at payload offset `offset`.
    public init(_ reason: Reason, at offset: Int) {
        self.reason = reason
        self.payloadOffset = offset
    }

    /// The stable kinds, as scripts match them: one per ``Reason``.
    public enum Kind: String, Sendable, CaseIterable {
        /// A ``Reason/badMagic``.
        case badMagic = "bad-magic"
        /// A ``Reason/truncated(what:present:needed:)``.
        case truncated
        /// A ``Reason/invalidVersion(version:compat:)``.
        case invalidVersion = "invalid-version"
        /// A ``Reason/unsupportedVersion(version:compat:)``.
        case unsupportedVersion = "unsupported-version"
        /// A ``Reason/tooManyFlows(_:)``.
        case tooManyFlows = "too-many-flows"
        /// A ``Reason/queueTooLong(which:length:)``.
        case queueTooLong = "queue-too-long"
        /// A ``Reason/notSentBeyondQueue(notSent:sendQueue:)``.
        case notSentBeyondQueue = "not-sent-beyond-queue"
        /// A ``Reason/trailingBytes(_:)``.
        case trailingBytes = "trailing-bytes"
    }

    /// The kind of ``reason``.
    public var kind: Kind {
        switch reason {
        case .badMagic: return .badMagic
        case .truncated: return .truncated
        case .invalidVersion: return .invalidVersion
        case .unsupportedVersion: return .unsupportedVersion
        case .tooManyFlows: return .tooManyFlows
        case .queueTooLong: return .queueTooLong
        case .notSentBeyondQueue: return .notSentBeyondQueue
        case .trailingBytes: return .trailingBytes
        }
    }


    /// What is wrong, with the numbers read and passt's limits, in one
    /// sentence without the offset.
    public var message: String {
        switch reason {
        case .badMagic:
            return "the payload does not begin with passt's magic \(PasstFormat.magic.hexString)"
        case .truncated(let what, let present, let needed):
            return "the payload ends inside \(what): \(present) of \(needed) bytes present"
        case .invalidVersion(let version, let compat):
            return "version \(version), compat version \(compat): passt refuses a zero version"
        case .unsupportedVersion(let version, let compat):
            let v1 = compat <= 1 && version <= 1 ? " (version 1 was a 2025-02 layout passt no longer reads)" : ""
            return "versions \(compat) to \(version) do not take in version \(PasstFormat.version), the only one this decoder and passt read\(v1)"
        case .tooManyFlows(let count):
            return "\(count) flows, more than the \(PasstFormat.maximumFlows) passt's flow table holds"
        case .queueTooLong(let which, let length):
            return "\(which) queue of \(length) bytes, longer than the \(PasstFormat.maximumQueueLength) passt migrates"
        case .notSentBeyondQueue(let notSent, let sendQueue):
            return "\(notSent) bytes not sent of a \(sendQueue)-byte send queue"
        case .trailingBytes(let count):
            return "\(count) bytes follow the last flow"
        }
    }
}

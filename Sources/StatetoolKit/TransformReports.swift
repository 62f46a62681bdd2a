import StateStream

/// What `repair` did. Its `Encodable` form is `repair --json`.
public struct RepairReport: Encodable, Sendable {
    /// The input as the user named it.
    public let input: String
    /// The output as the user named it.
    public let output: String
    /// Every change, in output order: findings with what each dropped.
    public let changes: [FindingRecord]
    /// Chunks written.
    public let outputChunks: Int
    /// Payload bytes written.
    public let outputPayloadBytes: UInt64
    /// Bytes written, framing included.
    public let outputBytes: UInt64
    /// Input bytes left out, in all.
    public let droppedBytes: UInt64

    /// The report of `report`, the repair of `input` into `output`.
    public init(input: String, output: String, report: StreamRepair.Report) {
        self.input = input
        self.output = output
        changes = report.changes.map { FindingRecord($0, droppedBytes: $0.droppedBytes) }
        outputChunks = report.outputChunks
        outputPayloadBytes = report.outputPayloadBytes
        outputBytes = report.outputFramedBytes
        droppedBytes = report.changes.map(\.droppedBytes).reduce(0, +)
    }
}

/// What `replay` saw: what was sent and the back-end's verdict. Its
/// `Encodable` form is `replay --json`.
public struct ReplayReport: Encodable, Sendable {
    /// The stream as the user named it.
    public let file: String
    /// Chunks sent.
    public let chunks: Int
    /// Payload bytes sent.
    public let payloadBytes: UInt64
    /// Seconds the transfer took.
    public let transferSeconds: Double
    /// Seconds CHECK_DEVICE_STATE took to answer.
    public let checkSeconds: Double
    /// CHECK_DEVICE_STATE's answer: 0 accepted.
    public let checkDeviceState: UInt64
    /// Whether the back-end accepted the state.
    public let accepted: Bool

    /// A report from its parts.
    public init(file: String, chunks: Int, payloadBytes: UInt64, transferSeconds: Double, checkSeconds: Double, checkDeviceState: UInt64) {
        self.file = file
        self.chunks = chunks
        self.payloadBytes = payloadBytes
        self.transferSeconds = transferSeconds
        self.checkSeconds = checkSeconds
        self.checkDeviceState = checkDeviceState
        accepted = checkDeviceState == 0
    }
}

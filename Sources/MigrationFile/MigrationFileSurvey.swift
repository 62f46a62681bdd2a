import StateStream

/// What a walk of a migration file found, gathered from its events: one entry
/// per section, one per back-end state, the problems, and the checks of the
/// sizes against the JSON description.
///
/// Feed it every event with ``record(_:)``, then call ``finish()``; or let
/// ``survey(_:observe:)`` do both.
public struct MigrationFileSurvey: Sendable {
    /// One section, all its records (START, PARTs, END, or one FULL) together.
    public struct Section: Sendable, Hashable {
        /// Its id and what its first record's header said.
        public let identity: SectionIdentity
        /// START or FULL: how the section began.
        public let firstType: MigrationFormat.RecordType
        /// The offset of its first record.
        public let offset: UInt64
        /// Bytes from its first record's start to its last record's end:
        /// headers and footers included, and what lies between its records
        /// (the switchover command between RAM's last PART and its END), so
        /// that ``offset`` plus this is where its last record ends.
        public fileprivate(set) var byteCount: UInt64
        /// How many records it took.
        public fileprivate(set) var recordCount: Int
        /// Whether it carries a vhost-user back-end's state.
        public fileprivate(set) var holdsBackEndState = false
        /// For a FULL section, its bytes between header and footer.
        public let bodyByteCount: UInt64
    }

    /// One embedded back-end state stream.
    public struct BackEndState: Sendable, Hashable {
        /// Where it sits in the file.
        public let location: BackEndStateLocation
        /// Data chunks read (complete or not).
        public fileprivate(set) var chunkCount = 0
        /// Payload bytes read.
        public fileprivate(set) var payloadBytes: UInt64 = 0
        /// The stream's length, terminator included; `nil` if it did not end.
        public fileprivate(set) var length: UInt64?
        /// Problems of the stream itself.
        public fileprivate(set) var problems: [StreamProblem] = []
        /// The `back-end` size the JSON description gives, when it does.
        public fileprivate(set) var describedLength: UInt64?

        /// Whether the stream ended with its terminator and no error.
        public var isComplete: Bool { length != nil && !problems.contains { $0.severity == .error } }
    }

    /// The configuration section; `nil` if the walk did not reach one.
    public private(set) var configuration: MigrationConfiguration?
    /// The sections, in the order their first records came.
    public private(set) var sections: [Section] = []
    /// The RAM blocks the RAM section lists, in its order.
    public private(set) var ramBlocks: [RAMBlock] = []
    /// The COMMAND records, in file order.
    public private(set) var commands: [MigrationCommand] = []
    /// The embedded back-end states, in file order.
    public private(set) var backEndStates: [BackEndState] = []
    /// The offset of the EOF marker; `nil` if the walk did not reach it.
    public private(set) var endOfFileOffset: UInt64?
    /// The JSON description after the EOF marker; `nil` when there is none.
    public private(set) var description: VMDescription?
    /// The offset and size of the description record.
    public private(set) var descriptionRecord: (offset: UInt64, byteCount: UInt64)?
    /// Every problem, in the order found: the walk's, then the
    /// `description-mismatch` ones ``finish()`` adds.
    public private(set) var problems: [MigrationProblem] = []
    /// How the file was read, when ``survey(_:observe:)`` walked it.
    public var reading: MigrationReading?

    /// A survey of nothing yet.
    public init() {}

    /// The first error, if any.
    public var error: MigrationProblem? { problems.first { $0.severity == .error } }

    /// Adds what `event` says.
    public mutating func record(_ event: MigrationEvent) {
        switch event {
        case .configuration(let configuration):
            self.configuration = configuration
        case .section(let record):
            if let index = sections.lastIndex(where: { $0.identity.id == record.section.id }), record.type == .sectionPart || record.type == .sectionEnd {
                sections[index].byteCount = record.offset + record.byteCount - sections[index].offset
                sections[index].recordCount += 1
            } else {
                let holds = backEndStates.contains { $0.location.sectionOffset == record.offset }
                sections.append(Section(
                    identity: record.section, firstType: record.type, offset: record.offset,
                    byteCount: record.byteCount, recordCount: 1, holdsBackEndState: holds, bodyByteCount: record.bodyByteCount))
            }
        case .backEndStateStart(let location):
            backEndStates.append(BackEndState(location: location))
        case .backEndState(let streamEvent):
            switch streamEvent {
            case .chunkStart: backEndStates[backEndStates.count - 1].chunkCount += 1
            case .payload(let bytes): backEndStates[backEndStates.count - 1].payloadBytes += UInt64(bytes.count)
            default: break
            }
        case .backEndStateEnd(_, let length):
            backEndStates[backEndStates.count - 1].length = length
        case .command(let command):
            commands.append(command)
        case .endOfFile(let offset):
            endOfFileOffset = offset
        case .description(let description, let offset, let byteCount):
            self.description = description
            descriptionRecord = (offset, byteCount)
        case .problem(let problem):
            if case .stateStream(_, let streamProblem, _) = problem, !backEndStates.isEmpty {
                backEndStates[backEndStates.count - 1].problems.append(streamProblem)
            }
            problems.append(problem)
        case .ramBlock(let block):
            ramBlocks.append(block)
        case .progress, .sectionBody, .descriptionText:
            break
        }
    }

    /// Checks what was found against the JSON description, adding a
    /// `description-mismatch` problem for each difference: the size of every
    /// device section's body, and of every vhost-user-fs back-end state.
    public mutating func finish() {
        guard let description else { return }
        for section in sections where section.firstType == .sectionFull {
            guard let device = description.device(for: section.identity) else { continue }
            let body = section.bodyByteCount
            if device.bodyByteCount != body {
                problems.append(.descriptionMismatch(
                    device: section.identity.name, what: "a section body of", described: device.bodyByteCount, actual: body))
            }
        }
        for index in backEndStates.indices {
            let state = backEndStates[index]
            guard let described = description.device(for: state.location.section)?.backEndStateByteCount else { continue }
            backEndStates[index].describedLength = described
            if let length = state.length, length != described {
                problems.append(.descriptionMismatch(
                    device: state.location.section.name, what: "a back-end state of", described: described, actual: length))
            }
        }
    }

    /// Walks `reader`'s file and returns what it found, checked against its
    /// description; `observe` sees every event after it is recorded.
    ///
    /// - Throws: `InputError` when the file cannot be read, or what `observe` throws.
    public static func survey(
        _ reader: MigrationFileReader, observe: (MigrationEvent) throws -> Void = { _ in }
    ) throws -> MigrationFileSurvey {
        var survey = MigrationFileSurvey()
        try reader.walk { event in
            survey.record(event)
            try observe(event)
        }
        survey.finish()
        survey.reading = reader.reading
        return survey
    }
}

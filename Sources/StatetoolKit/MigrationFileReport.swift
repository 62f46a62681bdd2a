import FoundationEssentials
import LibvirtSaveImage
import MigrationFile
import StateStream

/// What `migration ls` and `extract` find in a migration file or save image:
/// its sections, commands, description and back-end states. Its `Encodable`
/// form is their `--json` object.
public struct MigrationFileReport: Encodable, Sendable {
    /// The input as the user named it.
    public let file: String
    /// How the file (a save image's stream) is compressed.
    public let compression: Compression
    /// libvirt's header and XML, for a save image.
    public let saveImage: SaveImage?
    /// What the reading found.
    public let survey: MigrationFileSurvey
    /// For `extract`: where each back-end state went, by section id.
    public var outputs: [UInt32: String] = [:]
    /// For `migration ls`: what a registered back-end made of each state's
    /// payload, by the offset of its stream.
    public var payloads: [UInt64: RecognizedPayload] = [:]
    /// For `migration ls`: what QEMU's load checks find in each virtio-pci
    /// device's `virtio` field (``DeviceStates/virtioFindings(queueSize:)``).
    public var virtioFindings: [VirtioFinding]?

    /// What `migration ls` reports of `input`: walked front to back (every
    /// record listed), each back-end state's payload recognised, and each
    /// virtio-pci device's `virtio` field checked against `queueSize` (`nil`:
    /// QEMU's default 128, as warnings). `observe` sees every walk event (progress).
    ///
    /// - Throws: `InputError` when the input cannot be read, or what `observe` throws.
    public static func listing(
        file: String, input: Input, queueSize: UInt32?, observe: (MigrationEvent) throws -> Void = { _ in }
    ) throws -> MigrationFileReport {
        var recognition = BackEndStateRecognition()
        var devices = DeviceStates()
        let reader = MigrationFileReader(input: input.stream, strategy: .walk(reason: "migration ls lists every record"), keepsSectionBodies: true)
        let survey = try MigrationFileSurvey.survey(reader) { event in
            recognition.observe(event)
            devices.record(event)
            try observe(event)
        }
        devices.finish()
        var report = MigrationFileReport(file: file, input: input, survey: survey)
        report.payloads = recognition.payloads
        report.virtioFindings = devices.virtioFindings(queueSize: queueSize)
        return report
    }

    /// The report of `survey`, the reading of `input`.
    public init(file: String, input: Input, survey: MigrationFileSurvey) {
        self.file = file
        compression = input.compression
        saveImage = input.saveImage
        self.survey = survey
    }

    /// Whether the file reads cleanly, every back-end state in it is complete,
    /// and no virtio check (``virtioFindings``) is an error.
    public var valid: Bool {
        survey.error == nil && !survey.backEndStates.contains { !$0.isComplete } && !(virtioFindings ?? []).contains { $0.severity == .error }
    }

    /// Whether the file has no `QEVM` magic where a migration file begins:
    /// nothing was read that a table or a state line could show.
    public var lacksMagic: Bool {
        if case .notAMigrationFile = survey.error { return true }
        return false
    }

    /// What follows the problem of a file that is no migration file and no
    /// save image: it may be a state stream given to the wrong command.
    public var streamNote: String? {
        guard lacksMagic, saveImage == nil else { return nil }
        return "\(file): note: if it is a state stream (what extract writes), validate, inspect and the other stream commands read it"
    }

    // MARK: JSON

    private enum Key: String, CodingKey {
        case file, compression, libvirt, valid, configuration, sections, commands, backEndStates
        case endOfFileOffset, description, reading, problems, virtioFindings, ramBlocks
    }

    private struct Block: Encodable {
        let name: String
        let byteCount: UInt64
        let pageSize: UInt64
        let offset: UInt64
        let mappedRegion: Nullable<RAMBlock.MappedRegion>
    }

    private struct Section: Encodable {
        let id: UInt32
        let name: String
        let instanceID: UInt32
        let version: UInt32
        let type: String
        let offset: UInt64
        let byteCount: UInt64
        let records: Int
        let backEndState: Bool
    }

    private struct State: Encodable {
        let section: UInt32
        let device: String
        let instanceID: UInt32
        let subsection: String
        let headerOffset: UInt64
        let streamOffset: UInt64
        let streamLength: Nullable<UInt64>
        let describedLength: Nullable<UInt64>
        let chunks: Int
        let payloadBytes: UInt64
        let valid: Bool
        let problems: [FindingRecord]
        let output: Nullable<String>
        let payload: Nullable<RecognizedPayload>
    }

    private struct Description: Encodable {
        let offset: UInt64
        let byteCount: UInt64
        let devices: Int
    }

    /// Encodes the `migration ls --json` object (`extract --json`'s too).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(file, forKey: .file)
        try container.encode(compression, forKey: .compression)
        if let image = saveImage { try container.encode(SaveImageSummary(image), forKey: .libvirt) }
        try container.encode(valid, forKey: .valid)
        try container.encode(Nullable(survey.configuration), forKey: .configuration)
        try container.encode(survey.sections.map { section in
            Section(
                id: section.identity.id, name: section.identity.name, instanceID: section.identity.instanceID,
                version: section.identity.version, type: section.firstType == .sectionFull ? "full" : "iterative",
                offset: section.offset, byteCount: section.byteCount, records: section.recordCount,
                backEndState: section.holdsBackEndState)
        }, forKey: .sections)
        try container.encode(survey.commands, forKey: .commands)
        try container.encode(survey.backEndStates.map { state in
            State(
                section: state.location.section.id, device: state.location.section.name,
                instanceID: state.location.section.instanceID, subsection: state.location.subsection.name,
                headerOffset: state.location.headerOffset, streamOffset: state.location.streamOffset,
                streamLength: Nullable(state.length), describedLength: Nullable(state.describedLength),
                chunks: state.chunkCount, payloadBytes: state.payloadBytes, valid: state.isComplete,
                problems: state.problems.map { FindingRecord($0) },
                output: Nullable(outputs[state.location.section.id]),
                payload: Nullable(payloads[state.location.streamOffset]))
        }, forKey: .backEndStates)
        try container.encode(Nullable(survey.endOfFileOffset), forKey: .endOfFileOffset)
        try container.encode(Nullable(survey.descriptionRecord.map { record in
            Description(offset: record.offset, byteCount: record.byteCount, devices: survey.description?.devices.count ?? 0)
        }), forKey: .description)
        try container.encode(Nullable(survey.reading), forKey: .reading)
        try container.encode(survey.problems.map { FindingRecord($0) }, forKey: .problems)
        if let virtioFindings { try container.encode(virtioFindings.map { FindingRecord($0) }, forKey: .virtioFindings) }
        try container.encode(survey.ramBlocks.map { block in
            Block(name: block.name, byteCount: block.byteCount, pageSize: block.pageSize, offset: block.offset, mappedRegion: Nullable(block.mappedRegion))
        }, forKey: .ramBlocks)
    }
}

/// The `libvirt` object of a save image in `--json`: libvirt's header and
/// what its domain XML names (`null` where it names nothing).
public struct SaveImageSummary: Encodable, Sendable {
    /// The header's version (1 or 2).
    public let headerVersion: UInt32
    /// How the QEMU stream is compressed, in libvirt's words (`raw`, `gzip`, ...).
    public let format: String
    /// Whether the domain was running when it was saved.
    public let wasRunning: Bool
    /// The domain's name, as its XML gives it.
    public let domainName: Nullable<String>
    /// The domain's UUID, as its XML gives it.
    public let domainUUID: Nullable<String>
    /// Bytes of XML (and padding) after the header.
    public let dataLength: UInt32
    /// Where the migration cookie begins within the XML data; 0 for none.
    public let cookieOffset: UInt32
    /// The offset of the QEMU stream in the image.
    public let streamOffset: UInt64

    /// The summary of `image`'s header and XML.
    public init(_ image: SaveImage) {
        headerVersion = image.header.version
        format = image.header.format.description
        wasRunning = image.header.wasRunning != 0
        domainName = Nullable(image.domainName)
        domainUUID = Nullable(image.domainUUID)
        dataLength = image.header.dataLength
        cookieOffset = image.header.cookieOffset
        streamOffset = image.header.streamOffset
    }
}


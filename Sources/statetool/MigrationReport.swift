import FoundationEssentials
import LibvirtSaveImage
import MigrationFile
import StateStream
import StatetoolKit

/// What `migration ls` and `extract` print about a migration file, as text or JSON.
struct MigrationReport: Encodable {
    let file: String
    let compression: Compression
    /// libvirt's header and XML, for a save image.
    let saveImage: SaveImage?
    let survey: MigrationFileSurvey
    /// For `extract`: where each back-end state went, by section id.
    var outputs: [UInt32: String] = [:]
    /// For `migration ls`: what a registered back-end made of each state's
    /// payload, by the offset of its stream.
    var payloads: [UInt64: RecognizedPayload] = [:]

    init(file: String, input: Input, survey: MigrationFileSurvey) {
        self.file = file
        compression = input.compression
        saveImage = input.saveImage
        self.survey = survey
    }

    var valid: Bool { survey.error == nil && !survey.backEndStates.contains { !$0.isComplete } }

    /// Whether the file has no `QEVM` magic where a migration file begins:
    /// nothing was read that a table or a state line could show.
    var lacksMagic: Bool {
        if case .notAMigrationFile = survey.error { return true }
        return false
    }

    /// What follows the problem of a file that is no migration file and no
    /// save image: it may be a state stream given to the wrong command.
    var streamNote: String? {
        guard lacksMagic, saveImage == nil else { return nil }
        return "\(file): note: if it is a state stream (what extract writes), validate, inspect and the other stream commands read it"
    }

    // MARK: Text

    /// The header lines: what the file is (for a file without the magic, only
    /// what libvirt's header says).
    var summaryLines: String {
        var line = ""
        if let image = saveImage {
            line += "\(file): libvirt save image, version \(image.header.version), format \(image.header.format), "
            line += "was running: \(image.header.wasRunning != 0 ? "yes" : "no"), "
            line += "domain \(image.domainName ?? "(no name)") (\(image.domainUUID ?? "no uuid")), "
            line += "XML \(image.header.dataLength) bytes, QEMU stream at offset \(image.header.streamOffset)\n"
        }
        guard !lacksMagic else { return line }
        line += "\(file): QEMU migration file"
        if compression != .none { line += " (\(compression.rawValue))" }
        if let configuration = survey.configuration {
            line += ", machine \(configuration.machineType), page size \(1 << configuration.targetPageBits)"
            if !configuration.capabilities.isEmpty { line += ", capabilities \(configuration.capabilities.joined(separator: ","))" }
        }
        return line + "\n"
    }

    /// The section table.
    var sectionTable: String {
        var text = "section  type   name                                  instance  version        offset         bytes  records\n"
        for section in survey.sections {
            let identity = section.identity
            let type = section.firstType == .sectionFull ? "FULL " : "START"
            var row = TextFormat.padded(identity.id, to: 7) + "  " + type + "  " + TextFormat.padded(identity.name, to: 36)
            row += TextFormat.padded(identity.instanceID, to: 10) + TextFormat.padded(identity.version, to: 9)
            row += TextFormat.padded(section.offset, to: 14) + TextFormat.padded(section.byteCount, to: 14)
            row += TextFormat.padded(section.recordCount, to: 9)
            text += row + (section.holdsBackEndState ? "  back-end state" : "") + "\n"
        }
        return text
    }

    /// The end of the file: EOF marker, commands, description.
    var trailerLines: String {
        var text = ""
        if !survey.commands.isEmpty { text += "commands: \(survey.commands.count)\n" }
        if let offset = survey.endOfFileOffset { text += "EOF marker at offset \(offset)\n" }
        if let record = survey.descriptionRecord, let description = survey.description {
            text += "JSON description at offset \(record.offset), \(record.byteCount) bytes, \(description.devices.count) devices\n"
        }
        return text
    }

    /// One line per back-end state: where it is, what it holds, whether it is valid.
    var stateLines: String {
        guard !survey.backEndStates.isEmpty else { return "no vhost-user back-end state found\n" }
        return survey.backEndStates.map { state in
            let location = state.location
            var line = "back-end state of \(location.section.name) (section \(location.section.id), instance \(location.section.instanceID)): "
            line += "\(location.subsection.name) header at offset \(location.headerOffset), stream at offset \(location.streamOffset)"
            if let length = state.length {
                line += "..\(location.streamOffset + length), \(length) bytes"
            }
            line += ", \(state.chunkCount) \(state.chunkCount == 1 ? "chunk" : "chunks"), \(state.payloadBytes) payload bytes, "
            line += state.isComplete ? "valid" : "broken"
            if let described = state.describedLength {
                line += ", JSON description says \(described) bytes" + (described == state.length ? " (matches)" : " (differs)")
            }
            if let output = outputs[location.section.id] { line += " -> \(output)" }
            if let payload = payloads[location.streamOffset] { line += "\n  \(payload.backEnd): \(payload.headline)" }
            return line + "\n"
        }.joined()
    }

    /// Prints the problems on standard error, `file: severity: problem`, and
    /// the ``streamNote``.
    func reportProblems() {
        for problem in survey.problems {
            StandardError.write("\(file): \(problem.severity.rawValue): \(problem)")
        }
        if let streamNote { StandardError.write(streamNote) }
    }

    // MARK: JSON

    private enum Key: String, CodingKey {
        case file, compression, libvirt, valid, configuration, sections, commands, backEndStates
        case endOfFileOffset, description, reading, problems
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

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(file, forKey: .file)
        try container.encode(compression, forKey: .compression)
        if let image = saveImage { try container.encode(LibvirtJSON(image), forKey: .libvirt) }
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
    }
}

/// The `libvirt` object of a save image in `--json`: libvirt's header and
/// what its domain XML names (`null` where it names nothing).
struct LibvirtJSON: Encodable {
    let headerVersion: UInt32
    let format: String
    let wasRunning: Bool
    let domainName: Nullable<String>
    let domainUUID: Nullable<String>
    let dataLength: UInt32
    let cookieOffset: UInt32
    let streamOffset: UInt64

    init(_ image: SaveImage) {
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


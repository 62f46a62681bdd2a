import LibvirtSaveImage
import MigrationFile
import StateStream
import StatetoolKit

extension MigrationFileReport {
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

    /// The RAM blocks the RAM section lists.
    var ramBlockLines: String {
        survey.ramBlocks.map { block in
            var line = "RAM block \(block.name): \(block.byteCount) bytes (\(TextFormat.bytes(block.byteCount))), page size \(block.pageSize), listed at offset \(block.offset)"
            if let region = block.mappedRegion { line += ", mapped-ram pages at offset \(region.pagesOffset)" }
            return line + "\n"
        }.joined()
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
        for finding in virtioFindings ?? [] {
            StandardError.write("\(file): \(finding.severity.rawValue): \(finding)")
        }
        if let streamNote { StandardError.write(streamNote) }
    }
}

import StateStream

/// Device sections: to their footer, or by the sizes the JSON description gives, and the back-end states inside them.
extension Walk {
    /// Reads a section body up to and including its footer, parsing any
    /// back-end state subsection on the way.
    mutating func scanToFooter(of section: SectionIdentity, sectionOffset: UInt64) throws {
        let stateSubsection = BackEndStateSubsection.all.first { $0.sectionVMSDName == section.vmsdName }
        let subsectionHeader = stateSubsection?.header ?? []
        let footer = MigrationFormat.RecordType.sectionFooter.rawValue
        let marker = MigrationFormat.RecordType.subsection.rawValue
        while true {
            let complete = try cursor.fill(atLeast: Self.lookahead)
            guard cursor.available > 0 else {
                try stop(.truncated(at: cursor.offset, inside: "section \(section.id) (\(section.name)), before its footer"))
            }
            // Candidates are checked only with the lookahead in the buffer (or at the end of the file).
            let searchable = complete ? cursor.available - Self.lookahead + 1 : cursor.available
            let candidate = cursor.availableBytes.prefix(searchable).firstIndex {
                $0 == footer || ($0 == marker && stateSubsection != nil)
            }
            guard let index = candidate else {
                cursor.advance(searchable)
                continue
            }
            cursor.advance(index)
            if cursor.byte(at: 0) == footer {
                if isFooter(of: section) {
                    cursor.advance(MigrationFormat.footerSize)
                    return
                }
            } else if let stateSubsection, cursor.available >= subsectionHeader.count,
                cursor.bytes(at: 0, count: subsectionHeader.count) == subsectionHeader
            {
                try readBackEndState(stateSubsection, of: section, sectionOffset: sectionOffset)
                if stateSubsection.endsSection {
                    try readFooter(of: section, optional: false)
                    return
                }
                continue
            }
            cursor.advance(1)
        }
    }

    /// Reads a section body in a file without footers by the sizes the JSON
    /// description gives: a vhost-user-fs section's `virtio` field, then its
    /// back-end state, parsed; any other body skipped whole.
    mutating func skipDescribedBody(of section: SectionIdentity, as device: VMDescription.Device, sectionOffset: UInt64) throws {
        let inside = "section \(section.id) (\(section.name)), sized by the JSON description"
        let subsection = BackEndStateSubsection.vhostUserFS
        guard section.vmsdName == subsection.sectionVMSDName, device.fields.count == 1, device.backEndStateByteCount != nil else {
            try skip(device.bodyByteCount, inside: inside)
            return
        }
        let virtio = device.fields[0].byteCount
        try skip(virtio, inside: inside)
        let headerOffset = cursor.offset
        try require(subsection.header.count, inside: inside)
        guard cursor.bytes(at: 0, count: subsection.header.count) == subsection.header else {
            try stop(.malformed("no \(subsection.name) subsection header where the JSON description puts it", at: headerOffset))
        }
        let length = try readBackEndState(subsection, of: section, sectionOffset: sectionOffset)
        let used = virtio + UInt64(subsection.header.count) + length
        guard used <= device.bodyByteCount else {
            try stop(.malformed("the back-end state runs past the section's described end", at: cursor.offset))
        }
        try skip(device.bodyByteCount - used, inside: inside)
    }

    /// Whether the available bytes start with the footer of `section` followed
    /// by the start of a valid record (or the end of the file).
    func isFooter(of section: SectionIdentity) -> Bool {
        let available = cursor.available
        guard available >= MigrationFormat.footerSize, cursor.bigEndian(UInt32.self, at: 1) == section.id else { return false }
        let next = MigrationFormat.footerSize
        guard available > next else { return true }
        switch MigrationFormat.RecordType(rawValue: cursor.byte(at: next)) {
        case .endOfFile:
            return available == next + 1 || cursor.byte(at: next + 1) == MigrationFormat.RecordType.description.rawValue
        case .sectionStart, .sectionFull:
            guard available >= next + 6 else { return false }
            let length = Int(cursor.byte(at: next + 5))
            guard length > 0, available >= next + 6 + length + 8 else { return false }
            return cursor.bytes(at: next + 6, count: length).allSatisfy { (0x21...0x7E).contains($0) }
        case .sectionPart, .sectionEnd:
            return available >= next + 5 && sections[cursor.bigEndian(UInt32.self, at: next + 1)] != nil
        case .command:
            return available >= next + 5 && cursor.bigEndian(UInt16.self, at: next + 1) < 0x100
        default:
            return false
        }
    }

    /// Reads an embedded state stream through the state-stream reader, passing
    /// its events on, and leaves the cursor right after its terminator.
    ///
    /// - Returns: The stream's length, terminator included.
    @discardableResult
    func readBackEndState(_ subsection: BackEndStateSubsection, of section: SectionIdentity, sectionOffset: UInt64) throws -> UInt64 {
        let headerOffset = cursor.offset
        cursor.advance(subsection.header.count)
        // A kept section body leaves out a stream that is a field of its own
        // (vhost-user-fs); one inside the `virtio` field (virtio-net) is kept
        // with the field.
        if subsection.endsSection { cursor.recorder?.paused = true }
        defer { if subsection.endsSection { cursor.recorder?.resume(at: cursor.offset) } }
        let location = BackEndStateLocation(
            section: section, sectionOffset: sectionOffset, subsection: subsection,
            headerOffset: headerOffset, streamOffset: cursor.offset)
        try handle(.backEndStateStart(location))
        var reader = StateStreamReader(source: cursor, maximumChunkLength: maximumChunkLength)
        while let event = try reader.next() {
            switch event {
            case .terminator(let offset):
                cursor.unread(reader.unconsumedBytes)
                let length = offset + UInt64(StateStreamFormat.lengthFieldSize)
                try handle(.backEndState(event))
                try handle(.backEndStateEnd(location, length: length))
                return length
            case .problem(let problem) where problem.severity == .error:
                try stop(.stateStream(device: section.name, problem, streamOffset: location.streamOffset))
            case .problem(let problem):
                try handle(.problem(.stateStream(device: section.name, problem, streamOffset: location.streamOffset)))
            default:
                try handle(.backEndState(event))
            }
        }
        // The reader ends a stream with its terminator or an error, both handled above.
        try stop(.malformed("the back-end state ended without a terminator or a problem", at: cursor.offset))
    }
}

import StateStream

/// Walks a QEMU migration file front to back and reports its sections, the
/// vhost-user back-end state streams inside it, and every problem with its offset.
///
/// The file may be raw or zstd-compressed and may be a pipe: nothing seeks.
/// Memory stays bounded whatever the file holds: one 1 MiB buffer for the file,
/// one for the embedded state stream, and the JSON description (at most
/// ``maximumDescriptionLength`` bytes).
///
/// How each part is delimited:
/// - the RAM section is parsed record by record (guest pages may hold any bytes);
/// - a device section (FULL) ends at its footer, `0x7e` and its section id,
///   followed by a valid next record; back-end state subsections inside it are
///   parsed by the state-stream reader, so their payload is never searched;
/// - in a file without section footers (machine types before 2.4), a device
///   section is skipped by the sizes in the JSON description, which is read
///   ahead from the end of a regular uncompressed file; without one, the walk
///   stops there with an `unsupported` problem;
/// - the sizes in the JSON description at the end are then checked against what
///   was found (see ``MigrationFileSurvey``).
///
/// ```swift
/// let reader = MigrationFileReader(input: try StateStreamInput(path: "vm.mig"))
/// try reader.walk { event in
///     if case .backEndStateStart(let location) = event { print(location.streamOffset) }
/// }
/// ```
public struct MigrationFileReader {
    /// The largest JSON description read; QEMU's are tens of KiB.
    public static let maximumDescriptionLength = 64 << 20
    private let input: StateStreamInput
    private let maximumChunkLength: UInt32

    /// Reads `input`, the migration file raw or zstd-compressed; embedded chunks
    /// longer than `maximumChunkLength` draw an `oversized-chunk` warning.
    public init(input: StateStreamInput, maximumChunkLength: UInt32 = StateStreamFormat.qemuMaximumChunkLength) {
        self.input = input
        self.maximumChunkLength = maximumChunkLength
    }

    /// The JSON description read ahead from the end of a regular, uncompressed
    /// file (the sizes that delimit sections in a file without footers); `nil`
    /// for a pipe, a compressed file, or a file without one. The walk reads it
    /// only when it meets such a section.
    public var describedAhead: VMDescription? {
        guard input.compression == .none, let file = input.regularFile, let size = input.regularFileSize else { return nil }
        return VMDescription.readTrailer(of: file, size: size)
    }

    /// Walks the file, calling `handle` with each event in file order.
    ///
    /// - Throws: ``InputError`` when the file cannot be read, or what `handle` throws.
    public func walk(_ handle: (MigrationEvent) throws -> Void) throws {
        try withoutActuallyEscaping(handle) { handle in
            var walk = Walk(
                cursor: MigrationCursor(source: input.framedSource), maximumChunkLength: maximumChunkLength,
                readDescriptionAhead: { describedAhead }, handle: handle)
            do {
                try walk.run()
            } catch InputError.compression(let failure) {
                try handle(.problem(.compressionError(failure)))
            }
        }
    }
}

/// The state of one walk. Each parsing function returns normally when its part
/// was read, and throws ``Stop`` after reporting the problem that ends the walk.
private struct Walk {
    struct Stop: Error {}

    /// How far past a candidate footer the next record is checked.
    static let lookahead = MigrationFormat.footerSize + 1 + 4 + 1 + 255 + 8

    let cursor: MigrationCursor
    let maximumChunkLength: UInt32
    /// Reads the JSON description ahead, once, if a section needs its sizes.
    let readDescriptionAhead: () -> VMDescription?
    lazy var describedAhead: VMDescription? = readDescriptionAhead()
    let handle: (MigrationEvent) throws -> Void
    var targetPageBits = MigrationFormat.defaultTargetPageBits
    var capabilities: Set<String> = []
    /// Sections opened by START or FULL, by id.
    var sections: [UInt32: SectionIdentity] = [:]
    /// Whether sections end with a footer; learnt from the first section.
    var footersPresent: Bool?
    /// The offset at which the next progress event is due.
    var nextProgressOffset: UInt64 = Walk.progressInterval
    static let progressInterval: UInt64 = 16 << 20

    init(
        cursor: MigrationCursor, maximumChunkLength: UInt32, readDescriptionAhead: @escaping () -> VMDescription?,
        handle: @escaping (MigrationEvent) throws -> Void
    ) {
        self.cursor = cursor
        self.maximumChunkLength = maximumChunkLength
        self.readDescriptionAhead = readDescriptionAhead
        self.handle = handle
    }

    mutating func run() throws {
        do {
            try readHeader()
            while try readRecord() {}
        } catch is Stop {}
    }

    // MARK: - Problems

    func stop(_ problem: MigrationProblem) throws -> Never {
        try handle(.problem(problem))
        throw Stop()
    }

    /// Makes `count` bytes available or stops with `truncated` inside `what`.
    func require(_ count: Int, inside what: @autoclosure () -> String) throws {
        guard try cursor.fill(atLeast: count) else {
            try stop(.truncated(at: cursor.offset + UInt64(cursor.available), inside: what()))
        }
    }

    func skip(_ count: UInt64, inside what: @autoclosure () -> String) throws {
        let skipped = try cursor.skip(count)
        guard skipped == count else { try stop(.truncated(at: cursor.offset, inside: what())) }
    }

    // MARK: - Header and top-level records

    func readHeader() throws {
        try cursor.fill(atLeast: MigrationFormat.headerSize)
        guard cursor.available >= 4, cursor.bigEndian(UInt32.self, at: 0) == MigrationFormat.magic else {
            try stop(.notAMigrationFile)
        }
        try require(MigrationFormat.headerSize, inside: "the file header")
        let version = cursor.bigEndian(UInt32.self, at: 4)
        guard version == MigrationFormat.version else { try stop(.unsupportedVersion(version)) }
        cursor.advance(MigrationFormat.headerSize)
    }

    mutating func reportProgress() throws {
        guard cursor.offset >= nextProgressOffset else { return }
        nextProgressOffset = cursor.offset + Walk.progressInterval
        try handle(.progress(bytesRead: cursor.offset))
    }

    /// Reads one record; returns false after the last one.
    mutating func readRecord() throws -> Bool {
        let offset = cursor.offset
        try reportProgress()
        try require(1, inside: "the section list, before the EOF marker")
        guard let type = MigrationFormat.RecordType(rawValue: cursor.byte(at: 0)) else {
            try stop(.unknownRecordType(cursor.byte(at: 0), at: offset))
        }
        switch type {
        case .configuration:
            try readConfiguration()
        case .sectionStart, .sectionFull:
            let section = try readSectionHeader()
            try readSectionBody(type: type, section: section, offset: offset)
        case .sectionPart, .sectionEnd:
            try require(5, inside: "a section header")
            let id = cursor.bigEndian(UInt32.self, at: 1)
            guard let section = sections[id] else { try stop(.unknownSectionID(id, at: offset)) }
            cursor.advance(5)
            try readSectionBody(type: type, section: section, offset: offset)
        case .command:
            try require(5, inside: "a command record")
            let command = MigrationCommand(
                command: cursor.bigEndian(UInt16.self, at: 1), offset: offset, dataLength: cursor.bigEndian(UInt16.self, at: 3))
            cursor.advance(5)
            try skip(UInt64(command.dataLength), inside: "the data of command \(command.command)")
            try handle(.command(command))
        case .endOfFile:
            cursor.advance(1)
            try handle(.endOfFile(offset: offset))
            try readDescription()
            return false
        case .subsection, .description, .sectionFooter:
            try stop(.unknownRecordType(type.rawValue, at: offset))
        }
        return true
    }

    /// `0x07`, be32 length, machine type, then the optional `configuration/…` subsections.
    mutating func readConfiguration() throws {
        let offset = cursor.offset
        try require(5, inside: "the configuration section")
        let length = Int(cursor.bigEndian(UInt32.self, at: 1))
        guard length <= 256 else { try stop(.malformed("machine type of \(length) bytes in the configuration", at: offset + 1)) }
        try require(5 + length, inside: "the configuration section")
        let machineType = String(decoding: cursor.bytes(at: 5, count: length), as: UTF8.self)
        cursor.advance(5 + length)
        while try cursor.fill(atLeast: 1), cursor.byte(at: 0) == MigrationFormat.RecordType.subsection.rawValue {
            try readConfigurationSubsection()
        }
        try handle(.configuration(MigrationConfiguration(
            machineType: machineType, targetPageBits: targetPageBits, capabilities: capabilities.sorted(), offset: offset)))
    }

    mutating func readConfigurationSubsection() throws {
        let offset = cursor.offset
        try require(2, inside: "a configuration subsection")
        let nameLength = Int(cursor.byte(at: 1))
        try require(2 + nameLength + 4, inside: "a configuration subsection")
        let name = String(decoding: cursor.bytes(at: 2, count: nameLength), as: UTF8.self)
        cursor.advance(2 + nameLength + 4)
        switch name {
        case MigrationFormat.ConfigurationSubsection.targetPageBits:
            try require(4, inside: name)
            targetPageBits = cursor.bigEndian(UInt32.self, at: 0)
            guard (9...20).contains(targetPageBits) else {
                try stop(.malformed("target page bits \(targetPageBits)", at: cursor.offset))
            }
            cursor.advance(4)
        case MigrationFormat.ConfigurationSubsection.capabilities:
            try require(4, inside: name)
            let count = cursor.bigEndian(UInt32.self, at: 0)
            cursor.advance(4)
            for _ in 0..<count {
                try require(1, inside: name)
                let length = Int(cursor.byte(at: 0))
                try require(1 + length, inside: name)
                capabilities.insert(String(decoding: cursor.bytes(at: 1, count: length), as: UTF8.self))
                cursor.advance(1 + length)
            }
        case MigrationFormat.ConfigurationSubsection.uuid:
            try skip(16, inside: name)
        default:
            try stop(.unsupported("configuration subsection \(name)", at: offset))
        }
    }

    /// The rest of a START or FULL header: be32 id, idstr, be32 instance, be32 version.
    mutating func readSectionHeader() throws -> SectionIdentity {
        try require(6, inside: "a section header")
        let nameLength = Int(cursor.byte(at: 5))
        try require(6 + nameLength + 8, inside: "a section header")
        let section = SectionIdentity(
            id: cursor.bigEndian(UInt32.self, at: 1),
            name: String(decoding: cursor.bytes(at: 6, count: nameLength), as: UTF8.self),
            instanceID: cursor.bigEndian(UInt32.self, at: 6 + nameLength),
            version: cursor.bigEndian(UInt32.self, at: 10 + nameLength))
        cursor.advance(6 + nameLength + 8)
        sections[section.id] = section
        return section
    }

    /// Reads the body and footer of the section record at `offset`, whose header was just read.
    mutating func readSectionBody(type: MigrationFormat.RecordType, section: SectionIdentity, offset: UInt64) throws {
        let headerByteCount = cursor.offset - offset
        if section.name == MigrationFormat.ramSectionName {
            try readRAM(section: section)
            try readFooter(of: section, optional: true)
        } else if footersPresent != false {
            try scanToFooter(of: section, sectionOffset: offset)
            footersPresent = true
        } else if type == .sectionFull, let device = describedAhead?.device(for: section) {
            try skipDescribedBody(of: section, as: device, sectionOffset: offset)
        } else {
            try stop(.unsupported(
                "section \(section.id) (\(section.name)) cannot be delimited: the file has no section footers, and no JSON description describes it", at: offset))
        }
        try handle(.section(SectionRecord(
            type: type, section: section, offset: offset, byteCount: cursor.offset - offset,
            headerByteCount: headerByteCount, hasFooter: footersPresent == true)))
    }

    /// Reads the footer of `section`. Where footers may be absent (before the
    /// first one was seen), a missing one tells the file has none.
    mutating func readFooter(of section: SectionIdentity, optional: Bool) throws {
        let offset = cursor.offset
        try cursor.fill(atLeast: MigrationFormat.footerSize)
        let present = cursor.available >= 1 && cursor.byte(at: 0) == MigrationFormat.RecordType.sectionFooter.rawValue
        if optional && footersPresent == nil && !present {
            footersPresent = false
            return
        }
        if footersPresent == false && !present { return }
        try require(MigrationFormat.footerSize, inside: "the footer of section \(section.id)")
        guard present, cursor.bigEndian(UInt32.self, at: 1) == section.id else {
            try stop(.badFooter(sectionID: section.id, at: offset))
        }
        footersPresent = true
        cursor.advance(MigrationFormat.footerSize)
    }

    // MARK: - RAM

    /// Reads RAM records up to and including the end-of-section flag.
    mutating func readRAM(section: SectionIdentity) throws {
        let pageSize = UInt64(1) << targetPageBits
        let where_ = "RAM section \(section.id)"
        while true {
            let offset = cursor.offset
            try reportProgress()
            try require(8, inside: where_)
            let word = cursor.bigEndian(UInt64.self, at: 0)
            cursor.advance(8)
            var flags = MigrationFormat.RAMFlags(rawValue: word & (pageSize - 1))
            if !flags.isDisjoint(with: [.zero, .page, .xbzrle]) && !flags.contains(.continue) {
                try require(1, inside: where_)
                let length = Int(cursor.byte(at: 0))
                try require(1 + length, inside: where_)
                cursor.advance(1 + length)
            }
            flags.remove(.continue)
            switch flags {
            case .memorySize:
                try readRAMBlockList(totalBytes: word & ~(pageSize - 1), at: offset, inside: where_)
            case .zero:
                try skip(1, inside: where_)
            case .page:
                try skip(pageSize, inside: where_)
            case .xbzrle:
                try require(3, inside: where_)
                let length = UInt64(cursor.bigEndian(UInt16.self, at: 1))
                cursor.advance(3)
                try skip(length, inside: where_)
            case .multifdFlush:
                continue
            case .endOfSection:
                return
            default:
                if flags.contains(.hook) { try stop(.unsupported("RAM record with the RDMA hook flag", at: offset)) }
                if flags.contains(.compressedPage) { try stop(.unsupported("compressed RAM page (QEMU's removed compress capability)", at: offset)) }
                try stop(.malformed("RAM record with flags 0x\(String(flags.rawValue, radix: 16))", at: offset))
            }
        }
    }

    /// The RAM block list after a MEM_SIZE word: per block, u8 name length,
    /// name, be64 length, and a be64 address with `x-ignore-shared`.
    func readRAMBlockList(totalBytes: UInt64, at offset: UInt64, inside where_: String) throws {
        guard !capabilities.contains("mapped-ram") else {
            try stop(.unsupported("RAM written with the mapped-ram capability (pages at fixed file offsets)", at: offset))
        }
        var remaining = totalBytes
        while remaining > 0 {
            let blockOffset = cursor.offset
            try require(1, inside: where_)
            let length = Int(cursor.byte(at: 0))
            try require(1 + length + 8, inside: where_)
            let blockLength = cursor.bigEndian(UInt64.self, at: 1 + length)
            guard blockLength <= remaining else {
                try stop(.malformed("RAM block of \(blockLength) bytes, more than the \(remaining) left of the declared total", at: blockOffset))
            }
            remaining -= blockLength
            cursor.advance(1 + length + 8)
            if capabilities.contains("x-ignore-shared") { try skip(8, inside: where_) }
        }
    }

    // MARK: - Device sections

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

    // MARK: - Trailer

    /// After the EOF marker: nothing, or `0x06`, be32 length and the JSON description.
    func readDescription() throws {
        let offset = cursor.offset
        guard try !cursor.atEnd() else {
            try handle(.problem(.noDescription(at: offset)))
            return
        }
        guard cursor.byte(at: 0) == MigrationFormat.RecordType.description.rawValue else {
            try stop(.trailingData(at: offset, byteCount: try cursor.skip(.max)))
        }
        try require(5, inside: "the JSON description's header")
        let length = Int(cursor.bigEndian(UInt32.self, at: 1))
        cursor.advance(5)
        guard length <= MigrationFileReader.maximumDescriptionLength else {
            try stop(.badDescription("a JSON description of \(length) bytes, more than statetool reads", at: offset))
        }
        var json: [UInt8] = []
        while json.count < length {
            try require(1, inside: "the JSON description")
            let count = min(cursor.available, length - json.count)
            json += cursor.availableBytes.prefix(count)
            cursor.advance(count)
        }
        let description: VMDescription
        do {
            description = try VMDescription.decode(json)
        } catch {
            try stop(.badDescription("the JSON description does not decode: \(error)", at: offset + 5))
        }
        try handle(.description(description, offset: offset, byteCount: UInt64(5 + length)))
        let trailing = cursor.offset
        let extra = try cursor.skip(.max)
        if extra > 0 { try stop(.trailingData(at: trailing, byteCount: extra)) }
    }
}

import StateStream

/// Walks a QEMU migration file front to back and reports its sections, the
/// vhost-user back-end state streams inside it, and every problem with its offset.
///
/// The file may be raw or compressed and may be a pipe. A regular,
/// uncompressed file is read from its end where that checks out: its device
/// sections are placed from the JSON description (``TailPlacement``), and the
/// walk reads the header and configuration, then goes on at the first placed
/// section, so the RAM before it is never read; anything that does not check
/// out means a walk of every byte (``reading`` says which path was taken).
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
    private let strategy: ReadingStrategy
    private let keepsSectionBodies: Bool
    private let ramPages: (any RAMPageHandler)?
    private let lastReading = ReadingRecord()

    /// Reads `input`, the migration file raw or compressed; embedded chunks
    /// longer than `maximumChunkLength` draw an `oversized-chunk` warning.
    /// With ``ReadingStrategy/placeFromEnd`` (the default) a regular,
    /// uncompressed file is read from its end where that checks out.
    /// With `keepsSectionBodies` the walk also sends each device section's
    /// body (``MigrationEvent/sectionBody(_:)``, at most
    /// ``SectionBody/maximumKeptByteCount`` bytes of each) and the JSON
    /// description's text (``MigrationEvent/descriptionText(_:offset:)``).
    /// With `ramPages` every RAM page record is handed to it as the walk
    /// reads it (the file is then walked front to back, whatever `strategy`
    /// says: the pages are what is wanted).
    public init(
        input: StateStreamInput, maximumChunkLength: UInt32 = StateStreamFormat.qemuMaximumChunkLength,
        strategy: ReadingStrategy = .placeFromEnd, keepsSectionBodies: Bool = false, ramPages: (any RAMPageHandler)? = nil
    ) {
        self.ramPages = ramPages
        self.input = input
        self.maximumChunkLength = maximumChunkLength
        self.strategy = strategy
        self.keepsSectionBodies = keepsSectionBodies
    }

    /// How the last walk read the file (also after a walk that `handle` ended
    /// by throwing); `nil` before the first walk.
    public var reading: MigrationReading? { lastReading.value }

    /// The JSON description read ahead from the end of a regular, uncompressed
    /// file (the sizes that delimit sections in a file without footers); `nil`
    /// for a pipe, a compressed file, or a file without one. The walk reads it
    /// only when it meets such a section.
    ///
    /// - Throws: `InputError.readFailed` when the file's tail cannot be read.
    public var describedAhead: VMDescription? {
        get throws(InputError) {
            guard input.compression == .none, let file = input.regularFile, let size = input.regularFileSize else { return nil }
            return try VMDescription.readTrailer(of: file, size: size)
        }
    }

    /// Walks the file, calling `handle` with each event in file order: every
    /// record, or, where the device sections were placed from the end, the
    /// header, the configuration and the records from the first placed
    /// section on (see ``TailPlacement``; ``reading`` says which).
    ///
    /// - Throws: `InputError` when the file cannot be read, or what `handle` throws.
    public func walk(_ handle: (MigrationEvent) throws -> Void) throws {
        var placementBytes: UInt64 = 0
        let placement = place(bytesRead: &placementBytes)
        let counted = CountingSource(input.framedSource)
        let cursor = MigrationCursor(source: counted, startingAt: input.baseOffset)
        var resumed = false
        defer {
            let bytesRead = (input.compressedBytesRead ?? counted.bytesRead) + placementBytes
            lastReading.value = Self.reading(placement, resumed: resumed, bytesRead: bytesRead)
        }
        try withoutActuallyEscaping(handle) { handle in
            var walk = Walk(
                cursor: cursor, maximumChunkLength: maximumChunkLength,
                readDescriptionAhead: { () throws(InputError) in try describedAhead }, handle: handle)
            walk.placement = try? placement.get()
            walk.keepsSectionBodies = keepsSectionBodies
            walk.ramPages = ramPages
            defer { resumed = walk.resumed }
            do {
                try walk.run()
            } catch InputError.compression(let failure) {
                try handle(.problem(.compressionError(failure)))
            }
        }
    }

    /// What a walk with `placement` that `resumed` there (or not) read.
    private static func reading(_ placement: Result<TailPlacement, TailPlacement.Failure>, resumed: Bool, bytesRead: UInt64) -> MigrationReading {
        switch placement {
        case .success(let placement) where resumed:
            return MigrationReading(
                path: .tail, reason: nil, placedSections: placement.sections.count, resumedAt: placement.resumeOffset, bytesRead: bytesRead)
        case .success:
            return MigrationReading(
                path: .walk, reason: "the placed sections overlap the file's configuration", placedSections: 0, resumedAt: nil, bytesRead: bytesRead)
        case .failure(let failure):
            return MigrationReading(path: .walk, reason: failure.description, placedSections: 0, resumedAt: nil, bytesRead: bytesRead)
        }
    }

    /// The device sections placed from the end, or why they are not.
    private func place(bytesRead: inout UInt64) -> Result<TailPlacement, TailPlacement.Failure> {
        if case .walk(let reason) = strategy { return .failure(TailPlacement.Failure(reason)) }
        if ramPages != nil { return .failure(TailPlacement.Failure("the RAM pages are read")) }
        guard input.compression == .none else {
            return .failure(TailPlacement.Failure("\(input.compression.rawValue)-compressed input is read front to back"))
        }
        guard let file = input.regularFile, let size = input.regularFileSize else {
            return .failure(TailPlacement.Failure("the input is no regular file"))
        }
        do {
            return .success(try TailPlacement.place(
                in: file, size: size, streamStart: input.baseOffset, allDevices: keepsSectionBodies, bytesRead: &bytesRead))
        } catch {
            return .failure(error)
        }
    }
}

/// What the last walk of a reader read (a reader is a value; its walks share this).
private final class ReadingRecord {
    var value: MigrationReading?
}

/// The state of one walk. Each parsing function returns normally when its part
/// was read, and throws ``Stop`` after reporting the problem that ends the walk.
///
/// The parts of the file are read in their own files: `MigrationFileReader+RAM`,
/// `+DeviceSections`, `+Trailer`.
struct Walk {
    struct Stop: Error {}

    /// How much a fill reads of the file's head before the walk passes over
    /// to the placed sections: the header and configuration take a few
    /// hundred bytes.
    static let headReadSize = 4096

    /// How far past a candidate footer the next record is checked.
    static let lookahead = MigrationFormat.footerSize + 1 + 4 + 1 + 255 + 8

    let cursor: MigrationCursor
    let maximumChunkLength: UInt32
    /// Reads the JSON description ahead, once, if a section needs its sizes.
    let readDescriptionAhead: () throws(InputError) -> VMDescription?
    /// What ``readDescriptionAhead`` gave, once it was asked.
    private var describedAheadOnce: VMDescription??

    /// The JSON description read ahead from the end of the file, read on first use.
    mutating func describedAhead() throws(InputError) -> VMDescription? {
        if let once = describedAheadOnce { return once }
        let description = try readDescriptionAhead()
        describedAheadOnce = .some(description)
        return description
    }
    let handle: (MigrationEvent) throws -> Void
    var targetPageBits = MigrationFormat.defaultTargetPageBits
    var capabilities: Set<String> = []
    /// Sections opened by START or FULL, by id.
    var sections: [UInt32: SectionIdentity] = [:]
    /// Whether sections end with a footer; learnt from the first section.
    var footersPresent: Bool?
    /// The device sections placed from the end: after the configuration the
    /// walk passes over everything before the first, and the description they
    /// were placed from is not decoded again.
    var placement: TailPlacement?
    /// Whether it did.
    var resumed = false
    /// Whether device section bodies and the description's text are sent as events.
    var keepsSectionBodies = false
    /// Bytes of section bodies kept so far.
    var keptBytes = 0
    /// What RAM pages are handed to, if anything.
    var ramPages: (any RAMPageHandler)?
    /// The RAM block the last page record named.
    var currentBlock = ""
    /// The offset at which the next progress event is due.
    var nextProgressOffset: UInt64 = Walk.progressInterval
    static let progressInterval: UInt64 = 16 << 20

    init(
        cursor: MigrationCursor, maximumChunkLength: UInt32, readDescriptionAhead: @escaping () throws(InputError) -> VMDescription?,
        handle: @escaping (MigrationEvent) throws -> Void
    ) {
        self.cursor = cursor
        self.maximumChunkLength = maximumChunkLength
        self.readDescriptionAhead = readDescriptionAhead
        self.handle = handle
    }

    mutating func run() throws {
        do {
            if placement != nil { cursor.readSize = Self.headReadSize }
            try readHeader()
            if let placement { try resume(at: placement.resumeOffset) }
            while try readRecord() {}
        } catch is Stop {}
    }

    /// Reads the configuration, if the file starts with one, and passes over
    /// everything up to `offset`, where the placed device sections start;
    /// sections placed there end with footers.
    mutating func resume(at offset: UInt64) throws {
        defer { cursor.readSize = nil }
        if try cursor.fill(atLeast: 1), cursor.byte(at: 0) == MigrationFormat.RecordType.configuration.rawValue {
            try readConfiguration()
        }
        guard offset >= cursor.offset else { return }
        try skip(offset - cursor.offset, inside: "the file, before the device sections placed from its end")
        footersPresent = true
        resumed = true
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
        if cursor.recorder != nil {
            // A kept section is read, not skipped, so its bytes are kept.
            var remaining = count
            while remaining > 0 {
                guard try cursor.fill(atLeast: 1) else { try stop(.truncated(at: cursor.offset, inside: what())) }
                let step = Int(min(UInt64(cursor.available), remaining))
                cursor.advance(step)
                remaining -= UInt64(step)
            }
            return
        }
        let skipped = try cursor.skip(count)
        guard skipped == count else { try stop(.truncated(at: cursor.offset, inside: what())) }
    }

    // MARK: - Header and top-level records

    func readHeader() throws {
        try cursor.fill(atLeast: MigrationFormat.headerSize)
        guard cursor.available >= 4, cursor.bigEndian(UInt32.self, at: 0) == MigrationFormat.magic else {
            try stop(.notAMigrationFile(at: cursor.offset))
        }
        try require(MigrationFormat.headerSize, inside: "the file header")
        let version = cursor.bigEndian(UInt32.self, at: 4)
        guard version == MigrationFormat.version else { try stop(.unsupportedVersion(version, at: cursor.offset + 4)) }
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
        } else {
            let recorder = keepsSectionBodies && type == .sectionFull
                ? SectionRecorder(startOffset: cursor.offset, limit: SectionBody.maximumKeptByteCountPerWalk - keptBytes) : nil
            defer { keptBytes += recorder?.bytes.count ?? 0 }
            cursor.recorder = recorder
            defer { cursor.recorder = nil }
            do {
                try readDeviceSectionBody(type: type, section: section, offset: offset)
            } catch let stopped as Stop {
                cursor.recorder = nil
                if let recorder {
                    try handle(.sectionBody(recorder.body(of: section, sectionOffset: offset, endingAt: cursor.offset + UInt64(cursor.available), complete: false)))
                }
                throw stopped
            }
            cursor.recorder = nil
            if let recorder {
                let end = cursor.offset - (footersPresent == true ? UInt64(MigrationFormat.footerSize) : 0)
                try handle(.sectionBody(recorder.body(of: section, sectionOffset: offset, endingAt: end, complete: true)))
            }
        }
        try handle(.section(SectionRecord(
            type: type, section: section, offset: offset, byteCount: cursor.offset - offset,
            headerByteCount: headerByteCount, hasFooter: footersPresent == true)))
    }

    /// Reads the body and footer of a section other than RAM: to its footer,
    /// or by the sizes in the JSON description in a file without footers.
    mutating func readDeviceSectionBody(type: MigrationFormat.RecordType, section: SectionIdentity, offset: UInt64) throws {
        if footersPresent != false {
            try scanToFooter(of: section, sectionOffset: offset)
            footersPresent = true
        } else if type == .sectionFull, let device = try describedAhead()?.device(for: section) {
            try skipDescribedBody(of: section, as: device, sectionOffset: offset)
        } else {
            try stop(.unsupported(
                "section \(section.id) (\(section.name)) cannot be delimited: the file has no section footers, and no JSON description describes it", at: offset))
        }
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
}

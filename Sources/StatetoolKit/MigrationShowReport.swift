import FoundationEssentials
import LibvirtSaveImage
import MigrationFile
import StateStream

/// What `migration show` finds in a migration file or save image: every
/// device section's fields decoded through the JSON description, each with
/// its offset, and the `virtio` field of each virtio-pci device with what
/// QEMU's load would refuse. Its `Encodable` form is the `--json` object.
public struct MigrationShowReport: Encodable, Sendable {
    /// The input as the user named it.
    public let file: String
    /// How the file (a save image's stream) is compressed.
    public let compression: Compression
    /// libvirt's header and XML, for a save image.
    public let saveImage: SaveImage?
    /// What the walk found: sections, problems, how it read the file.
    public let survey: MigrationFileSurvey
    /// The decoded device sections, in file order.
    public let devices: [DecodedSection]
    /// The virtio state of each virtio-pci device, by section id.
    public let virtio: [UInt32: VirtioDeviceState]
    /// Why a device's `virtio` field did not decode, by section id.
    public let virtioFailures: [UInt32: VirtioFinding]
    /// The destination's virtqueue size the findings check against; `nil`: QEMU's default, as warnings.
    public let queueSize: UInt32?
    /// Each virtqueue's used index read from the guest's RAM in the file, by
    /// section id and queue index (``UsedRingIndexes``); empty unless asked for.
    public let usedIndexes: [UInt32: [Int: UInt16]]

    /// Reads `input` and decodes its device sections (only `device`'s, an
    /// idstr or section id, when given), checking virtqueues against
    /// `queueSize`. With `readsUsedRings`, each virtqueue's used index is
    /// read from the guest's RAM pages in a second pass (``UsedRingIndexes``)
    /// and `last_avail_idx` checked against it. `observe` sees every walk
    /// event (progress).
    ///
    /// - Throws: `InputError` when the file cannot be read,
    ///   ``UsedRingIndexes/Failure`` when its RAM cannot be read again, or
    ///   what `observe` throws.
    public init(
        file: String, input: Input, device: String? = nil, queueSize: UInt32? = nil, strategy: ReadingStrategy = .placeFromEnd,
        readsUsedRings: Bool = false, observe: (MigrationEvent) throws -> Void = { _ in }
    ) throws {
        var states = DeviceStates(device: device)
        let reader = MigrationFileReader(input: input.stream, strategy: strategy, keepsSectionBodies: true)
        survey = try MigrationFileSurvey.survey(reader) { event in
            states.record(event)
            try observe(event)
        }
        // A walk that stopped at damage never reached the description; a
        // regular file's is read from its end.
        if states.description == nil, survey.error != nil, let ahead = try? reader.describedAhead { states.describe(with: ahead) }
        states.finish()
        self.file = file
        compression = input.compression
        saveImage = input.saveImage
        devices = states.sections
        var virtio: [UInt32: VirtioDeviceState] = [:]
        var failures: [UInt32: VirtioFinding] = [:]
        for section in states.sections {
            do {
                if let state = try VirtioDeviceState.decode(section) { virtio[section.section.id] = state }
            } catch {
                failures[section.section.id] = error
            }
        }
        self.virtio = virtio
        virtioFailures = failures
        self.queueSize = queueSize
        if readsUsedRings, survey.error == nil, let configuration = survey.configuration {
            usedIndexes = try UsedRingIndexes.read(from: input, devices: virtio, machineType: configuration.machineType)
        } else {
            usedIndexes = [:]
        }
    }

    /// The virtio findings of section `id`: what its state's check gives, or why it did not decode.
    public func virtioFindings(of id: UInt32) -> [VirtioFinding] {
        if let failure = virtioFailures[id] { return [failure] }
        return virtio[id]?.findings(queueSize: queueSize, usedIndexes: usedIndexes[id] ?? [:]) ?? []
    }

    /// Every finding: the walk's problems, each device's field problems and virtio findings.
    public var findings: [any Finding] {
        var all: [any Finding] = survey.problems
        for device in devices {
            all += device.problems as [any Finding]
            all += virtioFindings(of: device.section.id) as [any Finding]
        }
        return all
    }

    /// Whether nothing is an error: the file reads, every section decodes, no virtio check fails.
    public var valid: Bool { !findings.contains { $0.severity == .error } }

    // MARK: JSON

    private enum Key: String, CodingKey {
        case file, compression, libvirt, valid, configuration, devices, queueSize, reading, problems
    }

    /// Encodes the `migration show --json` object.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(file, forKey: .file)
        try container.encode(compression, forKey: .compression)
        if let image = saveImage { try container.encode(SaveImageSummary(image), forKey: .libvirt) }
        try container.encode(valid, forKey: .valid)
        try container.encode(Nullable(survey.configuration), forKey: .configuration)
        try container.encode(Nullable(queueSize), forKey: .queueSize)
        try container.encode(devices.map { device in
            DeviceJSON(
                device: device, virtio: virtio[device.section.id].map { VirtioDeviceReport($0, findings: virtioFindings(of: device.section.id), usedIndexes: usedIndexes[device.section.id] ?? [:]) },
                virtioFindings: virtioFindings(of: device.section.id))
        }, forKey: .devices)
        try container.encode(Nullable(survey.reading), forKey: .reading)
        try container.encode(survey.problems.map { FindingRecord($0) }, forKey: .problems)
    }

    private struct DeviceJSON: Encodable {
        let device: DecodedSection
        let virtio: VirtioDeviceReport?
        let virtioFindings: [VirtioFinding]

        enum Key: String, CodingKey {
            case section, name, instanceID, version, offset, bodyOffset, fields, subsections, virtio, problems
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(device.section.id, forKey: .section)
            try container.encode(device.section.name, forKey: .name)
            try container.encode(device.section.instanceID, forKey: .instanceID)
            try container.encode(device.section.version, forKey: .version)
            try container.encode(device.sectionOffset, forKey: .offset)
            try container.encode(device.bodyOffset, forKey: .bodyOffset)
            try container.encode(device.contents.fields.map(FieldJSON.init), forKey: .fields)
            try container.encode(device.contents.subsections.map(SubsectionJSON.init), forKey: .subsections)
            try container.encode(Nullable(virtio), forKey: .virtio)
            let problems = device.problems.map { FindingRecord($0) } + (virtio == nil ? virtioFindings.map { FindingRecord($0) } : [])
            try container.encode(problems, forKey: .problems)
        }
    }

    private struct FieldJSON: Encodable {
        let field: DecodedField

        init(_ field: DecodedField) { self.field = field }

        enum Key: String, CodingKey { case name, type, offset, byteCount, value }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(field.name, forKey: .name)
            try container.encode(field.type, forKey: .type)
            try container.encode(field.value.offset, forKey: .offset)
            try container.encode(field.value.byteCount, forKey: .byteCount)
            try container.encode(ValueJSON(field.value), forKey: .value)
        }
    }

    private struct SubsectionJSON: Encodable {
        let subsection: DecodedSubsection

        init(_ subsection: DecodedSubsection) { self.subsection = subsection }

        enum Key: String, CodingKey { case name, version, offset, byteCount, fields, subsections }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(subsection.name, forKey: .name)
            try container.encode(subsection.version, forKey: .version)
            try container.encode(subsection.offset, forKey: .offset)
            try container.encode(subsection.byteCount, forKey: .byteCount)
            try container.encode(subsection.contents.fields.map(FieldJSON.init), forKey: .fields)
            try container.encode(subsection.contents.subsections.map(SubsectionJSON.init), forKey: .subsections)
        }
    }

    /// A value as JSON: an integer, a boolean, hex text for bytes, the
    /// capability's name, `null` for a null pointer or bytes not kept, an
    /// array, or `{fields, subsections}` for a structure.
    private struct ValueJSON: Encodable {
        let value: DecodedValue

        init(_ value: DecodedValue) { self.value = value }

        enum Key: String, CodingKey { case fields, subsections }

        func encode(to encoder: any Encoder) throws {
            switch value.content {
            case .unsigned(let number):
                var container = encoder.singleValueContainer()
                try container.encode(number)
            case .signed(let number):
                var container = encoder.singleValueContainer()
                try container.encode(number)
            case .bool(let flag):
                var container = encoder.singleValueContainer()
                try container.encode(flag)
            case .bytes(let bytes):
                var container = encoder.singleValueContainer()
                try container.encode(bytes.hexString)
            case .capability(let name):
                var container = encoder.singleValueContainer()
                try container.encode(name)
            case .nullPointer, .elided:
                var container = encoder.singleValueContainer()
                try container.encodeNil()
            case .elements(let elements):
                var container = encoder.unkeyedContainer()
                for element in elements { try container.encode(ValueJSON(element)) }
            case .structure(let structure):
                var container = encoder.container(keyedBy: Key.self)
                try container.encode(structure.fields.map(FieldJSON.init), forKey: .fields)
                try container.encode(structure.subsections.map(SubsectionJSON.init), forKey: .subsections)
            }
        }
    }
}

/// A virtio-pci device's decoded `virtio` field as `--json` shows it.
public struct VirtioDeviceReport: Encodable, Sendable {
    /// The state.
    public let state: VirtioDeviceState
    /// What the checks found.
    public let findings: [VirtioFinding]
    /// Each queue's used index read from the guest's RAM, by queue index
    /// (``UsedRingIndexes``); empty when the rings were not read.
    public let usedIndexes: [Int: UInt16]

    /// The report of `state` with `findings` and the used indexes read.
    public init(_ state: VirtioDeviceState, findings: [VirtioFinding], usedIndexes: [Int: UInt16] = [:]) {
        self.state = state
        self.findings = findings
        self.usedIndexes = usedIndexes
    }

    private enum Key: String, CodingKey {
        case offset, byteCount, status, statusNames, isr, queueSelector, guestFeatures, config, fileSystem
        case msixVectors, configVector, queues, deviceStateBytes, subsections, started, broken, findings
    }

    private struct Queue: Encodable {
        let index: Int
        let size: UInt32
        let sizeOffset: UInt64
        let descriptorAddress: UInt64
        let availableAddress: Nullable<UInt64>
        let usedAddress: Nullable<UInt64>
        let lastAvailableIndex: UInt16
        let lastAvailableIndexOffset: UInt64
        let usedIndex: Nullable<UInt16>
        let vector: Nullable<UInt16>
    }

    private struct FileSystem: Encodable {
        let tag: String
        let requestQueues: UInt32
    }

    private struct Subsection: Encodable {
        let name: String
        let version: UInt32
        let offset: UInt64
        let byteCount: UInt64
    }

    /// Encodes the device's `virtio` object.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(state.offset, forKey: .offset)
        try container.encode(state.byteCount, forKey: .byteCount)
        try container.encode(state.status, forKey: .status)
        try container.encode(state.statusNames, forKey: .statusNames)
        try container.encode(state.isr, forKey: .isr)
        try container.encode(state.queueSelector, forKey: .queueSelector)
        try container.encode(state.guestFeatures, forKey: .guestFeatures)
        try container.encode(state.config.hexString, forKey: .config)
        try container.encode(Nullable(state.fileSystemConfig.map { FileSystem(tag: $0.tag, requestQueues: $0.requestQueues) }), forKey: .fileSystem)
        try container.encode(Nullable(state.pci.msixVectorCount), forKey: .msixVectors)
        try container.encode(Nullable(state.pci.configVector), forKey: .configVector)
        try container.encode(state.queues.map { queue in
            Queue(
                index: queue.index, size: queue.size, sizeOffset: queue.sizeOffset, descriptorAddress: queue.descriptorAddress,
                availableAddress: Nullable(queue.availableAddress), usedAddress: Nullable(queue.usedAddress),
                lastAvailableIndex: queue.lastAvailableIndex, lastAvailableIndexOffset: queue.lastAvailableIndexOffset,
                usedIndex: Nullable(usedIndexes[queue.index]), vector: Nullable(queue.vector))
        }, forKey: .queues)
        try container.encode(state.deviceState.count, forKey: .deviceStateBytes)
        try container.encode(state.subsections.map { Subsection(name: $0.name, version: $0.version, offset: $0.offset, byteCount: $0.byteCount) }, forKey: .subsections)
        try container.encode(Nullable(state.started), forKey: .started)
        try container.encode(Nullable(state.broken), forKey: .broken)
        try container.encode(findings.map { FindingRecord($0) }, forKey: .findings)
    }
}

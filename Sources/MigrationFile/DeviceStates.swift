import StateStream

/// Every device section of a migration file decoded through the JSON
/// description, gathered from a walk that keeps section bodies: what
/// `statetool migration show` prints and other checks call.
///
/// The description comes last in the file, so bodies are held until it is
/// read (each at most ``SectionBody/maximumKeptByteCount``; QEMU's device
/// sections besides a back-end's state take a few hundred KiB in all).
///
/// ```swift
/// let reader = MigrationFileReader(input: input, keepsSectionBodies: true)
/// let devices = try DeviceStates.read(reader)
/// for section in devices.sections {
///     if let virtio = try? VirtioDeviceState.decode(section) { print(virtio.queues.map(\.size)) }
/// }
/// ```
public struct DeviceStates {
    /// The decoded sections, in file order (after ``finish()``).
    public private(set) var sections: [DecodedSection] = []
    /// The bodies kept so far, decoded by ``finish()``.
    public private(set) var bodies: [SectionBody] = []
    /// The configuration section, if the file has one.
    public private(set) var configuration: MigrationConfiguration?
    /// The JSON description, if the file has one.
    public private(set) var description: VMDescription?
    /// The description's text as the file holds it.
    public private(set) var descriptionText: [UInt8]?
    /// Which device sections to keep: all when `nil`, else those a user's
    /// `--device` (an idstr or section id) names.
    public let device: String?

    /// Gathers the sections `device` names (an idstr or a section id), or all.
    public init(device: String? = nil) {
        self.device = device
    }

    /// Takes in one walk event.
    public mutating func record(_ event: MigrationEvent) {
        switch event {
        case .sectionBody(let body) where device.map(body.section.matches) ?? true:
            bodies.append(body)
        case .configuration(let configuration):
            self.configuration = configuration
        case .description(let description, _, _):
            self.description = description
        case .descriptionText(let text, _):
            descriptionText = text
        default:
            break
        }
    }

    /// Decodes with `description` when the walk read none (it stopped before
    /// the file's end, at damage, but the description at the end of a
    /// regular file was read ahead: ``MigrationFileReader/describedAhead``).
    public mutating func describe(with description: VMDescription) {
        if self.description == nil { self.description = description }
    }

    /// Decodes every kept body through its description entry; a body without
    /// one, or a file without description, gives a section with an
    /// `undescribed-section` warning and no fields.
    public mutating func finish() {
        sections = bodies.map { body in
            guard let entry = description?.device(for: body.section) else {
                return DecodedSection(
                    section: body.section, sectionOffset: body.sectionOffset, bodyOffset: body.offset, contents: DecodedStructure(),
                    problems: [.undescribed(section: body.section.name, at: body.sectionOffset)])
            }
            return FieldDecoder.decode(body, as: entry)
        }
    }

    /// Walks `reader` (made with `keepsSectionBodies`), then decodes; `handle`
    /// sees every event too (problems, progress).
    ///
    /// - Throws: `InputError` when the file cannot be read, or what `handle` throws.
    public static func read(
        _ reader: MigrationFileReader, device: String? = nil, handle: (MigrationEvent) throws -> Void = { _ in }
    ) throws -> DeviceStates {
        var states = DeviceStates(device: device)
        try reader.walk { event in
            states.record(event)
            try handle(event)
        }
        states.finish()
        return states
    }
}

extension DeviceStates {
    /// What QEMU's load checks find in the `virtio` field of each virtio-pci
    /// device (see ``VirtioDeviceState/findings(queueSize:usedIndexes:)``),
    /// in file order. A field that does not read as virtio-pci state gives
    /// none: it is not checked (``VirtioDeviceState/decode(_:)`` says why).
    public func virtioFindings(queueSize: UInt32? = nil) -> [VirtioFinding] {
        sections.flatMap { section in
            ((try? VirtioDeviceState.decode(section)) ?? nil)?.findings(queueSize: queueSize) ?? []
        }
    }
}

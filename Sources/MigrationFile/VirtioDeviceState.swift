import StateStream

/// The `virtio` field of a virtio-pci device's section decoded: what QEMU's
/// `virtio_save` writes (`hw/virtio/virtio.c`), with the PCI transport's parts
/// (`virtio_pci_save_config`, `virtio_pci_save_queue`, the `virtio_pci`
/// extra state). The JSON description gives the field only as bytes.
///
/// Layout: the PCI device (`PCIDevice` vmstate: be32 version, the config
/// space, four be32 interrupt pin levels), the MSI-X table and pending bits
/// and the config vector (when the config space has an MSI-X capability),
/// status, ISR, be16 queue selector, be32 low guest features, be32 config
/// length and the device config, be32 queue count, per queue be32 size, be64
/// descriptor address, be16 `last_avail_idx` and be16 MSI-X vector; then the
/// device's own state, if any, and the `virtio/…` subsections.
///
/// ```swift
/// if let virtio = VirtioDeviceState.decode(section) {
///     for finding in virtio.findings(queueSize: 128) { print(finding) }
/// }
/// ```
public struct VirtioDeviceState: Hashable, Sendable {
    /// `VIRTIO_QUEUE_MAX`: the arrays of the queue subsections always have this many entries.
    public static let queueLimit = 1024
    /// `VIRTIO_NO_VECTOR`.
    public static let noVector: UInt16 = 0xffff

    /// One virtqueue.
    public struct Queue: Hashable, Sendable {
        /// Its index.
        public let index: Int
        /// `vring.num`: the queue's size.
        public let size: UInt32
        /// The file offset of ``size``.
        public let sizeOffset: UInt64
        /// The guest-physical address of its descriptor table.
        public let descriptorAddress: UInt64
        /// Its available ring's address (`virtio/virtqueues`, modern devices).
        public var availableAddress: UInt64?
        /// Its used ring's address (`virtio/virtqueues`, modern devices).
        public var usedAddress: UInt64?
        /// The next available-ring entry the device will take.
        public let lastAvailableIndex: UInt16
        /// The file offset of ``lastAvailableIndex``.
        public let lastAvailableIndexOffset: UInt64
        /// Its MSI-X vector, when the device has MSI-X (`0xffff`: none).
        public let vector: UInt16?
        /// The file offset of ``vector``.
        public let vectorOffset: UInt64?
        /// The size the device created it with (`virtio/ringsize`, when it differs somewhere).
        public var defaultSize: UInt32?
    }

    /// The PCI device's part.
    public struct PCIState: Hashable, Sendable {
        /// The config space: 256 bytes, 4096 for PCI Express.
        public let config: [UInt8]
        /// The file offset of ``config``.
        public let configOffset: UInt64
        /// The four interrupt pins' levels.
        public let interruptPinLevels: [Int32]
        /// The MSI-X table size the config space declares, if it has an MSI-X capability.
        public let msixVectorCount: Int?
        /// The MSI-X table (16 bytes per vector, little-endian as the guest wrote it).
        public let msixTable: [UInt8]
        /// The MSI-X pending bits.
        public let msixPendingBits: [UInt8]
        /// The config-change interrupt's vector, with MSI-X.
        public let configVector: UInt16?
        /// The file offset of ``configVector``.
        public let configVectorOffset: UInt64?

        /// The vendor and device ids, little-endian at the config space's start.
        public var vendorID: UInt16 { UInt16(config[0]) | UInt16(config[1]) << 8 }
        /// The PCI device id.
        public var deviceID: UInt16 { UInt16(config[2]) | UInt16(config[3]) << 8 }
    }

    /// The virtio-pci modern state of one queue (`virtio_pci/modern_queue_state`).
    public struct ModernQueue: Hashable, Sendable {
        /// The size the driver set.
        public let size: UInt16
        /// Whether the driver enabled it.
        public let enabled: Bool
        /// The descriptor, available and used rings' addresses.
        public let descriptorAddress: UInt64, availableAddress: UInt64, usedAddress: UInt64
    }

    /// The virtio-pci modern state's feature selectors and the guest features it holds.
    public struct ModernFeatures: Hashable, Sendable {
        /// The device feature word the driver selected (`dfselect`).
        public let deviceSelector: UInt32
        /// The guest feature word the driver selected (`gfselect`).
        public let guestSelector: UInt32
        /// The guest features, both words.
        public let guestFeatures: UInt64
    }

    /// A `virtio/…` subsection as the file holds it.
    public struct Subsection: Hashable, Sendable {
        /// Its name.
        public let name: String
        /// Its version.
        public let version: UInt32
        /// The file offset of its `0x05`.
        public let offset: UInt64
        /// Its bytes, header included.
        public let byteCount: UInt64
    }

    /// The file offset of the field.
    public let offset: UInt64
    /// Its bytes.
    public let byteCount: UInt64
    /// The PCI device.
    public let pci: PCIState
    /// The device status byte (`VIRTIO_CONFIG_S_*`).
    public let status: UInt8
    /// The interrupt status.
    public let isr: UInt8
    /// The queue the driver selected.
    public let queueSelector: UInt16
    /// The file offset of ``queueSelector``.
    public let queueSelectorOffset: UInt64
    /// The guest features: the low 32 bits, with `virtio/64bit_features` all 64.
    public let guestFeatures: UInt64

    /// `VIRTIO_F_RING_PACKED`, feature bit 34.
    public static let packedRingFeature: UInt64 = 1 << 34

    /// Whether the guest negotiated packed virtqueues: their rings have no
    /// used index where a split ring has it.
    public var usesPackedRings: Bool { guestFeatures & Self.packedRingFeature != 0 }
    /// The device config space.
    public let config: [UInt8]
    /// The file offset of ``config``.
    public let configOffset: UInt64
    /// The queues, in order.
    public let queues: [Queue]
    /// The file offset of the queue count.
    public let queueCountOffset: UInt64
    /// The device's own state between the queues and the subsections (its `vmsd` or `save`), as bytes.
    public let deviceState: [UInt8]
    /// The `virtio/…` and `virtio_pci/…` subsections, in file order.
    public let subsections: [Subsection]
    /// `virtio/started`, if written.
    public let started: Bool?
    /// `virtio/broken`, if written.
    public let broken: Bool?
    /// `virtio/disabled`, if written.
    public let disabled: Bool?
    /// `virtio/device_endian`, if written.
    public let deviceEndian: UInt8?
    /// The virtio-pci modern state's queues, as many as ``queues``.
    public let modernQueues: [ModernQueue]
    /// The virtio-pci modern state's device and guest feature selectors and guest features.
    public let modernFeatures: ModernFeatures?
    /// Where decoding stopped, if it did: the rest of the field is kept as ``deviceState``.
    public let problem: VirtioFinding?

    /// A vhost-user-fs device's config (`struct virtio_fs_config`): its tag and request queue count.
    public var fileSystemConfig: (tag: String, requestQueues: UInt32)? {
        guard config.count >= 40 else { return nil }
        let tag = String(decoding: config.prefix(36).prefix { $0 != 0 }, as: UTF8.self)
        let queues = config[36..<40].readInteger(endianness: .little, as: UInt32.self) ?? 0
        return (tag, queues)
    }

    /// The device status bits' names (`ACKNOWLEDGE`, `DRIVER`, `DRIVER_OK`, …).
    public var statusNames: [String] {
        let names: [(UInt8, String)] = [
            (1, "ACKNOWLEDGE"), (2, "DRIVER"), (4, "DRIVER_OK"), (8, "FEATURES_OK"), (0x40, "NEEDS_RESET"), (0x80, "FAILED"),
        ]
        return names.filter { status & $0.0 != 0 }.map(\.1)
    }

    /// What QEMU's `virtio_load` (and the virtio-pci transport's loaders)
    /// would refuse or warn about, each at its offset: a queue larger than the
    /// destination device's `queue-size` (`queueSize`; QEMU 11.1 refuses
    /// such a file, `VQ 0 vring.num 1024 exceeds allocated max 128`), a queue
    /// without descriptor address but with a `last_avail_idx`, a queue
    /// selector or queue count past `VIRTIO_QUEUE_MAX`, an MSI-X vector past
    /// the table, more requests in flight than the queue holds (given the used
    /// indexes from guest memory, `usedIndexes` by queue), a device marked broken.
    ///
    /// - Parameters:
    ///   - queueSize: The destination's `queue-size`; `nil` checks QEMU's
    ///     default 128 and reports a larger queue as a warning.
    ///   - usedIndexes: The used rings' `idx` by queue index, read from guest memory.
    public func findings(queueSize: UInt32? = nil, usedIndexes: [Int: UInt16] = [:]) -> [VirtioFinding] {
        var findings: [VirtioFinding] = []
        if queueSelector >= Self.queueLimit {
            findings.append(.queueSelector(queueSelector, at: queueSelectorOffset))
        }
        if let vector = pci.configVector, let offset = pci.configVectorOffset, let count = pci.msixVectorCount,
            vector != Self.noVector, Int(vector) >= count
        {
            findings.append(.msixVector(queue: nil, vector: vector, vectors: count, at: offset))
        }
        let limit = queueSize ?? VirtioFinding.defaultQueueSize
        for queue in queues {
            if queue.size > limit {
                findings.append(.virtqueueSize(queue: queue.index, size: queue.size, maximum: limit, explicit: queueSize != nil, at: queue.sizeOffset))
            }
            if queue.descriptorAddress == 0 && queue.lastAvailableIndex != 0 {
                findings.append(.virtqueueAddress(queue: queue.index, lastAvailableIndex: queue.lastAvailableIndex, at: queue.lastAvailableIndexOffset))
            }
            if let vector = queue.vector, let offset = queue.vectorOffset, let count = pci.msixVectorCount,
                vector != Self.noVector, Int(vector) >= count
            {
                findings.append(.msixVector(queue: queue.index, vector: vector, vectors: count, at: offset))
            }
            // A packed ring has no used index (QEMU's check is for split rings only).
            if let used = usedIndexes[queue.index], queue.descriptorAddress != 0, !usesPackedRings {
                let inUse = queue.lastAvailableIndex &- used
                if UInt32(inUse) > queue.size {
                    findings.append(.virtqueueInUse(
                        queue: queue.index, size: queue.size, lastAvailableIndex: queue.lastAvailableIndex, usedIndex: used,
                        at: queue.lastAvailableIndexOffset))
                }
            }
        }
        if broken == true, let subsection = subsections.first(where: { $0.name == "virtio/broken" }) {
            findings.append(.deviceBroken(at: subsection.offset))
        }
        if let problem { findings.append(problem) }
        return findings
    }
}

extension VirtioDeviceState {
    /// The `virtio` field of `section` decoded, or `nil` if the section has
    /// none or does not belong to a PCI device (its idstr starts with a PCI
    /// address, `0000:00:01.0/`).
    ///
    /// - Throws: ``VirtioFinding/truncated(_:at:)`` when the field ends inside
    ///   its fixed part (before the device's own state and the subsections).
    public static func decode(_ section: DecodedSection) throws(VirtioFinding) -> VirtioDeviceState? {
        guard isPCI(section.section.name),
            let field = section.contents.fields.first(where: { $0.type == "virtio" }),
            let bytes = field.value.bytes
        else { return nil }
        return try decode(bytes[...], at: field.value.offset)
    }

    /// Whether `idstr` names a device on a PCI bus: `dddd:bb:dd.f/…`.
    static func isPCI(_ idstr: String) -> Bool {
        let address = idstr.split(separator: "/", maxSplits: 1).first ?? ""
        let parts = address.split(separator: ":")
        return parts.count == 3 && parts[2].contains(".") && address.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
    }

    /// Decodes the bytes of a virtio-pci `virtio` field that starts at file offset `offset`.
    ///
    /// - Throws: ``VirtioFinding/truncated(_:at:)`` when the bytes end inside
    ///   the fixed part (before the device's own state and the subsections).
    public static func decode(_ bytes: ArraySlice<UInt8>, at offset: UInt64) throws(VirtioFinding) -> VirtioDeviceState {
        var reader = VirtioReader(bytes: bytes, offset: offset)
        do {
            return try reader.readDevice()
        } catch {
            throw .truncated(reader.part, at: offset + UInt64(bytes.count))
        }
    }
}

/// Reads a `virtio` field front to back.
private struct VirtioReader {
    let bytes: ArraySlice<UInt8>
    let start: UInt64
    var index: Int
    /// What is being read, for the problem if the bytes end.
    var part = "the PCI device"

    struct Short: Error {}

    init(bytes: ArraySlice<UInt8>, offset: UInt64) {
        self.bytes = bytes
        start = offset
        index = bytes.startIndex
    }

    var offset: UInt64 { start + UInt64(index - bytes.startIndex) }
    var remaining: Int { bytes.endIndex - index }

    mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else { throw Short() }
        defer { index += count }
        return bytes[index..<index + count]
    }

    mutating func integer<T: FixedWidthInteger>(_: T.Type = T.self) throws -> T {
        try take(MemoryLayout<T>.size).readInteger(as: T.self)!
    }

    /// `0x05`, u8 name length, name, be32 version, if the next bytes are one.
    func subsectionHeader(at position: Int) -> (name: String, version: UInt32, length: Int)? {
        guard position + 2 <= bytes.endIndex, bytes[position] == MigrationFormat.RecordType.subsection.rawValue else { return nil }
        let nameLength = Int(bytes[position + 1])
        guard nameLength > 0, position + 2 + nameLength + 4 <= bytes.endIndex else { return nil }
        let name = String(decoding: bytes[position + 2..<position + 2 + nameLength], as: UTF8.self)
        let version = bytes[(position + 2 + nameLength)...].readInteger(as: UInt32.self)!
        return (name, version, 2 + nameLength + 4)
    }

    mutating func readDevice() throws -> VirtioDeviceState {
        let fieldOffset = offset
        let pci = try readPCI()
        part = "the device status, features and config"
        let status: UInt8 = try integer()
        let isr: UInt8 = try integer()
        let selectorOffset = offset
        let selector: UInt16 = try integer()
        let featuresLow: UInt32 = try integer()
        let configLength: UInt32 = try integer()
        let configOffset = offset
        let config = Array(try take(Int(min(configLength, UInt32(remaining) + 1))))
        let countOffset = offset
        let count: UInt32 = try integer()
        part = "the virtqueues"
        var problem: VirtioFinding?
        var queues: [VirtioDeviceState.Queue] = []
        if count > VirtioDeviceState.queueLimit {
            problem = .virtqueueCount(count, at: countOffset)
        } else {
            for index in 0..<Int(count) {
                let sizeOffset = offset
                let size: UInt32 = try integer()
                let descriptor: UInt64 = try integer()
                let lastOffset = offset
                let last: UInt16 = try integer()
                var vector: UInt16?
                var vectorOffset: UInt64?
                if pci.msixVectorCount != nil {
                    vectorOffset = offset
                    vector = try integer()
                }
                queues.append(VirtioDeviceState.Queue(
                    index: index, size: size, sizeOffset: sizeOffset, descriptorAddress: descriptor, availableAddress: nil, usedAddress: nil,
                    lastAvailableIndex: last, lastAvailableIndexOffset: lastOffset, vector: vector, vectorOffset: vectorOffset, defaultSize: nil))
            }
        }
        var state = SubsectionState()
        var deviceState: [UInt8] = []
        if problem == nil {
            // The device's own state, if any, runs up to the first position
            // from which a chain of virtio subsections ends the field exactly.
            let marker = MigrationFormat.RecordType.subsection.rawValue
            let candidates = [index] + bytes[index...].indices.filter { bytes[$0] == marker && $0 > index }
            var found = false
            for position in candidates {
                var attempt = self
                attempt.index = position
                if let parsed = try? attempt.readSubsections(queueCount: queues.count), attempt.remaining == 0 {
                    deviceState = Array(bytes[index..<position])
                    state = parsed
                    index = position
                    found = true
                    break
                }
            }
            if !found {
                // No chain ends the field: either there are no subsections at
                // all (a legacy device, stopped), or one is unknown or cut.
                let reader = self
                let first = candidates.lazy.compactMap { position in
                    reader.subsectionHeader(at: position).map { (position, $0.name) }
                }.first { $0.1.hasPrefix("virtio/") }
                if let (position, name) = first {
                    let at = start + UInt64(position - bytes.startIndex)
                    problem = Self.knownSubsections.contains(name)
                        ? .malformed("the virtio subsections from offset \(at) do not end where the field does", at: at)
                        : .unknownSubsection(name, at: at)
                }
                deviceState = Array(bytes[index...])
                index = bytes.endIndex
            }
        }
        for (queue, addresses) in zip(queues.indices, state.ringAddresses) {
            queues[queue].availableAddress = addresses.available
            queues[queue].usedAddress = addresses.used
        }
        for (queue, size) in zip(queues.indices, state.defaultSizes) {
            queues[queue].defaultSize = size
        }
        return VirtioDeviceState(
            offset: fieldOffset, byteCount: UInt64(bytes.count), pci: pci, status: status, isr: isr, queueSelector: selector,
            queueSelectorOffset: selectorOffset, guestFeatures: state.features64 ?? UInt64(featuresLow), config: config, configOffset: configOffset,
            queues: queues, queueCountOffset: countOffset, deviceState: deviceState, subsections: state.subsections, started: state.started,
            broken: state.broken, disabled: state.disabled, deviceEndian: state.deviceEndian, modernQueues: Array(state.modernQueues.prefix(queues.count)),
            modernFeatures: state.modernFeatures, problem: problem)
    }

    /// `PCIDevice` (be32 version, config space, 4 × be32 pin levels), then MSI-X.
    mutating func readPCI() throws -> VirtioDeviceState.PCIState {
        _ = try integer(Int32.self)
        let configOffset = offset
        // The config space is 4096 bytes for PCI Express: its capability list has the Express capability.
        let head = Array(try take(256))
        let express = Self.capability(0x10, in: head) != nil
        let config = express ? head + Array(try take(4096 - 256)) : head
        let pins = try (0..<4).map { _ in try integer(Int32.self) }
        var vectors: Int?
        if let msix = Self.capability(0x11, in: config), msix + 3 < config.count {
            vectors = Int(UInt16(config[msix + 2]) | UInt16(config[msix + 3]) << 8) & 0x7ff + 1
        }
        var table: [UInt8] = []
        var pending: [UInt8] = []
        var configVector: UInt16?
        var configVectorOffset: UInt64?
        if let vectors {
            table = Array(try take(vectors * 16))
            pending = Array(try take((vectors + 7) / 8))
            configVectorOffset = offset
            configVector = try integer()
        }
        return VirtioDeviceState.PCIState(
            config: config, configOffset: configOffset, interruptPinLevels: pins, msixVectorCount: vectors, msixTable: table,
            msixPendingBits: pending, configVector: configVector, configVectorOffset: configVectorOffset)
    }

    /// The offset of capability `id` in a config space's capability list, if it is there.
    static func capability(_ id: UInt8, in config: [UInt8]) -> Int? {
        // Status bit 4: the capability list exists; its head is at 0x34.
        guard config.count >= 256, config[6] & 0x10 != 0 else { return nil }
        var position = Int(config[0x34] & 0xfc)
        var hops = 0
        while position >= 0x40 && position + 1 < 256 && hops < 48 {
            if config[position] == id { return position }
            position = Int(config[position + 1] & 0xfc)
            hops += 1
        }
        return nil
    }

    /// The subsections ``readSubsections(queueCount:)`` reads.
    static let knownSubsections: Set<String> = [
        "virtio/device_endian", "virtio/64bit_features", "virtio/virtqueues", "virtio/ringsize", "virtio/packed_virtqueues",
        "virtio/broken", "virtio/started", "virtio/disabled", "virtio/extra_state",
    ]

    struct SubsectionState {
        var subsections: [VirtioDeviceState.Subsection] = []
        var features64: UInt64?
        var ringAddresses: [(available: UInt64, used: UInt64)] = []
        var defaultSizes: [UInt32] = []
        var started: Bool?
        var broken: Bool?
        var disabled: Bool?
        var deviceEndian: UInt8?
        var modernQueues: [VirtioDeviceState.ModernQueue] = []
        var modernFeatures: VirtioDeviceState.ModernFeatures?
    }

    /// The `virtio/…` subsections to the field's end; throws at one it does not know or that is cut.
    mutating func readSubsections(queueCount: Int) throws -> SubsectionState {
        var state = SubsectionState()
        let limit = VirtioDeviceState.queueLimit
        while remaining > 0 {
            guard let header = subsectionHeader(at: index) else { throw Short() }
            let start = offset
            index += header.length
            switch header.name {
            case "virtio/device_endian":
                state.deviceEndian = try integer()
            case "virtio/64bit_features":
                state.features64 = try integer()
            case "virtio/virtqueues":
                for queue in 0..<limit {
                    let available: UInt64 = try integer()
                    let used: UInt64 = try integer()
                    if queue < queueCount { state.ringAddresses.append((available, used)) }
                }
            case "virtio/ringsize":
                for queue in 0..<limit {
                    let size: UInt32 = try integer()
                    if queue < queueCount { state.defaultSizes.append(size) }
                }
            case "virtio/packed_virtqueues":
                _ = try take(limit * 10)
            case "virtio/broken":
                state.broken = try integer(UInt8.self) != 0
            case "virtio/started":
                state.started = try integer(UInt8.self) != 0
            case "virtio/disabled":
                state.disabled = try integer(UInt8.self) != 0
            case "virtio/extra_state":
                // The transport's `virtio_pci` vmstate: no fields, its subsections.
                let outerPosition = state.subsections.count
                while let inner = subsectionHeader(at: index), inner.name.hasPrefix("virtio_pci/") {
                    let innerStart = offset
                    index += inner.length
                    guard inner.name == "virtio_pci/modern_state" else { throw Short() }
                    let device: UInt32 = try integer()
                    let guest: UInt32 = try integer()
                    let low: UInt32 = try integer()
                    let high: UInt32 = try integer()
                    state.modernFeatures = VirtioDeviceState.ModernFeatures(
                        deviceSelector: device, guestSelector: guest, guestFeatures: UInt64(high) << 32 | UInt64(low))
                    for _ in 0..<limit {
                        let size: UInt16 = try integer()
                        _ = try take(1)
                        let enabled = try integer(UInt8.self) != 0
                        var addresses: [UInt64] = []
                        for _ in 0..<3 {
                            let low: UInt32 = try integer()
                            let high: UInt32 = try integer()
                            addresses.append(UInt64(high) << 32 | UInt64(low))
                        }
                        if state.modernQueues.count < queueCount {
                            state.modernQueues.append(VirtioDeviceState.ModernQueue(
                                size: size, enabled: enabled, descriptorAddress: addresses[0], availableAddress: addresses[1], usedAddress: addresses[2]))
                        }
                    }
                    state.subsections.append(VirtioDeviceState.Subsection(name: inner.name, version: inner.version, offset: innerStart, byteCount: offset - innerStart))
                }
                state.subsections.insert(
                    VirtioDeviceState.Subsection(name: header.name, version: header.version, offset: start, byteCount: offset - start), at: outerPosition)
                continue
            default:
                throw Short()
            }
            state.subsections.append(VirtioDeviceState.Subsection(name: header.name, version: header.version, offset: start, byteCount: offset - start))
        }
        return state
    }
}

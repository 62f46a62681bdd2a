import StateStream

/// Something in a virtio device's state that QEMU's `virtio_load` (or the
/// virtio-pci transport's loaders) refuses or warns about, or that stops
/// its decoding, at its file offset.
public enum VirtioFinding: Error, Finding, Hashable {
    /// QEMU's default `queue-size` for vhost-user-fs and most virtio devices.
    public static let defaultQueueSize: UInt32 = 128

    /// A queue larger than the destination device's `queue-size` (`maximum`):
    /// QEMU 11.1 refuses the file (`VQ 0 vring.num 1024 exceeds allocated
    /// max 128`). `explicit`: the size was given, so it is an error; against
    /// QEMU's default 128 it is a warning.
    case virtqueueSize(queue: Int, size: UInt32, maximum: UInt32, explicit: Bool, at: UInt64)
    /// A queue without descriptor table but with a `last_avail_idx`
    /// (`VQ 0 address 0x0 inconsistent with Host index 0x…`).
    case virtqueueAddress(queue: Int, lastAvailableIndex: UInt16, at: UInt64)
    /// More queues than `VIRTIO_QUEUE_MAX` (`Invalid number of virtqueues`).
    case virtqueueCount(UInt32, at: UInt64)
    /// A queue selector past `VIRTIO_QUEUE_MAX`: the load fails.
    case queueSelector(UInt16, at: UInt64)
    /// An MSI-X vector past the device's table (`queue` nil: the config vector): the load fails with `EINVAL`.
    case msixVector(queue: Int?, vector: UInt16, vectors: Int, at: UInt64)
    /// `last_avail_idx` further from the used ring's index than the queue
    /// holds (`VQ 0 size 0x… < last_avail_idx 0x… - used_idx 0x…`).
    case virtqueueInUse(queue: Int, size: UInt32, lastAvailableIndex: UInt16, usedIndex: UInt16, at: UInt64)
    /// The device was marked broken (`virtio/broken`). A warning.
    case deviceBroken(at: UInt64)
    /// The field ends inside `what`.
    case truncated(String, at: UInt64)
    /// A subsection this decoder does not know: the rest of the field is not decoded. A warning.
    case unknownSubsection(String, at: UInt64)
    /// The field does not read as virtio-pci state: `what` says how.
    case malformed(String, at: UInt64)

    /// The stable name of each kind of finding.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// A ``VirtioFinding/virtqueueSize(queue:size:maximum:explicit:at:)``.
        case virtqueueSize = "virtqueue-size"
        /// A ``VirtioFinding/virtqueueAddress(queue:lastAvailableIndex:at:)``.
        case virtqueueAddress = "virtqueue-address"
        /// A ``VirtioFinding/virtqueueCount(_:at:)``.
        case virtqueueCount = "virtqueue-count"
        /// A ``VirtioFinding/queueSelector(_:at:)``.
        case queueSelector = "queue-selector"
        /// A ``VirtioFinding/msixVector(queue:vector:vectors:at:)``.
        case msixVector = "msix-vector"
        /// A ``VirtioFinding/virtqueueInUse(queue:size:lastAvailableIndex:usedIndex:at:)``.
        case virtqueueInUse = "virtqueue-in-use"
        /// A ``VirtioFinding/deviceBroken(at:)``.
        case deviceBroken = "virtio-broken"
        /// A ``VirtioFinding/truncated(_:at:)``.
        case truncated = "virtio-truncated"
        /// A ``VirtioFinding/unknownSubsection(_:at:)``.
        case unknownSubsection = "virtio-unknown-subsection"
        /// A ``VirtioFinding/malformed(_:at:)``.
        case malformed = "virtio-malformed"
    }

    /// Which kind of finding this is.
    public var kind: Kind {
        switch self {
        case .virtqueueSize: return .virtqueueSize
        case .virtqueueAddress: return .virtqueueAddress
        case .virtqueueCount: return .virtqueueCount
        case .queueSelector: return .queueSelector
        case .msixVector: return .msixVector
        case .virtqueueInUse: return .virtqueueInUse
        case .deviceBroken: return .deviceBroken
        case .truncated: return .truncated
        case .unknownSubsection: return .unknownSubsection
        case .malformed: return .malformed
        }
    }

    /// An error where QEMU refuses the load; a warning for a queue larger
    /// than QEMU's default size, a broken device, and where the field does
    /// not read as virtio-pci state (truncated, malformed, an unknown
    /// subsection): statetool cannot check it, which is not QEMU refusing it.
    public var severity: Severity {
        switch self {
        case .virtqueueSize(_, _, _, let explicit, _): return explicit ? .error : .warning
        case .deviceBroken, .unknownSubsection, .truncated, .malformed: return .warning
        default: return .error
        }
    }

    /// The file offset of the value at fault.
    public var offset: UInt64 {
        switch self {
        case .virtqueueSize(_, _, _, _, let offset), .virtqueueAddress(_, _, let offset), .virtqueueCount(_, let offset),
            .queueSelector(_, let offset), .msixVector(_, _, _, let offset), .virtqueueInUse(_, _, _, _, let offset),
            .deviceBroken(let offset), .truncated(_, let offset), .unknownSubsection(_, let offset), .malformed(_, let offset):
            return offset
        }
    }

    /// Always ``OffsetBase/input``.
    public var offsetBase: OffsetBase { .input }

    /// What is wrong, in one sentence without the offset.
    public var message: String {
        func hex(_ value: some BinaryInteger) -> String { "0x" + String(value, radix: 16) }
        switch self {
        case .virtqueueSize(let queue, let size, let maximum, let explicit, _):
            let whose = explicit ? "the destination's queue-size \(maximum)" : "QEMU's default queue-size \(maximum)"
            return "virtqueue \(queue) has \(size) entries, more than \(whose): QEMU 11.1 refuses it (VQ \(queue) vring.num \(size) exceeds allocated max \(maximum))"
        case .virtqueueAddress(let queue, let index, _):
            return "virtqueue \(queue) has no descriptor table but last_avail_idx \(hex(index)) (VQ \(queue) address 0x0 inconsistent with Host index \(hex(index)))"
        case .virtqueueCount(let count, _):
            return "\(count) virtqueues, more than \(VirtioDeviceState.queueLimit) (Invalid number of virtqueues: \(hex(count)))"
        case .queueSelector(let selector, _):
            return "queue selector \(selector) is past the \(VirtioDeviceState.queueLimit) queues a device can have: the load fails"
        case .msixVector(let queue, let vector, let vectors, _):
            let whose = queue.map { "virtqueue \($0)'s" } ?? "the config"
            return "\(whose) MSI-X vector \(vector) is past the device's \(vectors) vectors: the load fails (EINVAL)"
        case .virtqueueInUse(let queue, let size, let last, let used, _):
            return "virtqueue \(queue): last_avail_idx \(hex(last)) is \(UInt16(last &- used)) past used_idx \(hex(used)), more than its \(size) entries (VQ \(queue) size \(hex(size)) < last_avail_idx \(hex(last)) - used_idx \(hex(used)))"
        case .deviceBroken:
            return "the device was marked broken (virtio/broken)"
        case .truncated(let what, _):
            return "the virtio field ends inside \(what)"
        case .unknownSubsection(let name, _):
            return "subsection \(name) is not one statetool decodes: the rest of the virtio field is kept as bytes"
        case .malformed(let what, _):
            return what
        }
    }
}

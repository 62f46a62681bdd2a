import MigrationFile
import StateStream
import SystemPackage

/// The used index of each virtqueue of a migration file's virtio devices, read
/// from the guest's RAM pages the file holds: the little-endian `idx` at the
/// queue's used ring address + 2, which QEMU's `virtio_load` reads from guest
/// memory to check that `last_avail_idx` is at most the queue's size ahead of
/// it (``VirtioDeviceState/findings(queueSize:usedIndexes:)``, `virtqueue-in-use`).
///
/// Guest-physical addresses are placed in the main RAM block (the largest,
/// which QEMU lists first) by the x86 machines' layout: `pc-q35-*` keeps
/// RAM below 2 GiB when the guest has 2.75 GiB or more (else all of it below
/// 4 GiB), `pc-i440fx-*` below 3 GiB from 3.5 GiB on, and the rest from
/// 4 GiB. Other machines' layouts are not known: nothing is read for them.
/// A queue whose ring page the file does not hold (never written, or a zero
/// page: its index 0) gives the index the destination would read.
///
/// The device sections follow the RAM in the file, so the RAM is read once
/// the devices are known: a second pass over the regular, uncompressed file
/// (every page record read, since a running guest's ring pages are sent again
/// in later iterations and the last record counts; a `mapped-ram` file's
/// two bytes read in place).
public enum UsedRingIndexes {
    /// Why the used indexes could not be read.
    public enum Failure: Error, Sendable, Hashable, CustomStringConvertible {
        /// The input is compressed, a pipe or standard input: it cannot be read a second time.
        case needsRegularFile

        /// What went wrong, in one sentence.
        public var description: String {
            switch self {
            case .needsRegularFile:
                return "the used rings are read from the guest's RAM in a second pass: give the regular, uncompressed file"
            }
        }
    }

    /// The offset in the main RAM block (of `blockSize` bytes) of the
    /// guest-physical `address` on an x86 machine of `machineType`; `nil`
    /// for another machine or an address outside the block.
    public static func blockOffset(ofGuestAddress address: UInt64, blockSize: UInt64, machineType: String) -> UInt64? {
        let lowMemory: UInt64
        if machineType.hasPrefix("pc-q35") || machineType == "q35" {
            lowMemory = blockSize >= 0xB000_0000 ? 0x8000_0000 : blockSize
        } else if machineType.hasPrefix("pc-i440fx") || machineType == "pc" {
            lowMemory = blockSize >= 0xE000_0000 ? 0xC000_0000 : blockSize
        } else {
            return nil
        }
        if address < lowMemory { return address }
        let highStart: UInt64 = 1 << 32
        guard address >= highStart else { return nil }
        let offset = lowMemory + (address - highStart)
        return offset < blockSize ? offset : nil
    }

    /// The used index of each queue with a used ring address, by section id
    /// and queue index, for the virtio `devices` (by section id) of `input`
    /// (a machine of `machineType`).
    ///
    /// - Throws: ``Failure/needsRegularFile``, `InputFailure` or `InputError`
    ///   when the file cannot be read again.
    public static func read(
        from input: Input, devices: [UInt32: VirtioDeviceState], machineType: String
    ) throws -> [UInt32: [Int: UInt16]] {
        guard input.stream.compression == .none, input.stream.regularFile != nil, input.path != "-" else {
            throw Failure.needsRegularFile
        }
        // A packed ring's "used" address is its device event area: no index there.
        let wanted = devices.filter { !$0.value.usesPackedRings }.flatMap { id, state in
            state.queues.compactMap { queue in queue.usedAddress.map { (id, queue.index, $0 &+ 2) } }
        }
        guard !wanted.isEmpty else { return [:] }
        let reopened = try Input.open(input.path)
        let collector = IndexCollector(addresses: wanted.map(\.2), machineType: machineType)
        do {
            try MigrationFileReader(input: reopened.stream, strategy: .fullWalk, ramPages: collector).walk { event in
                if case .ramBlock(let block) = event { try collector.list(block, in: reopened.stream) }
                if collector.isComplete { throw IndexCollector.Complete() }
            }
        } catch is IndexCollector.Complete {}
        var indexes: [UInt32: [Int: UInt16]] = [:]
        for (id, queue, address) in wanted {
            if let value = collector.values[address] { indexes[id, default: [:]][queue] = value }
        }
        return indexes
    }
}

/// Takes the main RAM block's pages and keeps the 16-bit values wanted.
private final class IndexCollector: RAMPageHandler {
    struct Complete: Error {}

    let addresses: [UInt64]
    let machineType: String
    /// The main RAM block: the first listed.
    private var main: RAMBlock?
    /// The wanted values' offsets in the main block, by guest address.
    private var offsets: [UInt64: UInt64] = [:]
    private(set) var values: [UInt64: UInt16] = [:]
    /// Whether the values were read in place (mapped-ram): the walk can stop.
    private var readInPlace = false

    init(addresses: [UInt64], machineType: String) {
        self.addresses = addresses
        self.machineType = machineType
    }

    /// Whether no page left can change a value: none is wanted, or all were read in place.
    var isComplete: Bool { main != nil && (offsets.isEmpty || readInPlace) }

    /// Takes the block list as the walk reads it; the first block is the main
    /// RAM, and a mapped-ram block's values are read in place.
    func list(_ block: RAMBlock, in stream: StateStreamInput) throws {
        guard main == nil else { return }
        main = block
        for address in addresses {
            if let offset = UsedRingIndexes.blockOffset(ofGuestAddress: address, blockSize: block.byteCount, machineType: machineType),
                offset + 2 <= block.byteCount
            {
                offsets[address] = offset
            }
        }
        guard let region = block.mappedRegion, let file = stream.regularFile else { return }
        for (address, offset) in offsets {
            let page = offset / block.pageSize
            var bit: [UInt8] = [0]
            var bytes: [UInt8] = [0, 0]
            guard try read(file, at: stream.baseOffset + region.bitmapOffset + page / 8, into: &bit) else { continue }
            if bit[0] & (1 << (page % 8)) == 0 {
                values[address] = 0  // a page never written: zero
                continue
            }
            guard try read(file, at: stream.baseOffset + region.pagesOffset + offset, into: &bytes) else { continue }
            values[address] = bytes.readInteger(endianness: .little, as: UInt16.self)
        }
        readInPlace = true
    }

    private func read(_ file: FileDescriptor, at offset: UInt64, into bytes: inout [UInt8]) throws -> Bool {
        let count = try bytes.withUnsafeMutableBytes { buffer in
            do {
                return try file.read(fromAbsoluteOffset: Int64(offset), into: buffer)
            } catch {
                throw InputError.readFailed((error as? Errno) ?? .ioError)
            }
        }
        return count == bytes.count
    }

    func page(block: String, address: UInt64, bytes: UnsafeRawBufferPointer) throws {
        take(block: block, address: address, count: UInt64(bytes.count)) { bytes[Int($0)...].readInteger(endianness: .little, as: UInt16.self) ?? 0 }
    }

    func pages(_ run: RAMPageRun) throws {
        let size = UInt64(run.pageSize)
        take(block: run.block, address: run.address, count: UInt64(run.count) * size) { offset in
            let page = run.page(Int(offset / size))
            return page[Int(offset % size)...].readInteger(endianness: .little, as: UInt16.self) ?? 0
        }
    }

    func zeroPage(block: String, address: UInt64, fill: UInt8) throws {
        take(block: block, address: address, count: main?.pageSize ?? 0) { _ in UInt16(fill) << 8 | UInt16(fill) }
    }

    /// Records the wanted values in `count` bytes of `block` from `address`,
    /// `value` reading one at an offset from `address`. A later record of a
    /// page (a later iteration's) replaces an earlier one's value.
    private func take(block: String, address: UInt64, count: UInt64, value: (UInt64) -> UInt16) {
        guard let main, block == main.name else { return }
        for (guest, offset) in offsets where offset >= address && offset - address < count {
            values[guest] = value(offset - address)
        }
    }
}

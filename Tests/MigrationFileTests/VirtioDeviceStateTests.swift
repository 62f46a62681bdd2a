import Foundation
import MigrationFile
import StateStream
import TestSupport
import Testing

/// A `virtio` field as QEMU's `virtio_save` writes it for a virtio-pci device,
/// built here from `hw/virtio/virtio.c`, `virtio-pci.c` and `hw/pci/msix.c`.
struct VirtioFieldBuilder {
    typealias B = MigrationFileBuilder
    var vectors = 3
    var status: UInt8 = 0x0f
    var queueSelector: UInt16 = 1
    var featuresLow: UInt32 = 0x3000_0000
    var config: [UInt8] = Array("myfs".utf8) + Array(repeating: 0, count: 32) + [1, 0, 0, 0]
    /// (size, descriptor address, last_avail_idx, vector)
    var queues: [(UInt32, UInt64, UInt16, UInt16)] = [(1024, 0x6_3800_0000, 0, 1), (1024, 0x6_3880_0000, 0x14e2, 2)]
    var deviceState: [UInt8] = []
    var features64: UInt64? = 0x1_3000_0000
    var broken: Bool?
    var started: Bool? = true

    /// The PCI config space: the capability list's head at 0x34, an MSI-X capability at 0x40.
    var pciConfig: [UInt8] {
        var config = [UInt8](repeating: 0, count: 256)
        config[0] = 0xf4; config[1] = 0x1a; config[2] = 0x5a; config[3] = 0x10
        config[6] = 0x10
        config[0x34] = 0x40
        config[0x40] = 0x11
        config[0x42] = UInt8((vectors - 1) & 0xff)
        config[0x43] = UInt8((vectors - 1) >> 8)
        return config
    }

    static func subsection(_ name: String, _ body: [UInt8]) -> [UInt8] {
        B.subsectionHeader(name, version: 1) + body
    }

    var bytes: [UInt8] {
        var out = B.be32(2) + pciConfig + [UInt8](repeating: 0, count: 16)
        out += [UInt8](repeating: 0xee, count: vectors * 16) + [UInt8](repeating: 0, count: (vectors + 7) / 8) + B.be16(0)
        out += [status, 1] + B.be16(queueSelector) + B.be32(featuresLow) + B.be32(UInt32(config.count)) + config
        out += B.be32(UInt32(queues.count))
        for (size, descriptor, last, vector) in queues {
            out += B.be32(size) + B.be64(descriptor) + B.be16(last) + B.be16(vector)
        }
        out += deviceState
        if let features64 { out += Self.subsection("virtio/64bit_features", B.be64(features64)) }
        var rings: [UInt8] = []
        for index in 0..<1024 {
            rings += B.be64(index < queues.count ? 0x100 * UInt64(index + 1) : 0) + B.be64(index < queues.count ? 0x200 * UInt64(index + 1) : 0)
        }
        out += Self.subsection("virtio/virtqueues", rings)
        if let broken { out += Self.subsection("virtio/broken", [broken ? 1 : 0]) }
        var modern = B.be32(1) + B.be32(0) + B.be32(0x3000_0000) + B.be32(1)
        for index in 0..<1024 {
            modern += B.be16(index < queues.count ? 1024 : 0) + [0, index < queues.count ? 1 : 0] + [UInt8](repeating: 0, count: 24)
        }
        out += Self.subsection("virtio/extra_state", Self.subsection("virtio_pci/modern_state", modern))
        if let started { out += Self.subsection("virtio/started", [started ? 1 : 0]) }
        return out
    }
}

@Suite struct VirtioDeviceStateTests {
    /// The built field, offsets as the builder lays them out from file offset 5000.
    @Test func aBuiltFieldDecodes() throws {
        let builder = VirtioFieldBuilder()
        let state = try VirtioDeviceState.decode(builder.bytes[...], at: 5000)
        #expect(state.pci.vendorID == 0x1af4)
        #expect(state.pci.deviceID == 0x105a)
        #expect(state.pci.msixVectorCount == 3)
        #expect(state.pci.configVector == 0)
        #expect(state.status == 0x0f)
        #expect(state.statusNames == ["ACKNOWLEDGE", "DRIVER", "DRIVER_OK", "FEATURES_OK"])
        #expect(state.queueSelector == 1)
        #expect(state.guestFeatures == 0x1_3000_0000)
        #expect(state.fileSystemConfig?.tag == "myfs")
        #expect(state.fileSystemConfig?.requestQueues == 1)
        // 4 + 256 + 16 (PCI), 48 + 1 + 2 (MSI-X), 1 + 1 + 2 + 4 + 4 + 40, 4: the first queue.
        let firstQueue: UInt64 = 5000 + 276 + 51 + 52 + 4
        #expect(state.queueCountOffset == firstQueue - 4)
        #expect(state.queues.map(\.size) == [1024, 1024])
        #expect(state.queues.map(\.sizeOffset) == [firstQueue, firstQueue + 16])
        #expect(state.queues[1].lastAvailableIndex == 0x14e2)
        #expect(state.queues[1].lastAvailableIndexOffset == firstQueue + 16 + 12)
        #expect(state.queues.map(\.vector) == [1, 2])
        #expect(state.queues.map(\.availableAddress) == [0x100, 0x200])
        #expect(state.queues.map(\.usedAddress) == [0x200, 0x400])
        #expect(state.subsections.map(\.name) == [
            "virtio/64bit_features", "virtio/virtqueues", "virtio/extra_state", "virtio_pci/modern_state", "virtio/started",
        ])
        #expect(state.modernQueues.map(\.size) == [1024, 1024])
        #expect(state.modernQueues.map(\.enabled) == [true, true])
        #expect(state.started == true)
        #expect(state.deviceState.isEmpty)
        #expect(state.problem == nil)
        #expect(state.byteCount == UInt64(builder.bytes.count))
    }

    @Test func theQueueSizeCheckIsAWarningByDefaultAndAnErrorAgainstAGivenSize() throws {
        let state = try VirtioDeviceState.decode(VirtioFieldBuilder().bytes[...], at: 0)
        let byDefault = state.findings()
        #expect(byDefault.map(\.kind) == [.virtqueueSize, .virtqueueSize])
        #expect(byDefault.map(\.severity) == [.warning, .warning])
        #expect(byDefault.map(\.offset) == state.queues.map(\.sizeOffset))
        #expect(byDefault[0].description == "virtqueue-size at offset \(state.queues[0].sizeOffset): virtqueue 0 has 1024 entries, more than QEMU's default queue-size 128: QEMU 11.1 refuses it (VQ 0 vring.num 1024 exceeds allocated max 128)")
        #expect(state.findings(queueSize: 128).map(\.severity) == [.error, .error])
        #expect(state.findings(queueSize: 1024).isEmpty)
    }

    @Test func whatVirtioLoadRefusesIsFound() throws {
        var builder = VirtioFieldBuilder()
        builder.queueSelector = 1024
        builder.queues = [(128, 0, 5, 9), (128, 0x1000, 300, 0xffff)]
        builder.broken = true
        let state = try VirtioDeviceState.decode(builder.bytes[...], at: 0)
        let findings = state.findings(queueSize: 128, usedIndexes: [1: 100])
        #expect(findings.map(\.kind) == [.queueSelector, .virtqueueAddress, .msixVector, .virtqueueInUse, .deviceBroken])
        #expect(findings[1].message == "virtqueue 0 has no descriptor table but last_avail_idx 0x5 (VQ 0 address 0x0 inconsistent with Host index 0x5)")
        #expect(findings[2].message == "virtqueue 0's MSI-X vector 9 is past the device's 3 vectors: the load fails (EINVAL)")
        #expect(findings[3].offset == state.queues[1].lastAvailableIndexOffset)
        #expect(findings[4].severity == .warning)

        // With packed rings (VIRTIO_F_RING_PACKED) there is no used index to check against.
        builder.features64 = 0x1_3000_0000 | VirtioDeviceState.packedRingFeature
        let packed = try VirtioDeviceState.decode(builder.bytes[...], at: 0)
        #expect(packed.usesPackedRings)
        #expect(!packed.findings(queueSize: 128, usedIndexes: [1: 100]).contains { $0.kind == .virtqueueInUse })
    }

    /// Bytes of the device's own between the queues and the subsections are kept as they are.
    @Test func aDevicesOwnStateIsFoundBeforeTheSubsections() throws {
        var builder = VirtioFieldBuilder()
        builder.deviceState = [0x05, 0x03, 0x61, 0x62, 0x63, 1, 2, 3, 0x05]
        let state = try VirtioDeviceState.decode(builder.bytes[...], at: 0)
        #expect(state.deviceState == builder.deviceState)
        #expect(state.subsections.count == 5)
        #expect(state.problem == nil)
    }

    @Test func aCutFieldNamesWhereItEnds() throws {
        let bytes = VirtioFieldBuilder().bytes
        #expect(throws: VirtioFinding.truncated("the PCI device", at: 100)) { try VirtioDeviceState.decode(bytes.prefix(100), at: 0) }
        #expect(throws: VirtioFinding.truncated("the virtqueues", at: 390)) { try VirtioDeviceState.decode(bytes.prefix(390), at: 0) }
        // Cut in the subsections: the queues decode, the rest is the problem.
        let cut = try VirtioDeviceState.decode(bytes.prefix(bytes.count - 10), at: 0)
        #expect(cut.queues.count == 2)
        #expect(cut.problem?.kind == .malformed)
    }

    /// The real QEMU 10.0 file: its vhost-user-fs device, cross-checked
    /// against the bytes at the offsets QEMU's `virtio_save` puts them.
    @Test func theFixtureFilesFileSystemDevice() throws {
        let reader = MigrationFileReader(input: try StateStreamInput(path: FieldDecoderFixtureTests.path), keepsSectionBodies: true)
        let devices = try DeviceStates.read(reader, device: "0000:00:01.0/vhost-user-fs")
        let section = try #require(devices.sections.first)
        #expect(devices.sections.count == 1)
        let state = try #require(try VirtioDeviceState.decode(section))
        #expect(state.offset == 63_851_279)
        #expect(state.queues.map(\.sizeOffset) == [63_851_662, 63_851_678])
        #expect(state.queues.map(\.size) == [1024, 1024])
        #expect(state.fileSystemConfig?.tag == "myfs")
        #expect(state.fileSystemConfig?.requestQueues == 1)
        #expect(state.pci.msixVectorCount == 3)
        #expect(state.subsections.map(\.name) == [
            "virtio/64bit_features", "virtio/virtqueues", "virtio/extra_state", "virtio_pci/modern_state", "virtio/started",
        ])
        #expect(state.subsections.last.map { $0.offset + $0.byteCount } == state.offset + state.byteCount)
        #expect(state.problem == nil)
        let bytes = try FieldDecoderFixtureTests.fileBytes()
        for queue in state.queues {
            let at = Int(queue.lastAvailableIndexOffset)
            #expect(UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) == queue.lastAvailableIndex)
            #expect(Int(queue.sizeOffset) + 12 == at)
        }
        #expect(state.findings(queueSize: 128).map(\.kind) == [.virtqueueSize, .virtqueueSize])
        #expect(state.findings(queueSize: 1024).isEmpty)
    }
}

import StatetoolKit
import Testing

/// Guest-physical addresses placed in the main RAM block by the x86 machines' layout.
@Suite struct GuestAddressTests {
    @Test func q35AndI440fxPlaceHighMemoryFrom4GiB() {
        let gib: UInt64 = 1 << 30
        // A 256 MiB q35 guest: all below 4 GiB, nothing past its end.
        #expect(UsedRingIndexes.blockOffset(ofGuestAddress: 0x638_c842, blockSize: 256 << 20, machineType: "pc-q35-10.0") == 0x638_c842)
        #expect(UsedRingIndexes.blockOffset(ofGuestAddress: 256 << 20, blockSize: 256 << 20, machineType: "pc-q35-10.0") == nil)
        // A 4 GiB q35 guest: 2 GiB below, the rest from 4 GiB on; the hole between maps nowhere.
        #expect(UsedRingIndexes.blockOffset(ofGuestAddress: 2 * gib - 2, blockSize: 4 * gib, machineType: "pc-q35-10.0") == 2 * gib - 2)
        #expect(UsedRingIndexes.blockOffset(ofGuestAddress: 3 * gib, blockSize: 4 * gib, machineType: "pc-q35-10.0") == nil)
        #expect(UsedRingIndexes.blockOffset(ofGuestAddress: 4 * gib + 16, blockSize: 4 * gib, machineType: "pc-q35-10.0") == 2 * gib + 16)
        #expect(UsedRingIndexes.blockOffset(ofGuestAddress: 6 * gib, blockSize: 4 * gib, machineType: "pc-q35-10.0") == nil)
        // i440fx keeps 3 GiB below 4 GiB from 3.5 GiB on.
        #expect(UsedRingIndexes.blockOffset(ofGuestAddress: 4 * gib, blockSize: 4 * gib, machineType: "pc-i440fx-10.0") == 3 * gib)
        // Another machine's layout is not known.
        #expect(UsedRingIndexes.blockOffset(ofGuestAddress: 0x1000, blockSize: gib, machineType: "virt-10.0") == nil)
    }
}

import StateStream
import Testing

@Suite struct IntegersTests {
    @Test func readsInTheStatedOrder() {
        let bytes: [UInt8] = [0x12, 0x34, 0x56, 0x78, 0x9a]
        #expect(bytes.readInteger(as: UInt32.self) == 0x1234_5678)
        #expect(bytes.readInteger(endianness: .little, as: UInt32.self) == 0x7856_3412)
        #expect(bytes[1...].readInteger(as: UInt16.self) == 0x3456)
        #expect(bytes.readInteger(as: UInt64.self) == nil)
        #expect([UInt8]().readInteger(as: UInt8.self) == nil)
    }

    @Test func writesWhatItReads() {
        #expect(UInt32(0x1234_5678).bytes(endianness: .big) == [0x12, 0x34, 0x56, 0x78])
        #expect(UInt32(0x1234_5678).bytes(endianness: .little) == [0x78, 0x56, 0x34, 0x12])
        #expect(UInt64(1).bytes(endianness: .little) == [1, 0, 0, 0, 0, 0, 0, 0])
        for value: UInt64 in [0, 1, 0xff, 0x1_0000_0000, .max] {
            #expect(value.bytes(endianness: .big).readInteger(endianness: .big) == value)
            #expect(value.bytes(endianness: .little).readInteger(endianness: .little) == value)
        }
    }
}

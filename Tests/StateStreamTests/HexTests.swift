import StateStream
import Testing

@Suite struct HexTests {
    @Test func twoDigitsPerByteSoNoTwoInputsShareAText() {
        #expect([UInt8]([0x01, 0x23]).hexString == "0123")
        #expect([UInt8]([0x12, 0x03]).hexString == "1203")
        #expect([UInt8]().hexString == "")
        #expect([UInt8]([0x00, 0xff, 0x0a]).hexString(separator: " ") == "00 ff 0a")
    }
}

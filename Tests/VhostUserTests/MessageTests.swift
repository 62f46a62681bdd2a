import Testing
@testable import VhostUser

@Suite struct MessageTests {
    @Test func requestIsEncodedLittleEndianWithItsHeader() {
        let message = Message(.setDeviceStateFD, payload: UInt32(1).bytes(endianness: .little) + UInt32(0).bytes(endianness: .little))
        #expect(message.encoded == [42, 0, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
        let acked = Message(.setBackendRequestFD, needReply: true)
        #expect(acked.encoded == [21, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test func replyHasFlagsFiveAndAU64() {
        let reply = Message.reply(to: 43, payload: Message.u64Payload(0x0102_0304_0506_0708))
        #expect(reply.flags.rawValue == 0x5)
        #expect(reply.encoded == [43, 0, 0, 0, 5, 0, 0, 0, 8, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1])
        #expect(reply.u64 == 0x0102_0304_0506_0708)
        #expect(Message.reply(to: 1, payload: [1, 2]).u64 == nil)
    }

    @Test func headerDecodes() {
        let header = Message.decodeHeader([15, 0, 0, 0, 5, 0, 0, 0, 8, 0, 0, 0][...])
        #expect(header.request == 15 && header.flags == 5 && header.size == 8)
    }

    @Test func featureBitsMatchTheSpecification() {
        #expect(ProtocolFeatures.deviceState.rawValue == 0x8_0000)
        #expect(ProtocolFeatures.replyAck.rawValue == 0x8)
        #expect(VirtioFeatures.protocolFeatures == 0x4000_0000)
        #expect(VirtioFeatures.logAll == 0x400_0000)
        #expect(Request.checkDeviceState.rawValue == 43)
        #expect(DeviceStateFDReply.noFileDescriptor == 0x100)
    }
}

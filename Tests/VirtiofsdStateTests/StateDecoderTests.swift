import Testing
import VirtiofsdState

/// `VirtiofsdStateDecoder` fed a payload in pieces: the same state, or the same
/// error at the same offset, as the whole payload decoded at once; and a
/// payload that is no state given up at its first impossible byte.
@Suite struct StateDecoderTests {
    /// Decodes `payload` fed `pieceSize` bytes at a time, its length unknown.
    static func streamed(_ payload: [UInt8], pieceSize: Int) -> Result<VirtiofsdState, VirtiofsdDecodingError> {
        var decoder = VirtiofsdStateDecoder()
        var start = 0
        while start < payload.count {
            decoder.feed(payload[start..<min(payload.count, start + pieceSize)])
            start += pieceSize
        }
        return Result { () throws(VirtiofsdDecodingError) in try decoder.finish() }
    }

    static func whole(_ payload: [UInt8]) -> Result<VirtiofsdState, VirtiofsdDecodingError> {
        Result { () throws(VirtiofsdDecodingError) in try VirtiofsdState(decoding: payload) }
    }

    @Test(arguments: ["s1-A-running", "s2-verify-handles", "s3-file-handles"], [1, 3, 7, 64, 4096, 1 << 20])
    func everySplitOfARealStateDecodesTheSame(capture: String, pieceSize: Int) throws {
        let payload = try fixturePayload(capture)
        let state = try VirtiofsdState(decoding: payload)
        #expect(try Self.streamed(payload, pieceSize: pieceSize).get() == state)
    }

    static let damaged: [(name: String, payload: [UInt8])] = [
        // The root's option tag is 2.
        ("option tag", [0x01, 0x01, 0x01, 0x03, 0x00, 0x02]),
        // Location tag 9.
        ("location tag", [0x01, 0x01, 0x01, 0x03, 0x09, 0x00, 0x00, 0x00]),
        // A complete V1 state with no inodes, then two more bytes.
        ("trailing", [0x00, 0x00, 0x05, 0x00, 0x07, 0, 0, 0, 0, 0xAA, 0xBB]),
        // Cut after the root inode, where next_inode is due.
        ("truncated", [0x01, 0x01, 0x01, 0x03, 0x00, 0x00]),
        // A name longer than any path.
        ("long name", [0x01, 0x02, 0x01, 0x02, 0x00, 0x00, 0x02, 0x01, 0x01, 0x01] + Postcard.varint(5000) + Array(repeating: 0x61, count: 5000)),
    ]

    @Test(arguments: damaged)
    func aBrokenPayloadFailsAtTheSameOffsetInPieces(name: String, payload: [UInt8]) {
        let whole = Self.whole(payload)
        #expect(throws: VirtiofsdDecodingError.self) { try whole.get() }
        for pieceSize in [1, 2, 5, payload.count] {
            #expect(Self.streamed(payload, pieceSize: pieceSize) == whole, "\(name), pieces of \(pieceSize)")
        }
    }

    @Test func theErrorsSayWhereAndWhat() {
        let descriptions = Self.damaged.map { Self.describe(Self.whole($0.payload)) }
        #expect(descriptions == [
            "invalid-option-tag at payload offset 5: inodes[0].file_handle: option tag 2, not 0 or 1",
            "unknown-tag at payload offset 4: inodes[0].location: unknown variant 9",
            "trailing-bytes at payload offset 9: 2 bytes follow the state",
            "truncated at payload offset 6: the payload ends inside next_inode",
            "too-long at payload offset 10: inodes[1].location.filename: 5000 bytes, more than any path (4096)",
        ])
    }

    static func describe(_ result: Result<VirtiofsdState, VirtiofsdDecodingError>) -> String {
        if case .failure(let error) = result { return error.description }
        return "decoded"
    }

    /// Zero pages: a V1 state with nothing in it ends at byte 9, and the rest is
    /// trailing: the decoder gives up with the first piece and keeps nothing.
    @Test func zeroPagesAreGivenUpAtOnce() {
        var decoder = VirtiofsdStateDecoder()
        let page = [UInt8](repeating: 0, count: 65536)
        decoder.feed(page)
        let error = decoder.error
        #expect(error?.kind == .trailingBytes)
        #expect(error?.offset == 9)
        for _ in 0..<63 { decoder.feed(page) }
        #expect(!decoder.beginsLikeState)
        #expect(throws: VirtiofsdDecodingError.self) { try decoder.finish() }
        do {
            _ = try decoder.finish()
        } catch {
            #expect(error.description == "trailing-bytes at payload offset 9: \(64 * 65536 - 9) bytes follow the state")
        }
    }

    /// A damaged real state still begins like one: inspect reports why it does not decode.
    @Test func aDamagedStateBeginsLikeOne() throws {
        var payload = try fixturePayload("s1-A-running")
        payload[6] = 2
        var decoder = VirtiofsdStateDecoder()
        decoder.feed(payload[..<4096])
        #expect(decoder.error?.kind == .invalidOptionTag)
        #expect(decoder.beginsLikeState)
    }
}

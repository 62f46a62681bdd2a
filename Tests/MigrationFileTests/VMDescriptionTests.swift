import Foundation
import MigrationFile
import StateStream
import SystemPackage
import Testing

/// `VMDescription` on the sample file's JSON: what it says of each device.
@Suite struct VMDescriptionTests {
    static let sample = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Samples/two-devices.mig").path

    @Test func theSampleDescribesItsDevices() throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.sample)))
        // The record is 0x06, a be32 length and the JSON: 773 bytes at the end.
        let description = try VMDescription.decode(Array(bytes.suffix(773 - 5)))
        #expect(description.pageSize == 4096)
        #expect(description.devices.map(\.name) == ["timer", "0000:00:04.0/vhost-user-fs", "0000:00:03.0/virtio-net"])
        let fs = try #require(description.device(for: SectionIdentity(id: 2, name: "0000:00:04.0/vhost-user-fs", instanceID: 0, version: 0)))
        #expect(fs.backEndStateByteCount == 9396)
        // The virtio field, the 27-byte subsection header and the state.
        #expect(fs.bodyByteCount == 40 + 27 + 9396)
        #expect(description.device(for: SectionIdentity(id: 2, name: "0000:00:04.0/vhost-user-fs", instanceID: 1, version: 0)) == nil)
        #expect(description.devices[0].fields.map(\.byteCount) == [8, 8, 8])
    }

    @Test func theTrailerIsFoundFromTheEndOfTheFile() throws {
        let file = try FileDescriptor.open(FilePath(Self.sample), .readOnly)
        defer { try? file.close() }
        let size = UInt64(try Data(contentsOf: URL(fileURLWithPath: Self.sample)).count)
        let found = try #require(try VMDescription.readTrailer(of: file, size: size))
        #expect(found.devices.count == 3)
        #expect(try VMDescription.readTrailer(of: file, size: size - 1) == nil)
    }

    /// A tail that cannot be read is an error naming why, not a file without a
    /// description (a descriptor opened for writing only: EBADF).
    @Test func aTailThatCannotBeReadIsAnError() throws {
        let file = try FileDescriptor.open(FilePath(Self.sample), .writeOnly)
        defer { try? file.close() }
        #expect(throws: InputError.readFailed(.badFileDescriptor)) { try VMDescription.readTrailer(of: file, size: 14749) }
    }
}

import MigrationFile
import StatetoolKit
import Testing

/// What `extract` names its files: never a path out of the folder it was given.
@Suite struct StateExtractionTests {
    static func section(_ name: String, id: UInt32 = 7) -> SectionIdentity {
        SectionIdentity(id: id, name: name, instanceID: 0, version: 1)
    }

    @Test func aDeviceNameBecomesOneFileName() {
        #expect(StateExtraction.fileName(for: Self.section("0000:00:01.0/vhost-user-fs"), form: .stream) == "0000:00:01.0_vhost-user-fs.state")
        #expect(StateExtraction.fileName(for: Self.section("0000:00:03.0/virtio-net"), form: .payload) == "0000:00:03.0_virtio-net.payload")
    }

    @Test(arguments: ["../x", "/etc/passwd", "a/../../b"])
    func aNameWithSlashesStaysInTheFolder(name: String) {
        let file = StateExtraction.fileName(for: Self.section(name), form: .stream)
        #expect(!file.contains("/"))
    }

    @Test(arguments: ["", ".", ".."])
    func aNameThatIsNoFileNameIsReplacedByTheSectionID(name: String) {
        #expect(StateExtraction.fileName(for: Self.section(name, id: 12), form: .stream) == "section-12.state")
    }
}

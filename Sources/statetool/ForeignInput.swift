import LibvirtSaveImage
import MigrationFile

/// What a command that reads a state stream may be handed instead: a whole
/// QEMU migration file or a libvirt save image, told by its magic.
///
/// Neither magic is a chunk length QEMU writes (it never frames a chunk above
/// 1 MiB; `QEVM` would declare 1,363,498,573 bytes, `Libv` 1,281,974,902), so
/// no state stream is taken for one. Read as a stream, such a file gives an
/// oversized first chunk and a truncated second one: true, and no help.
enum ForeignInput: Equatable {
    case migrationFile
    case saveImage

    /// How many leading bytes tell them (the longer magic is libvirt's).
    static let prefixLength = SaveImageHeader.magicPrefix.count

    /// What `prefix`, the first framed bytes of an input, says it is; `nil`
    /// for anything else.
    init?(prefix: [UInt8]) {
        if MigrationFormat.startsWithMagic(prefix) {
            self = .migrationFile
        } else if SaveImageHeader.recognises(prefix) {
            self = .saveImage
        } else {
            return nil
        }
    }

    /// The refusal of `path`: what it is, and the commands that read it.
    func refusal(of path: String) -> String {
        let what: String
        switch self {
        case .migrationFile: what = "a QEMU migration file (QEVM magic)"
        case .saveImage: what = "a libvirt save image (LibvirtQemud magic)"
        }
        return "\(path): error: not-a-state-stream at offset 0: \(what), not a state stream: "
            + "statetool extract \(path) writes the back-end states it holds as streams, statetool migration ls \(path) "
            + "lists it; diff --semantic, preflight and retarget read it as it is"
    }
}

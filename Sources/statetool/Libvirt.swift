import ArgumentParser

struct Libvirt: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Look inside libvirt save images.",
        discussion: """
            A libvirt save image (virsh save, virsh managedsave, /var/lib/libvirt/qemu/save) is \
            libvirt's 92-byte header, the domain XML and the migration cookie, then QEMU's \
            migration stream, raw or compressed as the header's format says (raw, gzip, bzip2, xz, \
            zstd; lzop and sparse are named but not read). Every command that takes a migration \
            file takes a save image as it is: migration ls (which first prints the image's header), \
            extract, preflight, diff --semantic, retarget and migration replace, which write a save \
            image back in its own format. Offsets count bytes of the image decompressed, libvirt's \
            header included.
            """,
        subcommands: [LibvirtXML.self]
    )
}

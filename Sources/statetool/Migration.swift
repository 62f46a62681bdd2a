import ArgumentParser

struct Migration: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Look inside whole QEMU migration files.",
        discussion: """
            A migration file (migrate file:..., exec:cat > ..., a saved VM) holds the guest's RAM, \
            every device's state and, for vhost-user-fs and vhost-user net devices, the back-end's \
            chunk-framed state stream. statetool extract writes that stream out.
            """,
        subcommands: [MigrationList.self, MigrationShow.self, MigrationRAM.self, MigrationReplace.self]
    )
}

import ArgumentParser

@main
struct Statetool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "statetool",
        abstract: "Inspect and check the back-end state streams of QEMU live migration.",
        discussion: """
            A vhost-user back-end (virtiofsd, vhost-user net) hands its internal state to QEMU \
            through a pipe; QEMU stores it in the migration stream as a chunk-framed state stream: \
            [be32 length][bytes] repeated, ended by a zero length. statetool reads such streams, \
            raw or zstd-compressed (detected from the content), from a file or from standard \
            input (-), with bounded memory whatever their size.

            EXIT STATUS
              0   the stream is valid
              1   the stream is invalid (an error; with --strict, a warning too)
              2   an input could not be read
              64  the command line is wrong
            """,
        version: "0.1.0",
        subcommands: [Validate.self, Inspect.self]
    )
}

import ArgumentParser
import MigrationFile
import StateStream
import StatetoolKit
import SystemPackage

struct MigrationRAM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ram",
        abstract: "Write each RAM block of a migration file as a sparse file.",
        discussion: """
            Writes every RAM block the file's RAM section lists (or the one --block names) to \
            its own file in the folder -o names, of the block's size, each page at its address \
            in the block: the guest's memory as it was saved. Zero pages, and pages the file \
            never holds, are holes. A block's name is made a file name by writing every byte \
            other than letters, digits and . _ - + @ as %XX (/rom@etc/acpi/tables becomes \
            %2From@etc%2Facpi%2Ftables, .. becomes %2E%2E): no output lands outside the folder.

            Regular files, compressed files and pipes are read front to back, their pages \
            written as they come. A mapped-ram file (QEMU 9.0 on) keeps each page at a fixed \
            offset: its present pages are copied inside the kernel (copy_file_range) run by \
            run; it must be the regular, uncompressed file. XBZRLE-encoded pages are refused.

            Each file is written to a temporary file and put in place only when the whole \
            migration file reads without error. One line per block says where it went, its \
            size and how many data and zero pages it took.

            Exit status: 0 every block written, 1 a problem in the file or no block of that \
            name, 2 unreadable input or unwritable output, 64 usage error.
            """
    )

    @Option(name: .shortAndLong, help: ArgumentHelp("The folder the blocks go to; it must exist.", valueName: "dir"))
    var output: String

    @Option(help: ArgumentHelp("Write only this block (its name, e.g. pc.ram).", valueName: "name"))
    var block: String?

    @OptionGroup var progress: ProgressOption

    @Argument(help: ArgumentHelp("The migration file or libvirt save image: a file, or - for standard input. Raw or compressed (zstd, gzip, bzip2, xz).", valueName: "file"))
    var file: String

    func run() throws {
        let input = try CommandSupport.open(file)
        guard (try? FilePath(output).stat())?.type == .directory else {
            throw CommandFailure(.unreadable, "\(output): error: no such folder")
        }
        var progressLine = ProgressLine(for: input.stream, quiet: progress.quiet)
        let written: [RAMExtraction.Written]
        do {
            defer { progressLine.clear() }
            written = try RAMExtraction(input: input, directory: output, block: block).run { event in
                if case .progress(let bytes) = event { progressLine.update(bytes: input.stream.compressedBytesRead ?? bytes) }
            }
        } catch let failure as RAMExtraction.Failure {
            switch failure {
            case .output: throw CommandFailure(.unreadable, "\(file): error: \(failure)")
            default: throw CommandFailure(.invalid, "\(file): error: \(failure)")
            }
        } catch {
            throw CommandSupport.fail(error, file: file)
        }
        let standardOutput = StandardOutput()
        for block in written {
            try standardOutput.write(
                "RAM block \(block.block.name): \(block.block.byteCount) bytes -> \(block.path) (\(block.dataPages) data pages, \(block.zeroPages) zero pages)\n")
        }
        try standardOutput.flush()
    }
}

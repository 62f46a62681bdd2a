import ArgumentParser
import StateStream

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check that state streams are well formed.",
        discussion: """
            Reads each stream to its end and checks its framing and end marker. Silent when every \
            stream is valid (one line per stream with --verbose). Each problem is one line on \
            standard error: FILE: SEVERITY: KIND at offset N: what was expected. Offsets count \
            bytes of the framed (decompressed) stream, except for compression-error, which gives \
            an offset in the compressed input. A broken stream also gets a line on its valid prefix.

            Problem kinds: missing-terminator, truncated-length, truncated-chunk, trailing-data, \
            compression-error (errors); oversized-chunk (a warning unless --strict). A whole QEMU \
            migration file or libvirt save image is not-a-state-stream at offset 0, refused before \
            it is read (extract and migration ls read it).

            Exit status: 0 all valid, 1 some stream invalid, 2 some input unreadable (this wins \
            over 1), 64 usage error.
            """
    )

    @OptionGroup var reading: ReadingOptions

    @Flag(name: .shortAndLong, help: "Print one line for each valid stream too.")
    var verbose = false

    @Argument(help: ArgumentHelp("The streams to check: files, or - for standard input.", valueName: "file"))
    var files: [String]

    func run() throws {
        // Every file is checked and reported in turn; the worst status wins.
        let worst = files.map(check).max() ?? .success
        if worst != .success { throw CommandFailure(worst) }
    }

    private func check(_ file: String) -> ExitStatus {
        let analysis: StreamAnalysis
        do {
            analysis = try StreamAnalysis.analyze(path: file, options: reading, computeDigest: false)
        } catch {
            let failure = CommandSupport.fail(error, file: file)
            failure.printMessages()
            return failure.status
        }
        CommandSupport.reportProblems(of: analysis, file: file)
        guard analysis.isValid(strict: reading.strict) else { return .invalid }
        if verbose {
            do {
                try StandardOutput.print("\(file): valid: \(analysis.chunkCount) chunks, \(analysis.payloadBytes) payload bytes, \(analysis.compression.rawValue)")
            } catch {
                error.printMessages()
                return error.status
            }
        }
        return .success
    }
}

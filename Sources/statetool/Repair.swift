import ArgumentParser
import FoundationEssentials
import StateStream
import StatetoolKit

struct Repair: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a valid stream out of a damaged one, saying exactly what changed.",
        discussion: """
            Keeps every complete chunk as it was; drops the partial tail of a truncated chunk (or, \
            with --keep-partial, keeps its present bytes as a last chunk); drops a partial length \
            field and any data after the terminator; adds a missing terminator; ends a stream whose \
            zstd layer breaks where decoding stopped. The output always validates, and a valid input \
            comes out byte for byte the same (decompressed, unless --zstd).

            The report (one line per change, or --json) goes to standard output, or to standard \
            error when the stream itself goes to standard output. A truncated chunk longer than 1 MiB \
            can only be mended in a regular output file, not a pipe or --zstd output.

            Exit status: 0 written, 1 a migration file or save image given as the stream (refused), \
            2 input unreadable or output not writable, 64 usage error.
            """
    )

    @OptionGroup var output: OutputOptions

    @Flag(help: "Keep the present bytes of a truncated chunk as a last, shorter chunk.")
    var keepPartial = false

    @OptionGroup var compression: StreamCompressionOptions

    @OptionGroup var format: JSONOption

    @Argument(help: ArgumentHelp("The stream: a file, or - for standard input. Raw or compressed (zstd, gzip, bzip2, xz).", valueName: "stream"))
    var stream: String

    func run() throws {
        let input = try CommandSupport.openStream(stream)
        var progress = ProgressLine(for: input, quiet: output.quiet)
        let report: StreamRepair.Report
        do {
            let file = try output.open(protecting: [stream])
            // Unbuffered: mending a long truncated chunk rewrites the file itself.
            let sink: any ByteSink = compression.zstd ? try compression.settings.compressor(into: file) : file
            report = try StreamRepair.repair(input, to: sink, keepPartial: keepPartial) { reader, _ in
                progress.update(bytes: input.bytesConsumed(by: reader))
            }
            progress.clear()
            try file.commit()
        } catch {
            progress.clear()
            throw CommandSupport.fail(error, file: stream)
        }
        let text = format.json ? try JSONText.document(RepairReport(input: stream, output: output.output, report: report), schema: "repair") : describe(report)
        if output.output == "-" { StandardError.write(text) } else { try StandardOutput.print(text) }
    }

    private func describe(_ report: StreamRepair.Report) -> String {
        let written = "\(report.outputChunks) \(report.outputChunks == 1 ? "chunk" : "chunks"), \(report.outputPayloadBytes) payload bytes, \(report.outputFramedBytes) bytes"
        guard !report.changes.isEmpty else {
            return "\(stream): valid, copied unchanged: \(written)"
        }
        let dropped = report.changes.map(\.droppedBytes).reduce(0, +)
        return (["\(stream): repaired into \(output.output == "-" ? "standard output" : output.output):"]
            + report.changes.map { "  \($0)" }
            + ["  wrote \(written); \(dropped) input bytes left out"]).joined(separator: "\n")
    }
}

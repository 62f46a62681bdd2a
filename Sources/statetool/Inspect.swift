import ArgumentParser
import StateStream

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarise a state stream: chunks, sizes, payload digest, problems.",
        discussion: """
            Reads the stream to its end and prints its compression, chunk count, payload and \
            framing sizes, chunk sizes (min / median / max and a power-of-two histogram), the \
            terminator offset, the SHA-256 of the complete chunks' payload, and any problems. \
            For a broken stream the counts and digest cover the valid prefix.

            With --json, one JSON object: file, compression, valid, chunks, payloadBytes, \
            framedBytes (decompressed bytes read, trailing data included), compressedBytes (zstd \
            input, else null), framingOverhead, payloadSHA256, chunkSizes {min, median, max}, \
            chunkHistogram [{lowerBound, upperBound, count}], terminatorOffset (or null), \
            problems [{kind, severity, offset, compressedOffset, message}], omittedProblems, \
            validPrefix {bytes, chunks, payloadBytes}, and with --chunks chunkList \
            [{index, offset, length}] (written while reading, so it comes first; key order \
            carries no meaning).

            The exit status follows validate: 0 valid, 1 invalid, 2 unreadable, 64 usage error.
            """
    )

    @OptionGroup var reading: ReadingOptions

    @Flag(help: "List every chunk: index, offset of its length field, length.")
    var chunks = false

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Argument(help: ArgumentHelp("The stream: a file, or - for standard input.", valueName: "file"))
    var file: String

    func run() throws {
        let output = StandardOutput()
        var listed = 0
        if chunks {
            output.write(json ? "{\"chunkList\":[" : "chunk        offset      length\n")
        }
        let analysis: StreamAnalysis
        do {
            analysis = try StreamAnalysis.analyze(
                path: file, options: reading, computeDigest: true, showProgress: !chunks
            ) { chunk in
                guard chunks else { return }
                if json {
                    output.write("\(listed == 0 ? "" : ","){\"index\":\(chunk.index),\"offset\":\(chunk.offset),\"length\":\(chunk.length)}")
                } else {
                    output.write(
                        Format.padded(chunk.index, to: 5) + Format.padded(chunk.offset, to: 14)
                            + Format.padded(chunk.length, to: 12) + "\n")
                }
                listed += 1
            }
        } catch {
            output.flush()
            throw CommandSupport.fail(error, file: file)
        }
        let report = InspectReport(file: file, analysis: analysis, strict: reading.strict)
        if json {
            var object = try report.jsonData()
            if chunks {
                object.removeFirst()
                output.write("],")
            }
            output.write(object)
            output.write("\n")
        } else {
            if chunks { output.write("\n") }
            output.write(report.text)
        }
        output.flush()
        if !report.valid { throw ExitStatus.invalid }
    }
}

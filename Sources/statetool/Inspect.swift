import FoundationEssentials
import ArgumentParser
import StateStream
import StatetoolKit

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarise a state stream: chunks, sizes, payload digest, problems.",
        discussion: """
            Reads the stream to its end and prints its compression, chunk count, payload and \
            framing sizes, chunk sizes (min / median / max and a power-of-two histogram), the \
            terminator offset, the SHA-256 of the complete chunks' payload, and any problems. \
            For a broken stream the counts and digest cover the valid prefix.

            With --json, one JSON object; `statetool schema inspect` prints its JSON Schema, \
            which names and describes every key, and the object's "schema" key names that schema.

            A payload that is a virtiofsd state (postcard-encoded PassthroughFs, V1 or V2; \
            recognised by its version byte and a first inode that is the root) gets a summary: \
            format version, inode counts by location kind, open handles, next ids, negotiated \
            options, V2's mount paths, and any inconsistency (duplicate ids, parent chains that \
            loop or name missing inodes, handles on missing inodes). --decode lists every inode \
            (id, refcount, location kind, path relative to the shared directory, recorded file \
            handle) and every open handle (id, inode, open flags in words, path). With --json it goes \
            under the key virtiofsd, or virtiofsdError (a finding) for one that does not decode. The payload \
            is decoded as it streams by, one inode at a time, and never held: decoding keeps what \
            the state holds (its inodes and handles) and stops, dropping everything, at the first \
            byte that cannot be part of a state, so any other payload costs no memory.

            A payload that begins with passt's 8-byte magic (b1bb1d1b0bb1d1b0) is decoded as a \
            passt state (layout version 2, passt from 2025-03 on): its version and compat version, \
            the guest addresses passt observed and its TCP flows; --decode lists every flow (both \
            sides' endpoints and interfaces, TCP state, sequence and acknowledgement numbers, \
            windows, MSS, timestamp, queue lengths). With --json it goes under the key passt, or \
            passtError (a finding) for one passt could not load either (cut short, a version it \
            cannot read, a count or queue beyond its limits). Queue bytes are \
            hashed as they stream by, never held. Any other payload is left opaque.

            The exit status follows validate: 0 valid, 1 invalid, 2 unreadable, 64 usage error.
            """
    )

    @OptionGroup var reading: ReadingOptions

    @Flag(help: "List every chunk: index, offset of its length field, length.")
    var chunks = false

    @Flag(help: "List every inode and open handle of a virtiofsd payload, every flow of a passt one.")
    var decode = false

    @OptionGroup var format: JSONOption

    @Argument(help: ArgumentHelp("The stream: a file, or - for standard input.", valueName: "file"))
    var file: String

    func run() throws {
        let input = try CommandSupport.openStream(file)
        let output = StandardOutput()
        var listed = 0
        if chunks {
            try output.write(format.json ? "{\"chunkList\":[" : "chunk        offset      length\n")
        }
        // The chunk list is written while the stream is read; a write that fails
        // stops the listing and fails the command once the reading is done.
        var listingFailure: CommandFailure?
        var progress = ProgressLine(for: input, quiet: reading.quiet || chunks)
        let report: StreamInspection
        do {
            defer { progress.clear() }
            report = try StreamInspection.inspect(
                input, file: file, maximumChunkLength: reading.chunkLimit, strict: reading.strict,
                onChunk: { chunk in
                    guard chunks, listingFailure == nil else { return }
                    do throws(CommandFailure) {
                        if format.json {
                            try output.write("\(listed == 0 ? "" : ","){\"index\":\(chunk.index),\"offset\":\(chunk.offset),\"length\":\(chunk.length)}")
                        } else {
                            try output.write(
                                TextFormat.padded(chunk.index, to: 5) + TextFormat.padded(chunk.offset, to: 14)
                                    + TextFormat.padded(chunk.length, to: 12) + "\n")
                        }
                    } catch {
                        listingFailure = error
                    }
                    listed += 1
                },
                onProgress: { progress.update(bytes: $0) })
        } catch {
            try output.flush()
            throw CommandSupport.fail(error, file: file)
        }
        if let listingFailure { throw listingFailure }
        if format.json {
            // Written as it is formatted: a state's inodes and handles a batch at a time.
            var opening = chunks
            if chunks { try output.write("],") }
            try report.writeJSON(schema: "inspect", encoder: .statetool) { bytes in
                // After the chunk list, the object's keys go on in its object.
                try output.write(opening ? Array(bytes.dropFirst()) : bytes)
                opening = false
            }
            try output.write("\n")
        } else {
            if chunks { try output.write("\n") }
            try output.write(report.text)
            if decode, case .success(let state)? = report.payload?.result { try output.write(state.listing) }
        }
        try output.flush()
        if !report.valid { throw CommandFailure(.invalid) }
    }
}

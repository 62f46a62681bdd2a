import ArgumentParser
import LibvirtSaveImage
import MigrationFile
import StateStream
import StatetoolKit

/// Writes a copy of a migration file with one device's back-end state
/// replaced, checks what was written by walking it again, and only then puts
/// it in place: for `migration replace` and `retarget`. A libvirt save image
/// is written as a save image: its header and XML as they were, the stream in
/// the image's own format.
struct MigrationRewrite {
    let file: String
    let device: String?
    let output: OutputOptions
    let compression: StreamCompressionOptions
    /// How the input is read (`--full-walk`).
    let strategy: ReadingStrategy

    /// What was written and, for a file output, the walk that checked it.
    struct Result {
        let summary: StateReplacement.Summary
        let check: MigrationFileSurvey?
    }

    /// Replaces the state in `input` (opened from ``file``) with `state`;
    /// `protecting` names the other inputs the output must not overwrite.
    func run(
        _ input: Input, selecting selects: ((BackEndStateLocation) -> Bool)? = nil, with state: ReplacementState,
        protecting others: [String] = []
    ) throws -> Result {
        if input.saveImage != nil && compression.zstd {
            throw CommandFailure(.usage, "\(file): error: a libvirt save image is written in its own format (its header says which): leave out --zstd")
        }
        let outputFile = try output.open(protecting: [file] + others)
        let destination: StateReplacement.Output
        let compressor: (any ByteSink)?
        if let image = input.saveImage {
            let copy = try image.beginCopy(in: outputFile)
            destination = copy.output
            compressor = copy.compressor
        } else if compression.zstd {
            let sink = try compression.sink(into: outputFile)
            destination = .sink(sink)
            compressor = sink
        } else {
            destination = .file(outputFile)
            compressor = nil
        }
        let stream = input.stream
        var progress = ProgressLine(for: stream, quiet: output.quiet)
        let summary = try StateReplacement.replace(
            in: stream, device: device, selecting: selects, with: state, to: destination, strategy: strategy
        ) { event in
            if case .progress(let bytes) = event { progress.update(bytes: stream.compressedBytesRead ?? bytes) }
        }
        progress.clear()
        try compressor?.finish()
        var check: MigrationFileSurvey?
        if let readBack = try outputFile.openForReadingBack() {
            let written = try input.saveImage?.checkCopy(readBack)
                ?? StateStreamInput(source: FileDescriptorSource(readBack, closesOnDeinit: false))
            // Read back as the input was read: from its end, when the rest is the kernel's copy of the input.
            let strategy: ReadingStrategy = summary.reading?.path == .tail ? .placeFromEnd : .walk(reason: "a written file is checked whole")
            check = try StateReplacement.verify(written, against: summary, strategy: strategy)
            try? readBack.close()
        }
        try outputFile.commit()
        return Result(summary: summary, check: check)
    }

    /// The lines that say what changed in the file.
    static func describe(_ summary: StateReplacement.Summary, file: String, checked: Bool) -> String {
        let location = summary.location
        var text = "replaced the back-end state of \(location.section.name) (section \(location.section.id), \(location.subsection.name)) "
        text += "at offset \(location.streamOffset): \(summary.oldLength) -> \(summary.newLength) bytes\n"
        for change in summary.descriptionChanges {
            text += "JSON description: \(change.path) \(change.old) -> \(change.new)\n"
        }
        if summary.descriptionChanges.isEmpty && summary.descriptionOffset != nil {
            text += "JSON description: unchanged (the same size)\n"
        }
        if summary.copiedInKernel > 0 {
            text += "copied \(summary.copiedInKernel) bytes of \(file) inside the kernel (copy_file_range)\n"
        }
        if checked { text += "checked: the written file reads back cleanly, every described size matches, the new state is in place\n" }
        return text
    }
}

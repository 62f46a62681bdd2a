import LibvirtSaveImage
import MigrationFile
import StateStream
import SystemCalls

/// A copy of a migration file with one device's back-end state replaced,
/// written to a temporary output, read back and checked, and only then put in
/// place: what `migration replace` and `retarget` write. A libvirt save image
/// is written as a save image: its header and XML as they were, the stream in
/// the image's own format.
public struct MigrationFileRewrite {
    /// The migration file or save image to copy.
    public let input: Input
    /// The device whose state to replace (idstr or section id); `nil` for the
    /// only one, or the one `selecting` picks.
    public let device: String?
    /// How to write a migration file (a save image keeps its own format).
    public let compression: OutputCompression
    /// How the input is read (from its end where that checks out, or walked).
    public let strategy: ReadingStrategy

    /// A rewrite of `input`.
    public init(_ input: Input, device: String?, compression: OutputCompression = .none, strategy: ReadingStrategy = .placeFromEnd) {
        self.input = input
        self.device = device
        self.compression = compression
        self.strategy = strategy
    }

    /// What was written and, for a file output, the walk that checked it.
    public struct Result: Sendable {
        /// Where the state was and what replaced it.
        public let summary: StateReplacement.Summary
        /// The reading of the written file that checked it; `nil` when the
        /// output cannot be read back (standard output).
        public let check: MigrationFileSurvey?
    }

    /// Why a rewrite cannot be made as asked.
    public enum Failure: Error, Sendable, CustomStringConvertible {
        /// A save image is written in its own format: no other compression applies.
        case compressedSaveImage

        /// What is wrong, naming the option to change.
        public var description: String {
            switch self {
            case .compressedSaveImage:
                return "a libvirt save image is written in its own format (its header says which): leave out --zstd"
            }
        }
    }

    /// Writes the copy into `output` with the state replaced by `state`, reads
    /// it back and checks it (as the input was read: from its end when what
    /// precedes the device sections is the kernel's copy of the input), and
    /// commits `output`. On any failure `output` is left uncommitted: nothing
    /// is put in place.
    ///
    /// - Parameters:
    ///   - output: Where the copy is written.
    ///   - selects: Without ``device``, picks the state to replace.
    ///   - state: The new back-end state.
    ///   - progress: Called with the bytes of the input read so far (compressed
    ///     bytes for a compressed input).
    /// - Throws: ``Failure``, `StateReplacement.Failure`, `InputError`, `OutputError`.
    public func write(
        to output: OutputFile, selecting selects: ((BackEndStateLocation) -> Bool)? = nil, with state: ReplacementState,
        progress: (UInt64) -> Void = { _ in }
    ) throws -> Result {
        if input.saveImage != nil && compression != .none { throw Failure.compressedSaveImage }
        let destination: StateReplacement.Output
        let compressor: (any ByteSink)?
        if let image = input.saveImage {
            let copy = try image.beginCopy(in: output)
            destination = copy.output
            compressor = copy.compressor
        } else if compression != .none {
            let sink = try compression.sink(into: output)
            destination = .sink(sink)
            compressor = sink
        } else {
            destination = .file(output)
            compressor = nil
        }
        let stream = input.stream
        let summary = try StateReplacement.replace(
            in: stream, device: device, selecting: selects, with: state, to: destination, strategy: strategy
        ) { event in
            if case .progress(let bytes) = event { progress(stream.compressedBytesRead ?? bytes) }
        }
        try compressor?.finish()
        var check: MigrationFileSurvey?
        if let readBack = try output.openForReadingBack() {
            let reader = OwnedDescriptor(taking: readBack)
            let written = try input.saveImage?.checkCopy(reader.descriptor)
                ?? StateStreamInput(source: FileDescriptorSource(reader.descriptor, closesOnDeinit: false))
            // Read back as the input was read: from its end, when the rest is the kernel's copy of the input.
            let strategy: ReadingStrategy = summary.reading?.path == .tail ? .placeFromEnd : .walk(reason: "a written file is checked whole")
            check = try StateReplacement.verify(written, against: summary, strategy: strategy)
        }
        try output.commit()
        return Result(summary: summary, check: check)
    }
}

/// What `migration replace --json` prints, and `retarget --json` under
/// `migration`: where the state was replaced, its old and new lengths, the
/// description's sizes that changed, and how the copy was written and checked.
public struct MigrationRewriteReport: Encodable, Sendable {
    /// The input as the user named it.
    public let file: String
    /// The device whose state was replaced (its idstr).
    public let device: String
    /// Its section id.
    public let section: UInt32
    /// The subsection that holds the state (`vhost-user-fs-backend`).
    public let subsection: String
    /// The offset of the state's stream in the input.
    public let streamOffset: UInt64
    /// The old stream's length in bytes.
    public let oldLength: UInt64
    /// The new stream's length in bytes.
    public let newLength: UInt64
    /// The SHA-256 of the new state's payload, in hex.
    public let newPayloadSHA256: String
    /// The JSON description's sizes that changed with the state's length.
    public let descriptionChanges: [StateReplacement.DescriptionChange]
    /// Bytes copied from the input inside the kernel (`copy_file_range`).
    public let copiedInKernel: UInt64
    /// The output as the user named it.
    public let output: String
    /// Whether the written file was read back and checked (not for standard output).
    public let checked: Bool
    /// How the input was read.
    public let reading: MigrationReading?

    /// The report of `result`, the rewrite of `file` into `output`.
    public init(file: String, output: String, result: MigrationFileRewrite.Result) {
        let summary = result.summary
        self.file = file
        device = summary.location.section.name
        section = summary.location.section.id
        subsection = summary.location.subsection.name
        streamOffset = summary.location.streamOffset
        oldLength = summary.oldLength
        newLength = summary.newLength
        newPayloadSHA256 = summary.newPayloadSHA256
        descriptionChanges = summary.descriptionChanges
        copiedInKernel = summary.copiedInKernel
        self.output = output
        checked = result.check != nil
        reading = summary.reading
    }

    private enum CodingKeys: String, CodingKey {
        case file, device, section, subsection, streamOffset, oldLength, newLength, newPayloadSHA256
        case descriptionChanges, copiedInKernel, output, checked, reading
    }

    /// Encodes every key, `reading` `null` when the input was not read as a file.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(file, forKey: .file)
        try container.encode(device, forKey: .device)
        try container.encode(section, forKey: .section)
        try container.encode(subsection, forKey: .subsection)
        try container.encode(streamOffset, forKey: .streamOffset)
        try container.encode(oldLength, forKey: .oldLength)
        try container.encode(newLength, forKey: .newLength)
        try container.encode(newPayloadSHA256, forKey: .newPayloadSHA256)
        try container.encode(descriptionChanges, forKey: .descriptionChanges)
        try container.encode(copiedInKernel, forKey: .copiedInKernel)
        try container.encode(output, forKey: .output)
        try container.encode(checked, forKey: .checked)
        try container.encode(reading, forKey: .reading)
    }
}

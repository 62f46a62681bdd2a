import MigrationFile
import StateStream
import SystemCalls
import VirtiofsdState

/// `retarget` on whatever holds the state: a state stream, a bare payload, a
/// migration file or a libvirt save image. The state is changed by
/// `Retargeting.retarget(_:sharedDirectory:request:)` and checked by
/// `RetargetResult.verify(written:original:)`; the output is of the same kind
/// as the input, written to a temporary file, read back and checked, and only
/// then put in place.
public struct FileRetargeting {
    /// The input, opened.
    public let input: Input
    /// The destination's shared directory.
    public let sharedDirectory: String
    /// What to change.
    public let request: RetargetRequest
    /// In a migration file, the device whose state to change (idstr or section id).
    public var device: String?
    /// Payload bytes per chunk of a new stream (QEMU reads virtiofsd's pipe 64 KiB at a time).
    public var chunkSize = 64 << 10
    /// How a stream or a migration file is written.
    public var compression = OutputCompression.none
    /// How a migration file is read.
    public var strategy = ReadingStrategy.placeFromEnd

    /// A retargeting of the state `input` holds onto `sharedDirectory`.
    public init(_ input: Input, sharedDirectory: String, request: RetargetRequest) {
        self.input = input
        self.sharedDirectory = sharedDirectory
        self.request = request
    }

    /// Why a retargeting cannot be done; nothing is put in place.
    public enum Failure: Error, CustomStringConvertible {
        /// The input holds no loadable payload (a broken stream, no state in
        /// the migration file, too large).
        case noPayload(LoadedPayload.Failure)
        /// The payload is no virtiofsd state.
        case notAVirtiofsdState(VirtiofsdDecodingError)
        /// Something would still fail on the destination, and
        /// `RetargetRequest.dropMissing` is off: the state as given, and
        /// what preflight found.
        case wouldFail(VirtiofsdState, PreflightReport)
        /// The retargeting refuses (a rename that does not apply, a state no
        /// drop can make loadable, a result that does not check out, a shared
        /// directory that cannot be opened).
        case refused(RetargetError)
        /// The migration file cannot take the new state where it was.
        case replacement(StateReplacement.Failure)
        /// The rewrite cannot be made as asked (a save image with `--zstd`).
        case rewrite(MigrationFileRewrite.Failure)
        /// The migration file held no vhost-user-fs state to change.
        case noState
        /// The input cannot be read.
        case input(InputError)
        /// The output cannot be written.
        case output(OutputError)

        /// What is wrong, in one line.
        public var description: String {
            switch self {
            case .noPayload(let failure): return "\(failure)"
            case .notAVirtiofsdState(let error): return "not a virtiofsd state: \(error)"
            case .wouldFail(_, let report): return "\(RetargetError.wouldFail(report))"
            case .refused(let error): return "\(error)"
            case .replacement(let failure): return "\(failure)"
            case .rewrite(let failure): return "\(failure)"
            case .noState: return "no vhost-user-fs back-end state in this migration file"
            case .input(let error): return "\(error)"
            case .output(let error): return "\(error)"
            }
        }
    }

    /// Retargets the state into `output` (named `outputName` in the report),
    /// which is committed only when everything checked out.
    ///
    /// - Parameters:
    ///   - output: Where the new state, stream, payload, migration file or save
    ///     image goes.
    ///   - outputName: The output as the user named it, for the report and for
    ///     messages.
    ///   - progress: Called with the bytes of a migration file read so far.
    public func retarget(into output: OutputFile, named outputName: String, progress: (UInt64) -> Void = { _ in }) throws(Failure) -> RetargetReport {
        do {
            switch input.kind {
            case .stream: return try retargetState(into: output, named: outputName)
            case .migrationFile, .saveImage: return try retargetMigrationFile(into: output, named: outputName, progress: progress)
            }
        } catch let failure as Failure {
            throw failure
        } catch let error as LoadedPayload.Failure {
            throw .noPayload(error)
        } catch let error as RetargetError {
            throw .refused(error)
        } catch let error as StateReplacement.Failure {
            throw .replacement(error)
        } catch let error as MigrationFileRewrite.Failure {
            throw .rewrite(error)
        } catch let error as InputError {
            throw .input(error)
        } catch let error as OutputError {
            throw .output(error)
        } catch {
            throw .input(.readFailed(.ioError))
        }
    }

    // MARK: - A stream or a payload

    private func retargetState(into output: OutputFile, named outputName: String) throws -> RetargetReport {
        let loaded = try LoadedPayload.load(from: input, device: nil)
        let (result, payload) = try change(loaded.bytes)
        let sink = try compression.sink(into: output)
        let written: String
        if loaded.origin == .payload {
            try sink.write(payload)
            try sink.finish()
            written = "payload, \(payload.count) bytes"
        } else {
            let framing = try StreamTransforms.frame(payload: ByteArraySource(payload), chunkSize: chunkSize, to: sink)
            written = "state stream, \(framing.chunks) chunks of at most \(chunkSize) payload bytes, \(framing.framedBytes) bytes"
        }
        if let readBack = try output.openForReadingBack() {
            let again = try LoadedPayload.load(streamOrPayload: StateStreamInput(source: FileDescriptorSource(readBack, closesOnDeinit: true)))
            guard again.bytes == payload, again.origin == loaded.origin else {
                throw RetargetError.verificationFailed("\(outputName) does not read back as the payload written")
            }
        }
        try output.commit()
        return RetargetReport(
            file: input.path, origin: loaded.origin.description, sharedDirectory: sharedDirectory, output: outputName,
            result: result, written: written, migration: nil)
    }

    /// The retargeted state of `payload` and what it encodes to, checked against each other.
    private func change(_ payload: [UInt8]) throws -> (result: RetargetResult, encoded: [UInt8]) {
        let state: VirtiofsdState
        do {
            state = try VirtiofsdState(decoding: payload)
        } catch {
            throw Failure.notAVirtiofsdState(error)
        }
        let result: RetargetResult
        do {
            result = try Retargeting.retarget(state, sharedDirectory: sharedDirectory, request: request, verifyingAgainst: payload)
        } catch {
            if case .wouldFail(let report) = error { throw Failure.wouldFail(state, report) }
            throw error
        }
        // Verified against the payload by retarget itself, while it checked the new state.
        guard let encoded = result.encoded else { throw RetargetError.verificationFailed("the new state was not encoded") }
        return (result, encoded)
    }

    // MARK: - A migration file

    private func retargetMigrationFile(into output: OutputFile, named outputName: String, progress: (UInt64) -> Void) throws -> RetargetReport {
        var outcome: RetargetResult?
        let rewrite = MigrationFileRewrite(input, device: device, compression: compression, strategy: strategy)
        let migration = try rewrite.write(
            to: output, selecting: { LoadedPayload.isWanted($0, device: nil) },
            with: .derived(maximumOldPayload: LoadedPayload.maximumSize, chunkSize: chunkSize) { old in
                let (result, encoded) = try change(old)
                outcome = result
                return encoded
            },
            progress: progress)
        guard let result = outcome else { throw Failure.noState }
        let location = migration.summary.location
        return RetargetReport(
            file: input.path, origin: LoadedPayload.Origin.migrationFile(device: location.section.name).description,
            sharedDirectory: sharedDirectory, output: outputName, result: result,
            written: (input.saveImage.map { "libvirt save image (\($0.header.format))" } ?? "migration file")
                + ", new state \(migration.summary.newLength) bytes in chunks of at most \(chunkSize) payload bytes",
            migration: migration)
    }
}

/// What `retarget` did: the change itself (``result``), what was written, and
/// for a migration file the rewrite. Its `Encodable` form is `retarget --json`.
public struct RetargetReport: Encodable {
    /// The input as the user named it.
    public let file: String
    /// What the input was: `state stream`, `payload`, `migration file, device NAME`.
    public let origin: String
    /// The destination's shared directory.
    public let sharedDirectory: String
    /// The output as the user named it.
    public let output: String
    /// Every change, and the check of the new state.
    public let result: RetargetResult
    /// What was written, in words.
    public let written: String
    /// For a migration file, the rewrite that carried the new state.
    public let migration: MigrationFileRewrite.Result?

    private enum CodingKeys: String, CodingKey {
        case file, origin, sharedDirectory, output, version, inodeCount, handleCount, renamed, droppedTrees, droppedInodes
        case droppedHandles, refcountChanges, strippedFileHandles, identityVerified, uncheckedInodes, changed, migration
        case convertedInodes
    }

    private struct Converted: Encodable {
        let id: UInt64
        let path: String
        let parent: UInt64
        let name: String
    }

    private struct Count: Encodable {
        let before: Int
        let after: Int
    }

    private struct Renamed: Encodable {
        let id: UInt64
        let oldPath: String
        let newPath: String
    }

    private struct Tree: Encodable {
        let id: UInt64
        let path: String?
        let reason: String
        let descendants: Int
        let handleCount: Int

        private enum CodingKeys: String, CodingKey { case id, path, reason, descendants, handleCount }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(path, forKey: .path)
            try container.encode(reason, forKey: .reason)
            try container.encode(descendants, forKey: .descendants)
            try container.encode(handleCount, forKey: .handleCount)
        }
    }

    private struct Refcount: Encodable {
        let id: UInt64
        let path: String?
        let old: UInt64
        let new: UInt64

        private enum CodingKeys: String, CodingKey { case id, path, old, new }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(path, forKey: .path)
            try container.encode(old, forKey: .old)
            try container.encode(new, forKey: .new)
        }
    }

    /// Encodes the `retarget --json` object. Paths are the original state's
    /// (the new state's for refcount changes), `null` where it gives none.
    public func encode(to encoder: any Encoder) throws {
        let before = InodePaths(result.original), after = InodePaths(result.state)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(file, forKey: .file)
        try container.encode(origin, forKey: .origin)
        try container.encode(sharedDirectory, forKey: .sharedDirectory)
        try container.encode(output, forKey: .output)
        try container.encode(result.original.version.number, forKey: .version)
        try container.encode(Count(before: result.original.inodes.count, after: result.state.inodes.count), forKey: .inodeCount)
        try container.encode(Count(before: result.original.handles.count, after: result.state.handles.count), forKey: .handleCount)
        try container.encode(result.renamed.map { Renamed(id: $0.id, oldPath: $0.oldPath, newPath: $0.newPath) }, forKey: .renamed)
        try container.encode(
            result.droppedTrees.map {
                Tree(id: $0.id, path: before.path($0.id), reason: $0.reason, descendants: $0.descendants, handleCount: $0.handles)
            },
            forKey: .droppedTrees)
        try container.encode(
            result.droppedInodes.map { InodeFailureRecord(id: $0.id, path: before.path($0.id), reason: $0.reason) }, forKey: .droppedInodes)
        try container.encode(
            result.droppedHandles.map { HandleRecord(id: $0.id, inode: $0.inode, path: before.path($0.inode), flags: $0.flags) },
            forKey: .droppedHandles)
        try container.encode(
            result.refcountChanges.map { Refcount(id: $0.id, path: after.path($0.id), old: $0.old, new: $0.new) }, forKey: .refcountChanges)
        try container.encode(result.strippedFileHandles, forKey: .strippedFileHandles)
        try container.encode(result.state.inodes.contains { $0.fileHandle != nil }, forKey: .identityVerified)
        try container.encode(result.uncheckedInodes, forKey: .uncheckedInodes)
        try container.encode(
            result.convertedInodes.map { Converted(id: $0.id, path: $0.path, parent: $0.parent, name: $0.name) }, forKey: .convertedInodes)
        try container.encode(result.changesState, forKey: .changed)
        try container.encode(
            migration.map { SchemaDocument(MigrationRewriteReport(file: file, output: output, result: $0), schema: "migration-replace") },
            forKey: .migration)
    }
}

extension LoadedPayload.Origin {
    /// What the input was, in reports: `state stream`, `payload`, `migration file, device NAME`.
    public var description: String {
        switch self {
        case .stateStream: return "state stream"
        case .payload: return "payload"
        case .migrationFile(let device): return "migration file, device \(device)"
        }
    }
}

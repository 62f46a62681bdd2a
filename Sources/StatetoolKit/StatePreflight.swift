import MigrationFile
import StateStream
import VirtiofsdState

/// `preflight`: the virtiofsd state an input holds, checked against a
/// destination's shared directory as virtiofsd's loader would take it.
public enum StatePreflight {
    /// Why a check cannot run; nothing was checked.
    public enum Failure: Error, CustomStringConvertible {
        /// The input holds no loadable payload.
        case noPayload(LoadedPayload.Failure)
        /// The payload is no virtiofsd state.
        case notAVirtiofsdState(VirtiofsdDecodingError)
        /// The shared directory cannot be opened.
        case preflight(PreflightError)
        /// The input cannot be read.
        case input(InputError)

        /// What is wrong, in one line.
        public var description: String {
            switch self {
            case .noPayload(let failure): return "\(failure)"
            case .notAVirtiofsdState(let error): return "not a virtiofsd state: \(error)"
            case .preflight(let error): return "\(error)"
            case .input(let error): return "\(error)"
            }
        }
    }

    /// Loads the state `input` holds (of `device` in a migration file, else
    /// the first vhost-user-fs state) and checks it against `sharedDirectory`.
    ///
    /// - Parameter destination: What the destination virtiofsd was started
    ///   with, when known (``VirtiofsdState/DestinationConfiguration``).
    public static func check(
        _ input: Input, device: String? = nil, sharedDirectory: String, destination: DestinationConfiguration? = nil,
        strategy: ReadingStrategy = .placeFromEnd
    ) throws(Failure) -> PreflightResult {
        let loaded: LoadedPayload
        do {
            loaded = try LoadedPayload.load(from: input, device: device, strategy: strategy)
        } catch let failure as LoadedPayload.Failure {
            throw .noPayload(failure)
        } catch let error as InputError {
            throw .input(error)
        } catch {
            throw .input(.readFailed(.ioError))
        }
        let state: VirtiofsdState
        do {
            state = try VirtiofsdState(decoding: loaded.bytes)
        } catch {
            throw .notAVirtiofsdState(error)
        }
        let report: PreflightReport
        do {
            report = try PreflightCheck.check(state, sharedDirectory: sharedDirectory, destination: destination)
        } catch {
            throw .preflight(error)
        }
        return PreflightResult(
            file: input.path, origin: (input.kind == .saveImage ? "libvirt save image, " : "") + loaded.origin.description,
            sharedDirectory: sharedDirectory, state: state, report: report, reading: loaded.reading, destination: destination)
    }
}

/// What `preflight` found: the state, where it came from, and what its load
/// on the destination would do. Its `Encodable` form is `preflight --json`.
public struct PreflightResult: Encodable, Sendable {
    /// The input as the user named it.
    public let file: String
    /// What the input was: `state stream`, `payload`, `migration file, device NAME`.
    public let origin: String
    /// The destination's shared directory.
    public let sharedDirectory: String
    /// The state checked.
    public let state: VirtiofsdState
    /// What would fail.
    public let report: PreflightReport
    /// How a migration file was read; `nil` for a stream or payload.
    public let reading: MigrationReading?
    /// The destination's configuration the check applied; `nil` when none was given.
    public let destination: DestinationConfiguration?

    /// A result from its parts.
    public init(
        file: String, origin: String, sharedDirectory: String, state: VirtiofsdState, report: PreflightReport, reading: MigrationReading?,
        destination: DestinationConfiguration? = nil
    ) {
        self.destination = destination
        self.file = file
        self.origin = origin
        self.sharedDirectory = sharedDirectory
        self.state = state
        self.report = report
        self.reading = reading
    }

    private enum CodingKeys: String, CodingKey {
        case file, origin, sharedDirectory, version, inodeCount, handleCount, clean, failingInodes, failingHandles
        case uncheckedInodes, drainedInodes, firstFailure, failures, handleFailures, fatalProblems, reading
        case requiredOptions, descriptorsNeeded, destination, outsideShare, fileHandleInodes
    }

    /// Encodes the `preflight --json` object.
    public func encode(to encoder: any Encoder) throws {
        let paths = InodePaths(state)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(file, forKey: .file)
        try container.encode(origin, forKey: .origin)
        try container.encode(sharedDirectory, forKey: .sharedDirectory)
        try container.encode(state.version.number, forKey: .version)
        try container.encode(state.inodes.count, forKey: .inodeCount)
        try container.encode(state.handles.count, forKey: .handleCount)
        try container.encode(report.isClean, forKey: .clean)
        try container.encode(report.failingInodes.map(\.id), forKey: .failingInodes)
        try container.encode(report.failingHandles.map(\.id), forKey: .failingHandles)
        try container.encode(report.uncheckedInodes, forKey: .uncheckedInodes)
        try container.encode(report.drainedInodes, forKey: .drainedInodes)
        let failures = report.failingInodes.map { InodeFailureRecord(id: $0.id, path: paths.path($0.id), reason: $0.reason) }
        try container.encode(failures.first, forKey: .firstFailure)
        try container.encode(failures, forKey: .failures)
        try container.encode(
            report.failingHandles.map {
                HandleFailureRecord(handle: HandleRecord(id: $0.id, inode: $0.inode, path: paths.path($0.inode), flags: $0.flags), reason: $0.reason)
            },
            forKey: .handleFailures)
        try container.encode(report.fatalProblems.map { FindingRecord($0, id: $0.id) }, forKey: .fatalProblems)
        try container.encode(reading, forKey: .reading)
        try container.encode(
            report.outsideShare.map { InodeRecord(id: $0, path: paths.display($0)) }, forKey: .outsideShare)
        try container.encode(report.fileHandleInodes.map(FileHandleInodeRecord.init), forKey: .fileHandleInodes)
        try container.encode(report.requiredOptions, forKey: .requiredOptions)
        try container.encode(report.descriptorsNeeded, forKey: .descriptorsNeeded)
        try container.encode(destination.map(DestinationRecord.init), forKey: .destination)
    }
}

/// An inode of a security finding: its id and its path as the state spells it.
private struct InodeRecord: Encodable {
    let id: UInt64
    let path: String
}

/// A file-handle inode as `preflight --json` shows it: `{id, status, path,
/// reason}`, `path` `null` when the handle opens nothing, `reason` `null` when
/// it resolves under the shared directory.
private struct FileHandleInodeRecord: Encodable {
    let id: UInt64
    let status: String
    let path: String?
    let reason: String?

    init(_ inode: PreflightReport.FileHandleInode) {
        id = inode.id
        status = inode.resolution.status
        switch inode.resolution {
        case .resolving(let found):
            path = found.isEmpty ? "." : found
            reason = nil
        case .outsideShare(let found):
            path = found
            reason = "its file handle opens \(found), outside the shared directory: virtiofsd loads it and serves the guest that file"
        case .stale(let failure):
            path = nil
            reason = failure.description
        case .unchecked(let errno):
            path = nil
            reason = errno == .notPermitted
                ? "opening by file handle needs CAP_DAC_READ_SEARCH: \(errno)" : "its mount lies outside the shared directory: statetool does not open it"
        }
    }

    private enum CodingKeys: String, CodingKey { case id, status, path, reason }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(status, forKey: .status)
        try container.encode(path, forKey: .path)
        try container.encode(reason, forKey: .reason)
    }
}

/// A destination's configuration as `preflight --json` shows it.
private struct DestinationRecord: Encodable {
    let release: String
    let writeback: Bool
    let announceSubmounts: Bool
    let posixACL: Bool
    let inodeFileHandles: String
    let openFileLimit: UInt64?
    let guestDescriptorLimit: UInt64?

    init(_ configuration: DestinationConfiguration) {
        release = configuration.release.rawValue
        writeback = configuration.writeback
        announceSubmounts = configuration.announceSubmounts
        posixACL = configuration.posixACL
        inodeFileHandles = configuration.inodeFileHandles.rawValue
        openFileLimit = configuration.openFileLimit
        guestDescriptorLimit = configuration.guestDescriptorLimit
    }

    private enum CodingKeys: String, CodingKey {
        case release, writeback, announceSubmounts, posixACL, inodeFileHandles, openFileLimit, guestDescriptorLimit
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(release, forKey: .release)
        try container.encode(writeback, forKey: .writeback)
        try container.encode(announceSubmounts, forKey: .announceSubmounts)
        try container.encode(posixACL, forKey: .posixACL)
        try container.encode(inodeFileHandles, forKey: .inodeFileHandles)
        try container.encode(openFileLimit, forKey: .openFileLimit)
        try container.encode(guestDescriptorLimit, forKey: .guestDescriptorLimit)
    }
}

/// An inode that fails, as every `--json` shows one: `{id, path, reason}`,
/// `path` `null` where the state gives none.
public struct InodeFailureRecord: Encodable, Sendable {
    /// The inode's id.
    public let id: UInt64
    /// Its path relative to the shared directory; `nil` where the state gives none.
    public let path: String?
    /// Why it fails, in virtiofsd's words.
    public let reason: String

    /// A record from its parts.
    public init(id: UInt64, path: String?, reason: String) {
        self.id = id
        self.path = path
        self.reason = reason
    }

    private enum CodingKeys: String, CodingKey { case id, path, reason }

    /// Encodes `{id, path, reason}`, `path` `null` when there is none.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(path, forKey: .path)
        try container.encode(reason, forKey: .reason)
    }
}

/// An open handle, as every `--json` shows one: `{id, inode, path, flags,
/// flagNames}`, `path` `null` where the state gives none.
public struct HandleRecord: Encodable, Sendable {
    /// The handle's id.
    public let id: UInt64
    /// The inode it is open on.
    public let inode: UInt64
    /// That inode's path relative to the shared directory; `nil` where the state gives none.
    public let path: String?
    /// Its open(2) flags.
    public let flags: Int32

    /// A record from its parts.
    public init(id: UInt64, inode: UInt64, path: String?, flags: Int32) {
        self.id = id
        self.inode = inode
        self.path = path
        self.flags = flags
    }

    private enum CodingKeys: String, CodingKey { case id, inode, path, flags, flagNames }

    /// Encodes `{id, inode, path, flags, flagNames}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(inode, forKey: .inode)
        try container.encode(path, forKey: .path)
        try container.encode(flags, forKey: .flags)
        try container.encode(OpenFlags.describe(flags), forKey: .flagNames)
    }
}

/// A handle that fails, as `preflight --json` shows it: the handle's one
/// shape and, in virtiofsd's words, why.
public struct HandleFailureRecord: Encodable, Sendable {
    /// The handle.
    public let handle: HandleRecord
    /// Why it fails.
    public let reason: String

    /// A record from its parts.
    public init(handle: HandleRecord, reason: String) {
        self.handle = handle
        self.reason = reason
    }

    private enum CodingKeys: String, CodingKey { case reason }

    /// Encodes the handle's keys and `reason` beside them.
    public func encode(to encoder: any Encoder) throws {
        try handle.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(reason, forKey: .reason)
    }
}

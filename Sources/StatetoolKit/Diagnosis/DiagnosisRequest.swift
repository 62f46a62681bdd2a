import MigrationFile
import VirtiofsdState

/// What `diagnose` is given: any subset of the file, the logs, the shares and
/// the destination's arguments.
public struct DiagnosisRequest: Sendable {
    /// The migration file, save image or state; `nil` when not given.
    public var file: String?
    /// The logs: QEMU's standard error, libvirt's domain log, virtiofsd's and passt's logs.
    public var logs: [String]
    /// The destination's shared directories (`--shared-dir [DEVICE=]DIR`).
    public var shares: [ShareAssignment]
    /// The destination virtiofsd's arguments; `nil` when not given.
    public var destination: DestinationArguments?
    /// In a file with several devices, the one to diagnose; `nil` for the first vhost-user-fs state.
    public var device: String?
    /// How to read a migration file.
    public var strategy: ReadingStrategy
    /// The output a rewrite fix writes (`-o`); `nil` for a name next to the file.
    public var output: String?
    /// What an earlier check of the share found, used instead of checking a
    /// share (a bundle's `share-check.json`); `nil` to check the share given.
    public var recordedShareCheck: ShareCheckRecord?

    /// A request from its parts.
    public init(
        file: String? = nil, logs: [String] = [], shares: [ShareAssignment] = [], destination: DestinationArguments? = nil,
        device: String? = nil, strategy: ReadingStrategy = .placeFromEnd, output: String? = nil
    ) {
        self.file = file
        self.logs = logs
        self.shares = shares
        self.destination = destination
        self.device = device
        self.strategy = strategy
        self.output = output
    }

    /// Whether nothing at all was given.
    public var isEmpty: Bool { file == nil && logs.isEmpty && shares.isEmpty && destination == nil }
}

/// A destination's shared directory, for one device or for every device:
/// `--shared-dir DIR` or `--shared-dir DEVICE=DIR`.
public struct ShareAssignment: Hashable, Sendable {
    /// The device section it is for (`0000:00:01.0/vhost-user-fs`); `nil` for any.
    public let device: String?
    /// The directory.
    public let directory: String

    /// An assignment from its parts.
    public init(device: String?, directory: String) {
        self.device = device
        self.directory = directory
    }

    /// `DIR`, or `DEVICE=DIR` when the text before the first `=` is no path
    /// (does not start with `/` or `.`).
    public init(parsing argument: String) {
        if let equals = argument.firstIndex(of: "="), let first = argument.first, first != "/", first != ".",
            argument.startIndex != equals
        {
            device = String(argument[..<equals])
            directory = String(argument[argument.index(after: equals)...])
        } else {
            device = nil
            directory = argument
        }
    }
}

/// The destination virtiofsd's arguments as given, and what they configure.
public struct DestinationArguments: Hashable, Sendable {
    /// The arguments, split at spaces.
    public let arguments: [String]
    /// What they configure.
    public let configuration: DestinationConfiguration

    /// Reads `text`, virtiofsd's arguments separated by spaces.
    ///
    /// - Throws: ``DestinationConfiguration/ArgumentError`` for a value virtiofsd refuses.
    public init(_ text: String) throws(DestinationConfiguration.ArgumentError) {
        arguments = text.split(separator: " ").map(String.init)
        configuration = try DestinationConfiguration(arguments: arguments)
    }
}

import Foundation

/// A folder of its own in the temporary folder, removed with everything in it
/// when the last reference goes.
///
/// A suite holds one per test (Swift Testing makes a fresh suite instance for
/// each), so a test leaves nothing behind, also when it fails: leaked folders
/// of migration files once filled the disk.
public final class ScratchDirectory: Sendable {
    /// The folder.
    public let url: URL

    /// Creates `statetool-LABEL-XXXXXXXX` in the temporary folder.
    ///
    /// The path is kept short (`/tmp`, eight characters of a UUID) because
    /// the tests put Unix sockets in it, whose paths may not exceed 107 bytes.
    public init(_ label: String) throws {
        url = URL(fileURLWithPath: "/tmp/statetool-\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// Runs `body` with a scratch folder that lives until `body` returns.
    ///
    /// For a test that needs one of its own: a local `ScratchDirectory` may be
    /// released after its last use, before the files in it are done with.
    public static func using<Result>(_ label: String, _ body: (ScratchDirectory) throws -> Result) throws -> Result {
        let scratch = try ScratchDirectory(label)
        return try withExtendedLifetime(scratch) { try body(scratch) }
    }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }

    /// The path of `name` inside the folder.
    public func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    /// The URL of `name` inside the folder.
    public func url(_ name: String) -> URL { url.appendingPathComponent(name) }

    /// The names in the folder, sorted.
    public var contents: [String] { ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).sorted() }
}

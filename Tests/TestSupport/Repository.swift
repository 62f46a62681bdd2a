import Foundation

/// Where the tests find what they read: the repository's own files and the
/// real QEMU 10.0 + virtiofsd 1.13 captures. The one place that knows.
public enum Repository {
    /// The repository root.
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `Samples/NAME`.
    public static func sample(_ name: String) -> String {
        root.appendingPathComponent("Samples/\(name)").path
    }

    /// The captures of real QEMU 10.0 and virtiofsd 1.13 with a Linux guest,
    /// kept in the repository (PROVENANCE.md and MANIFEST.md there).
    public static let fixtures: URL = root.appendingPathComponent("Tests/Fixtures/qemu-virtiofsd")

    /// `state/NAME.state` of the fixtures: a stream cut out of a migration file.
    public static func fixtureState(_ name: String) -> String {
        fixtures.appendingPathComponent("state/\(name).state").path
    }
}

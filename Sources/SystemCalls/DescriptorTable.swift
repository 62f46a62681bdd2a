import Glibc
import SystemPackage

/// Owned descriptors kept by key (a directory per inode, say), each closed
/// once: when replaced, removed, or when the table goes away.
public final class DescriptorTable<Key: Hashable> {
    private var descriptors: [Key: FileDescriptor] = [:]

    /// An empty table.
    public init() {}

    deinit {
        for descriptor in descriptors.values { _ = Glibc.close(descriptor.rawValue) }
    }

    /// Keeps `descriptor` under `key`, closing one kept there before.
    public func insert(_ descriptor: consuming OwnedDescriptor, for key: Key) {
        let previous = descriptors.updateValue(descriptor.release(), forKey: key)
        if let previous { _ = OwnedDescriptor(taking: previous) }
    }

    /// The descriptor kept under `key`, still the table's.
    public subscript(key: Key) -> FileDescriptor? { descriptors[key] }

    /// How many are kept.
    public var count: Int { descriptors.count }
}

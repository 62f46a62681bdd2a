import Glibc
import Synchronization
import SystemPackage

/// The file descriptors a message carries (`SCM_RIGHTS`), owned by the message:
/// whatever is not taken out with ``take(at:)`` is closed, once, when the last
/// copy of the message goes away.
///
/// A sender puts descriptors in to hand them over (as QEMU does, its own copy
/// is closed once the message is gone, sent or not); a receiver takes out the
/// ones it keeps.
public final class AttachedDescriptors: Sendable {
    private let descriptors: Mutex<[FileDescriptor?]>

    /// No descriptors.
    public init() {
        descriptors = Mutex([])
    }

    /// Takes ownership of `descriptor`.
    public convenience init(_ descriptor: consuming OwnedDescriptor) {
        self.init()
        append(descriptor)
    }

    /// Takes ownership of raw descriptors received from the kernel.
    init(received: [Int32]) {
        descriptors = Mutex(received.map { FileDescriptor(rawValue: $0) })
    }

    deinit {
        descriptors.withLock { list in
            for case let descriptor? in list { _ = Glibc.close(descriptor.rawValue) }
        }
    }

    /// Adds `descriptor` at the end.
    public func append(_ descriptor: consuming OwnedDescriptor) {
        let raw = descriptor.release()
        descriptors.withLock { $0.append(raw) }
    }

    /// Moves the descriptors of `other` to the end of this list.
    public func append(contentsOf other: AttachedDescriptors) {
        let moved = other.descriptors.withLock { list in
            defer { list = [] }
            return list
        }
        descriptors.withLock { $0 += moved }
    }

    /// How many descriptors came (taken ones included).
    public var count: Int { descriptors.withLock { $0.count } }

    /// Whether the message carries none.
    public var isEmpty: Bool { count == 0 }

    /// Takes the descriptor at `index` out of the message; `nil` if there is
    /// none there or it was taken already.
    public func take(at index: Int = 0) -> OwnedDescriptor? {
        descriptors.withLock { list in
            guard list.indices.contains(index), let descriptor = list[index] else { return nil }
            list[index] = nil
            return OwnedDescriptor(taking: descriptor)
        }
    }

    /// The raw numbers still held, for sending them.
    public var rawValues: [Int32] {
        descriptors.withLock { $0.compactMap { $0?.rawValue } }
    }
}

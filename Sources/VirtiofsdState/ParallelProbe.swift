import Dispatch
import SystemCalls
import SystemPackage

/// Opens names in their directories as the loader would (`openat` with
/// `O_PATH | O_NOFOLLOW`, closed at once), split across the cores: the opens
/// are system calls that wait on the file system, and a million of them are
/// most of a pre-flight check. The result is the same whatever the split.
enum ParallelProbe {
    /// Contiguous runs this long go to one core at a time.
    private static let batch = 4096

    /// For each `(position, directory)` of `opens`, `nil` when the name of the
    /// path inode at `position` in `inodes` opens in the directory
    /// (a descriptor), else why not.
    static func run(_ opens: [(position: Int32, directory: Int32)], of inodes: [VirtiofsdState.Inode]) -> [Errno?] {
        let count = opens.count
        let results = UnsafeMutableBufferPointer<Int32>.allocate(capacity: count)
        defer { results.deallocate() }
        // Each batch writes only its own elements.
        nonisolated(unsafe) let shared = results
        DispatchQueue.concurrentPerform(iterations: (count + batch - 1) / batch) { batchIndex in
            let start = batchIndex * batch
            for k in start..<min(start + batch, count) {
                guard case .path(_, let name) = inodes[Int(opens[k].position)].location else {
                    shared[k] = Errno.noSuchFileOrDirectory.rawValue
                    continue
                }
                shared[k] = Files.probePath(name, in: FileDescriptor(rawValue: opens[k].directory))?.rawValue ?? 0
            }
        }
        return results.map { $0 == 0 ? nil : Errno(rawValue: $0) }
    }
}

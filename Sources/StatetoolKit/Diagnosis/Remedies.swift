/// What the fix needs to know beyond the causes' kinds: the renames found,
/// the options to enable, the descriptors and queue size needed.
struct Remedies {
    /// Missing directories found elsewhere in the share: `--rename OLD=NEW`.
    var renames: [(old: String, new: String)] = []
    /// Negotiated options the destination must enable.
    var options: Set<String> = []
    /// Descriptors the load takes for the guest; 0 when no state was checked.
    var descriptorsNeeded: UInt64 = 0
    /// The destination's `--thread-pool-size`.
    var threadPoolSize: UInt64 = 0
    /// The virtqueue size the file carries, when QEMU said.
    var queueSize: Int?
    /// The directory file-handle inodes resolve under, outside the share:
    /// `--handles-to-paths DIR` turns them into path inodes through it.
    var handlesToPaths: String?
    /// The files outside the share that file handles open, as the causes name them.
    var outsidePaths: [String] = []
}

/// open(2) flags in words, e.g. `O_RDONLY|O_LARGEFILE`, with Linux's generic
/// (x86-64) values; bits without a name are shown in hex.
public enum OpenFlags {
    private static let names: [(Int32, String)] = [
        (0o100, "O_CREAT"), (0o200, "O_EXCL"), (0o400, "O_NOCTTY"), (0o1000, "O_TRUNC"), (0o2000, "O_APPEND"),
        (0o4000, "O_NONBLOCK"), (0o10000, "O_DSYNC"), (0o20000, "FASYNC"), (0o40000, "O_DIRECT"),
        (0o100000, "O_LARGEFILE"), (0o200000, "O_DIRECTORY"), (0o400000, "O_NOFOLLOW"), (0o1000000, "O_NOATIME"),
        (0o2000000, "O_CLOEXEC"), (0o4000000, "__O_SYNC"), (0o10000000, "O_PATH"), (0o20000000, "__O_TMPFILE"),
    ]

    /// `flags` as names joined by `|`, the access mode first.
    public static func describe(_ flags: Int32) -> String {
        var words: [String]
        switch flags & 0o3 {
        case 0: words = ["O_RDONLY"]
        case 1: words = ["O_WRONLY"]
        case 2: words = ["O_RDWR"]
        default: words = ["O_ACCMODE"]
        }
        var rest = flags & ~0o3
        for (bit, name) in names where rest & bit != 0 {
            words.append(name)
            rest &= ~bit
        }
        if rest != 0 { words.append("0x" + String(UInt32(bitPattern: rest), radix: 16)) }
        return words.joined(separator: "|")
    }
}

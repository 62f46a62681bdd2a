/// What a recognised log line says, in QEMU 10, QEMU 11.1, virtiofsd 1.13 and
/// passt wordings. ``init(line:)`` recognises one line; lines it does not
/// know are `nil`.
public enum LogMessage: Hashable, Sendable {
    /// A new attempt starts here: libvirt's `starting up libvirt version`,
    /// virtiofsd's `Waiting for vhost-user socket connection...`. What comes
    /// before it in the same log belongs to an earlier attempt.
    case attemptStarted(LogSource)
    /// QEMU: `Back-end failed to process its internal state` (the back-end
    /// answered CHECK_DEVICE_STATE with an error).
    case backEndRejectedState
    /// QEMU: `error while loading state for instance 0xN of device 'NAME'`.
    case deviceLoadFailed(device: String)
    /// QEMU: `load of migration failed: REASON` (10.0 says `Input/output
    /// error`, 11.1 `Invalid argument: ...`).
    case migrationLoadFailed(reason: String)
    /// QEMU 11.1: `VQ 0 vring.num 1024 exceeds allocated max 128`: the file's
    /// virtqueue is longer than the destination device's `queue-size`.
    case virtqueueTooLarge(queue: Int, size: Int, maximum: Int)
    /// QEMU: the back-end lacks the device-state protocol feature. QEMU
    /// 10.0.2 on load, measured: `Back-end of virtio-user-fs device ... does
    /// not support migration through qemu`; its sources also say `Back-end
    /// does not support migration state transfer`.
    case backEndLacksDeviceState
    /// virtiofsd: `Migration failed: REASON`, the load stopped
    /// (`--migration-on-error=abort`, or a failure fatal in any mode).
    case loadStopped(LoaderReason)
    /// virtiofsd, `--migration-on-error=guest-error`: `Invalid inode N
    /// indexed: REASON`.
    case invalidInode(id: UInt64, reason: LoaderReason)
    /// virtiofsd, `--migration-on-error=guest-error`: `Invalid handle N is
    /// open in guest: REASON`.
    case invalidHandle(id: UInt64, reason: LoaderReason)
    /// virtiofsd: `No more file descriptors available to the guest (A
    /// available out of I initially), consider increasing the --rlimit-nofile value`.
    case descriptorsExhausted(available: UInt64, initially: UInt64)
    /// passt refused the state: `Invalid incoming device state` (its magic),
    /// `Unsupported device state version: N`, or `Target migration stage:
    /// ...: abort` (it ended early); `reason` is the line from passt's words on.
    case passtRejectedState(reason: String)

    /// The words of every phrase the diagnosis recognises in a log (here and
    /// in ``LoaderReason``), and of the system errors they carry. A bundle
    /// keeps them where they stand alone in a log even when a file of the
    /// share has such a name (``Pseudonyms``), so its logs still read the same.
    static let vocabulary: Set<String> = {
        let phrases = [
            "starting up libvirt version", "Waiting for vhost-user socket connection",
            "Back-end failed to process its internal state", "error while loading state for instance of device",
            "load of migration failed", "VQ vring.num exceeds allocated max",
            "does not support migration through qemu", "does not support migration state transfer",
            "Migration failed", "Invalid inode indexed", "Invalid handle is open in guest",
            "No more file descriptors available to the guest out of initially consider increasing the --rlimit-nofile value",
            "Invalid incoming device state", "Unsupported device state version", "Target migration stage abort",
            "Failed to load state", "Inode is invalid because of an error during the preceding migration which was",
            "Migration source wants enabled but it is disabled on the destination", "posix ACLs",
            "Unresolved references between serialized inodes", "Migration source has lost inode",
            "Opening inode as handle", "is not the same inode as in the migration source", "Opening file handle",
            "os error", "Input/output error", "Invalid argument", "No such file or directory", "Operation not permitted",
            "Too many open files", "Permission denied", "Stale file handle", "Not a directory", "Is a directory",
            "virtiofsd", "qemu-system-x86_64", "passt", "INFO", "WARN", "ERROR",
        ]
        var words: Set<String> = []
        for phrase in phrases {
            for word in phrase.unicodeScalars.split(whereSeparator: { !Pseudonyms.isNameCharacter($0) }) {
                var view = String.UnicodeScalarView()
                view.append(contentsOf: word)
                words.insert(String(view))
            }
        }
        return words
    }()

    /// Recognises `line` (without its line feed); `nil` for a line no rule
    /// of the diagnosis reads.
    public init?(line: Substring) {
        if line.contains("starting up libvirt version") {
            self = .attemptStarted(.libvirt)
        } else if line.contains("Waiting for vhost-user socket connection") {
            self = .attemptStarted(.virtiofsd)
        } else if line.contains("Back-end failed to process its internal state") {
            self = .backEndRejectedState
        } else if let device = line.text(after: "error while loading state for instance ", through: "of device '", until: "'") {
            // QEMU 11.1 puts it inside `load of migration failed: ...`; the
            // virtqueue line before it says more, and this one names the device.
            if let reason = line.text(after: "load of migration failed: ") {
                self = .migrationLoadFailed(reason: reason)
            } else {
                self = .deviceLoadFailed(device: device)
            }
        } else if let reason = line.text(after: "load of migration failed: ") {
            self = .migrationLoadFailed(reason: reason)
        } else if let rest = line.text(after: "VQ "), let sizes = Self.virtqueueSizes(rest) {
            self = .virtqueueTooLarge(queue: sizes.queue, size: sizes.size, maximum: sizes.maximum)
        } else if line.contains("does not support migration through qemu") || line.contains("does not support migration state transfer") {
            self = .backEndLacksDeviceState
        } else if let reason = line.text(after: "Migration failed: ") {
            self = .loadStopped(LoaderReason(reason))
        } else if let rest = line.text(after: "Invalid inode "), let id = rest.leadingNumber,
            let reason = rest.text(after: "indexed: ")
        {
            self = .invalidInode(id: id, reason: LoaderReason(reason))
        } else if let rest = line.text(after: "Invalid handle "), let id = rest.leadingNumber,
            let reason = rest.text(after: "is open in guest: ")
        {
            self = .invalidHandle(id: id, reason: LoaderReason(reason))
        } else if let rest = line.text(after: "No more file descriptors available to the guest ("), let available = rest.leadingNumber,
            let initially = rest.text(after: "out of ")?.leadingNumber
        {
            self = .descriptorsExhausted(available: available, initially: initially)
        } else if let reason = line.text(after: "Invalid incoming device state").map({ _ in "Invalid incoming device state" })
            ?? line.text(after: "Unsupported device state version: ").map({ "Unsupported device state version: " + $0 })
            ?? (line.hasSuffix(", abort") ? line.text(after: "Target migration stage: ").map { "Target migration stage: " + $0 } : nil)
        {
            self = .passtRejectedState(reason: reason)
        } else {
            return nil
        }
    }

    /// The program that writes this message.
    public var source: LogSource {
        switch self {
        case .attemptStarted(let source): return source
        case .backEndRejectedState, .deviceLoadFailed, .migrationLoadFailed, .virtqueueTooLarge, .backEndLacksDeviceState: return .qemu
        case .loadStopped, .invalidInode, .invalidHandle, .descriptorsExhausted: return .virtiofsd
        case .passtRejectedState: return .passt
        }
    }

    /// `N vring.num S exceeds allocated max M`.
    private static func virtqueueSizes(_ text: String) -> (queue: Int, size: Int, maximum: Int)? {
        let words = text.split(separator: " ")
        guard words.count >= 7, words[1] == "vring.num", words[3] == "exceeds", words[4] == "allocated", words[5] == "max",
            let queue = Int(words[0]), let size = Int(words[2]), let maximum = Int(words[6])
        else { return nil }
        return (queue, size, maximum)
    }
}

extension StringProtocol {
    /// The text after the first `marker`, to the end of the line.
    func text(after marker: String) -> String? {
        firstRange(of: marker).map { String(self[$0.upperBound...]) }
    }

    /// The text after `through` (found after `start`) up to `end`.
    func text(after start: String, through: String, until end: String) -> String? {
        guard let first = firstRange(of: start), let second = self[first.upperBound...].firstRange(of: through) else { return nil }
        let rest = self[second.upperBound...]
        guard let close = rest.firstIndex(of: Character(end)) else { return nil }
        return String(rest[..<close])
    }

    /// The decimal number this text starts with.
    var leadingNumber: UInt64? { UInt64(prefix { $0.isASCII && $0.isNumber }) }
}

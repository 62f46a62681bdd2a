/// What a destination virtiofsd was started with, as far as loading a state
/// depends on it: the options the source negotiated must be enabled there, and
/// without inode file handles every loaded inode holds a descriptor.
///
/// Read from the destination's command line (``init(arguments:release:)``), with
/// the defaults of its virtiofsd release for what it leaves out.
public struct DestinationConfiguration: Hashable, Sendable {
    /// A virtiofsd release whose defaults differ from the others'.
    public enum Release: String, CaseIterable, Hashable, Sendable {
        /// virtiofsd 1.13 (Debian trixie): `--inode-file-handles=never` by default.
        case v1_13 = "1.13"
        /// virtiofsd 1.14 (Debian sid): `--inode-file-handles=prefer` by default, so it
        /// keeps `CAP_DAC_READ_SEARCH` and opens file handles unasked; `--posix-acl`
        /// takes `never`, `auto` or `always`.
        case v1_14 = "1.14"
    }

    /// `--inode-file-handles`: how inodes are held.
    public enum InodeFileHandles: String, Hashable, Sendable {
        /// An `O_PATH` descriptor per inode (1.13's default).
        case never
        /// File handles where the file system gives them, else descriptors (1.14's default).
        case prefer
        /// File handles only.
        case mandatory
    }

    /// `--writeback` (off by default).
    public var writeback = false
    /// `--announce-submounts` (on by default in 1.13; `--no-announce-submounts` turns it off).
    public var announceSubmounts = true
    /// `--posix-acl` (off by default).
    public var posixACL = false
    /// The release whose defaults fill in what the arguments leave out.
    public var release: Release
    /// `--inode-file-handles`.
    public var inodeFileHandles: InodeFileHandles
    /// `--rlimit-nofile`: the descriptor limit virtiofsd sets; `nil` when not given
    /// (virtiofsd then raises it to min(1,000,000, `fs.nr_open`) where it may).
    public var openFileLimit: UInt64?
    /// `--thread-pool-size` (0 by default).
    public var threadPoolSize: UInt64 = 0
    /// Whether `--modcaps` adds `dac_read_search` (the last `+` or `-` of it wins).
    public var addsDACReadSearch = false

    /// Whether it can open file handles (`open_by_handle_at` needs
    /// `CAP_DAC_READ_SEARCH`): virtiofsd run as root drops every capability
    /// but its defaults, and keeps that one only with `--modcaps=+dac_read_search`
    /// or with `--inode-file-handles` other than `never`. Without it each
    /// file-handle inode fails: `Opening file handle: Operation not permitted`.
    public var opensFileHandles: Bool { addsDACReadSearch || inodeFileHandles != .never }

    /// The defaults of `release` (virtiofsd 1.13's when not given).
    public init(release: Release = .v1_13) {
        self.release = release
        inodeFileHandles = release == .v1_14 ? .prefer : .never
    }

    /// Why a destination's arguments cannot be read.
    public enum ArgumentError: Error, Hashable, Sendable, CustomStringConvertible {
        /// An option this configuration reads has a value it does not take.
        case badValue(option: String, value: String)

        /// The option and the value, in one line.
        public var description: String {
            switch self {
            case .badValue(let option, let value): return "\(option): \(value) is no value virtiofsd takes"
            }
        }
    }

    /// The configuration `arguments` (virtiofsd's command line, without the
    /// program's name) give to a virtiofsd of `release`; options that do not
    /// bear on loading a state (`--shared-dir`, `--socket-path`, `--sandbox`,
    /// ...) are passed over.
    ///
    /// - Throws: ``ArgumentError`` for a value virtiofsd would refuse.
    public init(arguments: [String], release: Release = .v1_13) throws(ArgumentError) {
        self.init(release: release)
        var index = 0
        func value(of option: String, _ argument: String) -> String? {
            if argument.hasPrefix(option + "=") { return String(argument.dropFirst(option.count + 1)) }
            guard argument == option, index + 1 < arguments.count else { return nil }
            index += 1
            return arguments[index]
        }
        while index < arguments.count {
            let argument = arguments[index]
            switch argument {
            case "--writeback": writeback = true
            case "--announce-submounts": announceSubmounts = true
            case "--no-announce-submounts": announceSubmounts = false
            case "--posix-acl": posixACL = true
            default:
                if let mode = value(of: "--inode-file-handles", argument) {
                    switch mode {
                    case "never": inodeFileHandles = .never
                    case "prefer", "fallback": inodeFileHandles = .prefer
                    case "mandatory": inodeFileHandles = .mandatory
                    default: throw .badValue(option: "--inode-file-handles", value: mode)
                    }
                } else if argument.hasPrefix("--posix-acl="), let mode = value(of: "--posix-acl", argument) {
                    switch mode {
                    case "never": posixACL = false
                    case "auto", "always": posixACL = true
                    default: throw .badValue(option: "--posix-acl", value: mode)
                    }
                } else if let limit = value(of: "--rlimit-nofile", argument) {
                    guard let number = UInt64(limit) else { throw .badValue(option: "--rlimit-nofile", value: limit) }
                    openFileLimit = number == 0 ? nil : number
                } else if let size = value(of: "--thread-pool-size", argument) {
                    guard let number = UInt64(size) else { throw .badValue(option: "--thread-pool-size", value: size) }
                    threadPoolSize = number
                } else if let changes = value(of: "--modcaps", argument) {
                    for change in changes.split(separator: ":") where change.dropFirst().lowercased() == "dac_read_search" {
                        addsDACReadSearch = change.first == "+"
                    }
                } else if let options = value(of: "-o", argument) {
                    for option in options.split(separator: ",") {
                        switch option {
                        case "writeback": writeback = true
                        case "no_writeback": writeback = false
                        case "announce_submounts": announceSubmounts = true
                        case "posix_acl": posixACL = true
                        case "no_posix_acl": posixACL = false
                        default: break
                        }
                    }
                }
            }
            index += 1
        }
    }

    /// The descriptors virtiofsd keeps for itself: 509 memory slots, 100 more,
    /// and one per pool thread (at least one) (`INTERNAL_FD_RESERVE`).
    public var internalDescriptorReserve: UInt64 { 609 + max(threadPoolSize, 1) }

    /// How many descriptors the guest's inodes and handles may hold: the limit
    /// less the reserve; `nil` when the limit is not known.
    public var guestDescriptorLimit: UInt64? {
        openFileLimit.map { $0 > internalDescriptorReserve ? $0 - internalDescriptorReserve : 0 }
    }

    /// Whether an inode loaded by path holds a descriptor (rather than a file handle).
    public var inodesHoldDescriptors: Bool { inodeFileHandles == .never }

    /// Whether the negotiated option `name` (`writeback`, `announce-submounts`,
    /// `posix-acl`) is enabled.
    public func enables(_ name: String) -> Bool {
        switch name {
        case "writeback": return writeback
        case "announce-submounts": return announceSubmounts
        case "posix-acl": return posixACL
        default: return true
        }
    }
}

extension VirtiofsdState.NegotiatedOptions {
    /// The options the source negotiated that the destination must enable too,
    /// in the order virtiofsd checks them: `writeback`, `announce-submounts`, `posix-acl`.
    public var required: [String] {
        [(writeback, "writeback"), (announceSubmounts, "announce-submounts"), (posixACL, "posix-acl")].filter(\.0).map(\.1)
    }
}

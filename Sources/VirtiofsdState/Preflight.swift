import StateStream
import SystemCalls
import SystemPackage

/// What loading a state on a destination would do to each inode and handle,
/// found by opening every inode in a shared directory the way virtiofsd does.
public struct PreflightReport: Hashable, Sendable {
    /// Why an inode would be invalid on the destination.
    public enum Cause: Hashable, Sendable {
        /// Opening it failed.
        case openFailed(Errno)
        /// Its parent is invalid, so it cannot be opened either.
        case parentInvalid(UInt64)
        /// The source sent it as invalid.
        case sentInvalid
        /// Its file handle differs from the one the source recorded
        /// (`--migration-verify-handles`).
        case fileHandleDiffers
        /// Its file handle could not be read on the destination
        /// (`name_to_handle_at` failed), so it cannot be compared with the one
        /// the source recorded.
        case fileHandleUnreadable(Errno)
        /// It is located by file handle and the handle does not open on the
        /// destination's file system (``FileHandleResolution/stale(_:)``).
        case fileHandleStale(FileHandleFailure)
    }

    /// What makes the load fail whatever `--migration-on-error` says: a
    /// finding at the inode it is about, in the payload.
    public enum FatalProblem: PayloadFinding, Hashable {
        /// The state contradicts itself (duplicate ids, a bad root, broken
        /// parent chains, handles on missing inodes).
        case inconsistent(ConsistencyProblem)
        /// A pass of the loader loaded no inode while `waiting` inodes still
        /// wait for parents that never load; `first` is the first of them, at
        /// `payloadOffset`.
        case unresolvedReferences(waiting: Int, first: UInt64, payloadOffset: Int, drainedParent: UInt64? = nil)
        /// A handle is open on an inode that left the inode store when its
        /// refcount drained to zero as its children loaded: virtiofsd cannot
        /// find it (`Inode N not found`), whatever `--migration-on-error` says.
        /// The handle is at `payloadOffset`.
        case handleOnDrainedInode(handle: UInt64, inode: UInt64, payloadOffset: Int)
        /// The source negotiated this option (`writeback`, `announce-submounts`,
        /// `posix-acl`) and the destination has it disabled.
        case optionDisabled(String)
        /// The shared directory is not the inode the source recorded as its
        /// root (its file handle differs); the root is at `payloadOffset`.
        case rootFileHandleDiffers(payloadOffset: Int)
        /// The shared directory's file handle could not be read to compare it
        /// with the one the source recorded; the root is at `payloadOffset`.
        case rootFileHandleUnreadable(Errno, payloadOffset: Int)

        /// A fatal problem's stable kebab-case name, as scripts match it: a
        /// ``ConsistencyProblem/Kind``'s, or `unresolved-references`,
        /// `root-file-handle-differs`, `root-file-handle-unreadable`.
        public struct Kind: RawRepresentable, Hashable, Sendable {
            /// The name.
            public let rawValue: String

            /// The kind named `rawValue`.
            public init(rawValue: String) { self.rawValue = rawValue }
        }

        /// What kind of problem this is.
        public var kind: Kind {
            switch self {
            case .inconsistent(let problem): return Kind(rawValue: problem.kind.rawValue)
            case .unresolvedReferences: return Kind(rawValue: "unresolved-references")
            case .handleOnDrainedInode: return Kind(rawValue: "handle-on-drained-inode")
            case .optionDisabled: return Kind(rawValue: "option-mismatch")
            case .rootFileHandleDiffers: return Kind(rawValue: "root-file-handle-differs")
            case .rootFileHandleUnreadable: return Kind(rawValue: "root-file-handle-unreadable")
            }
        }

        /// The inode (or handle, for a consistency problem about one) concerned.
        public var id: UInt64 {
            switch self {
            case .inconsistent(let problem): return problem.id
            case .unresolvedReferences(_, let first, _, _): return first
            case .handleOnDrainedInode(let handle, _, _): return handle
            case .optionDisabled: return VirtiofsdState.rootID
            case .rootFileHandleDiffers, .rootFileHandleUnreadable: return VirtiofsdState.rootID
            }
        }

        /// Where the inode concerned is encoded in the payload.
        public var payloadOffset: Int {
            switch self {
            case .inconsistent(let problem): return problem.payloadOffset
            case .optionDisabled: return 0
            case .unresolvedReferences(_, _, let offset, _), .handleOnDrainedInode(_, _, let offset), .rootFileHandleDiffers(let offset),
                .rootFileHandleUnreadable(_, let offset):
                return offset
            }
        }

        /// Whether dropping the recorded file handles (`retarget
        /// --strip-file-handles`) takes the problem away.
        public var isCuredByStrippingFileHandles: Bool {
            switch self {
            case .rootFileHandleDiffers, .rootFileHandleUnreadable: return true
            case .inconsistent, .unresolvedReferences, .handleOnDrainedInode, .optionDisabled: return false
            }
        }

        /// The problem in virtiofsd's words where it has them.
        public var message: String {
            switch self {
            case .inconsistent(let problem): return problem.message
            case .unresolvedReferences(let waiting, _, _, let drained?):
                return "Unresolved references between serialized inodes: \(waiting) inodes wait for parents that never load "
                    + "(inode \(drained) left the inode store when its refcount reached zero as its children loaded)"
            case .unresolvedReferences(let waiting, _, _, nil):
                return "Unresolved references between serialized inodes: \(waiting) inodes wait for parents that never load"
            case .optionDisabled(let option):
                let name = option == "posix-acl" ? "posix ACLs" : option
                return "Migration source wants \(name) enabled, but it is disabled on the destination"
            case .handleOnDrainedInode(let handle, let inode, _):
                return "Inode \(inode) not found: handle \(handle) is open on it, and it left the inode store when its refcount reached zero"
            case .rootFileHandleDiffers: return "Inode 1 is not the same inode as in the migration source: File handle differs"
            case .rootFileHandleUnreadable(let errno, _): return "Inode 1: cannot read its file handle to compare it with the source's: \(errno)"
            }
        }

        /// A consistency problem as its finding says it; the others in virtiofsd's words.
        public var description: String {
            if case .inconsistent(let problem) = self { return problem.description }
            return message
        }
    }

    /// An inode virtiofsd would mark invalid (`guest-error`) or stop at (`abort`).
    public struct InodeFailure: Hashable, Sendable {
        /// The inode's id.
        public let id: UInt64
        /// Its path relative to the shared directory, as far as the state gives it.
        public let path: String
        /// Why it would be invalid.
        public let cause: Cause

        /// The reason in virtiofsd's words.
        public var reason: String {
            switch cause {
            case .openFailed(let errno): return "Opening \(path): \(errno)"
            case .parentInvalid(let parent): return "parent inode \(parent) is invalid"
            case .sentInvalid: return "Migration source has lost inode \(id)"
            case .fileHandleDiffers: return "Inode \(id) is not the same inode as in the migration source: File handle differs"
            case .fileHandleUnreadable(let errno): return "Inode \(id): cannot read its file handle to compare it with the source's: \(errno)"
            case .fileHandleStale(let failure): return failure.description
            }
        }
    }

    /// A handle open on an invalid inode: the guest gets EIO through it.
    public struct HandleFailure: Hashable, Sendable {
        /// The handle's id.
        public let id: UInt64
        /// The id of the inode it is open on.
        public let inode: UInt64
        /// The inode's path relative to the shared directory, as far as the state gives it.
        public let path: String
        /// Its open(2) flags.
        public let flags: Int32
        /// Why it fails.
        public var cause: HandleCause = .inodeInvalid

        /// The reason in virtiofsd's words (`--migration-on-error=abort` prints
        /// `Opening inode N (PATH) as handle M: ERROR`).
        public var reason: String {
            switch cause {
            case .inodeInvalid: return "inode \(inode) is invalid"
            case .reopenFailed(let errno): return "Opening inode \(inode) (\(path)) as handle \(id): \(errno)"
            }
        }
    }

    /// Why a handle would be invalid on the destination.
    public enum HandleCause: Hashable, Sendable {
        /// The inode it is open on is invalid.
        case inodeInvalid
        /// Reopening the inode with the handle's recorded flags failed: the file
        /// became a directory (`EISDIR` for write flags), is immutable (`EPERM`),
        /// sits on a read-only file system (`EROFS`), or is no regular file or
        /// directory any more (`EBADF`: virtiofsd reopens only those).
        case reopenFailed(Errno)
    }

    /// Failing inodes in the order virtiofsd would meet them: the first is
    /// where `--migration-on-error=abort` stops.
    public internal(set) var failingInodes: [InodeFailure] = []
    /// Handles open on failing inodes, in the state's order.
    public internal(set) var failingHandles: [HandleFailure] = []
    /// Inodes located by file handle that statetool could not open by handle
    /// (``FileHandleResolution/unchecked(_:)``: no `CAP_DAC_READ_SEARCH`, or a
    /// mount outside the shared directory).
    public internal(set) var uncheckedInodes: [UInt64] = []
    /// Every inode located by file handle, in the order virtiofsd meets them,
    /// with what its handle comes to on the destination's file system.
    public internal(set) var fileHandleInodes: [FileHandleInode] = []
    /// What makes the load fail whatever `--migration-on-error` says.
    public internal(set) var fatalProblems: [FatalProblem] = []
    /// Inodes that resolve outside the shared directory (a name `..` under
    /// the root, a name holding `/` through a symbolic link out), and every
    /// inode under them: virtiofsd run without its namespace sandbox
    /// (`--sandbox=none`) opens them there, and the guest reaches files outside
    /// the share through them. statetool never opens them.
    public internal(set) var outsideShare: [UInt64] = []
    /// The negotiated options the state needs the destination to enable:
    /// `writeback`, `announce-submounts`, `posix-acl`.
    public internal(set) var requiredOptions: [String] = []
    /// The descriptors the load takes for the guest: one per inode loaded
    /// (without inode file handles) and one per handle reopened.
    public internal(set) var descriptorsNeeded = 0
    /// Inodes that load but leave the inode store during the load: each child
    /// that loads takes the reference its parent's refcount holds for it, and a
    /// parent whose refcount reaches zero is removed (virtiofsd's
    /// `StrongInodeReference` dropped). The guest's references to them are lost.
    public internal(set) var drainedInodes: [UInt64] = []

    /// A file-handle inode and what its handle comes to on the destination.
    public struct FileHandleInode: Hashable, Sendable {
        /// The inode's id.
        public let id: UInt64
        /// Where its handle leads.
        public let resolution: FileHandleResolution

        /// A file-handle inode from its id and resolution.
        public init(id: UInt64, resolution: FileHandleResolution) {
            self.id = id
            self.resolution = resolution
        }
    }

    /// The file-handle inodes whose handles open files outside the shared
    /// directory: the load succeeds and the guest is served those files.
    public var fileHandlesOutsideShare: [FileHandleInode] {
        fileHandleInodes.filter { if case .outsideShare = $0.resolution { true } else { false } }
    }

    /// Whether the state would load with nothing invalid and every file-handle
    /// inode on a file under the shared directory.
    public var isClean: Bool {
        failingInodes.isEmpty && failingHandles.isEmpty && fatalProblems.isEmpty && fileHandlesOutsideShare.isEmpty
    }
}

/// Why a pre-flight check could not run at all.
public enum PreflightError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The shared directory at this path could not be opened (`O_PATH`), for
    /// this reason.
    case cannotOpenSharedDirectory(String, Errno)

    /// What failed, in one line, with the path and `errno`.
    public var description: String {
        switch self {
        case .cannotOpenSharedDirectory(let path, let errno): return "cannot open the shared directory \(path): \(errno)"
        }
    }
}

/// `O_PATH | O_NOFOLLOW | O_CLOEXEC`, virtiofsd's flags for locating an inode
/// (`O_PATH`, Linux's 0o10000000, is hidden from Swift's Glibc module).
/// Checks a state against a destination's shared directory, as virtiofsd's
/// loader would (`device_state/deserialization.rs`): the root first when there
/// are mount paths, then inodes in passes, each one whose parent is loaded
/// opened with `openat(parent, name, O_PATH | O_NOFOLLOW)` and taken out of the
/// list by swapping in the last one; handles last.
///
/// Nothing is followed out of the shared directory: every name is opened
/// relative to its parent's descriptor, without following a symbolic link.
public enum PreflightCheck {
    /// Checks `state` against the shared directory at `sharedDirectory` and
    /// reports what would fail; the state's consistency problems come first
    /// among the fatal ones. Raises the process's open-file limit first, as
    /// virtiofsd does.
    ///
    /// - Throws: ``PreflightError/cannotOpenSharedDirectory(_:_:)`` when the
    ///   directory cannot be opened; everything else is in the report.
    ///
    /// - Parameter destination: What the destination virtiofsd was started
    ///   with: the negotiated options it lacks are fatal, and its descriptor
    ///   limit is applied as virtiofsd applies it (an inode or handle past it
    ///   fails with `ENFILE`). Without it, virtiofsd 1.13's defaults hold and
    ///   no limit is applied; ``PreflightReport/descriptorsNeeded`` says how
    ///   many the load takes.
    public static func check(
        _ state: VirtiofsdState, sharedDirectory: String, destination: DestinationConfiguration? = nil
    ) throws(PreflightError) -> PreflightReport {
        try check(state, sharedDirectory: sharedDirectory, destination: destination, reusing: nil).report
    }

    /// ``check(_:sharedDirectory:destination:)``, taking as opened the files
    /// that `earlier` (a check a moment ago of the state this one derives
    /// from: retarget's check of what it writes) opened at the same parent
    /// and name; with the opens this check found to succeed.
    static func check(
        _ state: VirtiofsdState, sharedDirectory: String, destination: DestinationConfiguration? = nil, reusing earlier: ProbedOpens?
    ) throws(PreflightError) -> (report: PreflightReport, opens: ProbedOpens) {
        var report = PreflightReport()
        report.requiredOptions = state.options.required
        let configuration = destination ?? DestinationConfiguration()
        // virtiofsd applies the negotiated options before any inode: a lacking one refuses the load.
        if destination != nil {
            report.fatalProblems += state.options.required.filter { !configuration.enables($0) }.map(PreflightReport.FatalProblem.optionDisabled)
        }
        report.fatalProblems += state.consistencyProblems().map(PreflightReport.FatalProblem.inconsistent)
        ResourceLimits.raiseOpenFileLimit()
        let root: OwnedDescriptor
        do {
            root = try Files.openPathDirectory(sharedDirectory)
        } catch {
            throw .cannotOpenSharedDirectory(sharedDirectory, error.errno)
        }
        var loader = Loader(root: root.descriptor, state: state)
        loader.earlier = earlier
        // Without inode file handles (or with `prefer` on a file system that gives none) each inode holds a descriptor.
        let givesFileHandles = Files.givesFileHandles(root.descriptor)
        do {
            loader.rootLocation = try Files.location(of: root.descriptor)
        } catch {
            throw .cannotOpenSharedDirectory(sharedDirectory, error.errno)
        }
        loader.inodesHoldDescriptors = configuration.inodesHoldDescriptors
            || (configuration.inodeFileHandles == .prefer && !givesFileHandles)
        loader.descriptorBudget = destination?.guestDescriptorLimit

        var pending = Array(state.inodes.indices)
        if !state.mountPaths.isEmpty, let rootIndex = pending.firstIndex(where: { state.inodes[$0].id == VirtiofsdState.rootID }) {
            _ = loader.load(at: pending.swapRemove(at: rootIndex), into: &report)
        }
        // File-handle inodes open on the mounts the state names, relative to the shared directory.
        if state.inodes.contains(where: { $0.location.kind == .fileHandle }) {
            do {
                loader.fileHandles = try FileHandleResolver(root: root.descriptor, mountPaths: state.mountPaths).resolve(state.inodes)
            } catch {
                throw .cannotOpenSharedDirectory(sharedDirectory, error.errno)
            }
            // A destination that cannot open file handles fails each one that would open.
            if let destination, !destination.opensFileHandles {
                for (id, resolution) in loader.fileHandles {
                    // The capability is checked before the handle is looked at: only what fails before the call stays.
                    switch resolution {
                    case .stale(.unknownMount), .stale(.tooLong): break
                    case .resolving, .outsideShare, .unchecked, .stale(.openFailed): loader.fileHandles[id] = .stale(.openFailed(.notPermitted))
                    }
                }
            }
        }
        while !pending.isEmpty && !loader.aborted {
            var index = 0
            var progressed = false
            while index < pending.count && !loader.aborted {
                if loader.load(at: pending[index], into: &report) {
                    _ = pending.swapRemove(at: index)
                    progressed = true
                } else {
                    index += 1
                }
            }
            if !progressed && !loader.aborted {
                let drainedParent = pending.lazy.compactMap { position -> UInt64? in
                    guard case .path(let parent, _) = state.inodes[position].location, loader.isDrained(parent) else { return nil }
                    return parent
                }.first
                let first = state.inodes[pending[0]]
                report.fatalProblems.append(
                    .unresolvedReferences(
                        waiting: pending.count, first: first.id, payloadOffset: first.payloadOffset, drainedParent: drainedParent))
                break
            }
        }
        loader.openDeferred(into: &report)
        report.drainedInodes = loader.drainOrder
        // Handles come last: each is reopened from its inode with its flags.
        if !loader.aborted && !report.fatalProblems.contains(where: { if case .unresolvedReferences = $0 { true } else { false } }) {
            for handle in state.handles {
                // A handle on an inode that left the store ends the load in either mode.
                if loader.isDrained(handle.inode) {
                    report.fatalProblems.append(.handleOnDrainedInode(handle: handle.id, inode: handle.inode, payloadOffset: handle.payloadOffset))
                    break
                }
                if let cause = loader.reopen(handle) {
                    report.failingHandles.append(
                        .init(id: handle.id, inode: handle.inode, path: loader.paths.display(handle.inode), flags: handle.flags, cause: cause))
                }
            }
        }
        report.descriptorsNeeded = loader.descriptorsNeeded
        return (report, ProbedOpens(inodes: state.inodes, index: loader.index, opened: loader.opened))
    }
}

/// The files that are nobody's parent and that a check opened, by inode:
/// for a second check of a state derived from the same one, which takes an
/// inode with the same parent and name as opened without opening it again.
struct ProbedOpens: Sendable {
    let inodes: [VirtiofsdState.Inode]
    let index: InodeIndex
    /// By position in ``inodes``.
    let opened: [Bool]

    /// Whether `inode` was opened at the same parent and name.
    func opens(_ inode: VirtiofsdState.Inode) -> Bool {
        guard let position = index.position(of: inode.id), opened[position] else { return false }
        return inodes[position].location == inode.location
    }
}

/// The descriptors of loaded inodes and which inodes are invalid.
///
/// What it knows of each inode is kept by the position of the first inode of
/// its id (``InodeIndex``): a byte of flags and a refcount, not sets and
/// dictionaries of a million ids. Opening a file that is nobody's parent, has
/// no handle and no recorded file handle changes nothing but its own verdict:
/// those opens are deferred and run on every core at the end
/// (``openDeferred(into:)``), their failures put back in load order.
private struct Loader {
    /// The shared directory, owned by the caller.
    let root: FileDescriptor
    let paths: InodePaths
    let inodes: [VirtiofsdState.Inode]
    let index: InodeIndex
    /// The shared directory's location, as the kernel names it.
    var rootLocation = "/"
    /// Whether a loaded inode holds a descriptor (no inode file handles).
    var inodesHoldDescriptors = true
    /// How many descriptors the guest's inodes and handles may hold; `nil` for no limit.
    var descriptorBudget: UInt64?
    /// The descriptors the load takes, within the budget or not.
    var descriptorsNeeded = 0
    /// The descriptors taken within the budget.
    var descriptorsHeld: UInt64 = 0

    /// What is known of an inode, by the position of the first inode of its id.
    private struct Flags: OptionSet {
        let rawValue: UInt8
        static let loaded = Flags(rawValue: 1)
        static let invalid = Flags(rawValue: 2)
        /// It left the store when its refcount reached zero.
        static let drained = Flags(rawValue: 4)
        /// It resolves outside the shared directory.
        static let outside = Flags(rawValue: 8)
        /// It is some inode's parent: its descriptor is kept.
        static let parent = Flags(rawValue: 16)
        /// A handle is open on it: its descriptor and kind are kept.
        static let handleInode = Flags(rawValue: 32)
    }

    private var flags: [Flags]
    /// The refcount each inode in the store holds now: its recorded one, less
    /// one for each child loaded under it.
    private var refcounts: [UInt64]

    /// Takes one descriptor for the guest, as virtiofsd's `GuestFdSemaphore`
    /// does; `false` when the budget is spent (virtiofsd: `ENFILE`).
    mutating func takeDescriptor() -> Bool {
        descriptorsNeeded += 1
        if let budget = descriptorBudget, descriptorsHeld >= budget { return false }
        descriptorsHeld += 1
        return true
    }

    /// The kind of each inode a handle is open on, as it loaded.
    var kinds: [UInt64: Files.FileKind] = [:]
    let descriptors = DescriptorTable<UInt64>()
    /// The ids of the inodes that left the store, in the order they left.
    var drainOrder: [UInt64] = []
    /// Set when the load stops whatever `--migration-on-error` says (a root mismatch).
    var aborted = false
    /// Where each file-handle inode's handle leads on the shared directory's file system.
    var fileHandles: [UInt64: FileHandleResolution] = [:]

    /// Files an earlier check opened (``ProbedOpens``), not opened again.
    var earlier: ProbedOpens?
    /// By position: the files opened, deferred or taken from ``earlier``.
    private(set) var opened: [Bool]

    /// Opens deferred to the end: the inode's position and its parent's descriptor.
    private var deferred: [(position: Int32, directory: Int32)] = []
    /// For each failure reported so far, how many opens were deferred before it.
    private var deferredBeforeFailure: [Int] = []

    init(root: FileDescriptor, state: VirtiofsdState) {
        self.root = root
        paths = InodePaths(state)
        inodes = state.inodes
        index = InodeIndex(state)
        flags = [Flags](repeating: [], count: inodes.count)
        refcounts = [UInt64](repeating: 0, count: inodes.count)
        opened = [Bool](repeating: false, count: inodes.count)
        for inode in inodes {
            if case .path(let parent, _) = inode.location, let slot = index.position(of: parent) { flags[slot].insert(.parent) }
        }
        for handle in state.handles {
            if let slot = index.position(of: handle.inode) { flags[slot].insert(.handleInode) }
        }
    }

    private func has(_ id: UInt64, _ flag: Flags) -> Bool {
        guard let slot = index.position(of: id) else { return false }
        return flags[slot].contains(flag)
    }

    private mutating func mark(_ id: UInt64, _ flag: Flags) {
        if let slot = index.position(of: id) { flags[slot].insert(flag) }
    }

    /// Whether inode `id` left the store when its refcount drained to zero.
    func isDrained(_ id: UInt64) -> Bool { has(id, .drained) }

    /// Loads the inode at `position`; returns false if it must wait for its parent.
    mutating func load(at position: Int, into report: inout PreflightReport) -> Bool {
        let inode = inodes[position]
        guard let slot = index.position(of: inode.id), !flags[slot].contains(.loaded) else { return true }  // a duplicate: reported as fatal already
        switch inode.location {
        case .root:
            do {
                keep(try OwnedDescriptor(duplicating: root), for: inode, report: &report)
            } catch {
                fail(inode, .openFailed(error.errno), &report)
            }
        case .path(let parent, let name):
            // A parent not loaded yet, or gone from the store, defers the child.
            guard let parentSlot = index.position(of: parent), flags[parentSlot].contains(.loaded), !flags[parentSlot].contains(.drained) else {
                return false
            }
            if flags[parentSlot].contains(.invalid) {
                fail(inode, .parentInvalid(parent), &report)
            } else if flags[parentSlot].contains(.outside) {
                markOutside(inode, &report)
            } else if isSingleEntry(name) {
                let directory = descriptors[parent] ?? root
                if descriptorBudget == nil, inode.fileHandle == nil, flags[slot].isDisjoint(with: [.parent, .handleInode]) {
                    if earlier?.opens(inode) == true {
                        opened[position] = true
                        if inodesHoldDescriptors { _ = takeDescriptor() }
                    } else {
                        deferred.append((Int32(truncatingIfNeeded: position), directory.rawValue))
                    }
                } else {
                    open(name, in: directory, for: inode, report: &report)
                }
            } else if name.isEmpty {
                fail(inode, .openFailed(.noSuchFileOrDirectory), &report)
            } else {
                // `.`, `..` or a name holding `/`: virtiofsd passes it to openat as it is.
                openBeneath(location(of: parent).map { $0.isEmpty ? name : $0 + "/" + name }, for: inode, report: &report)
            }
            release(parentSlot)
        case .fullPath(let path):
            guard has(VirtiofsdState.rootID, .loaded) else { return false }
            if path.isEmpty {
                fail(inode, .openFailed(.noSuchFileOrDirectory), &report)
            } else {
                openBeneath(path, for: inode, report: &report)
            }
        case .invalid:
            fail(inode, .sentInvalid, &report)
        case .fileHandle:
            // The root by handle is refused as a bad root (a consistency problem).
            resolveFileHandle(fileHandles[inode.id] ?? .stale(.unknownMount(0)), for: inode, report: &report)
        }
        flags[slot].insert(.loaded)
        refcounts[slot] = inode.refcount
        return true
    }

    /// Runs the deferred opens, split across the cores, and puts their
    /// failures among the others in load order; the descriptors they take
    /// are counted (there is no budget when opens are deferred).
    mutating func openDeferred(into report: inout PreflightReport) {
        guard !deferred.isEmpty else { return }
        let failures = ParallelProbe.run(deferred, of: inodes)
        var merged: [PreflightReport.InodeFailure] = []
        merged.reserveCapacity(report.failingInodes.count)
        var next = 0
        func takeDeferred(upTo end: Int) {
            while next < end {
                let inode = inodes[Int(deferred[next].position)]
                if let errno = failures[next] {
                    mark(inode.id, .invalid)
                    merged.append(.init(id: inode.id, path: paths.display(inode.id), cause: .openFailed(errno)))
                } else {
                    opened[Int(deferred[next].position)] = true
                    if inodesHoldDescriptors { _ = takeDescriptor() }
                }
                next += 1
            }
        }
        for (failure, before) in zip(report.failingInodes, deferredBeforeFailure) {
            takeDeferred(upTo: before)
            merged.append(failure)
        }
        takeDeferred(upTo: deferred.count)
        report.failingInodes = merged
        deferred = []
        deferredBeforeFailure = []
    }

    /// Why `handle` would fail on the destination, or `nil` when it reopens:
    /// its inode invalid, or its inode reopened with its recorded flags as
    /// virtiofsd does (only a regular file or directory, through
    /// `/proc/self/fd`), never with the flags that change a file (`O_CREAT`,
    /// `O_EXCL`, `O_TRUNC`, which the source strips) and closed at once.
    /// Inodes located by file handle are not checked.
    mutating func reopen(_ handle: VirtiofsdState.Handle) -> PreflightReport.HandleCause? {
        if has(handle.inode, .invalid) { return .inodeInvalid }
        guard let descriptor = descriptors[handle.inode], let kind = kinds[handle.inode] else { return nil }
        guard kind == .regular || kind == .directory else { return .reopenFailed(.badFileDescriptor) }
        do throws(SystemCallError) {
            _ = try Files.reopen(descriptor, flags: handle.flags)
        } catch {
            return .reopenFailed(error.errno)
        }
        // Every reopened handle holds a descriptor for the guest, whatever the inode mode.
        return takeDescriptor() ? nil : .reopenFailed(.tooManyOpenFilesInSystem)
    }

    /// Takes a file-handle inode as virtiofsd does (opened by handle before the
    /// passes, ``FileHandleResolver``; no parent, so no refcount drains) and
    /// records where it leads.
    /// One under the shared directory is kept like a path inode (reopened
    /// beneath the directory when a child or handle needs it); one outside is
    /// never opened again, nor anything under it, nor its handles.
    private mutating func resolveFileHandle(
        _ resolution: FileHandleResolution, for inode: VirtiofsdState.Inode, report: inout PreflightReport
    ) {
        report.fileHandleInodes.append(.init(id: inode.id, resolution: resolution))
        switch resolution {
        case .resolving(let path):
            if has(inode.id, .parent) || has(inode.id, .handleInode) {
                do {
                    keep(try Files.openPathBeneath(path.isEmpty ? "." : path, in: root), for: inode, report: &report)
                } catch {
                    fail(inode, .openFailed(error.errno), &report)
                }
            } else if inodesHoldDescriptors, !takeDescriptor() {
                fail(inode, .openFailed(.tooManyOpenFilesInSystem), &report)
            }
        case .outsideShare:
            // It loads outside (and holds a descriptor there) unless the descriptors are spent.
            if inodesHoldDescriptors, !takeDescriptor() {
                fail(inode, .openFailed(.tooManyOpenFilesInSystem), &report)
            } else {
                mark(inode.id, .outside)
            }
        case .stale(let failure):
            fail(inode, .fileHandleStale(failure), &report)
        case .unchecked:
            report.uncheckedInodes.append(inode.id)
            if inodesHoldDescriptors { descriptorsNeeded += 1 }
        }
    }

    /// Drops the reference a loaded child took from the refcount of the inode
    /// at position `parent`; at zero it leaves the store.
    private mutating func release(_ parent: Int) {
        let remaining = refcounts[parent].subtractingReportingOverflow(1)
        guard !remaining.overflow, remaining.partialValue > 0 else {
            refcounts[parent] = 0
            flags[parent].insert(.drained)
            drainOrder.append(inodes[parent].id)
            return
        }
        refcounts[parent] = remaining.partialValue
    }

    private func isSingleEntry(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.utf8.contains(UInt8(ascii: "/"))
    }

    private mutating func open(_ name: String, in directory: FileDescriptor, for inode: VirtiofsdState.Inode, report: inout PreflightReport) {
        do {
            keep(try Files.openPath(name, in: directory), for: inode, report: &report)
        } catch {
            fail(inode, .openFailed(error.errno), &report)
        }
    }

    /// Where the loaded inode `id` is, relative to the shared directory (`""`
    /// for the directory itself); `nil` when the kernel puts it outside.
    private func location(of id: UInt64) -> String? {
        guard id != VirtiofsdState.rootID, let descriptor = descriptors[id] else { return "" }
        guard let location = try? Files.location(of: descriptor) else { return nil }
        if location == rootLocation { return "" }
        guard location.hasPrefix(rootLocation == "/" ? "/" : rootLocation + "/") else { return nil }
        return String(location.dropFirst(rootLocation == "/" ? 1 : rootLocation.count + 1))
    }

    /// Opens `path` (relative to the shared directory) as virtiofsd's `openat`
    /// would, but only beneath the shared directory: a path that would leave it
    /// (`..` past the top, a symbolic link out) makes the inode one that
    /// resolves outside, which statetool never opens. `nil` is a parent found outside.
    private mutating func openBeneath(_ path: String?, for inode: VirtiofsdState.Inode, report: inout PreflightReport) {
        guard let path else {
            markOutside(inode, &report)
            return
        }
        do throws(SystemCallError) {
            keep(try Files.openPathBeneath(path, in: root), for: inode, report: &report)
        } catch {
            if error.errno == .improperLink {
                markOutside(inode, &report)
            } else {
                fail(inode, .openFailed(error.errno), &report)
            }
        }
    }

    /// An inode that resolves outside the shared directory: virtiofsd, without
    /// its namespace sandbox, opens it there; statetool does not, nor anything
    /// under it.
    private mutating func markOutside(_ inode: VirtiofsdState.Inode, _ report: inout PreflightReport) {
        mark(inode.id, .outside)
        report.outsideShare.append(inode.id)
        if inodesHoldDescriptors { _ = takeDescriptor() }
    }

    /// Checks the file handle the source recorded, then keeps the descriptor if a child needs it.
    private mutating func keep(_ opened: consuming OwnedDescriptor, for inode: VirtiofsdState.Inode, report: inout PreflightReport) {
        // virtiofsd takes the guest's descriptor before it checks the recorded file handle.
        if inodesHoldDescriptors, !takeDescriptor() {
            fail(inode, .openFailed(.tooManyOpenFilesInSystem), &report)
            return
        }
        if let expected = inode.fileHandle {
            let mismatch: (fatal: PreflightReport.FatalProblem, cause: PreflightReport.Cause)?
            do {
                let found = try Files.handle(of: opened.descriptor)
                mismatch = found == Files.Handle(type: expected.handleType, bytes: expected.bytes)
                    ? nil : (.rootFileHandleDiffers(payloadOffset: inode.payloadOffset), .fileHandleDiffers)
            } catch {
                mismatch = (.rootFileHandleUnreadable(error.errno, payloadOffset: inode.payloadOffset), .fileHandleUnreadable(error.errno))
            }
            if let mismatch {
                if inode.id == VirtiofsdState.rootID {
                    report.fatalProblems.append(mismatch.fatal)
                    aborted = true
                } else {
                    fail(inode, mismatch.cause, &report)
                }
                return
            }
        }
        if has(inode.id, .handleInode) {
            do {
                kinds[inode.id] = try Files.kind(of: opened.descriptor)
            } catch {
                fail(inode, .openFailed(error.errno), &report)
                return
            }
        }
        if has(inode.id, .parent) || has(inode.id, .handleInode) { descriptors.insert(opened, for: inode.id) }
    }

    private mutating func fail(_ inode: VirtiofsdState.Inode, _ cause: PreflightReport.Cause, _ report: inout PreflightReport) {
        mark(inode.id, .invalid)
        deferredBeforeFailure.append(deferred.count)
        report.failingInodes.append(.init(id: inode.id, path: paths.display(inode.id), cause: cause))
    }
}

extension Array {
    /// Removes the element at `index` by moving the last one into its place, as Rust's `swap_remove`.
    fileprivate mutating func swapRemove(at index: Int) -> Element {
        swapAt(index, count - 1)
        return removeLast()
    }
}

import Testing
import VirtiofsdState

/// A destination virtiofsd's command line, as preflight reads it.
@Suite struct DestinationConfigurationTests {
    @Test func virtiofsd113sDefaults() throws {
        let defaults = try DestinationConfiguration(arguments: ["--shared-dir=/srv/share", "--socket-path", "/run/vfsd.sock", "--sandbox=none"])
        #expect(defaults == DestinationConfiguration())
        #expect(!defaults.writeback && defaults.announceSubmounts && !defaults.posixACL)
        #expect(defaults.inodeFileHandles == .never)
        // Optional UInt64s are compared outside #expect: Swift Testing 6.3's capture of one reads
        // past it under AddressSanitizer (a stack-buffer-overflow in its AnyHashable conversion).
        let noLimit = defaults.openFileLimit == nil && defaults.guestDescriptorLimit == nil
        #expect(noLimit)
    }

    /// virtiofsd 1.14 holds inodes by file handle where it can unless told not to, and so
    /// keeps CAP_DAC_READ_SEARCH (measured: it loads a file-handles state without
    /// --modcaps, which 1.13 refuses); its --posix-acl takes never, auto or always.
    @Test func virtiofsd114sDefaults() throws {
        let defaults = try DestinationConfiguration(arguments: ["--shared-dir=/srv/share", "--sandbox=none"], release: .v1_14)
        #expect(defaults == DestinationConfiguration(release: .v1_14))
        #expect(defaults.inodeFileHandles == .prefer && defaults.opensFileHandles && !defaults.inodesHoldDescriptors)
        #expect(!DestinationConfiguration().opensFileHandles)
        let never = try DestinationConfiguration(arguments: ["--inode-file-handles=never"], release: .v1_14)
        #expect(!never.opensFileHandles && never.inodesHoldDescriptors)
        #expect(try DestinationConfiguration(arguments: ["--posix-acl=auto"], release: .v1_14).posixACL)
        #expect(try !DestinationConfiguration(arguments: ["--posix-acl=never"], release: .v1_14).posixACL)
        #expect(throws: DestinationConfiguration.ArgumentError.badValue(option: "--posix-acl", value: "sometimes")) {
            try DestinationConfiguration(arguments: ["--posix-acl=sometimes"], release: .v1_14)
        }
    }

    @Test func everyFormOfTheOptionsThatBearOnALoad() throws {
        let long = try DestinationConfiguration(arguments: [
            "--writeback", "--no-announce-submounts", "--posix-acl", "--inode-file-handles=mandatory", "--rlimit-nofile", "20000",
            "--thread-pool-size=4",
        ])
        #expect(long.writeback && !long.announceSubmounts && long.posixACL)
        #expect(long.inodeFileHandles == .mandatory)
        #expect(long.openFileLimit ?? 0 == 20000)
        #expect(long.guestDescriptorLimit ?? 0 == 20000 - 613)
        let compat = try DestinationConfiguration(arguments: ["-o", "writeback,posix_acl", "--inode-file-handles=fallback", "--rlimit-nofile=0"])
        #expect(compat.writeback && compat.posixACL && compat.inodeFileHandles == .prefer)
        let unchanged = compat.openFileLimit == nil
        #expect(unchanged)
        // The reserve of the measured refusal: a limit of 20,000 leaves 19,390 for the guest.
        #expect(try DestinationConfiguration(arguments: ["--rlimit-nofile=20000"]).guestDescriptorLimit ?? 0 == 19390)
    }

    @Test func valuesVirtiofsdRefusesAreRefused() {
        #expect(throws: DestinationConfiguration.ArgumentError.badValue(option: "--inode-file-handles", value: "always")) {
            try DestinationConfiguration(arguments: ["--inode-file-handles=always"])
        }
        #expect(throws: DestinationConfiguration.ArgumentError.badValue(option: "--rlimit-nofile", value: "many")) {
            try DestinationConfiguration(arguments: ["--rlimit-nofile", "many"])
        }
    }
}

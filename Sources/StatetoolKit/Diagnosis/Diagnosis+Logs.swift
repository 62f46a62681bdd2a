extension Diagnosis {
    /// What the logs' last attempts say, as causes.
    static func readLogs(_ lines: [LogLine], device: String?, causes: inout CauseList, remedies: inout Remedies, missing: inout [String]) {
        var qemuFailures: [LogLine] = []
        var backEndLines = 0
        for line in lines {
            let evidence = line.evidence
            switch line.message {
            case .attemptStarted:
                break
            case .backEndRejectedState, .deviceLoadFailed, .migrationLoadFailed:
                qemuFailures.append(line)
            case .virtqueueTooLarge(let queue, let size, let maximum):
                remedies.queueSize = max(remedies.queueSize ?? 0, size)
                causes.add(
                    .virtqueueSize, device: device,
                    summary: "virtqueue \(queue) in the file holds \(size) entries; the destination device's queue-size is \(maximum)",
                    evidence: evidence)
            case .backEndLacksDeviceState:
                causes.add(.backendWithoutMigration, device: device, summary: "the destination back-end cannot load a device state", evidence: evidence)
            case .passtRejectedState(let reason):
                backEndLines += 1
                causes.add(.passtStateRejected, device: device, summary: "passt refused the state it was sent: \(reason)", evidence: evidence)
            case .descriptorsExhausted(_, let initially):
                backEndLines += 1
                causes.add(
                    .descriptorLimit, device: device,
                    summary: "the destination virtiofsd ran out of descriptors (\(initially) for the guest's inodes and handles)", evidence: evidence)
            case .loadStopped(let reason), .invalidInode(_, let reason), .invalidHandle(_, let reason):
                backEndLines += 1
                classify(reason.root, evidence: evidence, device: device, causes: &causes, remedies: &remedies)
            }
        }
        if let first = causes.causes.first(where: { $0.kind != .unknown }), !qemuFailures.isEmpty {
            // QEMU's side of the same failure.
            causes.add(first.kind, device: first.device, summary: first.summary, evidence: qemuFailures.map(\.evidence))
        } else if !qemuFailures.isEmpty && backEndLines == 0 && causes.causes.isEmpty {
            causes.add(
                .unknown, device: device, summary: "QEMU could not load the device's state, and no log read says why",
                evidence: qemuFailures.map(\.evidence))
            missing.append("--log FILE: the back-end's log (libvirt writes virtiofsd's to /var/log/libvirt/qemu/NAME-fs0-virtiofsd.log)")
        }
    }

    /// One of virtiofsd's reasons as a cause.
    private static func classify(_ reason: LoaderReason, evidence: Evidence, device: String?, causes: inout CauseList, remedies: inout Remedies) {
        switch reason {
        case .openFailed(_, let path, _) where reason.errorNumber == 23 || reason.errorNumber == 24:
            causes.add(.descriptorLimit, device: device, summary: "the destination virtiofsd ran out of descriptors opening \(path)", evidence: evidence)
        case .inodeFailed(let inode, _) where reason.errorNumber == 23 || reason.errorNumber == 24:
            causes.add(.descriptorLimit, device: device, summary: "the destination virtiofsd ran out of descriptors loading inode \(inode)", evidence: evidence)
        case .openFailed(_, let path, _) where remedies.renames.contains(where: { path == $0.old || path.hasSuffix("/" + $0.old) }):
            // The share shows where it went: the line is the moved path's evidence.
            causes.add(.movedPaths, device: device, summary: "\(path) moved", evidence: evidence)
        case .openFailed(_, let path, let error):
            causes.add(.missingPaths, device: device, summary: "\(path) cannot be opened on the destination: \(error)", evidence: evidence)
        case .lostOnSource(let inode):
            causes.add(.missingPaths, device: device, summary: "the source lost inode \(inode)", evidence: evidence)
        case .fileHandleDiffers(let inode):
            causes.add(
                .fileHandleDiffers, device: device,
                summary: "inode \(inode) on the destination is not the file the source recorded (file handles differ): a copy of the share", evidence: evidence)
        case .fileHandleOpenFailed(let inode, _) where reason.errorNumber == 1:
            causes.add(
                .fileHandleCapability, device: device,
                summary: "the destination virtiofsd may not open inode \(inode) by its file handle: it lacks CAP_DAC_READ_SEARCH", evidence: evidence)
        case .handleReopenFailed(let handle, _, let path, let error):
            causes.add(.handleReopenFailed, device: device, summary: "open file \(handle) (\(path)) cannot be reopened: \(error)", evidence: evidence)
        case .unresolvedReferences:
            if causes.contains(.damagedState) {
                causes.add(.damagedState, device: device, summary: "", evidence: evidence)
            } else {
                causes.add(
                    .refcountDrained, device: device, summary: "the loader left inodes unresolved: a parent's refcount ran out as its children loaded",
                    evidence: evidence)
            }
        case .optionDisabled(let option):
            remedies.options.insert(option)
            causes.add(.optionMismatch, device: device, summary: "the source negotiated \(option); the destination has it disabled", evidence: evidence)
        case .fileHandleOpenFailed, .parentInvalid, .inodeFailed, .other:
            causes.add(.unknown, device: device, summary: "virtiofsd refused the state for a reason statetool does not know", evidence: evidence)
        }
    }
}

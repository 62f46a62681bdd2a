import MigrationFile
import StateStream
import StatetoolKit

extension MigrationShowReport {
    /// Byte strings longer than this are shortened unless `--full`.
    static let shortenedByteCount = 32

    /// The text output: the file and configuration, then one block per device,
    /// one line per value (path, value, offset) with the columns aligned; an
    /// array of `uint8` is one line of bytes (`chip_config[16384]`).
    func text(full: Bool) -> [UInt8] {
        var text = "\(file): QEMU migration file"
        if compression != .none { text += " (\(compression.rawValue))" }
        if let configuration = survey.configuration {
            text += ", machine \(configuration.machineType), page size \(1 << configuration.targetPageBits)"
            text += ", capabilities " + (configuration.capabilities.isEmpty ? "none" : configuration.capabilities.joined(separator: ","))
        }
        text += "\n"
        var lines = Array(text.utf8)
        for device in devices {
            lines.append(UInt8(ascii: "\n"))
            block(of: device, full: full, into: &lines)
        }
        return lines
    }

    /// One device's block: its header line, its values, its virtio state.
    private func block(of device: DecodedSection, full: Bool, into lines: inout [UInt8]) {
        let identity = device.section
        lines += "\(identity.name) (section \(identity.id), instance \(identity.instanceID), version \(identity.version)) at offset \(device.sectionOffset)\n".utf8
        var rows: [(String, String, UInt64)] = []
        Self.collect(device.contents, prefix: "", full: full, into: &rows)
        let widths = rows.map { (Self.width(of: $0.0), Self.width(of: $0.1)) }
        let width = min(48, widths.map(\.0).max() ?? 0)
        let valueWidth = min(40, widths.map(\.1).max() ?? 0)
        // A device may have thousands of values (the ICH9 LPC's chip_config, 16,384): its
        // lines are put together as bytes, which costs a fraction of joining Strings.
        for ((path, value, offset), (pathWidth, valueTextWidth)) in zip(rows, widths) {
            lines += "  ".utf8
            lines += path.utf8
            lines += repeatElement(UInt8(ascii: " "), count: max(0, width - pathWidth) + 2)
            lines += value.utf8
            lines += repeatElement(UInt8(ascii: " "), count: max(0, valueWidth - valueTextWidth) + 2)
            lines.append(UInt8(ascii: "@"))
            lines += String(offset).utf8
            lines.append(UInt8(ascii: "\n"))
        }
        if let state = virtio[identity.id] { lines += Self.virtioLines(state, usedIndexes: usedIndexes[identity.id] ?? [:]).utf8 }
    }

    /// The characters `text` takes, as `TextFormat.padded` counts them; an
    /// ASCII text without counting grapheme clusters.
    private static func width(of text: String) -> Int {
        text.utf8.allSatisfy { $0 < 0x80 } ? text.utf8.count : text.count
    }

    private static func collect(_ structure: DecodedStructure, prefix: String, full: Bool, into rows: inout [(String, String, UInt64)]) {
        for field in structure.fields {
            let path = prefix.isEmpty ? field.name : prefix + "." + field.name
            collect(field.value, path: path, full: full, into: &rows)
        }
        for subsection in structure.subsections {
            collect(subsection.contents, prefix: prefix + "/" + subsection.name, full: full, into: &rows)
        }
    }

    private static func collect(_ value: DecodedValue, path: String, full: Bool, into rows: inout [(String, String, UInt64)]) {
        switch value.content {
        case .elements(let elements):
            if let bytes = byteArray(elements) {
                // An array of uint8 (the ICH9 LPC's chip_config: 16,384 of them) reads
                // as the bytes it is, on one line, shortened as byte strings are.
                let shown = DecodedValue(offset: value.offset, byteCount: value.byteCount, content: .bytes(bytes))
                rows.append((path + "[" + String(elements.count) + "]", text(of: shown, full: full), value.offset))
                return
            }
            for (index, element) in elements.enumerated() {
                collect(element, path: path + "[" + String(index) + "]", full: full, into: &rows)
            }
        case .structure(let structure):
            collect(structure, prefix: path, full: full, into: &rows)
        default:
            rows.append((path, text(of: value, full: full), value.offset))
        }
    }

    /// The bytes of an array of more than one one-byte unsigned integer, or nil.
    private static func byteArray(_ elements: [DecodedValue]) -> [UInt8]? {
        guard elements.count > 1 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(elements.count)
        for element in elements {
            guard element.byteCount == 1, case .unsigned(let number) = element.content else { return nil }
            bytes.append(UInt8(truncatingIfNeeded: number))
        }
        return bytes
    }

    /// A leaf value as the analyzer shows it: integers in hex of their
    /// width (a negative one with its decimal), bools, bytes in hex.
    static func text(of value: DecodedValue, full: Bool) -> String {
        let digits = Int(value.byteCount) * 2
        switch value.content {
        case .unsigned(let number):
            let hex = String(number, radix: 16)
            return "0x" + String(repeating: "0", count: max(0, digits - hex.count)) + hex
        case .signed(let number):
            let pattern = digits >= 16 ? UInt64(bitPattern: number) : UInt64(bitPattern: number) & ((1 << UInt64(digits * 4)) - 1)
            let hex = String(pattern, radix: 16)
            let text = "0x" + String(repeating: "0", count: max(0, digits - hex.count)) + hex
            return number < 0 ? "\(text) (\(number))" : text
        case .bool(let flag):
            return flag ? "true" : "false"
        case .bytes(let bytes):
            if full || bytes.count <= shortenedByteCount { return bytes.hexString(separator: " ") }
            return bytes.prefix(shortenedByteCount).hexString(separator: " ") + " … (\(bytes.count) bytes)"
        case .nullPointer:
            return "nullptr"
        case .capability(let name):
            return name
        case .elided:
            return "(\(value.byteCount) bytes of back-end state: statetool extract writes them)"
        case .elements, .structure:
            return ""
        }
    }

    /// The virtio state under a device's values, with the used indexes read
    /// from the guest's RAM (`--used-rings`).
    static func virtioLines(_ state: VirtioDeviceState, usedIndexes: [Int: UInt16] = [:]) -> String {
        func hex(_ value: some BinaryInteger) -> String { "0x" + String(value, radix: 16) }
        var text = "  virtio (virtio-pci) at offset \(state.offset), \(state.byteCount) bytes:\n"
        text += "    status \(hex(state.status)) (\(state.statusNames.joined(separator: " "))), isr \(hex(state.isr)), "
        text += "queue_sel \(state.queueSelector), guest features \(hex(state.guestFeatures))\n"
        text += "    PCI \(String(format4(state.pci.vendorID))):\(String(format4(state.pci.deviceID))), config space \(state.pci.config.count) bytes"
        if let vectors = state.pci.msixVectorCount {
            text += ", MSI-X \(vectors) vectors, config vector \(state.pci.configVector.map { String($0) } ?? "none")"
        }
        text += "\n    device config \(state.config.count) bytes"
        if let fs = state.fileSystemConfig { text += ": vhost-user-fs tag \"\(fs.tag)\", \(fs.requestQueues) request queue\(fs.requestQueues == 1 ? "" : "s")" }
        text += "\n"
        for queue in state.queues {
            text += "    queue \(queue.index): size \(queue.size) @\(queue.sizeOffset), desc \(hex(queue.descriptorAddress))"
            if let available = queue.availableAddress, let used = queue.usedAddress { text += ", avail \(hex(available)), used \(hex(used))" }
            text += ", last_avail_idx \(queue.lastAvailableIndex) @\(queue.lastAvailableIndexOffset)"
            if let used = usedIndexes[queue.index] { text += ", used_idx \(used)" }
            if let vector = queue.vector { text += ", vector \(vector == VirtioDeviceState.noVector ? "none" : String(vector))" }
            text += "\n"
        }
        if !state.deviceState.isEmpty { text += "    device state \(state.deviceState.count) bytes\n" }
        if !state.subsections.isEmpty {
            text += "    subsections: " + state.subsections.map { "\($0.name) @\($0.offset)" }.joined(separator: ", ") + "\n"
        }
        return text
    }

    private static func format4(_ value: UInt16) -> String {
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 4 - hex.count) + hex
    }
}

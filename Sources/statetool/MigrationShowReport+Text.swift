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
        var rows = ValueRows(full: full)
        rows.collect(device.contents)
        rows.write(into: &lines)
        if let state = virtio[identity.id] { lines += Self.virtioLines(state, usedIndexes: usedIndexes[identity.id] ?? [:]).utf8 }
    }

    /// A device's values as aligned rows (path, value, `@offset`). A device may
    /// have thousands (the ahci's 1,584): paths and values are put together as
    /// bytes in two buffers, with no String per row, and aligned when written.
    private struct ValueRows {
        let full: Bool
        private var paths: [UInt8] = []
        private var values: [UInt8] = []
        private var rows: [Row] = []
        /// The path of the structure being collected.
        private var prefix: [UInt8] = []

        /// Where a row's path and value end in their buffers, their widths, the value's offset.
        private struct Row {
            let pathEnd: Int
            let pathWidth: Int
            let valueEnd: Int
            let valueWidth: Int
            let offset: UInt64
        }

        init(full: Bool) { self.full = full }

        mutating func collect(_ structure: DecodedStructure) {
            let length = prefix.count
            for field in structure.fields {
                if !prefix.isEmpty { prefix.append(UInt8(ascii: ".")) }
                prefix += field.name.utf8
                collect(field.value)
                prefix.removeSubrange(length...)
            }
            for subsection in structure.subsections {
                prefix.append(UInt8(ascii: "/"))
                prefix += subsection.name.utf8
                collect(subsection.contents)
                prefix.removeSubrange(length...)
            }
        }

        private mutating func collect(_ value: DecodedValue) {
            switch value.content {
            case .elements(let elements):
                if let bytes = MigrationShowReport.byteArray(elements) {
                    // An array of uint8 (the ICH9 LPC's chip_config: 16,384 of them) reads
                    // as the bytes it is, on one line, shortened as byte strings are.
                    let length = prefix.count
                    prefix += "[\(elements.count)]".utf8
                    add(DecodedValue(offset: value.offset, byteCount: value.byteCount, content: .bytes(bytes)))
                    prefix.removeSubrange(length...)
                    return
                }
                let length = prefix.count
                for (index, element) in elements.enumerated() {
                    prefix.append(UInt8(ascii: "["))
                    prefix += String(index).utf8
                    prefix.append(UInt8(ascii: "]"))
                    collect(element)
                    prefix.removeSubrange(length...)
                }
            case .structure(let structure):
                collect(structure)
            default:
                add(value)
            }
        }

        /// A leaf: the path so far, the value's text.
        private mutating func add(_ value: DecodedValue) {
            paths += prefix
            let valueStart = values.count
            MigrationShowReport.appendText(of: value, full: full, to: &values)
            rows.append(Row(
                pathEnd: paths.count, pathWidth: Self.width(prefix[...]), valueEnd: values.count, valueWidth: Self.width(values[valueStart...]),
                offset: value.offset))
        }

        /// The characters `text` takes, as `TextFormat.padded` counts them:
        /// its bytes when ASCII, its characters otherwise.
        private static func width(_ text: ArraySlice<UInt8>) -> Int {
            text.allSatisfy { $0 < 0x80 } ? text.count : String(decoding: text, as: UTF8.self).count
        }

        /// The rows, paths padded to the longest (at most 48 characters), values to the longest (at most 40).
        func write(into lines: inout [UInt8]) {
            let width = min(48, rows.map(\.pathWidth).max() ?? 0)
            let valueWidth = min(40, rows.map(\.valueWidth).max() ?? 0)
            var pathStart = 0
            var valueStart = 0
            for row in rows {
                lines += "  ".utf8
                lines += paths[pathStart..<row.pathEnd]
                lines += repeatElement(UInt8(ascii: " "), count: max(0, width - row.pathWidth) + 2)
                lines += values[valueStart..<row.valueEnd]
                lines += repeatElement(UInt8(ascii: " "), count: max(0, valueWidth - row.valueWidth) + 2)
                lines.append(UInt8(ascii: "@"))
                lines += String(row.offset).utf8
                lines.append(UInt8(ascii: "\n"))
                pathStart = row.pathEnd
                valueStart = row.valueEnd
            }
        }
    }

    /// The bytes of an array of more than one one-byte unsigned integer, or nil.
    fileprivate static func byteArray(_ elements: [DecodedValue]) -> [UInt8]? {
        guard elements.count > 1 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(elements.count)
        for element in elements {
            guard element.byteCount == 1, case .unsigned(let number) = element.content else { return nil }
            bytes.append(UInt8(truncatingIfNeeded: number))
        }
        return bytes
    }

    /// A leaf value as the analyzer shows it, appended to `text`: integers
    /// in hex of their width (a negative one with its decimal), bools, bytes
    /// in hex (shortened unless `full`).
    static func appendText(of value: DecodedValue, full: Bool, to text: inout [UInt8]) {
        // Integers are 1 to 8 bytes wide (wider ones are bytes): their big-endian low bytes.
        let width = Int(min(value.byteCount, 8))
        switch value.content {
        case .unsigned(let number):
            text += "0x".utf8
            withUnsafeBytes(of: number.bigEndian) { $0.suffix(width).appendHex(to: &text) }
        case .signed(let number):
            text += "0x".utf8
            withUnsafeBytes(of: number.bigEndian) { $0.suffix(width).appendHex(to: &text) }
            if number < 0 { text += " (\(number))".utf8 }
        case .bool(let flag):
            text += (flag ? "true" : "false").utf8
        case .bytes(let bytes):
            let space = [UInt8(ascii: " ")]
            if full || bytes.count <= shortenedByteCount {
                bytes.appendHex(to: &text, separator: space)
            } else {
                bytes.prefix(shortenedByteCount).appendHex(to: &text, separator: space)
                text += " … (\(bytes.count) bytes)".utf8
            }
        case .nullPointer:
            text += "nullptr".utf8
        case .capability(let name):
            text += name.utf8
        case .elided:
            text += "(\(value.byteCount) bytes of back-end state: statetool extract writes them)".utf8
        case .elements, .structure:
            break
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

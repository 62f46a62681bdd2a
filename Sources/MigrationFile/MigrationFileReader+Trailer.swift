import StateStream

/// What follows the EOF marker: the JSON description.
extension Walk {
    /// After the EOF marker: nothing, or `0x06`, be32 length and the JSON description.
    func readDescription() throws {
        let offset = cursor.offset
        guard try !cursor.atEnd() else {
            try handle(.problem(.noDescription(at: offset)))
            return
        }
        guard cursor.byte(at: 0) == MigrationFormat.RecordType.description.rawValue else {
            try stop(.trailingData(at: offset, byteCount: try cursor.skip(.max)))
        }
        try require(5, inside: "the JSON description's header")
        let length = Int(cursor.bigEndian(UInt32.self, at: 1))
        cursor.advance(5)
        guard length <= MigrationFileReader.maximumDescriptionLength else {
            try stop(.badDescription("a JSON description of \(length) bytes, more than statetool reads", at: offset))
        }
        var json: [UInt8] = []
        while json.count < length {
            try require(1, inside: "the JSON description")
            let count = min(cursor.available, length - json.count)
            json += cursor.availableBytes.prefix(count)
            cursor.advance(count)
        }
        if keepsSectionBodies { try handle(.descriptionText(json, offset: offset + 5)) }
        let description: VMDescription
        if let placed = placement?.trailer, placed.endOfFileOffset + 1 == offset {
            // These bytes were decoded when the device sections were placed from them.
            description = placed.description
        } else {
            do {
                description = try VMDescription.decode(json)
            } catch {
                try stop(.badDescription("the JSON description does not decode: \(error)", at: offset + 5))
            }
        }
        try handle(.description(description, offset: offset, byteCount: UInt64(5 + length)))
        let trailing = cursor.offset
        let extra = try cursor.skip(.max)
        if extra > 0 { try stop(.trailingData(at: trailing, byteCount: extra)) }
    }
}

/// Finds an inode by its id among a state's inodes: the first inode in
/// payload order that has it, as the loader's map keeps it.
///
/// virtiofsd writes its inodes in ascending ids, so for such a state the ids
/// themselves are searched (no memory beyond them); otherwise a permutation of
/// the inodes sorted by id (4 bytes an inode) is. Either way a lookup costs
/// O(log n) and no dictionary of a million entries is built.
struct InodeIndex: Sendable {
    /// The ids, in payload order.
    private let ids: [UInt64]
    /// The positions sorted by id, then by position; `nil` when the ids ascend strictly.
    private let order: [UInt32]?

    /// An index of `ids`, given in payload order.
    init(ids: [UInt64]) {
        self.ids = ids
        var ascending = true
        for position in ids.indices.dropFirst() where ids[position - 1] >= ids[position] {
            ascending = false
            break
        }
        if ascending {
            order = nil
        } else {
            var sorted = Array(0..<UInt32(ids.count))
            sorted.sort { ids[Int($0)] != ids[Int($1)] ? ids[Int($0)] < ids[Int($1)] : $0 < $1 }
            order = sorted
        }
    }

    /// An index of the inodes of `state`.
    init(_ state: VirtiofsdState) {
        self.init(ids: state.inodes.map(\.id))
    }

    /// How many inodes there are.
    var count: Int { ids.count }

    /// The id of the inode at `position`.
    subscript(position: Int) -> UInt64 { ids[position] }

    /// The position of the first inode whose id is `id`, or `nil` when none has it.
    func position(of id: UInt64) -> Int? {
        guard let order else {
            // Distinct ascending ids put `id` no later than `id - first` and no
            // earlier than `count - 1 - (last - id)`; virtiofsd's mostly ascend
            // one by one, so one of the two is usually it.
            guard let first = ids.first, let last = ids.last, id >= first, id <= last else { return nil }
            let latest = Int(min(id - first, UInt64(ids.count - 1)))
            if ids[latest] == id { return latest }
            let earliest = max(0, ids.count - 1 - Int(min(last - id, UInt64(ids.count - 1))))
            if ids[earliest] == id { return earliest }
            let found = earliest + lowerBound(count: latest - earliest + 1) { ids[earliest + $0] < id }
            return found <= latest && ids[found] == id ? found : nil
        }
        let found = lowerBound(count: order.count) { ids[Int(order[$0])] < id }
        return found < order.count && ids[Int(order[found])] == id ? Int(order[found]) : nil
    }

    /// Whether an inode has the id `id`.
    func contains(_ id: UInt64) -> Bool { position(of: id) != nil }

    /// The first of `0..<count` for which `isBelow` is false.
    private func lowerBound(count: Int, _ isBelow: (Int) -> Bool) -> Int {
        var low = 0, high = count
        while low < high {
            let middle = low + (high - low) / 2
            if isBelow(middle) { low = middle + 1 } else { high = middle }
        }
        return low
    }
}

/// The causes found so far: one per kind and device, evidence merged.
struct CauseList {
    private(set) var causes: [Cause] = []
    /// The most evidence kept per cause (a guest-error log names every invalid inode).
    static let maximumEvidence = 50

    /// Adds a cause, or its evidence to the cause of the same kind and device
    /// (a cause whose device is unknown takes the first of its kind).
    mutating func add(_ kind: CauseKind, device: String?, summary: String, evidence: Evidence...) {
        add(kind, device: device, summary: summary, evidence: evidence)
    }

    /// Adds a cause, or its evidence to the cause of the same kind and device.
    mutating func add(_ kind: CauseKind, device: String?, summary: String, evidence: [Evidence]) {
        if let index = causes.firstIndex(where: { $0.kind == kind && ($0.device == device || $0.device == nil || device == nil) }) {
            if causes[index].device == nil { causes[index].device = device }
            for item in evidence where causes[index].evidence.count < Self.maximumEvidence && !causes[index].evidence.contains(item) {
                causes[index].evidence.append(item)
            }
        } else {
            causes.append(Cause(kind: kind, device: device, summary: summary, evidence: Array(evidence.prefix(Self.maximumEvidence))))
        }
    }

    /// Adds each of `causes`.
    mutating func add(contentsOf more: [Cause]) {
        for cause in more { add(cause.kind, device: cause.device, summary: cause.summary, evidence: cause.evidence) }
    }

    /// Whether a cause of `kind` is there.
    func contains(_ kind: CauseKind) -> Bool { causes.contains { $0.kind == kind } }

    /// The cause of `kind`, if any.
    func first(_ kind: CauseKind) -> Cause? { causes.first { $0.kind == kind } }

    /// The causes in the catalogue's order.
    var sorted: [Cause] {
        causes.sorted { CauseKind.allCases.firstIndex(of: $0.kind)! < CauseKind.allCases.firstIndex(of: $1.kind)! }
    }
}

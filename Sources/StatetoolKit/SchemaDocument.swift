/// A JSON object a command prints, and the schema it follows.
///
/// Every `--json` object carries a `schema` key whose value is its schema's
/// `$id` (`urn:statetool:inspect:1`): a script checks it before it reads
/// anything else. ``JSONSchemas`` holds the schemas; `statetool schema NAME`
/// prints them.
public struct SchemaDocument<Body: Encodable>: Encodable {
    /// The schema's name: `inspect`, `migration-ls`.
    public let schemaName: String
    /// The object itself.
    public let body: Body

    /// `body`, following the schema named `schemaName`.
    public init(_ body: Body, schema schemaName: String) {
        self.body = body
        self.schemaName = schemaName
    }

    /// The schema's identifier, its `$id`.
    public var schemaIdentifier: String { JSONSchemas.identifier(schemaName) ?? "urn:statetool:\(schemaName):1" }

    private enum CodingKeys: String, CodingKey { case schema }

    /// Encodes the body's keys and `schema` beside them.
    public func encode(to encoder: any Encoder) throws {
        try body.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(schemaIdentifier, forKey: .schema)
    }
}

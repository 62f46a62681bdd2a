import ArgumentParser
import StatetoolKit

struct Schema: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the JSON Schema of a command's --json output.",
        discussion: """
            Every command with --json (inspect, diff, extract, migration ls, migration show, \
            migration replace, preflight, repair, replay, retarget) prints one JSON object that follows a JSON Schema \
            (draft 2020-12) kept in the repository as schemas/NAME.schema.json; this prints it, \
            byte for byte the same as the file. COMMAND is the command's name, a two-word one as \
            two words or joined with - (migration ls, migration-ls); common is the schema of the \
            shapes the others share (a finding, a reading of a migration file, a virtiofsd inode \
            and handle, a virtiofsd or passt state), which they refer to as \
            urn:statetool:common:1#/$defs/NAME.

            Each object a command prints carries a "schema" key naming the schema it follows and \
            its version, the schema's $id: "schema": "urn:statetool:inspect:1" for inspect. A \
            script checks it before reading anything else. A change that would break a reader (a \
            key removed or renamed, a type or a meaning changed) comes with a new version number; \
            a new key is added to the schema under the same one. Every key an object can have is \
            described there, with its units and what null means.

            --list prints the names, one a line. Exit status: 0 printed, 64 no schema of that name \
            (the names are listed on standard error) or a usage error.
            """
    )

    @Flag(help: "List the names that have a schema, one a line.")
    var list = false

    @Argument(
        help: ArgumentHelp(
            "The command whose --json output to describe (migration ls may be two words), or common.",
            valueName: "command"))
    var command: [String] = []

    func validate() throws {
        if list && !command.isEmpty { throw ValidationError("--list prints every name: leave out the command.") }
        if !list && command.isEmpty { throw ValidationError("Name a command (statetool schema inspect), or --list.") }
    }

    func run() throws {
        let text: String
        if list {
            text = JSONSchemas.names.map { $0 + "\n" }.joined()
        } else {
            // `migration ls` and `migration-ls` name the same schema.
            let name = command.joined(separator: "-")
            guard let schema = JSONSchemas.named(name) else {
                throw CommandFailure(
                    .usage,
                    "error: no schema for \"\(command.joined(separator: " "))\": the names are \(JSONSchemas.names.joined(separator: ", "))")
            }
            text = schema
        }
        let output = StandardOutput()
        try output.write(text)
        try output.flush()
    }
}

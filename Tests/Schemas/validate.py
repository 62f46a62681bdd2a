#!/usr/bin/python3
"""Validates statetool --json outputs against the JSON Schemas in schemas/.

    Tests/Schemas/validate.py NAME [FILE...]     each FILE (standard input without
                                                one) holds one JSON object per line,
                                                an output of the command NAME
    Tests/Schemas/validate.py --check-schemas   checks every schema against the
                                                2020-12 meta-schema

Every schemas/*.schema.json is loaded, so "$ref": "urn:statetool:common:1#/$defs/X"
and "urn:statetool:migration-replace:1" resolve without any network access.
Draft 2020-12, with python3-jsonschema (Debian 12: 4.10, RefResolver; newer: the
referencing library). Prints every validation error (where in the object, what is
wrong, which schema keyword) and exits 1 when any object is invalid, 2 when an
input is no JSON object; 0 when all are valid.
"""
import json
import os
import sys

import jsonschema
from jsonschema import Draft202012Validator

SCHEMAS = os.environ.get(
    "STATETOOL_SCHEMAS", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "schemas"))


def load_schemas():
    """Every schema in the folder, by name (file name without .schema.json)."""
    schemas = {}
    for entry in sorted(os.listdir(SCHEMAS)):
        if entry.endswith(".schema.json"):
            with open(os.path.join(SCHEMAS, entry), encoding="utf-8") as f:
                schemas[entry[: -len(".schema.json")]] = json.load(f)
    return schemas


def validator_for(schema, schemas):
    """A 2020-12 validator for `schema` that resolves every statetool schema by its $id."""
    try:
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012
    except ImportError:  # jsonschema before 4.18 (Debian 12's 4.10): RefResolver with a store.
        store = {s["$id"]: s for s in schemas.values()}
        resolver = jsonschema.RefResolver(base_uri=schema["$id"], referrer=schema, store=store)
        return Draft202012Validator(schema, resolver=resolver)
    registry = Registry().with_resources(
        (s["$id"], Resource.from_contents(s, default_specification=DRAFT202012)) for s in schemas.values())
    return Draft202012Validator(schema, registry=registry)


def describe(error):
    """One error: where in the object, what is wrong, which keyword of which schema said so."""
    where = "".join("[%s]" % json.dumps(p) for p in error.absolute_path) or "(the object)"
    keyword = "/".join(str(p) for p in error.absolute_schema_path)
    text = "  at %s: %s\n    (schema keyword %s)" % (where, error.message, keyword)
    for sub in sorted(error.context or [], key=lambda e: list(e.absolute_schema_path))[:6]:
        sub_where = "".join("[%s]" % json.dumps(p) for p in sub.absolute_path) or "(the object)"
        text += "\n    - %s: %s" % (sub_where, sub.message)
    return text


def check_schemas(schemas):
    failed = False
    for name, schema in schemas.items():
        try:
            Draft202012Validator.check_schema(schema)
        except jsonschema.exceptions.SchemaError as error:
            failed = True
            print("%s.schema.json is no valid 2020-12 schema: %s" % (name, error.message))
        if name != "common" and schema.get("$id") != "urn:statetool:%s:1" % name:
            failed = True
            print("%s.schema.json: $id is %r, not urn:statetool:%s:1" % (name, schema.get("$id"), name))
    return 1 if failed else 0


def main(arguments):
    schemas = load_schemas()
    if arguments == ["--check-schemas"]:
        return check_schemas(schemas)
    if not arguments or arguments[0] not in schemas:
        print("usage: validate.py NAME [FILE...] | --check-schemas; NAME: %s" % ", ".join(schemas), file=sys.stderr)
        return 64
    name, files = arguments[0], arguments[1:] or ["-"]
    validator = validator_for(schemas[name], schemas)
    status, count = 0, 0
    for path in files:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
        lines = [line for line in text.split("\n") if line.strip()]
        if not lines:
            print("%s: no JSON object to validate" % path)
            return 2
        for number, line in enumerate(lines, 1):
            try:
                instance = json.loads(line)
            except json.JSONDecodeError as error:
                print("%s:%d: not JSON: %s" % (path, number, error))
                return 2
            if not isinstance(instance, dict):
                print("%s:%d: not a JSON object" % (path, number))
                return 2
            count += 1
            errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
            if errors:
                status = 1
                print("%s:%d: not valid against %s.schema.json (%s):" % (path, number, name, schemas[name]["$id"]))
                for error in errors[:20]:
                    print(describe(error))
                if len(errors) > 20:
                    print("  ... and %d more errors" % (len(errors) - 20))
    if status == 0:
        print("%d %s valid against %s.schema.json" % (count, "object" if count == 1 else "objects", name))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

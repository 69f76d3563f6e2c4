"""Validates every YAML file given against a JSON Schema; prints one line per problem.
usage: check_schemas.py SCHEMA FILE..."""
import json
import sys

import jsonschema
import yaml

schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
problems = 0
for path in sys.argv[2:]:
    for error in validator.iter_errors(yaml.safe_load(open(path))):
        problems += 1
        print(f"{path}: {'/'.join(map(str, error.absolute_path))}: {error.message}")
sys.exit(1 if problems else 0)

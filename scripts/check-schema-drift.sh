#!/usr/bin/env bash
# Proves the schema drift test can fail: adds a field to the grant request type without regenerating
# docs/schema/, expects `cargo test -p grant-model --test schema` to fail for that reason, then restores the file.
set -euo pipefail
cd "$(dirname "$0")/.."
source_file=crates/grant-model/src/request.rs
backup=$(mktemp)
cp "$source_file" "$backup"
trap 'cp "$backup" "$source_file"; rm -f "$backup"' EXIT

python3 - "$source_file" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
anchor = "pub struct GrantRequest {\n"
assert anchor in text, "GrantRequest not found"
text = text.replace(anchor, anchor + "    #[serde(default)]\n    pub ticket: Option<String>,\n", 1)
open(path, "w").write(text)
PY

if output=$(cargo test -q -p grant-model --test schema 2>&1); then
    echo "schema drift check: FAILED: the test passed although GrantRequest gained a field" >&2
    exit 1
fi
if ! grep -q "request.schema.json no longer matches the Rust types" <<<"$output"; then
    echo "schema drift check: FAILED: the test failed, but not for the drift:" >&2
    echo "$output" >&2
    exit 1
fi
echo "schema drift check: passed (the test refused a GrantRequest with an extra field)"

#!/usr/bin/env bash
# Checks the docs: every mermaid diagram in README.md and docs/ parses (with mermaid 11, installed from npm into
# a temporary directory), and every relative link points at a file that exists.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
docs=(README.md docs/*.md terraform/README.md)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; }
(cd "$work" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund mermaid@11 jsdom@24 >/dev/null)
cp scripts/check-mermaid.mjs "$work/"
(cd "$work" && node check-mermaid.mjs "${docs[@]/#/$root/}")

python3 - "${docs[@]}" <<'PY'
import os, re, sys
broken = []
for doc in sys.argv[1:]:
    text = open(doc).read()
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        if not os.path.exists(os.path.join(os.path.dirname(doc), target)):
            broken.append(f"{doc}: {target}")
print("\n".join(broken) or "links: all relative links resolve")
sys.exit(1 if broken else 0)
PY

#!/usr/bin/env bash
# Builds both Lambdas (provisioner, reaper) as deployable zips with cargo-lambda:
#
#   scripts/package.sh
#
# Architecture: arm64 if the aarch64-unknown-linux-gnu Rust target is installed, else x86_64.
# Override with ARCH=x86_64 or ARCH=arm64. Pass the printed architecture to the Terraform module's
# `architecture` variable and the printed paths to `provisioner_zip` / `reaper_zip`.
#
# The compiler defaults to cargo-lambda's own (cargo-zigbuild with zig, which links against an old glibc so
# the binary runs on provided.al2023). Set CARGO_LAMBDA_COMPILER=cargo to use plain cargo (only safe for the
# host's architecture, and the host's glibc must not be newer than Amazon Linux 2023's 2.34).
#
# Output: target/lambda/provisioner/bootstrap.zip and target/lambda/reaper/bootstrap.zip.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "==================================================================" >&2
  echo "PACKAGING FAILED: $*" >&2
  echo "==================================================================" >&2
  exit 1
}

command -v cargo >/dev/null || fail "cargo is not installed"
cargo lambda --version >/dev/null 2>&1 || fail "cargo-lambda is not installed (pip install cargo-lambda)"

if [[ -z "${ARCH:-}" ]]; then
  if rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
    ARCH=arm64
  else
    ARCH=x86_64
  fi
fi
case "$ARCH" in
  arm64) arch_flag=--arm64 ;;
  x86_64) arch_flag=--x86-64 ;;
  *) fail "ARCH must be arm64 or x86_64, not '$ARCH'" ;;
esac

echo "building provisioner and reaper for $ARCH ..." >&2
cargo lambda build --release "$arch_flag" --output-format zip -p provisioner -p reaper \
  || fail "cargo lambda build failed for $ARCH (see above)"

status=0
for fn in provisioner reaper; do
  zip="target/lambda/$fn/bootstrap.zip"
  if [[ -s "$zip" ]]; then
    echo "$fn: $PWD/$zip"
  else
    echo "$fn: missing $zip" >&2
    status=1
  fi
done
[[ $status -eq 0 ]] || fail "cargo lambda reported success but a zip is missing"
echo "architecture: $ARCH"

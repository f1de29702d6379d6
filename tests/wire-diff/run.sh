#!/usr/bin/env bash
# The differential harness against real Better Auth 1.7.25 (see README.md here).
#
#   tests/wire-diff/run.sh                 # the whole corpus
#   tests/wire-diff/run.sh --sample 3000   # what CI runs: every valid request plus a seeded sample
#   tests/wire-diff/run.sh --filter 'sign-in' --show 50
#
# Builds the release `portcullis` binary, copies the conformance kit (../shared/conformance, or
# CONFORMANCE_KIT) to a scratch folder once (npm ci there), and runs run.mjs from it.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portcullis/target}"
kit_src="${CONFORMANCE_KIT:-}"
for candidate in "$root/../shared/conformance" /work/shared/conformance; do
  if [ -z "$kit_src" ] && [ -f "$candidate/package-lock.json" ]; then kit_src="$candidate"; fi
done
[ -n "$kit_src" ] || { echo "conformance kit not found (set CONFORMANCE_KIT)" >&2; exit 1; }
kit="$HOME/.cache/portcullis/conformance"
lock_sum="$(sha256sum "$kit_src/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$kit/.lock-sum" ] || [ "$(cat "$kit/.lock-sum")" != "$lock_sum" ] || [ ! -d "$kit/node_modules/better-auth" ]; then
  rm -rf "$kit" && mkdir -p "$kit"
  cp -r "$kit_src/." "$kit"
  (cd "$kit" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_sum" > "$kit/.lock-sum"
fi
(cd "$root" && cargo build --release --quiet -p portcullis-cli)
rm -rf "$kit/wire-diff" && mkdir -p "$kit/wire-diff"
cp "$root"/tests/wire-diff/*.mjs "$root"/tests/wire-diff/portcullis.toml "$kit/wire-diff/"
exec node "$kit/wire-diff/run.mjs" --portcullis "$CARGO_TARGET_DIR/release/portcullis" \
  --divergences "$root/tests/wire-diff/DIVERGENCES.md" "$@"

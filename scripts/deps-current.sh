#!/usr/bin/env bash
# Exits 0 when node_modules holds what package-lock.json asks for, 1 when `npm ci` is needed.
# Known current: the lock's checksum recorded at the last install matches, or, with no record, npm
# itself installed after the lock last changed (its node_modules/.package-lock.json is newer:
# the README's `npm ci` just ran) and everything the lock lists is there. Then the checksum is
# recorded for next time.
set -euo pipefail
cd "${1:-.}"
[ -f package-lock.json ] || exit 1
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
record=node_modules/.confhub-lock-sha256
if [ -f "$record" ]; then
  [ "$(cat "$record")" = "$lock_sum" ] && exit 0
  exit 1
fi
# npm ls: an install without the dev dependencies (--omit=dev) is not the one the tests need.
if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ] && npm ls --all >/dev/null 2>&1; then
  echo "$lock_sum" > "$record"
  exit 0
fi
exit 1

#!/usr/bin/env bash
# The whole confhub test suite, from a fresh clone on Debian with Node >= 20.19:
# installs what the tests need when it is missing (Debian packages, npm dependencies),
# builds, type-checks, checks the layering rules and the formatter and linter, and runs vitest.
# Ends with one line "vitest: N passed, N failed, N skipped"; a broken layering rule or a lint
# or format error stops the run before vitest with a message naming the failed step.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the suites use: git (history), python3 (configparser cross-check),
# docker.io, supervisor and busybox-static (the real engines of the sync suites), debootstrap
# (the container suite's base image when no registry image can be pulled), nginx (a real
# service the sync suite configures, run under the suite's own supervisord), prometheus (its
# promtool lints the GET /metrics answer; the Prometheus server itself is never started),
# shellcheck (lints the service init script, init/confhub-init.sh), docker-compose (validates the
# README's compose example with `docker-compose config`), chromium (the console page's browser
# tests, driven by playwright-core with this executable: no browser is downloaded).
missing=()
for pkg in git python3 docker.io supervisor busybox-static debootstrap nginx prometheus shellcheck docker-compose chromium; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]} > 0)); then
  echo "test/run.sh: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -q
  # The packages' own services (nginx on port 80, dockerd, the Prometheus server on port 9090) are
  # not started: the suites start their own, on loopback and private sockets. RUNLEVEL=1 tells
  # invoke-rc.d so without systemd; on a systemd host a policy-rc.d that refuses every action
  # (exit 101) does, for the time of the install only (an existing one is left as it is).
  policy=/usr/sbin/policy-rc.d
  made_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod 755 "$policy" && made_policy=1
  fi
  install_status=0
  $sudo env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -q --no-install-recommends "${missing[@]}" || install_status=$?
  [ -z "$made_policy" ] || $sudo rm -f "$policy"
  [ "$install_status" = 0 ] || exit "$install_status"
  # Under systemd the install still enabled them for the next boot; the suites never need these two.
  if [ -d /run/systemd/system ]; then
    for unit in nginx prometheus; do
      [[ " ${missing[*]} " == *" $unit "* ]] && $sudo systemctl disable "$unit" >/dev/null 2>&1 || true
    done
  fi
fi

# npm dependencies: installed only when package-lock.json changed since the last install (an
# `npm ci` run just before, as the README says, counts: a confhub started from it keeps its files).
if ! bash scripts/deps-current.sh; then
  npm ci --no-fund --no-audit
  sha256sum package-lock.json | cut -d' ' -f1 > node_modules/.confhub-lock-sha256
fi

npm run --silent build
npx tsc -p test/tsconfig.json

# Both checks run, so one run shows every problem; either failing stops the run before vitest.
failed_checks=()
npm run --silent layering || failed_checks+=("layering rules (npm run layering; the rules and their reasons are in .dependency-cruiser.cjs)")
npm run --silent lint || failed_checks+=("formatter and linter (npm run lint; biome.json; npx biome check --write . applies the safe fixes)")
if ((${#failed_checks[@]} > 0)); then
  printf 'test/run.sh: failed: %s\n' "${failed_checks[@]}" >&2
  echo "test/run.sh: stopped before vitest" >&2
  exit 1
fi

report=$(mktemp)
trap 'rm -f "$report"' EXIT
status=0
npx vitest run --config test/vitest.config.ts --reporter=default --reporter=json --outputFile.json="$report" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
' "$report" || echo "vitest: 0 passed, 1 failed"
exit "$status"

#!/usr/bin/env bash
# Runs every fuzz test with a large case budget and writes a short report: the targets, the
# cases each ran, how long it took, and the crashes found.
#
# Usage: bench/fuzz.sh [--cases N] [--out FILE]
#   --cases N   cases per fuzz test (default 20000; `cargo test` runs 256, see fuzz/src/lib.rs)
#   --out FILE  the report (default bench/results/fuzz.txt)
#
# The fuzz tests are the property tests in the `fuzz` modules beside the parsers of untrusted
# input (webhook bodies, signatures and gzip, the job file reader, pipeline and host
# configuration, the plugins' transform); `cargo test` runs them with a small budget. This script
# builds the test binaries of the crates that have them, finds every test in a `fuzz` module,
# and runs each alone (one after another, so the machine's other work keeps a core) with
# SLUICE_FUZZ_CASES=N. A failing test is a crash found: its log, with proptest's minimal
# failing input, stays in .run/bench/fuzz-<run>/ and is quoted in the report, and the script
# exits 1. Keep such an input as a plain #[test] beside the fuzz test once it is fixed.
#
# Environment: CARGO_TARGET_DIR (default $HOME/.cache/sluice/target).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice/target}"

cases=20000
out="$repo/bench/results/fuzz.txt"
while (($#)); do
    case "$1" in
        --cases) cases="${2:?--cases needs a number}"; shift 2 ;;
        --out) out="${2:?--out needs a file}"; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ "$cases" =~ ^[1-9][0-9]*$ ]] || { echo "bench/fuzz.sh: --cases must be a positive whole number" >&2; exit 2; }

# The crates with fuzz tests; each keeps them in its library's unit tests.
crates=(sluice validate-user-status explode-status-logs normalize-sendgrid-events)

run_id="$(date -u +%Y%m%d%H%M%S)"
work="$repo/.run/bench/fuzz-$run_id"
mkdir -p "$work" "$(dirname "$out")"
log() { printf '[fuzz %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

log "building the test binaries of ${crates[*]}"
package_args=()
for crate in "${crates[@]}"; do package_args+=(-p "$crate"); done
cargo test --locked --no-run --lib "${package_args[@]}" --message-format=json >"$work/build.json"
# One "crate binary" line per library test binary.
mapfile -t binaries < <(python3 - "$work/build.json" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    message = json.loads(line)
    # With --lib, the only test binaries built are the crates' library unit tests.
    if message.get("reason") == "compiler-artifact" and message.get("profile", {}).get("test") \
            and message.get("executable"):
        print(message["target"]["name"], message["executable"])
PY
)
((${#binaries[@]} == ${#crates[@]})) || { echo "bench/fuzz.sh: expected ${#crates[@]} test binaries, found ${#binaries[@]}" >&2; exit 1; }

results=()
failures=0
total_cases=0
for entry in "${binaries[@]}"; do
    crate="${entry%% *}"
    binary="${entry#* }"
    mapfile -t tests < <("$binary" --list --format terse | sed -n 's/: test$//p' | grep -E '(^|::)fuzz::')
    for test in "${tests[@]}"; do
        log "$crate $test: $cases cases"
        test_log="$work/$crate--${test//::/-}.log"
        start="$(date +%s%N)"
        if SLUICE_FUZZ_CASES="$cases" RUST_BACKTRACE=0 "$binary" --exact "$test" --test-threads 1 >"$test_log" 2>&1; then
            result=ok
            ran="$cases"
        else
            result=CRASH
            failures=$((failures + 1))
            # proptest counts the cases that passed before the failing one.
            passed="$(sed -n 's/^[[:space:]]*successes: \([0-9]*\)$/\1/p' "$test_log" | head -n 1)"
            ran=$((${passed:-0} + 1))
        fi
        tenths=$((($(date +%s%N) - start) / 100000000))
        total_cases=$((total_cases + ran))
        results+=("$(printf '%-6s %8s %6d.%d  %s %s' "$result" "$ran" $((tenths / 10)) $((tenths % 10)) "$crate" "$test")")
    done
done

git_rev="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain -- host plugins tests/fuzz 2>/dev/null)" ]]; then
    git_rev="$git_rev+uncommitted"
fi
{
    echo "# Fuzz run (bench/fuzz.sh --cases $cases)"
    echo
    echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit:  $git_rev"
    echo "machine: $(uname -a)"
    echo "cores:   $(nproc); $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "build:   cargo test profile (debug, dependencies at opt-level 1); one test at a time"
    echo
    echo "targets: ${#results[@]}; cases run: $total_cases; crashes found: $failures"
    echo
    echo "result    cases  seconds  crate test"
    printf '%s\n' "${results[@]}"
    for test_log in "$work"/*.log; do
        grep -q 'minimal failing input' "$test_log" || continue
        echo
        echo "## $(basename "$test_log" .log)"
        # The failure and the minimal input, up to proptest's counters.
        awk '/^Test failed|^minimal failing input/ { found = 1 } found { print } /successes:/ && found { exit }' \
            "$test_log" | head -n 60
    done
} >"$out"
log "report written to $out"
cat "$out"
((failures == 0))

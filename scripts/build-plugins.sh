#!/usr/bin/env bash
# Builds every sluice plugin and test fixture as a wasm32-wasip2 component and copies them out.
#
# Usage: scripts/build-plugins.sh [OUT_DIR]
#   OUT_DIR            where the components go (default: <repo>/.run/plugins):
#                      plugins as OUT_DIR/<crate-name>.wasm, fixtures as OUT_DIR/fixtures/<crate-name>.wasm,
#                      plus OUT_DIR/fixtures/fixture-hostile-v2.wasm and -v3.wasm (the same fixture
#                      reporting 2.0.0 and 3.0.0).
# Environment:
#   CARGO_TARGET_DIR   cargo's target dir (default: $HOME/.cache/sluice/target).
#   SLUICE_PLUGINS     space-separated crate names to build instead of all of them, for example
#                      while another plugin is still being written.
#
# A crate is a component when its Cargo.toml builds a cdylib; the SDK (a plain library) is skipped.
# Files are replaced by rename, so a host watching OUT_DIR never loads a half-written component.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="${1:-$repo/.run/plugins}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice/target}"
target=wasm32-wasip2
# The `plugin` profile (Cargo.toml): release with whole-program LTO, measured faster as WASM.
release_dir="$CARGO_TARGET_DIR/$target/plugin"

if ! rustup_log="$(rustup target add "$target" 2>&1)"; then
  echo "$rustup_log" >&2
  exit 1
fi

# Prints the [package] name of the crate whose manifest is $1.
crate_name() {
  sed -n '/^\[package\]/,/^\[/{s/^name[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p}' "$1" | head -n 1
}

# Whether crate $1 is among SLUICE_PLUGINS (every crate is when that is unset or empty).
is_selected() {
  [[ -z "${SLUICE_PLUGINS:-}" ]] || [[ " $SLUICE_PLUGINS " == *" $1 "* ]]
}

plugins=()
fixtures=()
for manifest in "$repo"/plugins/*/Cargo.toml "$repo"/tests/fixtures/plugins/*/Cargo.toml; do
  [[ -f "$manifest" ]] || continue
  grep -q 'cdylib' "$manifest" || continue
  name="$(crate_name "$manifest")"
  if [[ -z "$name" ]]; then
    echo "build-plugins: no [package] name in $manifest" >&2
    exit 1
  fi
  is_selected "$name" || continue
  case "$manifest" in
    "$repo"/tests/fixtures/*) fixtures+=("$name") ;;
    *) plugins+=("$name") ;;
  esac
done

all=("${plugins[@]}" "${fixtures[@]}")
for wanted in ${SLUICE_PLUGINS:-}; do
  if [[ " ${all[*]} " != *" $wanted "* ]]; then
    echo "build-plugins: SLUICE_PLUGINS names \`$wanted\`, which is no plugin or fixture crate" >&2
    exit 1
  fi
done
if [[ ${#all[@]} -eq 0 ]]; then
  echo "build-plugins: no plugin crates found under $repo/plugins or $repo/tests/fixtures/plugins" >&2
  exit 1
fi

package_args=()
for name in "${all[@]}"; do
  package_args+=(-p "$name")
done

# Copies the built component of crate $1 to $2, replacing any old file by rename.
install_component() {
  local built="$release_dir/${1//-/_}.wasm" destination="$2"
  local temporary
  temporary="$(dirname "$destination")/.$(basename "$destination").tmp"
  cp "$built" "$temporary"
  mv -f "$temporary" "$destination"
  echo "wrote $destination"
}

# FIXTURE_VERSION is unset so fixture-hostile reports 1.0.0 whatever the caller's environment holds.
env -u FIXTURE_VERSION cargo build --manifest-path "$repo/Cargo.toml" --profile plugin --target "$target" \
  "${package_args[@]}"

mkdir -p "$out_dir/fixtures"
for name in "${plugins[@]}"; do
  install_component "$name" "$out_dir/$name.wasm"
done
for name in "${fixtures[@]}"; do
  install_component "$name" "$out_dir/fixtures/$name.wasm"
done

if [[ " ${fixtures[*]} " == *" fixture-hostile "* ]]; then
  for major in 2 3; do
    FIXTURE_VERSION="$major.0.0" cargo build --manifest-path "$repo/Cargo.toml" --profile plugin --target "$target" \
      -p fixture-hostile
    install_component fixture-hostile "$out_dir/fixtures/fixture-hostile-v$major.wasm"
  done
fi

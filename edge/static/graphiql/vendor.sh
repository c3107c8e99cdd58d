#!/usr/bin/env bash
# Re-fetch GraphiQL's vendored assets from the npm registry and verify them against VERSIONS.
#
#   ./vendor.sh            fetch every package listed in VERSIONS (npm pack checks the
#                          registry's own integrity hash), verify each file's sha256, and
#                          copy it here; nothing is written unless every file matches
#   ./vendor.sh --update   the same, after editing versions in VERSIONS: records the new
#                          checksums instead of refusing them
#   ./vendor.sh --check    offline: verify the files here against VERSIONS
#
# Needs npm, tar and sha256sum.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
versions="$here/VERSIONS"
mode="${1:-fetch}"
case "$mode" in fetch | --update | --check) ;; *)
  echo "usage: $0 [--update | --check]" >&2
  exit 2
  ;;
esac

fail() { echo "vendor.sh: $*" >&2; exit 1; }
rows() { grep -v '^[[:space:]]*\(#\|$\)' "$versions"; }

if [ "$mode" = --check ]; then
  bad=0
  while read -r spec _ local sum; do
    actual="$(sha256sum "$here/$local" 2>/dev/null | cut -d' ' -f1 || true)"
    if [ "$actual" != "$sum" ]; then
      echo "MISMATCH $local ($spec): expected $sum, found ${actual:-no file}" >&2
      bad=1
    fi
  done < <(rows)
  [ "$bad" = 0 ] || fail "vendored files differ from VERSIONS; run ./vendor.sh"
  echo "vendor.sh: all vendored files match VERSIONS"
  exit 0
fi

command -v npm >/dev/null || fail "npm is required"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# One tarball per package@version, unpacked under $work/<spec>/package/.
for spec in $(rows | awk '{print $1}' | sort -u); do
  mkdir -p "$work/$spec"
  tarball="$(cd "$work/$spec" && npm pack --silent "$spec")" || fail "npm pack $spec failed"
  tar -xzf "$work/$spec/$tarball" -C "$work/$spec"
done

# Verify everything first; write only when all is well.
new_versions="$work/VERSIONS"
: >"$new_versions"
bad=0
while IFS= read -r line; do
  if [[ "$line" =~ ^[[:space:]]*(#|$) ]]; then
    echo "$line" >>"$new_versions"
    continue
  fi
  read -r spec inner local sum <<<"$line"
  file="$work/$spec/package/$inner"
  [ -f "$file" ] || fail "$spec has no $inner"
  actual="$(sha256sum "$file" | cut -d' ' -f1)"
  if [ "$actual" != "$sum" ] && [ "$mode" != --update ]; then
    echo "MISMATCH $spec $inner: VERSIONS says $sum, the registry's is $actual" >&2
    bad=1
  fi
  printf '%-19s %-35s %-29s %s\n' "$spec" "$inner" "$local" "$actual" >>"$new_versions"
  cp "$file" "$work/$local.vendored"
done <"$versions"
[ "$bad" = 0 ] || fail "checksums differ: nothing written (use --update after a deliberate upgrade)"

while read -r spec _ local _; do
  mv "$work/$local.vendored" "$here/$local"
  echo "$spec -> $local ($(wc -c <"$here/$local") bytes)"
done < <(rows)
[ "$mode" = --update ] && cp "$new_versions" "$versions"
echo "vendor.sh: done"

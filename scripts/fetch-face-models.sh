#!/usr/bin/env bash
# fetch-face-models.sh [DIR] — install the face detector and 68-point landmark
# models used by package face (github.com/lvnet-go/lvnet/face) into DIR
# (default: $LVNET_MODELS, else ~/.cache/lvnet/models).
#
# The weights come from the npm package @vladmandic/face-api (MIT licence),
# pinned by version and by the sha512 integrity the npm registry publishes for
# its tarball. Only the four model files needed are extracted, each checked
# against a pinned sha256. Running it again when the files are present and
# verified does nothing. Needs npm, tar, sha256sum, sha512sum, base64, od.
set -euo pipefail

PKG="@vladmandic/face-api"
VERSION="1.7.15"
INTEGRITY="sha512-WDMmK3CfNLo8jylWqMoQgf4nIst3M0fzx1dnac96wv/dvMTN4DxC/Pq1DGtduDk1lktCamQ3MIDXFnvrdHTXDw=="
# file  sha256
FILES=(
  "ssd_mobilenetv1_model-weights_manifest.json 888f744dffbc84f5f060d1f8427d9742341943a2dfaaf9205d10029b7e7a2955"
  "ssd_mobilenetv1_model.bin 2835640602d53718aa6ae9a42896327eaa21beefed056c218d32ca7d79e1e2f8"
  "face_landmark_68_model-weights_manifest.json ca4886639f86e99b39fed0c155f81b63317225773bd9616716e887b0153389c9"
  "face_landmark_68_model.bin 4611ef65c87d836d03d684b30eec4d195d8b219fa1dd58fc58945831c6b9299b"
)

DIR="${1:-${LVNET_MODELS:-$HOME/.cache/lvnet/models}}"

say() { echo "fetch-face-models: $*" >&2; }

# verified DIR: true when every model file in DIR has its pinned sha256.
verified() {
  local d="$1" entry f sum
  for entry in "${FILES[@]}"; do
    f="${entry%% *}"; sum="${entry##* }"
    [ -f "$d/$f" ] || return 1
    [ "$(sha256sum "$d/$f" | cut -d' ' -f1)" = "$sum" ] || return 1
  done
}

if verified "$DIR"; then
  say "models present and verified in $DIR"
  exit 0
fi

command -v npm >/dev/null || { say "npm is needed (Debian: apt-get install npm)"; exit 1; }
mkdir -p "$DIR"
TMP="$(mktemp -d "$DIR/.fetch.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

say "downloading $PKG@$VERSION"
(cd "$TMP" && npm pack --silent "$PKG@$VERSION" >/dev/null)
TGZ="$(ls "$TMP"/*.tgz 2>/dev/null | head -n1)"
[ -n "$TGZ" ] || { say "npm pack produced no tarball"; exit 1; }

want="$(printf '%s' "${INTEGRITY#sha512-}" | base64 -d | od -An -v -tx1 | tr -d ' \n')"
got="$(sha512sum "$TGZ" | cut -d' ' -f1)"
if [ "$want" != "$got" ]; then
  say "integrity check failed for $(basename "$TGZ"): sha512 $got, want $want"
  exit 1
fi

members=()
for entry in "${FILES[@]}"; do members+=("package/model/${entry%% *}"); done
tar -xzf "$TGZ" -C "$TMP" "${members[@]}"

for entry in "${FILES[@]}"; do
  f="${entry%% *}"; sum="${entry##* }"
  got="$(sha256sum "$TMP/package/model/$f" | cut -d' ' -f1)"
  [ "$got" = "$sum" ] || { say "$f: sha256 $got, want $sum"; exit 1; }
done
# Move each file into place atomically (same file system: rename).
for entry in "${FILES[@]}"; do
  f="${entry%% *}"
  mv -f "$TMP/package/model/$f" "$DIR/$f"
done
verified "$DIR" || { say "verification after install failed in $DIR"; exit 1; }
say "installed $PKG@$VERSION models into $DIR"

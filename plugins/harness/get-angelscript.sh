#!/usr/bin/env bash
# Get a second AngelScript engine for `tmstate plugin-check`: Debian sid's binary package
# angelscript-dev (2.38.0 today: static libraries + headers), extracted into
#   ${XDG_CACHE_HOME:-~/.cache}/tmstate/angelscript/<version>/   (usr/include, usr/lib/<arch>)
# and prints that folder. The system's apt sources are not touched: apt-get runs with a
# private sources list, lists and cache in a temporary folder.
#
# Why: TMInterface's compiler behaves like AngelScript 2.36.x; Debian 12 has 2.35.1, which
# is older, and sid's 2.38.0 is newer (plugins/API.md, "Engine"). plugin-check compiles each
# plugin with every engine it finds. Idempotent: an engine already in the cache is printed
# without going to the network. The harness links it statically (make AS_PREFIX=<folder>).
set -euo pipefail

root="${XDG_CACHE_HOME:-$HOME/.cache}/tmstate/angelscript"
have() {  # an extracted engine: the header and both static libraries
    [ -f "$1/usr/include/angelscript.h" ] && compgen -G "$1/usr/lib/*/libangelscript.a" >/dev/null \
        && compgen -G "$1/usr/lib/*/libangelscript-addon.a" >/dev/null
}
for dir in "$root"/*/; do
    dir=${dir%/}
    if [ -d "$dir" ] && have "$dir"; then
        echo "$dir"
        exit 0
    fi
done

fail() { echo "get-angelscript.sh: $1" >&2; exit 1; }
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null \
    || fail "apt-get and dpkg-deb are needed (a Debian system) to get sid's angelscript-dev"
mkdir -p "$root"
work=$(mktemp -d "$root/.download.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
# sid from the Debian archive this system's apt already uses (its security archive aside)
archive=$(apt-get indextargets --format '$(REPO_URI)' 2>/dev/null | grep -v -- '-security' | sort -u | head -n 1)
[ -n "$archive" ] || fail "the system's apt sources name no Debian archive (apt-get indextargets is empty: run apt-get update)"
echo "deb ${archive%/} sid main" > "$work/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Debug::NoLocking=1
          -o APT::Sandbox::User=root)  # the private folders are the caller's own (mktemp: 0700)
apt_error() { grep -m 1 '^E:' "$work/apt.log" || grep -m 1 '^W:' "$work/apt.log" || tail -n 1 "$work/apt.log"; }
apt-get -qq "${apt_opts[@]}" --error-on=any update >"$work/apt.log" 2>&1 \
    || fail "could not read Debian sid's package lists from $archive (network?): $(apt_error)"
(cd "$work" && apt-get -qq "${apt_opts[@]}" download angelscript-dev/unstable >>"$work/apt.log" 2>&1) \
    || fail "could not download sid's angelscript-dev: $(apt_error)"
deb=$(compgen -G "$work/angelscript-dev_*.deb" | head -n 1) || fail "apt-get download left no angelscript-dev .deb"
dpkg-deb -x "$deb" "$work/root"
version=$(sed -n 's/^#define ANGELSCRIPT_VERSION_STRING "\([0-9.]*\).*/\1/p' "$work/root/usr/include/angelscript.h")
[ -n "$version" ] && have "$work/root" || fail "$(basename "$deb") holds no angelscript.h with a version and static libraries"
dest="$root/$version"
rm -rf "$dest"
mv "$work/root" "$dest"  # one rename: a half-extracted engine is never seen as one
echo "$dest"

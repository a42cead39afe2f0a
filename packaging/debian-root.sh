#!/usr/bin/env bash
# Makes (once, then reuses) a minimal Debian 12 root file system with Python 3.11 and venv only — no
# compiler, no -dev packages — as a tar file, and prints its path. Two uses:
#   - test-wheel-debootstrap.sh installs the repaired wheel into a copy of it (chroot);
#   - test-image.sh imports it with podman as the stand-in for python:3.11-slim-bookworm when that
#     image cannot be pulled.
# Needs debootstrap (apt-get install debootstrap) and root. Debian's mirror is taken from apt's sources.
#   packaging/debian-root.sh            -> $OVFAST_PACK_CACHE/bookworm-python3.11.tar
set -euo pipefail
cache="${OVFAST_PACK_CACHE:-/var/tmp/ovfast-pack}"
tarball="$cache/bookworm-python3.11.tar"
if [ -s "$tarball" ]; then echo "$tarball"; exit 0; fi
mkdir -p "$cache"

mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  # the first Debian (not -security) URI that apt uses here
  mirror="$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list \
            | grep -v security | grep -oE 'https?://[^ ]+' | head -1 || true)"
  mirror="${mirror:-http://deb.debian.org/debian}"
fi

root="$(mktemp -d "$cache/root.XXXXXX")"
trap 'rm -rf "$root"' EXIT
echo "debian-root: debootstrap bookworm from $mirror (about a minute)" >&2
# a second try on a fresh directory if the mirror drops a download
for attempt in 1 2; do
  if debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
       bookworm "$root" "$mirror" >"$cache/debootstrap.log" 2>&1; then
    break
  fi
  tail -20 "$cache/debootstrap.log" >&2
  [ "$attempt" = 2 ] && exit 1
  echo "debian-root: debootstrap failed; trying once more" >&2
  rm -rf --one-file-system "$root" && mkdir "$root"
done
# slim like python:*-slim: no apt lists, docs, man pages or locales beyond C
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
       "$root"/usr/share/doc/* \
       "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/var/log/*.log
tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
mv "$tarball.tmp" "$tarball"
echo "$tarball"

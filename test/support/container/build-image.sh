#!/usr/bin/env bash
# Builds the PostgreSQL image the test harness runs with TEST_PG=container:
# Debian bookworm's PostgreSQL 15 with pgaudit and LLVM JIT (the configuration
# Aurora has and the embedded servers lack), from Debian's packages only, since
# no image registry is reachable. Needs root, debootstrap and a running Docker
# daemon. Runnable by hand:
#
#   test/support/container/build-image.sh            # builds and prints the image name
#   DEBIAN_MIRROR=http://deb.debian.org/debian test/support/container/build-image.sh
#
# The image is tagged with a hash of this file, so editing the recipe makes the
# harness build a new image and an unchanged recipe is never built twice.
set -euo pipefail

recipe_hash="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)"
image="${AUDIT_TRAIL_PG_IMAGE:-audit-trail-postgres:15-${recipe_hash}}"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi

# The mirror apt already uses (a Debian machine), else Debian's own.
apt_mirror() {
  local uri
  uri="$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list 2>/dev/null |
    grep -v security | grep -oE 'https?://[^ ]+' | head -n1 || true)"
  echo "${uri:-http://deb.debian.org/debian}"
}
mirror="${DEBIAN_MIRROR:-$(apt_mirror)}"

root="$(mktemp -d /tmp/audit-trail-pg-rootfs.XXXXXX)"
trap 'rm -rf "$root"' EXIT

echo "building $image from $mirror (about 1.5 minutes)" >&2
debootstrap --variant=minbase --include=postgresql-15,postgresql-15-pgaudit \
  bookworm "$root" "$mirror" >&2

# The package's default cluster, caches and docs are not needed: the harness runs
# initdb into a fresh data directory every time.
rm -rf "$root"/var/lib/postgresql/15/main "$root"/etc/postgresql/15/main \
  "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
  "$root"/usr/share/doc/* "$root"/usr/share/man/*

tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'USER postgres' \
  - "$image" >&2
echo "$image"

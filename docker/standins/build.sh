#!/usr/bin/env bash
# Stand-ins for the public base images, for machines that cannot reach an image registry.
#
# docker-compose.yml and the Dockerfiles name public images (python:3.11-slim, postgres:16,
# redis:7, prefecthq/prefect:3.9.1-python3.11). Where those cannot be pulled, this script builds
# local images under the same names from Debian bookworm (debootstrap + `docker import`), so the
# compose file and the Dockerfiles stay exactly what a user with a registry runs. It never
# replaces an image that is already present (pulled or built earlier): `--force` rebuilds.
#
#   docker/standins/build.sh [--force]
#
# Needs: docker (a running engine), debootstrap, root. The Debian mirror is the one apt on this
# machine uses (DEBIAN_MIRROR to override). Departures from the official images, by design:
#   python:3.11-slim  Debian's python3.11 in a venv at /usr/local (pip, python on PATH)
#   all               trust this machine's extra CAs (/usr/local/share/ca-certificates)
#   postgres:16       Debian bookworm's PostgreSQL 15, with an entrypoint honouring
#                     POSTGRES_USER/POSTGRES_PASSWORD/POSTGRES_DB and /docker-entrypoint-initdb.d
#   redis:7           Debian's redis-server 7.0
#   prefecthq/prefect the same Prefect release from PyPI (pinned by requirements.lock)
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1
BASE=smp-standin/debian:bookworm
NICE=(nice -n 10)

mirror() {
  if [[ -n "${DEBIAN_MIRROR:-}" ]]; then echo "$DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list \
          /etc/apt/sources.list.d/*.list 2>/dev/null \
        | grep -E '/debian/?$|/debian ' | grep -v security | head -n1 \
        | sed -E 's/^URIs:[[:space:]]*//; s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//; s/[[:space:]].*$//')
  echo "${uri:-http://deb.debian.org/debian}"
}

have() { docker image inspect "$1" >/dev/null 2>&1; }

step() { printf '[standins %s] %s\n' "$(date +%T)" "$*"; }

if [[ $FORCE == 1 ]] || ! have "$BASE"; then
  MIRROR="$(mirror)"
  step "debootstrap bookworm (minbase) from $MIRROR"
  ROOTFS="$(mktemp -d /tmp/smp-standin-rootfs.XXXXXX)"
  trap 'rm -rf "$ROOTFS"' EXIT
  "${NICE[@]}" debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR" >/dev/null
  cat >"$ROOTFS/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
SOURCES
  # The images trust what this machine trusts: a machine whose HTTPS egress goes through an
  # intercepting proxy has its CA there, and the images' pip must reach PyPI through it.
  mkdir -p "$ROOTFS/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/" 2>/dev/null || true
  rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
  tar -C "$ROOTFS" -c . | docker import - "$BASE" >/dev/null
  rm -rf "$ROOTFS"
  trap - EXIT
  step "imported $BASE"
fi

build() {  # build <tag> <dir> [docker build args...]
  local tag="$1" dir="$2"
  shift 2
  if [[ $FORCE == 0 ]] && have "$tag"; then
    step "$tag present, kept"
    return
  fi
  step "building $tag"
  DOCKER_BUILDKIT=0 "${NICE[@]}" docker build -q --network host -t "$tag" "$@" "$dir" >/dev/null
}

build python:3.11-slim "$HERE/python" --build-arg BASE="$BASE"
build postgres:16 "$HERE/postgres" --build-arg BASE="$BASE"
build redis:7 "$HERE/redis" --build-arg BASE="$BASE"
PREFECT_VERSION="$(sed -n 's/^prefect==//p' "$ROOT/requirements.lock")"
cp "$ROOT/requirements.lock" "$HERE/prefect/requirements.lock"
build "prefecthq/prefect:${PREFECT_VERSION}-python3.11" "$HERE/prefect" \
  --build-arg PREFECT_VERSION="$PREFECT_VERSION"
rm -f "$HERE/prefect/requirements.lock"
step "stand-ins ready"

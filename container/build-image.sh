#!/usr/bin/env bash
# `make image`: build the Containerfile where no base image can be pulled. The base is made from
# Debian bookworm's own packages (mmdebstrap: Priority required as in debian:bookworm-slim, plus python3
# 3.11, python3-venv and ca-certificates), the
# same Debian and Python as python:3.11-slim-bookworm, and passed to the Containerfile as BASE;
# buildah builds the Containerfile itself unchanged. Everything stays in the checkout: the
# base's tarball and the image store are in .image/ (podman and buildah are pointed at it).
# Needs root and Debian's mmdebstrap and buildah (installed here when missing and apt is there).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' gradesync/version.py)
if [ -z "$VERSION" ]; then
  echo "make image: no __version__ in gradesync/version.py" >&2
  exit 1
fi
IMAGE=${IMAGE:-localhost/gradesync:$VERSION}
BASE=localhost/gradesync-base:bookworm-python3.11
STORE=(--root "$PWD/.image/storage" --runroot "$PWD/.image/run" --storage-driver vfs)

if ! command -v mmdebstrap >/dev/null || ! command -v buildah >/dev/null || ! command -v runc >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      mmdebstrap buildah podman runc uidmap >/dev/null
  else
    echo "make image needs mmdebstrap and buildah (Debian packages)" >&2
    exit 1
  fi
fi
mkdir -p .image
if ! buildah "${STORE[@]}" inspect --type image "$BASE" >/dev/null 2>&1; then
  if [ ! -s .image/base.tar ]; then
    mmdebstrap --variant=required --format=tar --include=python3,python3-venv,ca-certificates \
      bookworm .image/base.tar.part
    mv .image/base.tar.part .image/base.tar
  fi
  container=$(buildah "${STORE[@]}" from scratch)
  buildah "${STORE[@]}" add "$container" .image/base.tar /
  buildah "${STORE[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd python3 "$container"
  buildah "${STORE[@]}" commit --rm "$container" "$BASE"
fi
# gradesync's wheel and its dependencies' wheels, fetched here with this machine's pip settings
# (its index, proxy and certificates), so the build inside the container needs no index at all.
rm -rf .image/wheels
"$PY" -m build --wheel --outdir .image/wheels .
"$PY" -m pip download --quiet --dest .image/wheels --only-binary :all: .image/wheels/gradesync-*.whl
buildah "${STORE[@]}" bud --format docker --network host --isolation chroot \
  --build-arg BASE="$BASE" --build-arg WHEELS=.image/wheels --build-arg PIP_OPTIONS=--no-index \
  -t "$IMAGE" -f Containerfile .
echo "built $IMAGE in .image/storage; run it with (runc and lower limits where crun or the sandbox refuse):"
echo "  podman --root .image/storage --runroot .image/run --storage-driver vfs run --rm $IMAGE demo"

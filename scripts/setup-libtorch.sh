#!/usr/bin/env bash
# Installs the libtorch brainssl builds against (PyTorch 2.11.0 from PyPI) into .venv/ once, and
# links .venv/torch to it; .cargo/config.toml points the build there (LIBTORCH). It also unpacks
# gloo's C++ headers (Debian's libgloo-dev, headers only) into .venv/gloo/include: the wheel ships
# c10d's ProcessGroupGloo.hpp, which includes them, but not the headers themselves.
#
#   scripts/setup-libtorch.sh          CPU libraries only: torch without its dependencies, plus the
#                                      CUDA runtime and CUPTI that libtorch_cpu.so itself loads (~1.4 GB)
#   scripts/setup-libtorch.sh --full   the whole CUDA wheel set (~5 GB) and the CUDA headers: for
#                                      `--features cuda` builds and the PyTorch baselines of `brainssl bench`
#
# Using your own PyTorch 2.11 instead: export LIBTORCH=<site-packages>/torch before cargo (or run cargo
# with LIBTORCH_USE_PYTORCH=1 and that python3 first on PATH); this script is then not needed.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION=2.11.0
GLOO_DEB=libgloo-dev_0.0~git20220518.5b14351-3_amd64.deb
GLOO_URL=http://deb.debian.org/debian/pool/main/g/gloo/libgloo-dev_0.0%7egit20220518.5b14351-3_amd64.deb
GLOO_SHA256=80529c9fd8af452faf489e686b94bf87075965c40673803810c4f41634b1e299
CUDA_TOOLKIT=13.0.2
VENV=.venv
PY=${PYTHON:-python3}
full=0
[[ "${1:-}" == "--full" ]] && full=1

# pip's messages go to .venv/pip.log; on failure they are shown
pip_quiet() {
  if ! "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir "$@" >>"$VENV/pip.log" 2>&1; then
    cat "$VENV/pip.log" >&2
    echo "setup: pip install $* failed (log: $VENV/pip.log)" >&2
    exit 1
  fi
}

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "setup: creating $VENV with $($PY --version 2>&1)"
  "$PY" -m venv "$VENV"
fi
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
have=$(sed -n "s/^__version__ = '\(.*\)'/\1/p" "$site/torch/version.py" 2>/dev/null || true)
if [[ "${have%%+*}" != "$TORCH_VERSION" ]]; then
  echo "setup: installing torch==$TORCH_VERSION (libtorch for tch 0.24) into $VENV"
  # torch alone, then the two CUDA libraries libtorch_cpu.so loads: pip then warns that torch's
  # other (Python and CUDA) dependencies are missing, which is the point; keep that out of sight
  pip_quiet --no-deps "torch==$TORCH_VERSION"
  pip_quiet "cuda-toolkit[cudart,cupti]==$CUDA_TOOLKIT"
fi
if [[ $full == 1 ]]; then
  echo "setup: installing the full torch==$TORCH_VERSION dependency set (CUDA libraries, numpy)"
  pip_quiet "torch==$TORCH_VERSION" numpy
  # the CUDA headers the NCCL part of the c10d shim compiles against (cuda_runtime.h needs crt/, cuda_fp16.h needs nv/target)
  pip_quiet "cuda-toolkit[nvcc,cccl]==$CUDA_TOOLKIT"
fi
if [[ ! -f "$VENV/gloo/include/gloo/config.h" ]]; then
  echo "setup: unpacking gloo's headers (Debian libgloo-dev) into $VENV/gloo"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if ! "$VENV/bin/python" -c "import urllib.request,sys; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])" \
      "$GLOO_URL" "$tmp/$GLOO_DEB" 2>/dev/null; then
    (cd "$tmp" && apt-get download libgloo-dev >/dev/null) || { echo "setup: cannot fetch $GLOO_URL" >&2; exit 1; }
    mv "$tmp"/libgloo-dev_*.deb "$tmp/$GLOO_DEB"
  fi
  echo "$GLOO_SHA256  $tmp/$GLOO_DEB" | sha256sum -c --quiet - \
    || { echo "setup: $GLOO_DEB does not have the expected SHA-256" >&2; exit 1; }
  if command -v dpkg-deb >/dev/null; then
    dpkg-deb -x "$tmp/$GLOO_DEB" "$tmp/x"
  else
    (cd "$tmp" && ar x "$GLOO_DEB" && mkdir x && tar -xf data.tar.* -C x)
  fi
  rm -rf "$VENV/gloo" && mkdir -p "$VENV/gloo"
  cp -r "$tmp/x/usr/include" "$VENV/gloo/include"
fi
rel=${site#"$(cd "$VENV" && pwd)/"}
ln -sfn "$rel/torch" "$VENV/torch"
[[ -f "$VENV/torch/lib/libtorch_cpu.so" ]] || { echo "setup: $VENV/torch/lib/libtorch_cpu.so is missing" >&2; exit 1; }
echo "setup: libtorch $(sed -n "s/^__version__ = '\(.*\)'/\1/p" "$VENV/torch/version.py") at $VENV/torch"

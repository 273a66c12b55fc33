#!/usr/bin/env bash
# unchanged.sh DIR MESSAGE CMD...: run CMD and fail with MESSAGE if it changed any file under DIR.
set -euo pipefail
dir=$1; msg=$2; shift 2
snap() { find "$dir" -type f \( -name '*.py' -o -name '*.ipynb' \) -not -path '*/.ipynb_checkpoints/*' -not -path '*/__pycache__/*' | sort | xargs sha256sum; }
before=$(snap)
"$@" >/dev/null
after=$(snap)
if [ "$before" != "$after" ]; then
  echo "FAIL: $msg"; diff <(echo "$before") <(echo "$after") || true; exit 1
fi
echo "ok: $* left $dir unchanged"

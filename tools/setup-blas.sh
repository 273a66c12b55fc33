#!/usr/bin/env bash
# Install Debian's pthread OpenBLAS where apt exists and it is missing. MLX's CPU wheel ships a
# reference BLAS; RAM preloads this one for 15-30x faster fp32 matmul (see ram.blas).
# Never fails the setup: without it everything still works, only slower.
set -u
[ "$(uname -s)" = Linux ] || exit 0
for d in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu; do
  [ -e "$d/openblas-pthread/libopenblas.so.0" ] && exit 0
done
command -v apt-get >/dev/null 2>&1 || { echo "setup-blas: no apt-get; install an OpenBLAS for fast CPU scoring (set RAM_BLAS to its path)"; exit 0; }
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "setup-blas: not root and no passwordless sudo; run 'apt-get install libopenblas0-pthread' for fast CPU scoring"; exit 0; fi
fi
echo "setup-blas: installing libopenblas0-pthread"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q libopenblas0-pthread >/dev/null 2>&1 \
  || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q libopenblas0-pthread >/dev/null 2>&1; } \
  || echo "setup-blas: apt-get could not install libopenblas0-pthread; scoring will use MLX's reference BLAS (slow)"
exit 0

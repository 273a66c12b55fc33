#!/usr/bin/env bash
# Install Debian's pthread OpenBLAS where apt exists and it is missing. MLX's CPU wheel ships a
# reference BLAS; RAM preloads this one for 15-30x faster fp32 matmul (see ram.blas).
# Never fails the setup: without it everything still works, only slower.
set -u
[ "$(uname -s)" = Linux ] || exit 0
for d in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu; do
  [ -e "$d/openblas-pthread/libopenblas.so.0" ] && exit 0
done
bash "$(dirname "$0")/apt-install.sh" setup-blas libopenblas0-pthread \
  "install an OpenBLAS for fast CPU scoring (set RAM_BLAS to its path)" "for fast CPU scoring" \
  "scoring will use MLX's reference BLAS (slow)"

#!/usr/bin/env bash
# Install one Debian package for a setup step, as root or through passwordless sudo; never fails the setup.
# Shared by setup-blas.sh, setup-chromium.sh and setup-mathjax.sh, which first check whether the thing is needed.
#   bash tools/apt-install.sh STEP PACKAGE NO_APT FOR FALLBACK
# STEP prefixes every message; NO_APT is said where there is no apt-get; FOR ends "run 'apt-get install PACKAGE' FOR"
# where there is no way to become root; FALLBACK is said when apt-get fails.
set -u
STEP=$1 PKG=$2 NO_APT=$3 FOR=$4 FALLBACK=$5
command -v apt-get >/dev/null 2>&1 || { echo "$STEP: no apt-get; $NO_APT"; exit 0; }
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "$STEP: not root and no passwordless sudo; run 'apt-get install $PKG' $FOR"; exit 0; fi
fi
echo "$STEP: installing $PKG"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q "$PKG" >/dev/null 2>&1 \
  || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q "$PKG" >/dev/null 2>&1; } \
  || echo "$STEP: apt-get could not install $PKG; $FALLBACK"
exit 0

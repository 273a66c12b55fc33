#!/usr/bin/env bash
# Install Debian's MathJax 2 (libjs-mathjax, into /usr/share/javascript/mathjax) where apt exists and no MathJax 2 is
# found: the docs build copies the part it needs into the site, so pages typeset math offline (see docs/conf.py).
# Never fails the setup: without it the pages load MathJax from its CDN, and the docs math test skips (fails under CI).
set -u
if [ -n "${RAM_MATHJAX:-}" ]; then
  [ -e "$RAM_MATHJAX/MathJax.js" ] && exit 0
  echo "setup-mathjax: RAM_MATHJAX=$RAM_MATHJAX holds no MathJax.js; the docs build will stop on it"; exit 0
fi
for d in /usr/share/javascript/mathjax /usr/share/mathjax2; do
  [ -e "$d/MathJax.js" ] && exit 0
done
NONE="set RAM_MATHJAX to a MathJax 2 folder for offline docs math"
[ "$(uname -s)" = Linux ] || { echo "setup-mathjax: no MathJax 2 found; $NONE"; exit 0; }
bash "$(dirname "$0")/apt-install.sh" setup-mathjax libjs-mathjax "$NONE" "for offline docs math" \
  "the docs will load MathJax from its CDN"

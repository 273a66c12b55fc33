#!/usr/bin/env bash
# Install Debian's chromium where apt exists and no Chromium/Chrome is found: tests/test_docs.py opens
# the built docs site in it (headless). Never fails the setup: without a browser that test skips
# (except under CI=true, where it fails, so CI cannot pass without checking the rendered site).
set -u
for b in chromium chromium-browser google-chrome google-chrome-stable; do
  command -v "$b" >/dev/null 2>&1 && exit 0
done
[ "$(uname -s)" = Linux ] || { echo "setup-chromium: no Chromium found; install one to run the docs browser test"; exit 0; }
bash "$(dirname "$0")/apt-install.sh" setup-chromium chromium \
  "install Chromium to run the docs browser test" "for the docs browser test" \
  "the docs browser test will skip (fail under CI)"

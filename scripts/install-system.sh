#!/usr/bin/env bash
# System packages the tests need, from Debian: Chromium (headless browser tests; it also
# ships the SwiftShader Vulkan driver that Dawn uses for WebGPU in Node) and iproute2 (the
# network namespaces browser tests run in), libvulkan1, and xvfb (a virtual display for headed
# Chromium: test/browser/hidden-tab.test.ts). Needs root; does nothing when all are present.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -f /usr/lib/chromium/vk_swiftshader_icd.json ] || missing+=(chromium)
command -v ip >/dev/null || missing+=(iproute2)
[ -x /usr/bin/Xvfb ] || missing+=(xvfb)
# the Vulkan loader Dawn (npm `webgpu`) opens to reach SwiftShader
[ -e /usr/lib/x86_64-linux-gnu/libvulkan.so.1 ] || [ -e /usr/lib/aarch64-linux-gnu/libvulkan.so.1 ] || missing+=(libvulkan1)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-system: need root to install ${missing[*]} (apt-get)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

#!/usr/bin/env bash
# install_deps.sh: installs the build and test dependencies from Debian packages (as root, or with sudo).
# Does nothing when they are all present. The CUDA toolkit and cuDNN are optional (RESNEST_CUDA=AUTO).
set -euo pipefail
packages=(cmake g++ make catch2 nlohmann-json3-dev libstb-dev python3 python3-numpy)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install_deps: all present (${packages[*]})"
    exit 0
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "install_deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

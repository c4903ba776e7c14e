#!/usr/bin/env bash
# Provides what the test suite runs besides node_modules, before any test starts:
#   - Debian packages: redis-server and redis-sentinel (backplane tests), openssl (TLS certificates), chromium
#     (browser tests), haproxy and nginx (load-balancer tests). Missing ones are installed with apt-get when this
#     runs as root (or with passwordless sudo); otherwise it stops at once with one line naming what to install.
#   - the .NET SDK (conformance tests against ASP.NET Core), which apt cannot provide: named when missing.
#   - the Node.js LTS binaries of scripts/node-lts-versions, from the npm registry (package node-linux-<arch>) into
#     .tmp/node/<major>/; the Dockerfile test and CI's runs on each LTS line use them.
#   - a checkout others may enter: the Dockerfile and provisioning tests run the checkout's files as an unprivileged
#     user, and a clone made into `mktemp -d` is private (0700). Run as root, this opens the checkout's own folder
#     for reading and entering (its files are already readable); its parent folders must let others through too.
# Used by `npm test` and by .ci/run. Prints nothing when everything is already there.
#
# PROVISION_SEARCH_PATH replaces where the system programs are looked for (default: PATH plus the sbin folders),
# so the "missing" branches can be exercised on a machine that has everything.
set -euo pipefail
cd "$(dirname "$0")/.."

search_path="${PROVISION_SEARCH_PATH:-$PATH:/usr/local/sbin:/usr/sbin:/sbin}"

if [ "$(id -u)" -eq 0 ] && [ "$(stat -c '%A' . | cut -c8,10)" != "rx" ]; then chmod go+rx .; fi
has() { PATH="$search_path" command -v "$1" >/dev/null 2>&1; }

# -- Debian packages, each named by the program the tests start ----------------------------------------------
missing_packages() {
  local program
  for program in redis-server redis-sentinel openssl chromium haproxy nginx; do
    has "$program" || printf '%s\n' "$program"
  done
}
mapfile -t packages < <(missing_packages)
has dotnet || dotnet_missing=1

if [ ${#packages[@]} -gt 0 ]; then
  sudo=()
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=(sudo -n); fi
  if { [ "$(id -u)" -eq 0 ] || [ ${#sudo[@]} -gt 0 ]; } && command -v apt-get >/dev/null 2>&1; then
    echo "provision: apt-get install ${packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # apt's progress and debconf notes are shown only if the install fails.
    if ! log=$({ "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}"; } 2>&1); then
      printf '%s\n' "$log" >&2
      echo "provision: apt-get install ${packages[*]} failed" >&2
      exit 1
    fi
    mapfile -t packages < <(missing_packages)
    if [ ${#packages[@]} -gt 0 ]; then
      echo "provision: apt-get installed, but still missing: ${packages[*]}" >&2
      exit 1
    fi
  else
    line="provision: the tests need Debian packages that are missing; install them as root: apt-get install ${packages[*]}"
    [ -n "${dotnet_missing:-}" ] && line+=" (and the .NET 10 SDK, for dotnet)"
    echo "$line" >&2
    exit 1
  fi
fi
if [ -n "${dotnet_missing:-}" ]; then
  # Not a stop: every test that runs ASP.NET Core skips itself with a line saying why, and the rest of the suite runs.
  echo "provision: no .NET 10 SDK (dotnet on PATH): the tests that run ASP.NET Core will be skipped; install it from https://dot.net" >&2
fi

# -- Node.js LTS binaries -------------------------------------------------------------------------------------
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "provision: no Node.js binary package for $(uname -m)" >&2; exit 1 ;;
esac
while read -r version; do
  [ -z "$version" ] && continue
  prefix=".tmp/node/${version%%.*}"
  binary="$prefix/node_modules/node-linux-$arch/bin/node"
  [ -x "$binary" ] && [ "$("$binary" --version)" = "v$version" ] && continue
  echo "provision: Node.js $version (npm package node-linux-$arch) into $prefix"
  rm -rf "$prefix"
  mkdir -p "$prefix"
  echo '{ "private": true }' > "$prefix/package.json"
  npm install --prefix "$prefix" --prefer-offline --no-audit --no-fund --silent "node-linux-$arch@$version" || true
  [ -x "$binary" ] || { echo "provision: installing node-linux-$arch@$version failed" >&2; exit 1; }
done < scripts/node-lts-versions

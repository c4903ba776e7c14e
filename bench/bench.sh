#!/usr/bin/env bash
# `npm run bench [-- --quick] [-- --only fanout,echo] [-- --peers ours-json,ws] [-- --no-pin] [-- --update-readme]`
# Raises the open-file limit (the scale scenario holds 100,000 connections in the server and as many in the load
# generators), picks the Node.js to run on, compiles the benchmark with the server sources, and runs every scenario.
# See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

# 100,000 sockets in the server, 25,000 in each load generator, plus Node's own descriptors. Root (or
# CAP_SYS_RESOURCE) may raise the hard limit too, up to the kernel's fs.nr_open.
want=262144
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
  nr_open=$(cat /proc/sys/fs/nr_open 2>/dev/null || echo "$want")
  ulimit -Hn "$((nr_open < want ? nr_open : want))" 2>/dev/null || true
  hard=$(ulimit -Hn)
  if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then want=$hard; fi
fi
ulimit -n "$want" 2>/dev/null || true
if [ "$(ulimit -n)" -lt 12000 ]; then
  echo "warning: open-file limit is $(ulimit -n); the idle scenario needs about 11,000 (raise the hard limit)" >&2
elif [ "$(ulimit -n)" -lt 101000 ]; then
  echo "warning: open-file limit is $(ulimit -n); the scale scenario needs about 101,000 (raise the hard limit)" >&2
fi

# Every Node process of the run (our server, the Node peers, the load generators) runs on one Node.js: BENCH_NODE if
# set, else the 24 LTS binary scripts/provision.sh keeps in .tmp/node/24/ (the line the Dockerfile ships), else the
# `node` on PATH. The figures are then those of a runtime the package supports (engines: >= 22), whatever the
# machine's own Node is; the report names the version.
case "$(uname -m)" in
  aarch64 | arm64) arch=arm64 ;;
  *) arch=x64 ;;
esac
node_bin="${BENCH_NODE:-}"
if [ -z "$node_bin" ] && [ -x ".tmp/node/24/node_modules/node-linux-$arch/bin/node" ]; then
  node_bin=".tmp/node/24/node_modules/node-linux-$arch/bin/node"
fi
node_bin="${node_bin:-node}"
major=$("$node_bin" -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 22 ]; then
  echo "warning: benchmarking on Node.js $("$node_bin" --version), which fastify-signalr does not support; run scripts/provision.sh (or set BENCH_NODE) for Node.js 24" >&2
fi

rm -rf bench/.build
npx --no-install tsc -p bench/tsconfig.json
exec "$node_bin" bench/.build/bench/run.js "$@"

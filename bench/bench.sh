#!/usr/bin/env bash
# `npm run bench [-- --quick] [-- --only fanout,echo] [-- --peers ours-json,ws] [-- --no-pin] [-- --update-readme]`
# Raises the open-file limit (the idle scenario holds 10,000 connections on each side), compiles the benchmark with
# the server sources, and runs every scenario. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

# 10,000 sockets in the server and as many in the generator, plus Node's own descriptors.
want=65536
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then want=$hard; fi
ulimit -n "$want" 2>/dev/null || true
if [ "$(ulimit -n)" -lt 12000 ]; then
  echo "warning: open-file limit is $(ulimit -n); the idle scenario needs about 11,000 (raise the hard limit)" >&2
fi

rm -rf bench/.build
npx --no-install tsc -p bench/tsconfig.json
exec node bench/.build/bench/run.js "$@"

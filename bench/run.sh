#!/usr/bin/env bash
# The bench is bench/run.mjs (bench/README.md); this wrapper keeps `bench/run.sh [--mode]` working.
exec node "$(dirname "${BASH_SOURCE[0]}")/run.mjs" "$@"

#!/usr/bin/env bash
# Benchmarks photo-receipt ordering (not part of the test command): normalisation time of a
# 12-megapixel phone photo (target ≤ 150 ms) and orders accepted per second over HTTP, on
# SQLite and on a real redis-server. Optimised build (the bench profile).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_redis
step "photo receipts benchmark ($(nproc) cores)"
cargo bench --quiet -p tests --bench receipts

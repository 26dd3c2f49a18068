#!/usr/bin/env bash
# Runs every test of Banzheng: formatting and lints, the Rust unit and end-to-end suites
# (SQLite and a real redis-server), the WASM photo check in Node and in headless Chromium,
# the OpenAPI contract (validation and schemathesis), the mini-program glue, a third-party
# WeChat SDK (wechatpy) against the WeChat simulator, the browser flow.
# It installs what it needs; with CI=true nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

step "tools"
ensure_redis
export_photos_dir
ensure_python_tools
scripts/wasm.sh tools

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "builds: the server, every test, the photo checker's command line"
cargo build --quiet -p server --bin server
# The README's run command (`cargo run -p server`) must pick the server among the package's binaries.
cargo run --quiet -p server -- --help >/dev/null
cargo test --workspace --quiet --no-run
# Built with the workspace's features, as the tests were: nothing is compiled twice. The suites
# below run these binaries, as cargo holds its build directory while `cargo test` runs.
cargo build --workspace --quiet --bin photo-check --example finish_fixtures
export PHOTO_CHECK_BIN=target/debug/photo-check FINISH_FIXTURES_BIN=target/debug/examples/finish_fixtures

step "suites, side by side"
# The end-to-end tests mostly wait (on servers, Redis, the WeChat simulator, killed processes):
# six at once keep two cores busy where the default of one per core left them half idle.
side_by_side \
  "Rust tests (unit, store conformance, end to end on SQLite and Redis)" \
  "RUST_TEST_THREADS=6 cargo test --workspace --quiet" \
  "photo checker: the same report natively, in Node and in headless Chromium; then the mini-program glue (typings, WXWebAssembly packaging, Node tests with a fake wx) and the web client's whole flow in headless Chromium, which use its WebAssembly" \
  "scripts/wasm.sh test && scripts/glue-test.sh && scripts/browser-test.sh" \
  "API contract: OpenAPI validation and schemathesis against the running server (a fixed seed keeps CI repeatable; run scripts/contract.sh without it to explore further); then wechatpy, a WeChat SDK nobody here wrote, against the WeChat simulator" \
  "scripts/contract.sh --seed 20261125 && scripts/sdk-test.sh"

step "done"
echo "all tests passed"

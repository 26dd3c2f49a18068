#!/usr/bin/env bash
# A WeChat SDK nobody here wrote, wechatpy (PyPI), against the WeChat simulator of a running
# development server, as if it were api.weixin.qq.com: login, tokens and their refresh,
# subscribe messages and their errcodes, the phone number, session-key decryption. A
# simulator that says what WeChat never says fails here.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_python_tools
start_dev_server
BZ_TEST_BASE_URL="$BASE_URL" "$PY_VENV/bin/python" -m unittest -v tests/sdk/test_wechatpy.py

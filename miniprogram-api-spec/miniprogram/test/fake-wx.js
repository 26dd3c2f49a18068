/**
 * A `wx` and a `WXWebAssembly` for Node that do what the mini-program runtime does, over
 * Node's own fetch and WebAssembly, against a running Banzheng server in development mode
 * (its WeChat simulator plays the WeChat app: login codes, subscription taps).
 */
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');

function createWx({ baseUrl, openid, acceptSubscriptions = true, agreePrivacy = true }) {
  const storage = new Map();
  const calls = { login: 0, request: 0, uploadFile: 0, requestSubscribeMessage: 0, requirePrivacyAuthorize: 0 };

  async function sim(pathname, body) {
    const res = await fetch(baseUrl + pathname, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${pathname}: ${res.status} ${await res.text()}`);
    return res.json();
  }

  function settle(promise, success, fail) {
    promise.then((v) => success && success(v)).catch((e) => fail && fail({ errMsg: String(e) }));
  }

  const wx = {
    calls,
    getStorageSync: (key) => (storage.has(key) ? storage.get(key) : ''),
    setStorageSync: (key, value) => storage.set(key, value),
    login({ success, fail }) {
      calls.login += 1;
      settle(sim('/__sim/codes', { openid }).then(({ code }) => ({ code, errMsg: 'login:ok' })), success, fail);
    },
    request({ url, method = 'GET', data, header = {}, success, fail }) {
      calls.request += 1;
      const init = { method, headers: header };
      if (data !== undefined && method !== 'GET') init.body = typeof data === 'string' ? data : JSON.stringify(data);
      settle(
        fetch(url, init).then(async (res) => {
          const text = await res.text();
          let body = text;
          // wx.request parses JSON bodies itself (dataType 'json' is the default).
          try {
            body = JSON.parse(text);
          } catch (e) {
            /* not JSON: left as text */
          }
          return { statusCode: res.status, data: body, header: Object.fromEntries(res.headers) };
        }),
        success,
        fail,
      );
    },
    uploadFile({ url, filePath, name, formData = {}, header = {}, success, fail }) {
      calls.uploadFile += 1;
      const form = new FormData();
      for (const [k, v] of Object.entries(formData)) form.append(k, String(v));
      form.append(name, new Blob([fs.readFileSync(filePath)]), path.basename(filePath));
      settle(
        // wx.uploadFile hands back the body as a string.
        fetch(url, { method: 'POST', headers: header, body: form }).then(async (res) => ({
          statusCode: res.status,
          data: await res.text(),
        })),
        success,
        fail,
      );
    },
    requestSubscribeMessage({ tmplIds, success, fail }) {
      calls.requestSubscribeMessage += 1;
      // The user's tap; in development mode the server tells the simulated WeChat of it when
      // the client reports it, so this fake does not register it a second time.
      const answer = { errMsg: 'requestSubscribeMessage:ok' };
      for (const id of tmplIds) answer[id] = acceptSubscriptions ? 'accept' : 'reject';
      settle(Promise.resolve(answer), success, fail);
    },
    /**
     * WeChat's privacy prompt (隐私保护指引): the user agrees (`agreePrivacy`) or declines, as
     * the runtime reports it (`errno` 104 is "user denied privacy authorization").
     */
    requirePrivacyAuthorize({ success, fail }) {
      calls.requirePrivacyAuthorize += 1;
      const outcome = agreePrivacy
        ? Promise.resolve({ errMsg: 'requirePrivacyAuthorize:ok' })
        : Promise.reject(new Error('requirePrivacyAuthorize:fail privacy permission is not authorized'));
      settle(outcome, success, fail);
    },
    /**
     * The user taps `<button open-type="getPhoneNumber">` and allows WeChat to share `phone`:
     * the `e.detail` the button's handler receives (WeChat mints the code).
     */
    async tapPhoneButton(phone) {
      const { code } = await sim('/__sim/phone-codes', { openid, phone });
      return { code, errMsg: 'getPhoneNumber:ok' };
    },
  };
  return wx;
}

/**
 * WXWebAssembly: instantiate takes only a path inside the code package (`.wasm` or `.wasm.br`).
 * It compiles with this Node's own engine, so it has wasm SIMD exactly when this Node has it:
 * run Node with NO_SIMD_NODE_FLAGS to get a runtime that refuses SIMD modules, as older phones do.
 */
function createWXWebAssembly(packageRoot) {
  return {
    instantiate(codePath, imports) {
      if (typeof codePath !== 'string' || !codePath.startsWith('/')) {
        return Promise.reject(new TypeError('WXWebAssembly.instantiate takes a path inside the package'));
      }
      let bytes = fs.readFileSync(path.join(packageRoot, codePath));
      if (codePath.endsWith('.br')) bytes = zlib.brotliDecompressSync(bytes);
      return WebAssembly.instantiate(bytes, imports);
    },
    Memory: WebAssembly.Memory,
    Table: WebAssembly.Table,
    Global: WebAssembly.Global,
    Instance: WebAssembly.Instance,
    Module: WebAssembly.Module,
  };
}

/**
 * `wx.getFileSystemManager().readFileSync` for files of the code package: a path relative to the
 * package root in, an ArrayBuffer out.
 */
function createPackageReader(packageRoot) {
  return (file) => {
    if (typeof file !== 'string' || file.startsWith('/')) throw new TypeError(`readFileSync: a path inside the package, not ${file}`);
    const bytes = fs.readFileSync(path.join(packageRoot, file));
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  };
}

/**
 * V8 compiles wasm SIMD on x64 only with SSE4.1; told not to use SSE4.1, it refuses every module
 * with a SIMD instruction ("CompileError: ... Wasm SIMD unsupported") and runs MVP modules as
 * usual. Node 20 has no flag that turns off wasm SIMD itself.
 */
const NO_SIMD_NODE_FLAGS = ['--no-enable-sse4-1'];

// (func (result i32) (i32x4.extract_lane 0 (v128.const i32x4 1 2 3 4)))
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, 0x03, 0x02, 0x01, 0x00,
  0x0a, 0x19, 0x01, 0x17, 0x00, 0xfd, 0x0c, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 0xfd, 0x1b, 0x00, 0x0b,
]);

/** Whether this Node's engine compiles wasm SIMD. */
function engineHasWasmSimd() {
  try {
    new WebAssembly.Module(SIMD_PROBE);
    return true;
  } catch (e) {
    return false;
  }
}

module.exports = { createWx, createWXWebAssembly, createPackageReader, NO_SIMD_NODE_FLAGS, engineHasWasmSimd };

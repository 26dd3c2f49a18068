/**
 * Loads the photo checker (the same Rust code the server runs) under WXWebAssembly.
 * Copy the output of build-wasm.mjs into the package (for example under /photo/) and:
 *
 *   const { loadPhotoCheck } = require('./photo/photo-check.js');
 *   const checker = await loadPhotoCheck('/photo/photo_wasm_bg.wasm.br');
 *   const report = checker.check_rgba(width, height, canvasImageData.data, 'id-card');
 *
 * `check_rgba` takes the pixels a canvas gives (`wx.createOffscreenCanvas` + getImageData),
 * so the package need not ship an image decoder.
 */
const glue = require('./photo_wasm.js');

let loading = null;

/**
 * @param {string} wasmPath a path inside the code package; `.wasm.br` needs base library 2.14.0
 * @param {any} [runtime] the WXWebAssembly object (the global one in the mini-program)
 */
function loadPhotoCheck(wasmPath, runtime) {
  // eslint-disable-next-line no-undef
  const wxwasm = runtime || (typeof WXWebAssembly !== 'undefined' ? WXWebAssembly : undefined);
  if (!wxwasm) return Promise.reject(new Error('WXWebAssembly is not available (base library ≥ 2.13.0)'));
  if (!loading) {
    loading = wxwasm
      .instantiate(wasmPath, glue.__wbg_get_imports())
      .then((result) => {
        glue.__wbg_finalize_init(result.instance || result, result.module);
        return glue;
      })
      .catch((e) => {
        loading = null;
        throw e;
      });
  }
  return loading;
}

module.exports = { loadPhotoCheck };

// Loads the packaged photo checker through the fake WXWebAssembly and checks photos, in a Node
// of its own (api.test.js starts it with NO_SIMD_NODE_FLAGS to test the fallback on a runtime
// that refuses wasm SIMD). Prints one JSON object: the engine's SIMD support, the build the
// loader picked, why SIMD was refused, and the report of each photo. api.test.js also takes
// `reportsOf` from here, so both sides decode and check the photos the same way.
//
// usage: node [flags] photo-check-child.js <build-wasm.mjs output dir> <photo.jpg>...
const fs = require('node:fs');
const path = require('node:path');
const jpeg = require('jpeg-js');
const { createWXWebAssembly, createPackageReader, engineHasWasmSimd } = require('./fake-wx.js');

/** The report of each JPEG (by file name) from the checker's `check_rgba`, as JSON carries it. */
function reportsOf(checker, photos) {
  const reports = {};
  for (const photo of photos) {
    const px = jpeg.decode(fs.readFileSync(photo), { useTArray: true });
    reports[path.basename(photo)] = checker.check_rgba(px.width, px.height, px.data, 'id-card');
  }
  return JSON.parse(JSON.stringify(reports));
}

async function main() {
  const [wasmPackage, ...photos] = process.argv.slice(2);
  // The runtime has no TextEncoder/TextDecoder: the glue must bring its own.
  delete globalThis.TextEncoder;
  delete globalThis.TextDecoder;
  const { loadPhotoCheck } = require(path.join(wasmPackage, 'photo-check.js'));
  const checker = await loadPhotoCheck(
    {
      simd: '/photo_wasm_simd_bg.wasm.br',
      baseline: '/photo_wasm_bg.wasm.br',
      models: { face_landmark: 'face_landmark.bin', selfie_segmentation: 'selfie_segmentation.bin' },
    },
    createWXWebAssembly(wasmPackage),
    createPackageReader(wasmPackage),
  );
  const reports = reportsOf(checker, photos);
  const out = { engineHasWasmSimd: engineHasWasmSimd(), build: checker.build, simdError: checker.simdError, reports };
  process.stdout.write(JSON.stringify(out));
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

module.exports = { reportsOf };

// node wasm-same-finish.mjs PKG_JS FIXTURES_DIR
// The finished document photo from finish_rgba in a WebAssembly build (nodejs or web target) must
// equal the native one for the same RGBA pixels (fixtures from the finish_fixtures example):
// the same report, the same finish report, byte-identical pixels. The models are loaded from the
// files beside the build, as the mini-program and the web client do.
import { createRequire } from 'node:module';
import { readdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { firstDiff, summary } from './compare.mjs';

const [pkgJs, fixtures] = process.argv.slice(2);
if (!fixtures) {
  console.error('usage: node wasm-same-finish.mjs PKG_JS FIXTURES_DIR');
  process.exit(2);
}
// wasm-bindgen's web target is an ES module to initialise by hand; its nodejs target, CommonJS.
const webTarget = pkgJs.includes('/web/');
const wasm = webTarget ? await import(pkgJs) : createRequire(import.meta.url)(pkgJs);
if (webTarget) wasm.initSync({ module: readFileSync(join(dirname(pkgJs), 'photo_wasm_bg.wasm')) });
const results = [];
wasm.load_model('face_landmark', readFileSync(join(dirname(pkgJs), 'face_landmark.bin')));
const names = readdirSync(fixtures).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
// A photo with a face, before the model is loaded: finishing it must throw.
const withPhoto = names.map((n) => JSON.parse(readFileSync(join(fixtures, `${n}.json`), 'utf8'))).findIndex((n) => n.photo);
let threw = null;
try {
  const n = JSON.parse(readFileSync(join(fixtures, `${names[withPhoto]}.json`), 'utf8'));
  wasm.finish_rgba(n.width, n.height, readFileSync(join(fixtures, `${names[withPhoto]}.rgba`)), n.spec_id);
} catch (e) {
  threw = String(e.message ?? e);
}
results.push({ name: 'finish_rgba before the model is loaded throws', ok: threw !== null && threw.includes('selfie_segmentation'), diff: threw });
const model = join(dirname(pkgJs), 'selfie_segmentation.bin');
wasm.load_model('selfie_segmentation', readFileSync(model));
threw = null;
try {
  wasm.load_model('no-such-model', new Uint8Array(4));
} catch (e) {
  threw = String(e.message ?? e);
}
results.push({ name: 'an unknown model name throws', ok: threw !== null && threw.includes('no-such-model'), diff: threw });

let finished = 0;
for (const name of names) {
  const native = JSON.parse(readFileSync(join(fixtures, `${name}.json`), 'utf8'));
  const rgba = readFileSync(join(fixtures, `${name}.rgba`));
  const t0 = performance.now();
  const done = wasm.finish_rgba(native.width, native.height, rgba, native.spec_id);
  const ms = performance.now() - t0;
  const { pixels, ...photo } = done.photo ?? {};
  let diff = firstDiff(JSON.parse(JSON.stringify(done.report)), native.report);
  diff ??= firstDiff(done.photo ? JSON.parse(JSON.stringify(photo)) : null, native.photo);
  if (!diff && done.photo) {
    finished += 1;
    const want = readFileSync(join(fixtures, `${name}.finished.rgba`));
    if (!(pixels instanceof Uint8Array) || !Buffer.from(pixels).equals(want)) diff = 'pixels differ';
  }
  results.push({ name: `${name}: finish_rgba as native`, ok: diff === null, diff, ms });
}
results.push({ name: 'some photos were finished', ok: finished >= names.length / 2, diff: `${finished} of ${names.length}` });
process.exit(summary(results) && names.length > 0 ? 0 : 1);

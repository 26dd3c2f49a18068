// node wasm-same-report.mjs PKG_JS PHOTOS_DIR NATIVE_DIR
// Runs the nodejs wasm build over every photo that has a native report (photo-check --json) and
// requires identical reports; also exercises specs(), check_rgba() and the unknown-spec error.
import { createRequire } from 'node:module';
import { readdirSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { firstDiff, summary } from './compare.mjs';

const [pkgJs, photos, nativeDir] = process.argv.slice(2);
if (!nativeDir) {
  console.error('usage: node wasm-same-report.mjs PKG_JS PHOTOS_DIR NATIVE_DIR');
  process.exit(2);
}
const wasm = createRequire(import.meta.url)(pkgJs);
const results = [];

// Every check needs the face landmark model, shipped beside the build: before it is loaded the
// checks throw rather than judge a pose they cannot measure.
let threw = null;
try {
  wasm.check_rgba(2, 2, new Uint8Array(16).fill(200), 'id-card');
} catch (e) {
  threw = String(e.message ?? e);
}
results.push({ name: 'check_rgba before the landmark model is loaded throws', ok: threw !== null && threw.includes('face_landmark'), diff: threw });
wasm.load_model('face_landmark', readFileSync(join(dirname(pkgJs), 'face_landmark.bin')));
wasm.load_model('selfie_segmentation', readFileSync(join(dirname(pkgJs), 'selfie_segmentation.bin')));

const names = readdirSync(nativeDir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
for (const name of names) {
  const native = JSON.parse(readFileSync(join(nativeDir, `${name}.json`), 'utf8'));
  const bytes = readFileSync(join(photos, name));
  const t0 = performance.now();
  const report = wasm.check_encoded(bytes, native.spec_id);
  const ms = performance.now() - t0;
  const diff = firstDiff(JSON.parse(JSON.stringify(report)), native);
  results.push({ name, ok: diff === null, diff, ms });
}

const specs = wasm.specs();
results.push({
  name: 'specs() lists the documents',
  ok: ['id-card', 'social-security-card', 'driving-licence', 'passport', 'hk-macau-permit'].every((id) => specs.some((s) => s.id === id)),
  diff: JSON.stringify(specs.map((s) => s.id)),
});
threw = null;
try {
  wasm.check_encoded(new Uint8Array(4), 'no-such-spec');
} catch (e) {
  threw = String(e.message ?? e);
}
results.push({ name: 'unknown spec id throws', ok: threw !== null && threw.includes('no-such-spec'), diff: threw });
const tiny = wasm.check_rgba(2, 2, new Uint8Array(16).fill(200), 'id-card');
const status = (r, id) => r.checks.find((c) => c.id === id)?.status;
results.push({
  name: 'check_rgba on 2×2 pixels: decodes, no face',
  ok: status(tiny, 'decode') === 'pass' && status(tiny, 'face_count') === 'fail',
  diff: JSON.stringify(tiny.checks.map((c) => [c.id, c.status])),
});

process.exit(summary(results) && names.length > 0 ? 0 : 1);

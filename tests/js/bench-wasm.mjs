// node bench-wasm.mjs PKG_JS BENCH_DIR [RUNS] [LABEL]
// Times check_encoded (a nodejs wasm build) on the files the native bench wrote, or, for an
// RGBA-only web build (the mini-program's), check_rgba and finish_rgba on its 1 MP pixels; prints JSON with
// median process CPU ms and wall ms, like the native bench.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const [pkgJs, dir, runsArg, label = 'wasm'] = process.argv.slice(2);
const runs = Number(runsArg ?? 15);
// wasm-bindgen's web target is an ES module to initialise by hand; its nodejs target, CommonJS.
const webTarget = pkgJs.includes('/web/');
const wasm = webTarget ? await import(pkgJs) : createRequire(import.meta.url)(pkgJs);
if (webTarget) wasm.initSync({ module: readFileSync(join(dirname(pkgJs), 'photo_wasm_bg.wasm')) });
wasm.load_model('face_landmark', readFileSync(join(dirname(pkgJs), 'face_landmark.bin')));
wasm.load_model('selfie_segmentation', readFileSync(join(dirname(pkgJs), 'selfie_segmentation.bin')));
const rgbaOnly = typeof wasm.check_encoded !== 'function';

function median(v) {
  return [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
}

const out = {};
function time(name, check) {
  check(); // warm-up: instantiation and model parse
  const cpu = [];
  const wall = [];
  for (let i = 0; i < runs; i++) {
    const c = process.cpuUsage();
    const t = performance.now();
    check();
    wall.push(performance.now() - t);
    const d = process.cpuUsage(c);
    cpu.push((d.user + d.system) / 1000);
  }
  out[`${label}_${name}_cpu_ms`] = Number(median(cpu).toFixed(2));
  out[`${label}_${name}_wall_ms`] = Number(median(wall).toFixed(2));
}
if (rgbaOnly) {
  const pixels = readFileSync(join(dir, 'bench-1mp.rgba'));
  const { width, height } = JSON.parse(readFileSync(join(dir, 'bench-1mp.rgba.json'), 'utf8'));
  time('1mp', () => wasm.check_rgba(width, height, pixels, 'id-card'));
  time('finish_1mp', () => wasm.finish_rgba(width, height, pixels, 'id-card'));
} else {
  for (const name of ['12mp', '1mp']) {
    const bytes = readFileSync(join(dir, `bench-${name}.jpg`));
    time(name, () => wasm.check_encoded(bytes, 'id-card'));
  }
}
console.log(JSON.stringify(out));

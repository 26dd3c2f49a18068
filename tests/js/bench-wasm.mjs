// node bench-wasm.mjs PKG_JS BENCH_DIR [RUNS] [LABEL]
// Times check_encoded (the nodejs wasm build) on the files the native bench wrote; prints JSON
// with median process CPU ms and wall ms, like the native bench.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const [pkgJs, dir, runsArg, label = 'wasm'] = process.argv.slice(2);
const runs = Number(runsArg ?? 15);
const wasm = createRequire(import.meta.url)(pkgJs);

function median(v) {
  return [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
}

const out = {};
for (const name of ['12mp', '1mp']) {
  const bytes = readFileSync(join(dir, `bench-${name}.jpg`));
  wasm.check_encoded(bytes, 'id-card'); // warm-up: instantiation and model parse
  const cpu = [];
  const wall = [];
  for (let i = 0; i < runs; i++) {
    const c = process.cpuUsage();
    const t = performance.now();
    wasm.check_encoded(bytes, 'id-card');
    wall.push(performance.now() - t);
    const d = process.cpuUsage(c);
    cpu.push((d.user + d.system) / 1000);
  }
  out[`${label}_${name}_cpu_ms`] = Number(median(cpu).toFixed(2));
  out[`${label}_${name}_wall_ms`] = Number(median(wall).toFixed(2));
}
console.log(JSON.stringify(out));

// node wasm-chromium.mjs PKG_DIR PHOTOS_DIR NATIVE_DIR FINISH_DIR
// Serves the web builds, the photos, the native reports and the finish_rgba fixtures (see
// wasm-same-finish.mjs) on localhost, runs chromium.html in headless Debian Chromium (driven by
// playwright-core, no browser download) and requires the same reports and finished photos as
// native.
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, normalize, extname, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { summary } from './compare.mjs';

const [pkgDir, photos, nativeDir, finishDir] = process.argv.slice(2);
if (!finishDir) {
  console.error('usage: node wasm-chromium.mjs PKG_DIR PHOTOS_DIR NATIVE_DIR FINISH_DIR');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const names = readdirSync(nativeDir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
const finishNames = readdirSync(finishDir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json', '.html': 'text/html', '.jpg': 'image/jpeg', '.png': 'image/png' };

// Maps a URL path onto a file under one of the served roots, refusing anything outside them.
function resolve(url) {
  const path = decodeURIComponent(new URL(url, 'http://x').pathname);
  const routes = [['/pkg/', pkgDir], ['/photos/', photos], ['/native/', nativeDir], ['/finish/', finishDir], ['/js/', here]];
  if (path === '/') return join(here, 'chromium.html');
  for (const [prefix, root] of routes) {
    if (path.startsWith(prefix)) {
      const file = normalize(join(root, path.slice(prefix.length)));
      return file.startsWith(normalize(root)) ? file : null;
    }
  }
  return null;
}

const server = createServer((req, res) => {
  if (req.url === '/list') {
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify(names));
  }
  if (req.url === '/finish-list') {
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify(finishNames));
  }
  const file = resolve(req.url);
  if (!file || !existsSync(file)) {
    res.writeHead(404);
    return res.end();
  }
  res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' });
  res.end(readFileSync(file));
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const url = `http://127.0.0.1:${server.address().port}/`;

const profile = mkdtempSync(join(tmpdir(), 'photo-wasm-chromium-'));
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
let ok = false;
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  const page = await context.newPage();
  page.on('console', (m) => m.type() === 'error' && console.error(`[page] ${m.text()}`));
  page.on('pageerror', (e) => console.error(`[page] ${e}`));
  await page.goto(url);
  await page.waitForFunction(() => window.__result !== undefined, null, { timeout: 180_000 });
  const results = await page.evaluate(() => window.__result);
  // Each photo in both builds, each finish fixture in both RGBA-only builds, plus the extras.
  ok = summary(results) && results.length > 2 * names.length + 2 * finishNames.length;
} finally {
  await context.close();
  server.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(ok ? 0 : 1);

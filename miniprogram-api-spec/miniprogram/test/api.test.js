// The mini-program glue against a running server in development mode (BZ_TEST_BASE_URL),
// through a fake wx that maps to Node's fetch and a WXWebAssembly that maps to Node's
// WebAssembly (and, for the photo checker's fallback, a Node whose engine has no wasm SIMD).
// Run by scripts/glue-test.sh.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const jpeg = require('jpeg-js');

const { createClient, BanzhengError } = require('../api.js');
const { createWx, createWXWebAssembly, createPackageReader, NO_SIMD_NODE_FLAGS, engineHasWasmSimd } = require('./fake-wx.js');
const { reportsOf } = require('./photo-check-child.js');

const baseUrl = process.env.BZ_TEST_BASE_URL;
const photos = process.env.BANZHENG_PHOTOS_DIR || path.join(__dirname, '../../../../shared/photos');
const wasmPackage = process.env.BZ_TEST_MINIPROGRAM_WASM;
if (!baseUrl) throw new Error('BZ_TEST_BASE_URL must point at a running development server');
if (!wasmPackage) throw new Error('BZ_TEST_MINIPROGRAM_WASM must name the output of build-wasm.mjs');

function newUser(name, wxOptions) {
  const openid = `${name}-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
  const wx = createWx(Object.assign({ baseUrl, openid }, wxOptions));
  return { wx, client: createClient({ baseUrl, wx }), openid };
}

test('login through wx.login gives a token that opens the API', async () => {
  const { wx, client } = newUser('glue-login');
  const me = await client.get('/api/v1/me');
  assert.equal(wx.calls.login, 1, 'logged in on first use');
  assert.ok(me.user.id);
  assert.equal(wx.getStorageSync('banzheng.token'), client.token, 'token kept in storage');
  await client.get('/api/v1/me');
  assert.equal(wx.calls.login, 1, 'the token is reused');
});

test('a rejected token is renewed once and the call retried', async () => {
  const { wx, client } = newUser('glue-renew');
  await client.login();
  // The server revokes the token (as after logout or expiry): the next call logs in again.
  await client.post('/api/v1/auth/logout');
  const me = await client.get('/api/v1/me');
  assert.ok(me.user.id);
  assert.equal(wx.calls.login, 2);
});

test('API errors become BanzhengError with the Chinese message and the code', async () => {
  const { client } = newUser('glue-errors');
  await assert.rejects(client.get('/api/v1/receipt-orders/no-such-order'), (e) => {
    assert.ok(e instanceof BanzhengError);
    assert.equal(e.status, 404);
    assert.equal(e.code, 'NOT_FOUND');
    assert.match(e.message, /[\u4e00-\u9fff]/, 'message in Chinese');
    assert.ok(e.requestId);
    return true;
  });
});

test('getPhoneNumber: the verified number pre-fills the booking form; declining leaves typing', async () => {
  const { wx, client } = newUser('glue-phone');
  assert.deepEqual(await client.applicantDefaults(), { phone: '' });
  await assert.rejects(client.bindPhone({ errMsg: 'getPhoneNumber:fail user deny' }), (e) => e.code === 'PHONE_DENIED');
  const detail = await wx.tapPhoneButton('13812345678');
  assert.deepEqual(await client.bindPhone(detail), { phone: '13812345678' });
  assert.deepEqual(await client.applicantDefaults(), { phone: '13812345678' });
  await assert.rejects(client.bindPhone(detail), (e) => {
    assert.equal(e.status, 422);
    assert.equal(e.code, 'PHONE_CODE_INVALID');
    assert.match(e.message, /[\u4e00-\u9fff]/);
    return true;
  });
});

test('wx.uploadFile sends a photo order; a bad photo is refused with the report', async () => {
  const { client } = newUser('glue-upload');
  const fields = { spec: 'id-card', region: '广东省东莞市', name: '张三', id_number: '11010519491231002X' };
  const order = await client.uploadPhoto(path.join(photos, 'portrait-test0.jpg'), fields);
  assert.equal(order.status, 'pending');
  assert.ok(order.id);
  await assert.rejects(client.uploadPhoto(path.join(photos, 'cat.jpg'), fields), (e) => {
    assert.equal(e.status, 422);
    assert.equal(e.code, 'PHOTO_REJECTED');
    return true;
  });
  const listed = await client.get('/api/v1/receipt-orders');
  assert.deepEqual(listed.orders.map((o) => o.id), [order.id]);
});

const FIELDS = { spec: 'id-card', region: '广东省东莞市', name: '张三', id_number: '11010519491231002X' };

test('CONSENT_REQUIRED shows the privacy prompt, records consent and retries the order', async () => {
  const { wx, client } = newUser('glue-privacy');
  const before = await client.get('/api/v1/me');
  assert.equal(before.privacy.accepted, false, 'a new user has not accepted the notice');
  const order = await client.uploadPhoto(path.join(photos, 'portrait-test0.jpg'), FIELDS);
  assert.equal(order.status, 'pending');
  assert.equal(wx.calls.uploadFile, 2, 'refused once before consent, then sent again');
  assert.equal(wx.calls.requirePrivacyAuthorize, 1, 'WeChat\'s privacy prompt shown once');
  const after = await client.get('/api/v1/me');
  assert.equal(after.privacy.accepted, true);
  assert.equal(after.privacy.version, before.privacy.version);
  assert.ok(after.privacy.accepted_at);
  // Accepted: the next order goes straight through.
  await client.uploadPhoto(path.join(photos, 'portrait-test0.jpg'), FIELDS);
  assert.equal(wx.calls.uploadFile, 3);
  assert.equal(wx.calls.requirePrivacyAuthorize, 1);
});

test('declining the privacy prompt sends nothing and records no consent', async () => {
  const { wx, client } = newUser('glue-privacy-no', { agreePrivacy: false });
  await assert.rejects(client.uploadPhoto(path.join(photos, 'portrait-test0.jpg'), FIELDS), (e) => {
    assert.equal(e.code, 'PRIVACY_DENIED');
    assert.match(e.message, /[\u4e00-\u9fff]/);
    return true;
  });
  assert.equal(wx.calls.requirePrivacyAuthorize, 1);
  assert.equal(wx.calls.uploadFile, 1, 'not sent again');
  assert.equal((await client.get('/api/v1/me')).privacy.accepted, false);
  assert.deepEqual((await client.get('/api/v1/receipt-orders')).orders, []);
});

test('requestSubscribeMessage acceptances are reported to the server', async () => {
  const { wx, client } = newUser('glue-subscribe');
  const answer = await client.subscribe(['booking_confirmed', 'review_result']);
  assert.equal(wx.calls.requestSubscribeMessage, 1);
  assert.equal(answer.accepted.length, 2, 'both templates accepted');
  assert.deepEqual(
    answer.subscriptions.map((s) => s.remaining),
    [1, 1],
    'the server holds one send per accepted template',
  );
  const again = await client.subscribe(['review_result']);
  assert.deepEqual(again.subscriptions.map((s) => s.remaining), [2], 'each tap adds one');
});

const WASM_PATHS = { simd: '/photo_wasm_simd_bg.wasm.br', baseline: '/photo_wasm_bg.wasm.br' };
/** Every check needs the face landmark and the segmentation model, shipped once beside both builds. */
const LANDMARKS = { face_landmark: 'face_landmark.bin' };
const MODELS = { ...LANDMARKS, selfie_segmentation: 'selfie_segmentation.bin' };
const jpegPhotos = fs
  .readdirSync(photos)
  .filter((f) => f.endsWith('.jpg'))
  .sort()
  .map((f) => path.join(photos, f));

/** The packaged loader and glue as a mini-program that has just started sees them (no build loaded yet). */
function freshLoader() {
  for (const f of ['photo-check.js', 'photo_wasm.js', 'text-codec.js']) {
    delete require.cache[require.resolve(path.join(wasmPackage, f))];
  }
  return require(path.join(wasmPackage, 'photo-check.js'));
}

/** Runs `body` the way the mini-program runtime would: without TextEncoder/TextDecoder. */
async function withoutTextCodec(body) {
  const saved = { TextEncoder: globalThis.TextEncoder, TextDecoder: globalThis.TextDecoder };
  delete globalThis.TextEncoder;
  delete globalThis.TextDecoder;
  try {
    return await body();
  } finally {
    Object.assign(globalThis, saved);
  }
}

let simdReports;

test('the photo checker loads the SIMD build under WXWebAssembly from the .wasm.br and checks pixels', async () => {
  assert.ok(engineHasWasmSimd(), 'this Node has wasm SIMD');
  await withoutTextCodec(async () => {
    const bare = await freshLoader().loadPhotoCheck(WASM_PATHS, createWXWebAssembly(wasmPackage));
    assert.throws(() => bare.check_rgba(2, 2, new Uint8Array(16), 'id-card'), /face_landmark/, 'no check without the landmark model');
    const { loadPhotoCheck } = freshLoader();
    const landmarksOnly = await freshLoader().loadPhotoCheck(
      { ...WASM_PATHS, models: LANDMARKS },
      createWXWebAssembly(wasmPackage),
      createPackageReader(wasmPackage),
    );
    assert.throws(() => landmarksOnly.check_rgba(2, 2, new Uint8Array(16), 'id-card'), /selfie_segmentation/, 'no check without the segmentation model');
    const checker = await freshLoader().loadPhotoCheck(
      { ...WASM_PATHS, models: MODELS },
      createWXWebAssembly(wasmPackage),
      createPackageReader(wasmPackage),
    );
    assert.equal(checker.build, 'simd');
    assert.equal(checker.simdError, undefined);
    const good = jpeg.decode(fs.readFileSync(path.join(photos, 'portrait-test0.jpg')), { useTArray: true });
    const report = checker.check_rgba(good.width, good.height, good.data, 'id-card');
    assert.ok(report.checks.length > 5);
    assert.ok(report.checks.every((c) => c.status !== 'fail'), JSON.stringify(report.checks));
    assert.ok(report.checks.every((c) => /[\u4e00-\u9fff]/.test(c.message_zh)));
    const cat = jpeg.decode(fs.readFileSync(path.join(photos, 'cat.jpg')), { useTArray: true });
    const catReport = checker.check_rgba(cat.width, cat.height, cat.data, 'id-card');
    assert.ok(catReport.checks.some((c) => c.status === 'fail'));
    assert.throws(() => checker.check_rgba(2, 2, new Uint8Array(16), 'no-such-spec'));
    assert.ok(checker.specs().some((s) => s.id === 'id-card'));
    simdReports = reportsOf(checker, jpegPhotos);
  });
});

test('the finished ID photo is shown before the upload: finish_rgba puts the portrait on white', async () => {
  const portraits = path.join(photos, '../photos-bg');
  const street = jpeg.decode(fs.readFileSync(path.join(portraits, 'carvekit-woman-glasses-street.jpg')), { useTArray: true });
  await withoutTextCodec(async () => {
    const { loadPhotoCheck } = freshLoader();
    const bare = await loadPhotoCheck(
      { ...WASM_PATHS, models: LANDMARKS },
      createWXWebAssembly(wasmPackage),
      createPackageReader(wasmPackage),
    );
    assert.throws(() => bare.finish_rgba(street.width, street.height, street.data, 'id-card'), /selfie_segmentation/);
  });
  await withoutTextCodec(async () => {
    const { loadPhotoCheck } = freshLoader();
    const checker = await loadPhotoCheck(
      { ...WASM_PATHS, models: MODELS },
      createWXWebAssembly(wasmPackage),
      createPackageReader(wasmPackage),
    );
    const { report, photo } = checker.finish_rgba(street.width, street.height, street.data, 'id-card');
    assert.equal(report.faces.filter((f) => f.frontal).length, 1);
    assert.deepEqual([photo.width, photo.height], [358, 441]);
    assert.ok(photo.pixels instanceof Uint8Array && photo.pixels.length === 358 * 441 * 4);
    assert.equal(photo.finish.background, '#ffffff');
    assert.ok(photo.finish.background_replaced, JSON.stringify(photo.finish));
    // The street is gone from the top corners: white there.
    for (const [x, y] of [[2, 2], [355, 2], [20, 30], [337, 30]]) {
      const i = (y * 358 + x) * 4;
      assert.deepEqual([...photo.pixels.slice(i, i + 3)].map((v) => v >= 252), [true, true, true], `(${x}, ${y})`);
    }
    const cat = jpeg.decode(fs.readFileSync(path.join(photos, 'cat.jpg')), { useTArray: true });
    assert.equal(checker.finish_rgba(cat.width, cat.height, cat.data, 'id-card').photo, null, 'no face, no photo');
  });
});

test('the baseline build gives the same reports as the SIMD build', async () => {
  assert.ok(simdReports, 'the SIMD test ran first');
  await withoutTextCodec(async () => {
    const { loadPhotoCheck } = freshLoader();
    const checker = await loadPhotoCheck(
      { baseline: WASM_PATHS.baseline, models: MODELS },
      createWXWebAssembly(wasmPackage),
      createPackageReader(wasmPackage),
    );
    assert.equal(checker.build, 'baseline');
    assert.equal(checker.simdError, undefined, 'SIMD was not tried');
    assert.deepEqual(reportsOf(checker, jpegPhotos), simdReports);
  });
});

test('on a runtime without wasm SIMD the loader falls back to the baseline build', { skip: process.env.CI !== 'true' && process.arch !== 'x64' && 'NO_SIMD_NODE_FLAGS turn off wasm SIMD on x64 only (in CI this fails instead)' }, async () => {
  assert.ok(simdReports, 'the SIMD test ran first');
  // A Node whose engine refuses SIMD modules when it compiles them, as older phones' do.
  const child = spawnSync(
    process.execPath,
    [...NO_SIMD_NODE_FLAGS, path.join(__dirname, 'photo-check-child.js'), wasmPackage, ...jpegPhotos],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  assert.equal(child.status, 0, child.stderr);
  const out = JSON.parse(child.stdout);
  assert.equal(out.engineHasWasmSimd, false, 'the child runtime refuses wasm SIMD');
  assert.equal(out.build, 'baseline');
  assert.match(out.simdError, /CompileError: .*SIMD/, 'the SIMD build was tried and refused');
  assert.deepEqual(out.reports, simdReports, 'the same reports');
  assert.ok(out.reports['portrait-test0.jpg'].checks.every((c) => c.status !== 'fail'));
  assert.ok(out.reports['cat.jpg'].checks.some((c) => c.status === 'fail'));
});

test('the loader runs one load at a time and tries again after a failure', async () => {
  const { loadPhotoCheck } = freshLoader();
  const wxwasm = createWXWebAssembly(wasmPackage);
  const asked = [];
  const counting = { instantiate: (p, imports) => (asked.push(p), wxwasm.instantiate(p, imports)) };
  await assert.rejects(loadPhotoCheck('/photo_wasm_bg.wasm.br', counting), TypeError, 'the paths of both builds');
  const missing = { simd: '/no-such_simd_bg.wasm.br', baseline: '/no-such_bg.wasm.br' };
  await assert.rejects(loadPhotoCheck(missing, counting));
  assert.deepEqual(asked, [missing.simd, missing.baseline], 'SIMD first, then the baseline');
  asked.length = 0;
  const [a, b] = [loadPhotoCheck(WASM_PATHS, counting), loadPhotoCheck(WASM_PATHS, counting)];
  assert.equal(a, b, 'one load in flight');
  assert.equal((await a).build, 'simd');
  assert.equal(await loadPhotoCheck(missing, counting), await a, 'later calls get the loaded checker');
  assert.deepEqual(asked, [WASM_PATHS.simd]);
});

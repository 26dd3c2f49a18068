// The mini-program glue against a running server in development mode (BZ_TEST_BASE_URL),
// through a fake wx that maps to Node's fetch and a WXWebAssembly that maps to Node's
// WebAssembly. Run by scripts/glue-test.sh.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { createClient, BanzhengError } = require('../api.js');
const { createWx, createWXWebAssembly } = require('./fake-wx.js');

const baseUrl = process.env.BZ_TEST_BASE_URL;
const photos = process.env.BANZHENG_PHOTOS_DIR || path.join(__dirname, '../../../../shared/photos');
const wasmPackage = process.env.BZ_TEST_MINIPROGRAM_WASM;
if (!baseUrl) throw new Error('BZ_TEST_BASE_URL must point at a running development server');
if (!wasmPackage) throw new Error('BZ_TEST_MINIPROGRAM_WASM must name the output of build-wasm.mjs');

function newUser(name) {
  const openid = `${name}-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
  const wx = createWx({ baseUrl, openid });
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

test('the photo checker loads under WXWebAssembly from the .wasm.br and checks pixels', async () => {
  // The runtime has no TextEncoder/TextDecoder: the glue must bring its own.
  const saved = { TextEncoder: globalThis.TextEncoder, TextDecoder: globalThis.TextDecoder };
  delete globalThis.TextEncoder;
  delete globalThis.TextDecoder;
  try {
    const { loadPhotoCheck } = require(path.join(wasmPackage, 'photo-check.js'));
    const checker = await loadPhotoCheck('/photo_wasm_bg.wasm.br', createWXWebAssembly(wasmPackage));
    const jpeg = require('jpeg-js');
    const good = jpeg.decode(fs.readFileSync(path.join(photos, 'portrait-test0.jpg')), { useTArray: true });
    const report = checker.check_rgba(good.width, good.height, good.data, 'id-card');
    assert.ok(report.checks.length > 5);
    assert.ok(report.checks.every((c) => c.status !== 'fail'), JSON.stringify(report.checks));
    assert.ok(report.checks.every((c) => /[\u4e00-\u9fff]/.test(c.message_zh)));
    const cat = jpeg.decode(fs.readFileSync(path.join(photos, 'cat.jpg')), { useTArray: true });
    const catReport = checker.check_rgba(cat.width, cat.height, cat.data, 'id-card');
    assert.ok(catReport.checks.some((c) => c.status === 'fail'));
    assert.throws(() => checker.check_rgba(2, 2, new Uint8Array(16), 'no-such-spec'));
  } finally {
    Object.assign(globalThis, saved);
  }
});

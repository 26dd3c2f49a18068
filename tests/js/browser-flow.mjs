// The whole product in a real browser: Debian's Chromium, driven by playwright-core, runs the
// developer web client against a development server (BZ_TEST_BASE_URL): log in through the
// WeChat simulator, accept the privacy notice, book an appointment, pre-check real photos with the WebAssembly checker,
// order a receipt, approve it as a reviewer at /admin/, and see the receipt on the user's side;
// then a resident writes to 客服 (through the simulator's push) and a support account reads
// and answers it at /admin/kf/, and WeChat receives the answer.
// Screenshots go to tests/output/browser/.
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const baseUrl = process.env.BZ_TEST_BASE_URL;
const reviewer = { username: process.env.BZ_TEST_REVIEWER, password: process.env.BZ_TEST_REVIEWER_PASSWORD };
const support = { username: process.env.BZ_TEST_SUPPORT, password: process.env.BZ_TEST_SUPPORT_PASSWORD };
const photos = process.env.BANZHENG_PHOTOS_DIR;
const shots = path.resolve('tests/output/browser');
if (!baseUrl || !reviewer.username || !support.username || !photos) {
  throw new Error('BZ_TEST_BASE_URL, BZ_TEST_REVIEWER(_PASSWORD), BZ_TEST_SUPPORT(_PASSWORD) and BANZHENG_PHOTOS_DIR are required');
}
fs.mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync',
  ],
  // launch() gives every run a new, empty profile of its own.
});

function expect(condition, message) {
  if (!condition) throw new Error(message);
  console.log(`ok - ${message}`);
}

try {
  const user = await (await browser.newContext()).newPage();
  const pageErrors = [];
  user.on('pageerror', (e) => pageErrors.push(e.message));

  // Log in through the simulator.
  await user.goto(baseUrl + '/');
  await user.fill('#openid', `browser-${Date.now()}`);
  await user.click('#login-button');
  await user.waitForSelector('#privacy:not(.hidden)');
  expect((await user.textContent('#login-status')).startsWith('已登录'), 'logged in through the WeChat simulator');

  // The privacy notice comes first: no booking or photo form until it is accepted.
  expect(await user.isHidden('#booking') && await user.isHidden('#photo'), 'no form that takes an ID number or a photo before consent');
  const version = await user.textContent('#privacy-version');
  expect(version.length > 0, `the privacy notice shows its version (${version})`);
  await user.screenshot({ path: path.join(shots, '0-privacy-notice.png'), fullPage: true });
  await user.click('#privacy-accept');
  await user.waitForSelector('#booking:not(.hidden)');
  expect(await user.isHidden('#privacy'), 'the notice is accepted and the forms are shown');
  const me = await user.evaluate(async () => {
    const res = await fetch('/api/v1/me', { headers: { authorization: 'Bearer ' + localStorage.getItem('banzheng.token') } });
    return res.json();
  });
  expect(me.privacy.accepted === true && me.privacy.version === version, 'the server recorded the consent');

  // Book the first free slot of a weekday that has one (Saturday's sessions are for children).
  let slot = null;
  for (let day = 1; day <= 9 && !slot; day += 1) {
    const date = new Date(Date.now() + day * 86400000 + 8 * 3600000).toISOString().slice(0, 10);
    const weekday = new Date(`${date}T00:00:00Z`).getUTCDay();
    if (weekday === 0 || weekday === 6) continue;
    await user.fill('#date', date);
    await user.dispatchEvent('#date', 'change');
    // That day's list, not the one shown while it loads (a stale button is replaced under the click).
    await user.waitForSelector(`#slots[data-date="${date}"]`, { state: 'attached' });
    slot = await user.$('#slots button:not([disabled])');
  }
  expect(slot, 'a bookable slot is listed');
  await slot.click();
  await user.click('#book-button');
  await user.waitForFunction(() => document.querySelector('#book-result').textContent.trim() !== '');
  const booked = await user.textContent('#book-result');
  expect(booked.includes('预约码'), 'booked: ' + booked);
  await user.waitForFunction(() => document.querySelectorAll('#appointments tr').length > 0);
  await user.screenshot({ path: path.join(shots, '1-booked.png'), fullPage: true });

  // The WebAssembly pre-check refuses a cat and accepts a portrait, before any upload.
  await user.waitForFunction(() => document.querySelector('#wasm-status').textContent.includes('WebAssembly'));
  await user.setInputFiles('#photo-file', path.join(photos, 'cat.jpg'));
  await user.waitForSelector('#report[data-verdict="fail"]');
  expect(await user.isDisabled('#order-button'), 'a photo without a face cannot be submitted');
  await user.screenshot({ path: path.join(shots, '2-precheck-fail.png'), fullPage: true });
  await user.setInputFiles('#photo-file', path.join(photos, 'portrait-test0.jpg'));
  await user.waitForSelector('#report[data-verdict="pass"]');
  const messages = await user.$$eval('#report tr td:nth-child(3)', (tds) => tds.map((td) => td.textContent));
  expect(messages.length > 5 && messages.every((m) => /[\u4e00-\u9fff]/.test(m)), `each of ${messages.length} checks has a Chinese message`);
  // The finished ID photo is shown before the upload, on the spec's white background.
  await user.waitForSelector('#finished[data-replaced="true"]');
  const corner = await user.$eval('#finished', (c) => [...c.getContext('2d').getImageData(2, 2, 1, 1).data]);
  expect(corner.slice(0, 3).every((v) => v >= 250), `the finished photo's corner is white (${corner})`);
  await user.screenshot({ path: path.join(shots, '3-precheck-pass.png'), fullPage: true });

  // Submit the order; it shows in the 订单 list as pending.
  await user.click('#order-button');
  await user.waitForFunction(() => document.querySelector('#order-result').textContent.includes('订单已提交'));
  await user.waitForSelector('#order-list tr[data-status="pending"]');
  const orderId = await user.getAttribute('#order-list tr[data-status="pending"]', 'data-order');
  expect(orderId, `order ${orderId} is pending in the 订单 list`);

  // A reviewer approves it at /admin/.
  const admin = await (await browser.newContext()).newPage();
  await admin.goto(baseUrl + '/admin/');
  await admin.fill('#username', reviewer.username);
  await admin.fill('#password', reviewer.password);
  await admin.click('#admin-login-button');
  const card = `section[data-order="${orderId}"]`;
  await admin.waitForSelector(card);
  await admin.waitForFunction((sel) => document.querySelector(sel + ' img.photo').naturalWidth > 0, card);
  await admin.screenshot({ path: path.join(shots, '4-review-queue.png'), fullPage: true });
  await admin.click(`${card} button.approve`);
  await admin.waitForFunction((sel) => document.querySelector(sel)?.textContent.includes('已通过'), card);
  expect(true, 'the reviewer approved the order');

  // Back on the user's side: approved, with a receipt image.
  await user.click('#orders-refresh');
  await user.waitForSelector(`#order-list tr[data-order="${orderId}"][data-status="approved"]`);
  await user.click(`#order-list tr[data-order="${orderId}"] button`);
  await user.waitForFunction(() => document.querySelector('#receipt-view img')?.naturalWidth > 0);
  const receiptAlt = await user.getAttribute('#receipt-view img', 'alt');
  expect(/相片回执 \S+/.test(receiptAlt), `the receipt image shows (${receiptAlt})`);
  await user.screenshot({ path: path.join(shots, '5-receipt.png'), fullPage: true });

  // 客服: a resident writes what no automatic answer covers (the simulator pushes it, in
  // 安全模式, as WeChat would); a support account reads and answers it at /admin/kf/.
  const openid = `browser-kf-${Date.now()}`;
  const question = '我的快递一直没收到，麻烦帮忙查一下';
  const pushed = await fetch(baseUrl + '/__sim/kf/messages', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ openid, text: question }),
  }).then((r) => r.json());
  expect(pushed.deliveries?.[0]?.body === 'success', `the pushed 客服 message is taken (${JSON.stringify(pushed)})`);
  const kf = await (await browser.newContext()).newPage();
  kf.on('pageerror', (e) => pageErrors.push(e.message));
  await kf.goto(baseUrl + '/admin/kf/');
  await kf.fill('#username', support.username);
  await kf.fill('#password', support.password);
  await kf.click('#kf-login-button');
  const row = '#kf-list tr[data-awaiting="true"]';
  await kf.waitForSelector(row);
  expect(true, 'the conversation is listed as awaiting a person');
  await kf.click(`${row} button`);
  await kf.waitForSelector('#kf-messages p[data-author="auto"]');
  const asked = await kf.textContent('#kf-messages p[data-author="user"]');
  expect(asked.includes(question), 'the support account reads what the resident wrote');
  await kf.screenshot({ path: path.join(shots, '6-kf-conversation.png'), fullPage: true });
  const answer = `您好，已为您查询快递（${Date.now() % 10000}）`;
  await kf.fill('#kf-reply-text', answer);
  await kf.click('#kf-reply-button');
  await kf.waitForSelector('#kf-messages p[data-author="staff"]');
  expect((await kf.textContent('#kf-messages p[data-author="staff"]')).includes(answer), 'the answer shows in the conversation');
  await kf.waitForSelector('#kf-conversation[data-awaiting="false"]');
  // The list reloads after the conversation: wait for it rather than read it mid-way.
  const gone = await kf.waitForSelector(row, { state: 'detached', timeout: 10000 }).then(() => true, () => false);
  expect(gone, 'the conversation no longer awaits a person');
  await kf.screenshot({ path: path.join(shots, '7-kf-answered.png'), fullPage: true });
  // The outbox sends it (the server's own sender, within seconds); WeChat received it.
  let delivered = false;
  for (let i = 0; i < 100 && !delivered; i += 1) {
    const { messages } = await fetch(baseUrl + '/__sim/messages').then((r) => r.json());
    delivered = messages.some((m) => m.touser === openid && m.msgtype === 'text' && m.text?.content === answer);
    if (!delivered) await new Promise((done) => setTimeout(done, 200));
  }
  expect(delivered, 'WeChat received the answer (GET /__sim/messages)');

  expect(pageErrors.length === 0, `no script errors in the page (${pageErrors.join('; ')})`);
} finally {
  await browser.close();
}

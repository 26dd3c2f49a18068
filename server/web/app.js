// The user's side of the developer client: log in through the WeChat simulator, read and
// accept the privacy notice (booking and ordering store an ID number and a face photo), book an
// appointment, pre-check a photo with the WebAssembly checker, order a photo receipt, and
// follow the order in the 订单 list.

const $ = (id) => document.getElementById(id);
let token = localStorage.getItem('banzheng.token') || '';
let chosenSlot = null;
let checkedPhoto = null;
let wasm = null;

async function api(method, path, body, extra = {}) {
  const headers = Object.assign({}, extra.headers || {});
  if (token) headers.authorization = 'Bearer ' + token;
  const init = { method, headers };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (extra.raw) {
    if (!res.ok) throw new Error((await res.json()).message);
    return res;
  }
  const data = res.status === 204 ? null : await res.json();
  if (!res.ok) {
    const error = new Error(data.message);
    error.body = data;
    throw error;
  }
  return data;
}

function show(el, text, isError) {
  el.textContent = text;
  el.className = isError ? 'error' : '';
}

function cell(row, value) {
  const td = document.createElement('td');
  if (value instanceof Node) td.appendChild(value);
  else td.textContent = value == null ? '' : String(value);
  row.appendChild(td);
  return td;
}

function button(label, onClick, cls) {
  const b = document.createElement('button');
  b.textContent = label;
  if (cls) b.className = cls;
  b.addEventListener('click', onClick);
  return b;
}

// ---- login ----
async function login() {
  const openid = $('openid').value.trim();
  const sim = await api('POST', '/__sim/codes', { openid });
  const answer = await api('POST', '/api/v1/auth/login', { code: sim.code });
  token = answer.token;
  localStorage.setItem('banzheng.token', token);
  await afterLogin();
}

async function afterLogin() {
  const me = await api('GET', '/api/v1/me');
  $('login-status').textContent = '已登录：' + me.user.id;
  $('orders').classList.remove('hidden');
  if (me.privacy.accepted) showForms();
  else showPrivacyNotice(me.privacy.version);
  await Promise.all([loadOffices(), loadSpecs(), loadAppointments(), loadOrders()]);
}

// ---- privacy notice: accepted before anything that stores an ID number or a photo ----
function showForms() {
  $('privacy').classList.add('hidden');
  for (const id of ['booking', 'photo']) $(id).classList.remove('hidden');
}

function showPrivacyNotice(version) {
  $('privacy-version').textContent = version;
  $('privacy').classList.remove('hidden');
  for (const id of ['booking', 'photo']) $(id).classList.add('hidden');
}

async function acceptPrivacy() {
  try {
    await api('POST', '/api/v1/me/consent', { version: $('privacy-version').textContent });
    showForms();
  } catch (e) {
    show($('privacy-result'), e.message, true);
    // The notice changed while it was open: show the current one.
    if (e.body && e.body.code === 'PRIVACY_VERSION_OUTDATED') await afterLogin();
  }
}

/** A refusal for want of consent (the notice changed since it was accepted) shows the notice again. */
async function askAgainIfRefused(e) {
  if (e.body && e.body.code === 'CONSENT_REQUIRED') {
    const me = await api('GET', '/api/v1/me');
    showPrivacyNotice(me.privacy.version);
  }
}

// ---- booking ----
async function loadOffices() {
  const [offices, services] = await Promise.all([api('GET', '/api/v1/offices'), api('GET', '/api/v1/services')]);
  $('office').replaceChildren(...offices.offices.map((o) => new Option(o.name, o.id)));
  $('service').replaceChildren(...services.services.map((s) => new Option(`${s.name}（${s.fee_yuan} 元）`, s.id)));
  const tomorrow = new Date(Date.now() + 86400000);
  $('date').value = tomorrow.toISOString().slice(0, 10);
  await loadSlots();
}

async function loadSlots() {
  chosenSlot = null;
  const q = new URLSearchParams({ service: $('service').value, date: $('date').value });
  const data = await api('GET', `/api/v1/offices/${encodeURIComponent($('office').value)}/slots?${q}`);
  const buttons = data.slots.map((slot) => {
    const b = button(`${slot.start.slice(11, 16)}–${slot.end.slice(11, 16)} 余${slot.remaining}`, () => {
      chosenSlot = slot.id;
      for (const other of $('slots').children) other.classList.remove('chosen');
      b.classList.add('chosen');
    });
    b.disabled = slot.remaining === 0;
    b.dataset.slot = slot.id;
    return b;
  });
  $('slots').replaceChildren(...(buttons.length ? buttons : [document.createTextNode('当天没有可预约的时段')]));
  // The day the list shows: a date changed while an earlier list was loading is not that day yet.
  $('slots').dataset.date = q.get('date');
}

async function book() {
  const body = {
    slot_id: chosenSlot,
    service: $('service').value,
    applicant: { name: $('applicant-name').value, id_number: $('applicant-id').value, phone: $('applicant-phone').value },
  };
  if ($('receipt-no').value.trim()) body.photo_receipt_no = $('receipt-no').value.trim();
  try {
    const appointment = await api('POST', '/api/v1/appointments', body, {
      headers: { 'idempotency-key': crypto.randomUUID() },
    });
    show($('book-result'), `预约成功，预约码 ${appointment.code}`);
    await Promise.all([loadAppointments(), loadSlots()]);
  } catch (e) {
    show($('book-result'), e.message, true);
    await askAgainIfRefused(e);
  }
}

async function loadAppointments() {
  const data = await api('GET', '/api/v1/appointments');
  const rows = data.appointments.map((a) => {
    const tr = document.createElement('tr');
    tr.dataset.appointment = a.id;
    cell(tr, a.code);
    cell(tr, a.office.name);
    cell(tr, `${a.slot.start.slice(0, 10)} ${a.slot.start.slice(11, 16)}`);
    cell(tr, a.status_label);
    const actions = cell(tr, '');
    if (a.status === 'booked') {
      actions.appendChild(
        button('取消', async () => {
          try {
            await api('POST', `/api/v1/appointments/${a.id}/cancel`);
          } catch (e) {
            alert(e.message);
          }
          await Promise.all([loadAppointments(), loadSlots()]);
        }, 'secondary'),
      );
    }
    return tr;
  });
  $('appointments').replaceChildren(...rows);
}

// ---- photo pre-check (WebAssembly, the same code the server runs) ----
async function loadSpecs() {
  try {
    const module = await import('/pkg/photo_wasm.js');
    await module.default();
    // The models ship beside the .wasm, not inside it: the face landmarks (every check) and the
    // segmentation (the finished photo).
    for (const name of ['face_landmark', 'selfie_segmentation']) {
      const model = await fetch(`/pkg/${name}.bin`);
      if (!model.ok) throw new Error(`no model ${name}`);
      module.load_model(name, new Uint8Array(await model.arrayBuffer()));
    }
    wasm = module;
    $('wasm-status').textContent = 'WebAssembly 照片检测已加载';
  } catch (e) {
    $('wasm-status').textContent = '未找到 WebAssembly 构建（运行 scripts/wasm.sh build）';
  }
  const data = await api('GET', '/api/v1/photo-specs');
  $('spec').replaceChildren(...data.specs.map((s) => new Option(s.name_zh, s.id)));
}

async function checkPhoto() {
  const file = $('photo-file').files[0];
  if (!file || !wasm) return;
  const bytes = new Uint8Array(await file.arrayBuffer());
  const started = performance.now();
  const report = wasm.check_encoded(bytes, $('spec').value);
  const ms = Math.round(performance.now() - started);
  const rows = report.checks.map((c) => {
    const tr = document.createElement('tr');
    tr.dataset.check = c.id;
    cell(tr, c.id);
    cell(tr, { pass: '通过', warn: '提示', fail: '不通过' }[c.status]).className = c.status;
    cell(tr, c.message_zh);
    return tr;
  });
  $('report').replaceChildren(...rows);
  const failed = report.checks.some((c) => c.status === 'fail');
  $('wasm-status').textContent = `本机检测用时 ${ms} ms：${failed ? '照片不符合要求，请重新拍摄' : '照片可以上传'}`;
  $('report').dataset.verdict = failed ? 'fail' : 'pass';
  checkedPhoto = failed ? null : file;
  $('order-button').disabled = failed;
  await showFinished(file);
}

/** The finished ID photo (cropped, levelled, on the spec's background) as the server will make it. */
async function showFinished(file) {
  const canvas = $('finished');
  delete canvas.dataset.replaced;
  canvas.classList.add('hidden');
  $('finished-note').textContent = '';
  const bitmap = await createImageBitmap(file); // upright: EXIF orientation applied
  const source = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = source.getContext('2d');
  ctx.drawImage(bitmap, 0, 0);
  const px = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  const { photo } = wasm.finish_rgba(px.width, px.height, px.data, $('spec').value);
  if (!photo) return;
  canvas.width = photo.width;
  canvas.height = photo.height;
  canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(photo.pixels), photo.width, photo.height), 0, 0);
  canvas.dataset.replaced = String(photo.finish.background_replaced);
  canvas.classList.remove('hidden');
  $('finished-note').textContent = photo.finish.note
    ? `成片预览：${photo.finish.note.message_zh}`
    : '成片预览（背景已替换为证件要求的颜色）';
}

async function submitOrder() {
  const form = new FormData();
  form.append('spec', $('spec').value);
  form.append('region', $('region').value);
  form.append('name', $('order-name').value);
  form.append('id_number', $('order-id').value);
  form.append('photo', checkedPhoto);
  try {
    const order = await api('POST', '/api/v1/receipt-orders', form);
    show($('order-result'), `订单已提交（${order.id}），等待检测中心审核`);
    await loadOrders();
  } catch (e) {
    show($('order-result'), e.message, true);
    await askAgainIfRefused(e);
  }
}

// ---- 订单 ----
async function loadOrders() {
  const data = await api('GET', '/api/v1/receipt-orders');
  const rows = data.orders.map((o) => {
    const tr = document.createElement('tr');
    tr.dataset.order = o.id;
    tr.dataset.status = o.status;
    cell(tr, o.spec);
    cell(tr, o.status_zh || o.status);
    cell(tr, o.receipt_no || (o.reasons || []).map((r) => r.label_zh || r).join('、'));
    const actions = cell(tr, '');
    if (o.receipt_no) actions.appendChild(button('查看回执', () => showReceipt(o)));
    return tr;
  });
  $('order-list').replaceChildren(...rows);
}

async function showReceipt(order) {
  const res = await api('GET', `/api/v1/receipt-orders/${order.id}/receipt`, undefined, { raw: true });
  const img = document.createElement('img');
  img.className = 'receipt';
  img.alt = '相片回执 ' + order.receipt_no;
  img.src = URL.createObjectURL(await res.blob());
  $('receipt-view').replaceChildren(img);
}

$('login-button').addEventListener('click', () => login().catch((e) => show($('login-status'), e.message, true)));
$('privacy-accept').addEventListener('click', acceptPrivacy);
$('service').addEventListener('change', loadSlots);
$('office').addEventListener('change', loadSlots);
$('date').addEventListener('change', loadSlots);
$('book-button').addEventListener('click', book);
$('photo-file').addEventListener('change', checkPhoto);
$('spec').addEventListener('change', checkPhoto);
$('order-button').addEventListener('click', submitOrder);
$('orders-refresh').addEventListener('click', loadOrders);
if (token) afterLogin().catch(() => localStorage.removeItem('banzheng.token'));

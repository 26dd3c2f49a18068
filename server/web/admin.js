// The detection centre's side of the developer client: log in as a reviewer, work the
// queue oldest first with the photo and the automatic report side by side, approve or reject.

import { $, staffSession } from '/staff.js';

let reasons = [];
const { api } = staffSession({
  storageKey: 'banzheng.admin',
  statusId: 'admin-status',
  loginButtonId: 'admin-login-button',
  onLogin: start,
});

async function start() {
  $('admin-status').textContent = '已登录';
  $('queue').classList.remove('hidden');
  reasons = (await api('GET', '/api/v1/admin/rejection-reasons')).reasons;
  await loadQueue();
}

async function photoUrl(orderId) {
  const res = await api('GET', `/api/v1/admin/receipt-orders/${orderId}/photo`, undefined, true);
  return URL.createObjectURL(await res.blob());
}

function reportTable(report) {
  const table = document.createElement('table');
  for (const c of report.checks) {
    const tr = table.insertRow();
    tr.insertCell().textContent = c.message_zh;
    const status = tr.insertCell();
    status.textContent = c.status;
    status.className = c.status;
  }
  return table;
}

async function loadQueue() {
  const data = await api('GET', '/api/v1/admin/review-queue');
  const cards = await Promise.all(
    data.orders.map(async (order) => {
      const card = document.createElement('section');
      card.dataset.order = order.id;
      const title = document.createElement('h2');
      title.textContent = `${order.spec} · ${order.name_masked || ''} · ${order.created_at}`;
      const img = document.createElement('img');
      img.className = 'photo';
      img.src = await photoUrl(order.id);
      const boxes = reasons.map((r) => {
        const label = document.createElement('label');
        const box = document.createElement('input');
        box.type = 'checkbox';
        box.value = r.code;
        label.append(box, ' ' + r.label_zh);
        return label;
      });
      const note = document.createElement('input');
      note.placeholder = '备注';
      const result = document.createElement('div');
      const decide = (decision) => async () => {
        const chosen = boxes.map((l) => l.firstChild).filter((b) => b.checked).map((b) => b.value);
        try {
          await api('POST', `/api/v1/admin/receipt-orders/${order.id}/review`, {
            decision,
            reasons: decision === 'reject' ? chosen : [],
            note: note.value,
          });
          result.textContent = decision === 'approve' ? '已通过' : '已驳回';
          setTimeout(loadQueue, 300);
        } catch (e) {
          result.textContent = e.message;
          result.className = 'error';
        }
      };
      const approve = document.createElement('button');
      approve.textContent = '通过';
      approve.className = 'approve';
      approve.addEventListener('click', decide('approve'));
      const reject = document.createElement('button');
      reject.textContent = '驳回';
      reject.className = 'reject secondary';
      reject.addEventListener('click', decide('reject'));
      card.append(title, img, reportTable(order.report), ...boxes, note, approve, reject, result);
      return card;
    }),
  );
  $('queue-list').replaceChildren(...(cards.length ? cards : [document.createTextNode('队列为空')]));
}

$('queue-refresh').addEventListener('click', loadQueue);

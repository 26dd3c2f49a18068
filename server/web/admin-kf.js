// The 客服 inbox of the developer client: log in as a `support` account, see the
// conversations newest first (those awaiting a person marked), read one, answer it within
// WeChat's 48 hours and see the answer in the conversation.

import { $, staffSession } from '/staff.js';

let current = null;

const AUTHORS = { user: '用户', auto: '自动回复', staff: '客服' };
const { api } = staffSession({
  storageKey: 'banzheng.kf',
  statusId: 'kf-status',
  loginButtonId: 'kf-login-button',
  onLogin: start,
});

const when = (iso) => new Date(iso).toLocaleString('zh-CN', { hour12: false });

async function start() {
  await loadList();
  $('kf-status').textContent = '已登录';
  $('kf-inbox').classList.remove('hidden');
}

async function loadList() {
  const { conversations } = await api('GET', '/api/v1/admin/kf/conversations');
  const rows = conversations.map((c) => {
    const tr = document.createElement('tr');
    tr.dataset.conversation = c.id;
    tr.dataset.awaiting = String(c.awaiting);
    tr.insertCell().textContent = c.user;
    tr.insertCell().textContent = when(c.last_at);
    tr.insertCell().textContent = c.awaiting ? '待人工回复' : '已回复';
    tr.insertCell().textContent = c.last_text.slice(0, 40);
    const open = document.createElement('button');
    open.textContent = '查看';
    open.addEventListener('click', () => openConversation(c.id));
    tr.insertCell().append(open);
    return tr;
  });
  $('kf-list').replaceChildren(...rows);
  if (!rows.length) $('kf-list').replaceChildren(document.createTextNode('暂无会话'));
}

async function openConversation(id) {
  const c = await api('GET', `/api/v1/admin/kf/conversations/${encodeURIComponent(id)}`);
  current = c;
  $('kf-title').textContent = `${c.user} · ${c.awaiting ? '待人工回复' : '已回复'}`;
  $('kf-conversation').dataset.conversation = c.id;
  $('kf-conversation').dataset.awaiting = String(c.awaiting);
  $('kf-messages').replaceChildren(
    ...c.messages.map((m) => {
      const p = document.createElement('p');
      p.className = 'kf-message';
      p.dataset.author = m.author;
      const who = document.createElement('strong');
      who.textContent = `${AUTHORS[m.author] || m.author} ${when(m.at)}：`;
      p.append(who, document.createTextNode(m.text));
      return p;
    }),
  );
  $('kf-window').textContent = c.can_reply
    ? `可回复至 ${when(c.reply_until)}（用户最后留言后48小时内）`
    : '用户最后留言已超过48小时，微信不允许回复，请等待用户再次留言';
  $('kf-reply-button').disabled = !c.can_reply;
  $('kf-conversation').classList.remove('hidden');
}

async function reply() {
  if (!current) return;
  const text = $('kf-reply-text').value;
  $('kf-reply-result').className = '';
  try {
    await api('POST', `/api/v1/admin/kf/conversations/${encodeURIComponent(current.id)}/replies`, { text });
    $('kf-reply-text').value = '';
    $('kf-reply-result').textContent = '已发送';
    await openConversation(current.id);
    await loadList();
  } catch (e) {
    $('kf-reply-result').textContent = e.message;
    $('kf-reply-result').className = 'error';
  }
}

$('kf-refresh').addEventListener('click', loadList);
$('kf-reply-button').addEventListener('click', reply);

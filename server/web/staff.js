// What the staff pages share: log in with a staff account, keep its token for the browser tab,
// call the API with it. Each page keeps its own token (a reviewer and a support account can be
// logged in side by side in two tabs).

export const $ = (id) => document.getElementById(id);

// `storageKey` names the page's token in sessionStorage, `statusId` the element that shows the
// login's outcome; `onLogin` opens the page once a token is there (also for a token kept from before).
export function staffSession({ storageKey, statusId, loginButtonId, onLogin }) {
  let token = sessionStorage.getItem(storageKey) || '';

  async function api(method, path, body, raw) {
    const headers = { authorization: 'Bearer ' + token };
    const init = { method, headers };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    if (raw && res.ok) return res;
    const data = res.status === 204 ? null : await res.json();
    if (!res.ok) throw new Error(data.message);
    return data;
  }

  async function login() {
    const res = await fetch('/api/v1/admin/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: $('username').value, password: $('password').value }),
    });
    const data = await res.json();
    if (!res.ok) {
      $(statusId).textContent = data.message;
      return;
    }
    token = data.token;
    sessionStorage.setItem(storageKey, token);
    await onLogin();
  }

  $(loginButtonId).addEventListener('click', login);
  // A token kept from before opens the page once the page's module has run to its end (a
  // microtask later), so `onLogin` finds every binding of the page initialised.
  if (token) Promise.resolve().then(onLogin).catch(() => sessionStorage.removeItem(storageKey));
  return { api };
}

// @ts-check
/**
 * Banzheng API client for the mini-program: copy this folder into the mini-program and
 * `const { createClient } = require('./banzheng/api.js')`.
 *
 * - `login()` runs `wx.login` and exchanges the code for our token; any call answered
 *   401 logs in again once and retries, so pages never handle expiry themselves.
 * - Every error of the API (`{code, message, request_id}`) becomes a thrown
 *   `BanzhengError` whose `message` is the Chinese text to show the user.
 * - `uploadPhoto` goes through `wx.uploadFile`; `subscribe` asks the user with
 *   `wx.requestSubscribeMessage` and reports the accepted templates to the server.
 * - Consent first: a call the server refuses with `CONSENT_REQUIRED` (booking, ordering or
 *   resubmitting a photo before the user accepted the current privacy notice) shows WeChat's
 *   privacy prompt (`wx.requirePrivacyAuthorize`, which shows the mini-program's 隐私保护指引);
 *   once the user agrees, the acceptance of the notice's version is recorded
 *   (`POST /api/v1/me/consent`) and the call retried once. A user who declines gets
 *   `PRIVACY_DENIED` and nothing is sent. `acceptPrivacy()` does the same up front.
 * - `bindPhone(e.detail)` hands the code of `<button open-type="getPhoneNumber">` to the
 *   server, which gets the verified number from WeChat; `applicantDefaults()` then offers it
 *   for the booking form (a booking without `applicant.phone` takes it). Typing a number
 *   always stays possible: WeChat offers the button to verified accounts only.
 */

/** An error the API answered (or a network failure, code `NETWORK`). */
class BanzhengError extends Error {
  constructor(status, body) {
    super((body && body.message) || '网络异常，请稍后再试');
    this.name = 'BanzhengError';
    this.status = status;
    this.code = (body && body.code) || 'NETWORK';
    this.field = body && body.field;
    this.requestId = body && body.request_id;
    this.body = body;
  }
}

const TOKEN_KEY = 'banzheng.token';

function parseBody(data) {
  if (typeof data !== 'string') return data;
  try {
    return JSON.parse(data);
  } catch (e) {
    return data;
  }
}

/** A random key for `Idempotency-Key`: the mini-program has no crypto.randomUUID. */
function idempotencyKey() {
  let key = '';
  for (let i = 0; i < 32; i += 1) key += Math.floor(Math.random() * 16).toString(16);
  return key;
}

/**
 * @param {{ baseUrl: string, wx?: WechatMiniprogram.Wx }} options
 */
function createClient(options) {
  /** @type {WechatMiniprogram.Wx} */
  const wxApi = options.wx || (typeof wx !== 'undefined' ? wx : undefined);
  if (!wxApi) throw new Error('createClient needs the wx API');
  const baseUrl = options.baseUrl.replace(/\/$/, '');
  let token = wxApi.getStorageSync(TOKEN_KEY) || '';
  let loggingIn = null;

  /**
   * @param {'GET' | 'POST'} method
   * @param {string} path
   * @param {any} [data]
   * @param {Record<string, string>} [header]
   * @returns {Promise<{ status: number, body: any }>}
   */
  function call(method, path, data, header) {
    return new Promise((resolve) => {
      wxApi.request({
        url: baseUrl + path,
        method,
        data,
        header: Object.assign({ 'content-type': 'application/json' }, header || {}),
        success: (res) => resolve({ status: res.statusCode, body: parseBody(res.data) }),
        fail: () => resolve({ status: 0, body: null }),
      });
    });
  }

  function wxLogin() {
    return new Promise((resolve, reject) => {
      wxApi.login({
        success: (res) => resolve(res.code),
        fail: () => reject(new BanzhengError(0, { code: 'WX_LOGIN_FAILED', message: '微信登录失败，请重试' })),
      });
    });
  }

  /** Logs in (once, even when many calls ask at the same time). */
  function login() {
    if (!loggingIn) {
      loggingIn = (async () => {
        const code = await wxLogin();
        const res = await call('POST', '/api/v1/auth/login', { code });
        if (res.status !== 200) throw new BanzhengError(res.status, res.body);
        token = res.body.token;
        wxApi.setStorageSync(TOKEN_KEY, token);
        return res.body;
      })().finally(() => {
        loggingIn = null;
      });
    }
    return loggingIn;
  }

  /** Sends with the token, logging in again once when it is refused. */
  async function withToken(send) {
    if (!token) await login();
    let res = await send(token);
    if (res.status === 401) {
      await login();
      res = await send(token);
    }
    return res;
  }

  function answer(res) {
    if (res.status >= 200 && res.status < 300) return res.body;
    throw new BanzhengError(res.status, res.body);
  }

  /** WeChat's privacy prompt; resolves when the user agreed, else throws `PRIVACY_DENIED`. */
  function requirePrivacyAuthorize() {
    return new Promise((resolve, reject) => {
      wxApi.requirePrivacyAuthorize({
        success: () => resolve(undefined),
        fail: () =>
          reject(new BanzhengError(0, { code: 'PRIVACY_DENIED', message: '需要同意隐私保护指引后才能提交身份证号码和照片' })),
      });
    });
  }

  /**
   * Shows the privacy prompt and records the user's acceptance of the notice's current
   * version; resolves to `{ version, accepted, accepted_at }`.
   */
  async function acceptPrivacy() {
    await requirePrivacyAuthorize();
    const me = answer(await withToken((t) => call('GET', '/api/v1/me', undefined, { authorization: 'Bearer ' + t })));
    const version = me.privacy.version;
    return answer(
      await withToken((t) => call('POST', '/api/v1/me/consent', { version }, { authorization: 'Bearer ' + t })),
    );
  }

  async function authorized(send) {
    let res = await withToken(send);
    if (res.status === 403 && res.body && res.body.code === 'CONSENT_REQUIRED') {
      await acceptPrivacy();
      res = await withToken(send);
    }
    return answer(res);
  }

  /**
   * Calls the API with the user's token; resolves to the JSON body or throws BanzhengError.
   * @param {'GET' | 'POST'} method
   * @param {string} path
   * @param {any} [data]
   * @param {Record<string, string>} [header]
   */
  function request(method, path, data, header) {
    return authorized((t) =>
      call(method, path, data, Object.assign({ authorization: 'Bearer ' + t }, header || {})),
    );
  }

  /** Uploads a photo (a local file path from wx.chooseMedia) with the order's fields. */
  function uploadPhoto(filePath, fields, path) {
    return authorized(
      (t) =>
        new Promise((resolve) => {
          wxApi.uploadFile({
            url: baseUrl + (path || '/api/v1/receipt-orders'),
            filePath,
            name: 'photo',
            formData: fields || {},
            header: { authorization: 'Bearer ' + t },
            success: (res) => resolve({ status: res.statusCode, body: parseBody(res.data) }),
            fail: () => resolve({ status: 0, body: null }),
          });
        }),
    );
  }

  /**
   * Asks the user to accept the templates of `events` (all events when omitted) and tells
   * the server which ones were accepted: each accept allows one notification.
   */
  async function subscribe(events) {
    const listed = await request('GET', '/api/v1/subscriptions/templates');
    const wanted = listed.templates.filter((t) => !events || events.indexOf(t.event) >= 0);
    // WeChat takes at most 3 template ids per request.
    const tmplIds = wanted.map((t) => t.template_id).slice(0, 3);
    if (tmplIds.length === 0) return { accepted: [] };
    /** @type {Record<string, string>} */
    const answer = await new Promise((resolve) => {
      wxApi.requestSubscribeMessage({
        tmplIds,
        success: (res) => resolve(/** @type {any} */ (res)),
        fail: () => resolve({}),
      });
    });
    const accepted = tmplIds.filter((id) => answer[id] === 'accept');
    if (accepted.length === 0) return { accepted, subscriptions: [] };
    const granted = await request('POST', '/api/v1/subscriptions', { accepted });
    return { accepted, subscriptions: granted.subscriptions };
  }

  /**
   * Sends the `e.detail` of `bindgetphonenumber` to the server; resolves to `{ phone }`. A user
   * who declined has no code: `PHONE_DENIED`, and the phone field stays for typing.
   * @param {{ code?: string, errMsg?: string }} detail
   */
  async function bindPhone(detail) {
    if (!detail || !detail.code) {
      throw new BanzhengError(0, { code: 'PHONE_DENIED', message: '未获取到微信手机号，请手动填写' });
    }
    return request('POST', '/api/v1/me/phone', { code: detail.code });
  }

  /** What to pre-fill the applicant's fields with: the verified phone, when there is one. */
  async function applicantDefaults() {
    const me = await request('GET', '/api/v1/me');
    return { phone: (me.user && me.user.phone) || '' };
  }

  return {
    login,
    acceptPrivacy,
    request,
    uploadPhoto,
    subscribe,
    bindPhone,
    applicantDefaults,
    get: (path) => request('GET', path),
    post: (path, data, header) => request('POST', path, data, header),
    /** Books with a fresh Idempotency-Key, so a retried tap cannot book twice. */
    book: (appointment, key) =>
      request('POST', '/api/v1/appointments', appointment, { 'idempotency-key': key || idempotencyKey() }),
    get token() {
      return token;
    },
  };
}

module.exports = { createClient, BanzhengError, idempotencyKey };

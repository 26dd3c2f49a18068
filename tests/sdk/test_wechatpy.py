"""wechatpy, a WeChat SDK nobody here wrote, against our WeChat simulator as if it were
api.weixin.qq.com: login (code2session), access tokens and their refresh, subscribe
messages and their errcodes, the phone number, and decrypting user data with the session
key. Whatever wechatpy sees here, it would see from WeChat; a simulator that says what
WeChat never says fails a test. Run by scripts/sdk-test.sh against a development server
(BZ_TEST_BASE_URL), whose simulator answers under /__wechat/ and takes orders under /__sim/.
"""

import base64
import json
import os
import unittest
import urllib.request
import uuid

import requests
from wechatpy.client import WeChatClient
from wechatpy.crypto import WeChatWxaCrypto
from wechatpy.exceptions import WeChatClientException

BASE_URL = os.environ["BZ_TEST_BASE_URL"].rstrip("/")
WECHAT = "https://api.weixin.qq.com/"
# The simulated mini-program (server::wechat::simulator::APPID / SECRET).
APPID = "wx0123456789abcdef"
SECRET = "5e0c0de5e0c0de5e0c0de5e0c0de5e0c"


class SimulatedWeChat(requests.Session):
    """Sends what wechatpy addresses to api.weixin.qq.com to the simulator instead."""

    def request(self, method, url, *args, **kwargs):
        if url.startswith(WECHAT):
            url = BASE_URL + "/__wechat/" + url[len(WECHAT):]
        return super().request(method, url, *args, **kwargs)


def client(secret=SECRET, access_token=None, auto_retry=True):
    c = WeChatClient(APPID, secret, access_token=access_token, auto_retry=auto_retry)
    c._http = SimulatedWeChat()
    return c


def sim(path, body):
    """The simulator's control API: what the WeChat app on a phone would do."""
    request = urllib.request.Request(
        BASE_URL + "/__sim/" + path,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        text = response.read()
    return json.loads(text) if text else None


def new_openid(name):
    return "o-%s-%s" % (name, uuid.uuid4().hex[:8])


def logged_in(c, name):
    """A user who has logged in once; returns (openid, session_key)."""
    openid = new_openid(name)
    answer = c.wxa.code_to_session(sim("codes", {"openid": openid})["code"])
    return answer["openid"], answer["session_key"]


class WeChatpyAgainstTheSimulator(unittest.TestCase):
    def errcode(self, call, *args, **kwargs):
        with self.assertRaises(WeChatClientException) as raised:
            call(*args, **kwargs)
        return raised.exception.errcode, raised.exception.errmsg

    def test_login_gives_an_aes128_session_key_and_a_code_works_once(self):
        c = client()
        openid = new_openid("login")
        code = sim("codes", {"openid": openid})["code"]
        answer = c.wxa.code_to_session(code)
        self.assertEqual(answer["openid"], openid)
        self.assertEqual(len(base64.b64decode(answer["session_key"])), 16)
        self.assertEqual(self.errcode(c.wxa.code_to_session, code)[0], 40163)
        self.assertEqual(self.errcode(c.wxa.code_to_session, "never-issued")[0], 40029)
        self.assertEqual(self.errcode(c.wxa.code_to_session, "")[0], 41008)

    def test_session_key_decrypts_encrypted_user_data(self):
        openid, session_key = logged_in(client(), "crypt")
        sealed = sim("encrypted-data", {"openid": openid, "data": {"nickName": "张三"}})
        data = WeChatWxaCrypto(session_key, sealed["iv"], APPID).decrypt_message(
            sealed["encryptedData"]
        )
        self.assertEqual(data["openId"], openid)
        self.assertEqual(data["nickName"], "张三")
        self.assertEqual(data["watermark"]["appid"], APPID)

    def test_a_wrong_or_missing_secret_is_refused(self):
        self.assertEqual(self.errcode(client(secret="wrong").fetch_access_token)[0], 40125)
        self.assertEqual(self.errcode(client(secret="").fetch_access_token)[0], 41004)

    def test_a_replaced_token_lives_five_minutes_then_wechatpy_refreshes_it(self):
        template = "sdk-" + uuid.uuid4().hex[:8]
        sim("templates", {"template_id": template, "keywords": ["thing1"]})
        openid, _ = logged_in(client(), "token")
        for _ in range(3):
            sim("subscriptions", {"openid": openid, "template_id": template})
        old = client().fetch_access_token()["access_token"]
        new = client().fetch_access_token()["access_token"]
        self.assertNotEqual(old, new)
        data = {"thing1": {"value": "南城户政大厅"}}

        holder = client(access_token=old)
        holder.wxa.send_subscribe_message(openid, template, data)
        sim("clock", {"advance_seconds": 301})
        self.assertEqual(
            self.errcode(
                client(access_token=old, auto_retry=False).wxa.send_subscribe_message,
                openid,
                template,
                data,
            )[0],
            42001,
        )
        # wechatpy's own refresh on 42001: a new token, and the send goes through.
        holder.wxa.send_subscribe_message(openid, template, data)
        self.assertNotEqual(holder.access_token, old)
        client(access_token=new).wxa.send_subscribe_message(openid, template, data)

    def test_subscribe_sends_and_their_errcodes(self):
        c = client()
        template = "sdk-" + uuid.uuid4().hex[:8]
        keywords = ["thing1", "time2", "character_string3"]
        sim("templates", {"template_id": template, "keywords": keywords})
        openid, _ = logged_in(c, "send")
        data = {
            "thing1": {"value": "南城户政大厅"},
            "time2": {"value": "2026年03月05日 09:30"},
            "character_string3": {"value": "BZ-0001"},
        }
        send = c.wxa.send_subscribe_message
        self.assertEqual(self.errcode(send, openid, template, data)[0], 43101, "no grant")
        sim("subscriptions", {"openid": openid, "template_id": template})
        self.assertEqual(send(openid, template, data, page="pages/appointment/detail?id=1")["errcode"], 0)
        self.assertEqual(self.errcode(send, openid, template, data)[0], 43101, "one send per grant")
        sim("subscriptions", {"openid": openid, "template_id": template})
        errcode, errmsg = self.errcode(send, openid, template, {})
        self.assertEqual(errcode, 47003)
        self.assertIn("data.thing1.value is empty", errmsg)
        late = dict(data, time2={"value": "25:99"})
        errcode, errmsg = self.errcode(send, openid, template, late)
        self.assertEqual(errcode, 47003)
        self.assertIn("data.time2.value invalid", errmsg)
        self.assertEqual(self.errcode(send, openid, template, data, page="pages/unreleased/x")[0], 41030)
        self.assertEqual(self.errcode(send, new_openid("stranger"), template, data)[0], 40003)
        self.assertEqual(self.errcode(send, openid, "no-such-template", data)[0], 40037)
        self.assertEqual(send(openid, template, data)["errcode"], 0, "the grant survived the refusals")

    def test_the_phone_number_of_a_getphonenumber_code(self):
        c = client()
        openid, _ = logged_in(c, "phone")
        code = sim("phone-codes", {"openid": openid, "phone": "13812345678"})["code"]
        url = WECHAT + "wxa/business/getuserphonenumber"
        answer = c.post(url, data={"code": code, "openid": openid})
        self.assertEqual(answer["phone_info"]["purePhoneNumber"], "13812345678")
        self.assertEqual(answer["phone_info"]["countryCode"], "86")
        self.assertEqual(self.errcode(c.post, url, data={"code": code})[0], 40029)

    def test_unknown_paths_and_wrong_methods_are_errcodes_not_successes(self):
        c = client()
        self.assertEqual(self.errcode(c.get, WECHAT + "cgi-bin/no-such-api")[0], 40066)
        self.assertEqual(self.errcode(c.get, WECHAT + "cgi-bin/message/subscribe/send")[0], 43002)
        self.assertEqual(self.errcode(c.post, WECHAT + "sns/jscode2session", data={})[0], 43001)


if __name__ == "__main__":
    unittest.main()

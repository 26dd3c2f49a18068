"""What the booking benchmarks ask the server before they load it: a bookable slot and users
who may book (logged in through the WeChat simulator, the privacy notice accepted)."""
import datetime
import json
import urllib.request


def call(base, path, body=None, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    return json.load(urllib.request.urlopen(urllib.request.Request(base + path, data, headers)))


def first_bookable_slot(base):
    """The first day in the next two weeks with slots at 东城 open to everyone, and its first
    slot's id; None when there is none."""
    day = datetime.date.today()
    for _ in range(14):
        day += datetime.timedelta(days=1)
        slots = call(base, f"/api/v1/offices/dongcheng/slots?service=expiry_renewal&date={day}")["slots"]
        if slots and not slots[0]["family_only"]:
            return day, slots[0]["id"]
    return None


def user_who_may_book(base, openid):
    """A token of a user who accepted the privacy notice (booking stores an ID number)."""
    code = call(base, "/__sim/codes", {"openid": openid})["code"]
    token = call(base, "/api/v1/auth/login", {"code": code})["token"]
    version = call(base, "/api/v1/me", token=token)["privacy"]["version"]
    call(base, "/api/v1/me/consent", {"version": version}, token)
    return token

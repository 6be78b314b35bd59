"""What a server said when it would not do something: its own words, readable, and what they mean.

Resellers' gateways mostly run the new-api / one-api relay software and, when they do not pass fal's
answer through, answer in their own words (docs/gateways.md lists the sources). Shapes read here:

* ``{"error": {"message", "type", "code"}}``: one-api ``middleware/utils.go`` ``abortWithMessage``
  and ``relay/adaptor/openai/util.go`` ``ErrorWrapper``; new-api ``abortWithOpenAiMessage`` and
  ``types/error.go`` (codes ``insufficient_user_quota``, ``model_not_found``, ``access_denied``,
  ``sensitive_words_detected`` …). Their messages end in the *gateway's* log id, "(request id: …)":
  that is not a fal request id and never names a job;
* ``{"type": "error", "error": {...}, "request_id"}`` (new-api ``abortWithOriginMessage``: again the
  gateway's own id);
* ``{"code", "msg" | "message"}``, also as **HTTP 200** (``{"code": 402, "msg": "余额不足…"}``);
* ``{"status_code", "status_message"}`` (seermartech's 5xxxx codes: 50001 key, 50002 balance, 50003
  rate, 50004 upstream); ``{"detail"}`` (fal's own, FastAPI); ``{"success": false, "message"}``;
* plain text, and HTML from a front server (nginx's "502 Bad Gateway" page): a proxy's page is not
  the gateway's verdict on the edit.

Bodies are UTF-8 (Go's encoding/json writes CJK as is; some servers escape it as ``\\uXXXX``): both
are shown as real characters. Nothing here imports the pack; errors.py builds the typed errors.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

# The verdicts: what the person at the red node has to do differs for each.
BAD_TOKEN = "bad_token"              # the token is wrong, expired or disabled
NO_BALANCE = "no_balance"            # the balance or the token's quota is used up
NOT_ALLOWED = "not_allowed"          # the token may not use this model, or not from this address
RATE_LIMITED = "rate_limited"
NO_CHANNEL = "no_channel"            # the gateway has no upstream channel for the model right now
CONTENT_REFUSED = "content_refused"  # the prompt or the images were refused
REFUSED = "refused"                  # an error in the gateway's own words that none of the above covers

# Error codes as the relays name them (new-api types/error.go, one-api relay/controller/helper.go,
# seermartech's error table, aihubmix / tokendog error code pages); lower-cased.
_CODES = {
    "invalid_token": BAD_TOKEN, "invalid_api_key": BAD_TOKEN, "api_key_invalid": BAD_TOKEN,
    "incorrect_api_key": BAD_TOKEN, "unauthorized": BAD_TOKEN, "50001": BAD_TOKEN,
    "insufficient_user_quota": NO_BALANCE, "pre_consume_token_quota_failed": NO_BALANCE,
    "insufficient_quota": NO_BALANCE, "insufficient_balance": NO_BALANCE, "budget_exceeded": NO_BALANCE,
    "50002": NO_BALANCE,
    "access_denied": NOT_ALLOWED, "model_not_allowed": NOT_ALLOWED,
    "rate_limit_exceeded": RATE_LIMITED, "rate_limited": RATE_LIMITED, "50003": RATE_LIMITED,
    "model_not_found": NO_CHANNEL, "get_channel_failed": NO_CHANNEL, "50004": NO_CHANNEL,
    "sensitive_words_detected": CONTENT_REFUSED, "prompt_blocked": CONTENT_REFUSED,
    "content_policy_violation": CONTENT_REFUSED,
}
# Words, checked in this order (the balance first: one-api's "该令牌额度已用尽" is a 401 about quota).
_WORDS = (
    (NO_BALANCE, ("余额不足", "额度不足", "额度已用尽", "已透支", "欠费", "充值", "insufficient balance",
                  "insufficient quota", "balance is insufficient", "quota is not enough", "not enough quota",
                  "quota exhausted", "out of credit", "insufficient credit", "recharge")),
    (CONTENT_REFUSED, ("敏感词", "sensitive word", "prompt blocked", "content policy", "违规")),
    (NO_CHANNEL, ("无可用渠道", "无可用通道", "no available channel", "渠道已被禁用", "channel has been disabled",
                  "incorrect model id")),
    (NOT_ALLOWED, ("无权使用模型", "无权访问", "指定网段", "ip 不在", "ip 地址", "approved ip", "not authorized to access",
                   "已被封禁", "account suspended", "not allowed to use")),
    (RATE_LIMITED, ("too many requests", "rate limit", "请求频率", "限流", "频率超")),
    (BAD_TOKEN, ("无效的令牌", "令牌验证失败", "未提供令牌", "令牌已过期", "令牌状态不可用", "invalid api key",
                 "invalid token", "token is invalid", "api key 无效", "incorrect api key", "invalid authorization")),
)
_BY_STATUS = {401: BAD_TOKEN, 402: NO_BALANCE, 403: NOT_ALLOWED, 429: RATE_LIMITED}
# The same answer would come again: such a refusal is not retried (the relay tried its channels already).
LASTING = frozenset({BAD_TOKEN, NO_BALANCE, NOT_ALLOWED, NO_CHANNEL, CONTENT_REFUSED})
# Codes that only mean "no error".
_OK_CODES = {"0", "200", "success", "ok", "true"}
MAX_WORDS = 300  # characters of a server's message shown


@dataclass(frozen=True)
class Words:
    message: str   # the server's message as a person reads it ("" when it said nothing readable)
    code: str      # the error code its body named ("insufficient_user_quota", "402", "50002"), or ""
    explicit: bool  # an error the server wrote itself, not a front server's page and not nothing
    page: bool = False  # an HTML page (a front server's: nginx, a CDN)
    plain: bool = False  # plain text: a relay's words, or a proxy's ("upstream connect error…")


def decode(raw: bytes) -> str:
    """A body as text: UTF-8 whatever the headers say (requests guesses ISO-8859-1 for text/* without a
    charset, which turns Chinese into mojibake)."""
    return raw.decode("utf-8", errors="replace")


def parse(raw: bytes) -> tuple[Any, str]:
    """(the JSON body or None, the body as text)."""
    text = decode(raw)
    try:
        return json.loads(text), text
    except ValueError:
        return None, text


def _clean(text: Any) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_WORDS else text[:MAX_WORDS - 1] + "…"


def _code(value: Any) -> str:
    if value is None or isinstance(value, bool) or value == "":
        return ""
    return str(value).strip()


def _first(*values: Any) -> str:
    return next((_clean(v) for v in values if isinstance(v, str) and v.strip()), "")


def fal_detail_text(detail: Any) -> str:
    """fal's ``detail`` (FastAPI): a string, or validation items ``{loc, msg, type}``."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(x) for x in item.get("loc", []) if x != "body")
                msg = item.get("msg", item)
                parts.append(f"{loc}: {msg}" if loc else str(msg))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    if isinstance(detail, dict):
        return json.dumps(detail, ensure_ascii=False)[:500]  # real characters, not \\uXXXX escapes
    return str(detail)


def words_of(body: Any, text: str) -> Words:
    """What a server's answer says, from its JSON body (None when it had none) and its text."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = _first(error.get("message"), error.get("msg"), error.get("detail"))
            code = _code(error.get("code")) or _code(body.get("code"))
            kind = _code(error.get("type"))
            if not code and kind and not kind.endswith(("_api_error", "upstream_error")) and kind != "error":
                code = kind  # e.g. OpenAI's "insufficient_quota" as a type
            return Words(message or _clean(json.dumps(error, ensure_ascii=False)), code, True)
        if isinstance(error, str) and error.strip():
            return Words(_clean(error), _code(body.get("code")), True)
        if "detail" in body and body["detail"] not in (None, "", [], {}):
            return Words(_clean(fal_detail_text(body["detail"])), _code(body.get("error_type")), True)
        message = _first(body.get("msg"), body.get("message"), body.get("status_message"), body.get("description"))
        code = _code(body.get("code")) or _code(body.get("status_code"))
        if code.lower() in _OK_CODES and body.get("success") is not False:
            code = ""
        if message or code:
            return Words(message, code, True)
        return Words(_clean(json.dumps(body, ensure_ascii=False)) if body else "", "", bool(body))
    if isinstance(body, str) and body.strip():
        return Words(_clean(body), "", True)
    if body is not None:
        return Words(_clean(json.dumps(body, ensure_ascii=False)), "", True)
    stripped = text.strip()
    if not stripped:
        return Words("", "", False)
    if "<html" in stripped[:500].lower() or "<!doctype" in stripped[:500].lower():
        title = re.search(r"(?is)<title[^>]*>(.*?)</title>", stripped) or re.search(r"(?is)<h1[^>]*>(.*?)</h1>", stripped)
        shown = html.unescape(re.sub(r"<[^>]+>", " ", title.group(1))) if title else "an HTML page"
        return Words(_clean(shown), "", False, page=True)
    return Words(_clean(stripped), "", True, plain=True)


def is_error_body(body: Any) -> bool:
    """A 2xx answer that is an error all the same (``{"code": 402, "msg": …}``, ``{"error": …}``,
    ``{"success": false}``), not a job or a status."""
    if not isinstance(body, dict):
        return False
    if body.get("error") not in (None, "", [], {}) and "status" not in body:
        return True
    if body.get("success") is False:
        return True
    code = _code(body.get("code")) or _code(body.get("status_code"))
    return bool(code) and code.lower() not in _OK_CODES and bool(_first(body.get("msg"), body.get("message"),
                                                                         body.get("status_message")))


def _status_of(code: str, status: int) -> int:
    """An HTTP-like code in the body (``{"code": 402}`` at HTTP 200) counts as the status."""
    return int(code) if code.isdigit() and 400 <= int(code) < 600 else status


def verdict(status: int, words: Words) -> str | None:
    """What the answer means for the person at the node; None when it is no error in anyone's words
    (a front server's page, an empty 5xx): then nobody can say whether the edit got through."""
    code = words.code.lower()
    if code in _CODES:
        return _CODES[code]
    if code.startswith("channel:"):
        return NO_CHANNEL  # new-api's channel errors: the gateway's upstream side
    said = words.message.lower()
    for name, phrases in _WORDS:
        if any(phrase in said for phrase in phrases):
            return name
    status = _status_of(code, status)
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if words.plain and status >= 500:
        return None  # a 5xx in plain words none of the above: as likely a proxy's as the relay's
    return REFUSED if words.explicit else None


def host_of(url: str) -> str:
    return urlsplit(url).netloc or url


def where_billed(mode: str, base_url: str = "") -> str:
    """Where a person looks to see whether a job was taken and billed."""
    if mode == "gateway":
        return f"the gateway's usage log at {host_of(base_url)}"
    return "your fal dashboard"


def advice(name: str | None, host: str, key_source: str = "", endpoint: str = "") -> str:
    """What to do about a gateway's answer, pointing at the gateway (never at fal's dashboard)."""
    token = f" (from {key_source})" if key_source else ""
    model = endpoint or "this model"
    return {
        BAD_TOKEN: f"It refused the key{token}: copy a valid token from the gateway's console at {host} into "
                   "FAL_GATEWAY_TOKEN, config.ini's [gateway] token or the fal panel's Keys (a fal key is not a "
                   "gateway token).",
        NO_BALANCE: f"Your balance (or this token's quota) at {host} is used up: top it up in the gateway's "
                    "console, or raise the token's quota there, then run the edit again.",
        NOT_ALLOWED: f"This token may not be used for {model} or from this machine's address: allow it in the "
                     f"token's settings in the gateway's console at {host} (its models, its IP range), or use a "
                     "token that may.",
        RATE_LIMITED: f"{host} is rate limiting this token: wait a little, or run fewer edits at once.",
        NO_CHANNEL: f"{host} has no working upstream channel for {model} right now (the gateway's side): try "
                    f"again later, or ask {host}'s support; check that it offers this model.",
        CONTENT_REFUSED: "The prompt or the images were refused for their content: change them and run again.",
        REFUSED: f"Its console or usage log at {host} may say more.",
    }.get(name or "", f"Its usage log at {host} says whether the edit reached fal.")

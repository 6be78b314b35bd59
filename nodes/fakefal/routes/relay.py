"""A stand-in of the relay software most resellers run (new-api / one-api) in front of the fake's queue.

Set ``server.relay = Relay(...)`` on a gateway-mode server: every call first meets the relay, which
answers as those programs do (docs/gateways.md has the sources), or hands the call on to the fake fal
behind it:

* its token check: 401 "无效的令牌" (one-api ``model.ValidateUserToken``), one-api's 401 "该令牌额度已用尽"
  for a token whose quota is used up;
* the token's IP range and models: 403 "该令牌只能在指定网段使用…" / "该令牌无权使用模型：…" (one-api
  ``middleware/auth.go``; new-api names the IP case ``access_denied``);
* its channels: 503 "分组 default 下模型 … 无可用渠道（distributor）", code ``model_not_found`` (new-api;
  one-api's "当前分组 default 下对于模型 … 无可用渠道");
* its rate limit: 429 "您已达到请求数限制：1分钟内最多请求N次" (new-api ``ModelRequestRateLimit``);
* sensitive words: 400 ``sensitive_words_detected``;
* the balance, pre-consumed on submit (refunded when fal refuses the request): 403
  ``insufficient_user_quota`` "用户余额不足,需要充值" (aihubmix's table); in ``style`` "code-msg" HTTP 200
  ``{"code": 402, "msg": "余额不足，请充值后再试", "data": null}``; in "status-code" seermartech's
  402 ``{"status_code": 50002, "status_message": "Insufficient balance"}``;
* its front server (nginx) down: ``front_down`` 502 with nginx's HTML page, before the relay, or after
  the relay forwarded the submit (``front_down_after_submit``: fal took the job, the answer is lost);
* the balance calls: ``GET /v1/dashboard/billing/subscription`` + ``/usage`` and new-api's
  ``/api/usage/token/``, those in ``balance_calls``; an unlimited token reports 1e8.

Messages end in the relay's own log id, "(request id: …)", as both programs write them, and the id is
also sent as ``X-Oneapi-Request-Id``: neither is a fal request id. Bodies are UTF-8 as Go writes them
(``escape_unicode`` writes ``\\uXXXX`` escapes instead, as Python's json does).
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field

from ..wire import Reply

QUOTA_PER_USD = 500_000  # new-api / one-api's default QuotaPerUnit
UNLIMITED = 100_000_000  # what both report for an unlimited token
NGINX_502 = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway"
             b"</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
BALANCE_PATHS = {"/v1/dashboard/billing/subscription": "subscription", "/dashboard/billing/subscription": "subscription",
                 "/v1/dashboard/billing/usage": "usage", "/dashboard/billing/usage": "usage",
                 "/api/usage/token/": "token_usage", "/api/usage/token": "token_usage"}
_ids = itertools.count(1)


@dataclass
class Relay:
    quota_usd: float = 10.0     # the token's total, remain + used
    used_usd: float = 0.0
    unlimited: bool = False
    price_usd: float = 0.03     # what one submit costs: pre-consumed when it is forwarded
    models: tuple[str, ...] | None = None     # the token's allowed models; None: any
    subnet: str | None = None   # the token's IP range; None: any ("10.0.0.0/8": not this machine)
    channels: tuple[str, ...] | None = None   # models the relay has an upstream channel for; None: any
    sensitive_words: tuple[str, ...] = ()
    rate_limit: int | None = None  # submits let through per run of the fake; past it, 429
    style: str = "new-api"      # "new-api", "one-api", "code-msg" (HTTP 200), "status-code" (seermartech)
    balance_calls: tuple[str, ...] = ("subscription", "usage", "token_usage")
    front_down: int | None = None  # nginx answers this code with its HTML page
    front_down_after_submit: bool = False  # ... only after the relay forwarded the submit
    escape_unicode: bool = False
    submits: int = 0            # submits that reached the relay (whatever it answered)
    balance_asked: list[str] = field(default_factory=list)  # every balance call, by name
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def remain_usd(self) -> float:
        return round(self.quota_usd - self.used_usd, 6)

    # -- replies ---------------------------------------------------------------------------------
    def _json(self, code: int, obj: dict, log_id: str) -> Reply:
        body = json.dumps(obj, ensure_ascii=self.escape_unicode).encode("utf-8")
        return Reply(code, body, "application/json; charset=utf-8", {"X-Oneapi-Request-Id": log_id} if log_id else {})

    def _error(self, code: int, message: str, error_code: str = "") -> Reply:
        log_id = f"2026{next(_ids):012d}relay"
        said = f"{message} (request id: {log_id})"
        if self.style == "one-api":
            return self._json(code, {"error": {"message": said, "type": "one_api_error", **(
                {"code": error_code} if error_code else {})}}, log_id)
        return self._json(code, {"error": {"message": said, "type": "new_api_error", "code": error_code}}, log_id)

    def _no_balance(self) -> Reply:
        if self.style == "code-msg":
            return self._json(200, {"code": 402, "msg": "余额不足，请充值后再试", "data": None}, "")
        if self.style == "status-code":
            return self._json(402, {"status_code": 50002, "status_message": "Insufficient balance"}, "")
        return self._error(403, "用户余额不足,需要充值", "insufficient_user_quota")

    # -- the relay's checks --------------------------------------------------------------------------
    def before(self, fake, method: str, path: str, headers, body: bytes, route: str | None) -> Reply | None:
        """The relay's answer to a call, or None to hand it on to fal behind it."""
        if self.front_down and not self.front_down_after_submit:
            return Reply(self.front_down, NGINX_502, "text/html")
        balance = BALANCE_PATHS.get(path) if method == "GET" else None
        if balance is None and route != "submit":
            return None  # status, result, cancel: the relay passes them through
        if not fake._queue_auth_ok(headers):
            return self._error(401, "无效的令牌")
        if balance is not None:
            return self._balance(balance)
        with self._lock:
            self.submits += 1
            if self.style == "one-api" and not self.unlimited and self.remain_usd <= 0:
                return self._error(401, "该令牌额度已用尽")
            if self.subnet:
                if self.style == "one-api":
                    return self._error(403, f"该令牌只能在指定网段使用：{self.subnet}，当前 ip：127.0.0.1")
                return self._error(403, "您的 IP 不在令牌允许访问的列表中", "access_denied")
            model = path.strip("/")
            if self.models is not None and model not in self.models:
                return self._error(403, f"该令牌无权使用模型：{model}")
            if self.channels is not None and model not in self.channels:
                if self.style == "one-api":
                    return self._error(503, f"当前分组 default 下对于模型 {model} 无可用渠道")
                return self._error(503, f"分组 default 下模型 {model} 无可用渠道（distributor）", "model_not_found")
            if self.rate_limit is not None and self.submits > self.rate_limit:
                return self._error(429, f"您已达到请求数限制：1分钟内最多请求{self.rate_limit}次")
            prompt = _prompt_of(body)
            if any(word in prompt for word in self.sensitive_words):
                return self._error(400, "sensitive words detected", "sensitive_words_detected")
            if not self.unlimited and self.remain_usd < self.price_usd:
                return self._no_balance()
            if not self.unlimited:
                self.used_usd = round(self.used_usd + self.price_usd, 6)  # pre-consumed, as new-api's task relay
        return None

    def after(self, reply: Reply) -> Reply:
        """fal's answer to a forwarded submit, as the relay hands it back."""
        if reply.code >= 400 and not self.unlimited:
            with self._lock:
                self.used_usd = round(max(self.used_usd - self.price_usd, 0.0), 6)  # refunded: fal refused it
        if self.front_down_after_submit and self.front_down:
            return Reply(self.front_down, NGINX_502, "text/html")  # fal took the job; its answer is lost
        return reply

    def _balance(self, name: str) -> Reply | None:
        if name not in self.balance_calls:
            return None  # not offered: the fake's 404
        with self._lock:
            self.balance_asked.append(name)
            total = UNLIMITED if self.unlimited else self.quota_usd
            used, remain = self.used_usd, self.remain_usd
        if name == "subscription":  # one-api / new-api controller/billing.go GetSubscription
            return self._json(200, {"object": "billing_subscription", "has_payment_method": True,
                                    "soft_limit_usd": total, "hard_limit_usd": total, "system_hard_limit_usd": total,
                                    "access_until": 0}, "")
        if name == "usage":  # GetUsage: the used quota in cents
            return self._json(200, {"object": "list", "total_usage": round(used * 100, 6)}, "")
        return self._json(200, {"code": True, "message": "ok", "data": {  # new-api controller/token.go GetTokenUsage
            "object": "token_usage", "name": "fal", "total_granted": round(self.quota_usd * QUOTA_PER_USD),
            "total_used": round(used * QUOTA_PER_USD), "total_available": round(remain * QUOTA_PER_USD),
            "unlimited_quota": self.unlimited, "model_limits": {}, "model_limits_enabled": False, "expires_at": 0}}, "")


def _prompt_of(body: bytes) -> str:
    try:
        value = json.loads(body or b"null")
    except ValueError:
        return ""
    return str(value.get("prompt", "")) if isinstance(value, dict) else ""

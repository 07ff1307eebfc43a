"""The built-in channels: e-mail over SMTP and the WeChat Work (企业微信), DingTalk (钉钉) and
Feishu (飞书) group robots, registered through ``register_notification_channels`` like any
plugin's. Each ``send`` raises :class:`DeliveryError` (or any exception) to be retried."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from flask_babel import lazy_gettext as _l

from ...specs import ChannelSpec
from .config import channel_setting, secret

#: The inbox is not a sending channel: every notification is stored there.
INBOX = "inbox"


class DeliveryError(RuntimeError):
    """A channel could not deliver; the delivery is tried again later."""


class PermanentDeliveryError(DeliveryError):
    """A delivery that can never succeed as things are (a user without an e-mail address);
    it is marked failed at once instead of being retried."""


@dataclass(frozen=True)
class Message:
    """What a channel sends: one notification for one recipient. ``url`` is absolute when
    the site address is set (Settings), else the path inside the CRM."""

    recipient: str
    email: str | None
    kind: str
    title: str
    body: str
    url: str | None


# --------------------------------------------------------------------------- e-mail


def email_configured() -> bool:
    return bool(channel_setting("smtp_host"))


def send_email(message: Message) -> None:
    """Send ``message`` to the recipient's address through the configured SMTP server."""
    if not message.email:
        raise PermanentDeliveryError(f"{message.recipient} has no e-mail address")
    text = message.body
    if message.url:
        text = f"{text}\n\n{message.url}" if text else message.url
    send_mail([message.email], message.title, text or message.title)


def send_mail(to: list[str], subject: str, text: str) -> None:
    """Send a plain-text e-mail (UTF-8) to the addresses ``to`` through the SMTP server set
    up under Notification channels; automation rules' e-mails go out this way too."""
    host = channel_setting("smtp_host")
    if not host:
        raise DeliveryError("SMTP host is not set (Notification channels)")
    mail = EmailMessage()
    mail["Subject"] = subject
    mail["From"] = channel_setting("smtp_sender") or channel_setting("smtp_user") or "crm@localhost"
    mail["To"] = ", ".join(to)
    mail.set_content(text)
    port = int(channel_setting("smtp_port") or 25)
    timeout = float(channel_setting("timeout") or 10)
    smtp_class = smtplib.SMTP_SSL if channel_setting("smtp_security") == "ssl" else smtplib.SMTP
    with smtp_class(host, port, timeout=timeout) as smtp:
        if channel_setting("smtp_security") == "starttls":
            smtp.starttls()
        user = channel_setting("smtp_user")
        if user:
            smtp.login(user, secret("smtp_password") or "")
        smtp.send_message(mail)


# --------------------------------------------------------------------------- robots


def _markdown(message: Message) -> str:
    lines = [f"**{message.title}**", "", f"> {message.recipient}"]
    if message.body:
        lines += ["", message.body]
    if message.url:
        lines += ["", f"[{message.url}]({message.url})"]
    return "\n".join(lines)


def _plain(message: Message) -> str:
    parts = [f"{message.title} ({message.recipient})", message.body, message.url or ""]
    return "\n".join(p for p in parts if p)


def post_json(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    """POST ``payload`` as UTF-8 JSON with the channels' short timeout; the answer's JSON.

    An HTTP error status, a network error or an answer that is not JSON raises."""
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json; charset=utf-8"}
    )
    timeout = float(channel_setting("timeout") or 10)
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - admin's URL
        answer = response.read().decode("utf-8") or "{}"
    try:
        parsed = json.loads(answer)
    except ValueError:
        raise DeliveryError(f"the robot answered with no JSON: {answer[:200]}") from None
    return parsed if isinstance(parsed, dict) else {}


def _check(answer: dict[str, Any], code_key: str) -> None:
    code = answer.get(code_key, answer.get("StatusCode", 0))
    if code not in (0, None):
        detail = answer.get("errmsg") or answer.get("msg") or answer.get("StatusMessage")
        raise DeliveryError(f"the robot refused the message: {code} {detail}")


def _robot_url(key: str) -> str:
    url = secret(key)
    if not url:
        raise DeliveryError(f"the robot's webhook address is not set ({key})")
    return url


def wecom_payload(message: Message) -> dict[str, Any]:
    """WeChat Work group robot: a markdown message."""
    return {"msgtype": "markdown", "markdown": {"content": _markdown(message)}}


def send_wecom(message: Message) -> None:
    _check(post_json(_robot_url("wecom_webhook"), wecom_payload(message)), "errcode")


def dingtalk_payload(message: Message) -> dict[str, Any]:
    """DingTalk group robot: a markdown message with a title."""
    return {"msgtype": "markdown", "markdown": {"title": message.title, "text": _markdown(message)}}


def dingtalk_sign(secret_text: str, timestamp: str) -> str:
    """DingTalk's signature of a signed robot: base64 HMAC-SHA256 of "timestamp\\nsecret"."""
    digest = hmac.new(
        secret_text.encode("utf-8"), f"{timestamp}\n{secret_text}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def dingtalk_url(url: str, secret_text: str | None, now: float | None = None) -> str:
    """The robot's address, with ``timestamp`` and ``sign`` added when it has a secret."""
    if not secret_text:
        return url
    timestamp = str(round((time.time() if now is None else now) * 1000))
    query = urllib.parse.urlencode(
        {"timestamp": timestamp, "sign": dingtalk_sign(secret_text, timestamp)}
    )
    return f"{url}{'&' if '?' in url else '?'}{query}"


def send_dingtalk(message: Message) -> None:
    url = dingtalk_url(_robot_url("dingtalk_webhook"), secret("dingtalk_secret"))
    _check(post_json(url, dingtalk_payload(message)), "errcode")


def feishu_payload(message: Message) -> dict[str, Any]:
    """Feishu group robot: a text message."""
    return {"msg_type": "text", "content": {"text": _plain(message)}}


def send_feishu(message: Message) -> None:
    _check(post_json(_robot_url("feishu_webhook"), feishu_payload(message)), "code")


def builtin_channels() -> list[ChannelSpec]:
    """The channels the core registers."""
    return [
        ChannelSpec("email", _l("E-mail"), send_email, email_configured),
        ChannelSpec(
            "wecom", _l("WeChat Work robot"), send_wecom, lambda: bool(secret("wecom_webhook"))
        ),
        ChannelSpec(
            "dingtalk",
            _l("DingTalk robot"),
            send_dingtalk,
            lambda: bool(secret("dingtalk_webhook")),
        ),
        ChannelSpec(
            "feishu", _l("Feishu robot"), send_feishu, lambda: bool(secret("feishu_webhook"))
        ),
    ]

"""Notifications: the inbox and its bell, preferences, e-mail through a real SMTP server,
robot messages to a real HTTP server, retries with back-off, and the admin's screens."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, update

from crm_core.db import session
from crm_core.events.dispatch import MAX_ATTEMPTS, dispatch_pending
from crm_core.events.models import EventDelivery
from crm_core.lowcode import bundle
from crm_core.testing.plugin import login_client, user_id
from crm_core.workflow.notifications.channels import dingtalk_sign
from crm_core.workflow.notifications.models import Notification, NotificationDelivery
from crm_core.workflow.notifications.notify import notify

# --------------------------------------------------------------------------- test servers


class _Robot(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length).decode("utf-8"))
        self.server.received.append((self.path, body))  # type: ignore[attr-defined]
        status = 500 if self.path.startswith("/fail") else 200
        answer = {"code": 0} if self.path.startswith("/feishu") else {"errcode": 0}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def robot() -> Iterator[Any]:
    """A local HTTP server that records every robot message; paths under /fail answer 500."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Robot)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.base = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    yield server
    server.shutdown()
    server.server_close()


# --------------------------------------------------------------------------- helpers


def _channels_form(**values: Any) -> dict[str, Any]:
    form = {
        "smtp_host": "",
        "smtp_port": "25",
        "smtp_security": "none",
        "smtp_user": "",
        "smtp_sender": "crm@example.cn",
        "site_url": "https://crm.example.cn",
        "timeout": "5",
        "approval:email": "on",  # the default ticks, as the screen shows them
        "assignment:email": "on",
    }
    form.update(values)
    return form


def _configure(admin_client: Any, **values: Any) -> Any:
    response = admin_client.post("/notification-channels/", data=_channels_form(**values))
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return response


def _notify(app: Any, username: str, title: str, **kwargs: Any) -> list[int]:
    with app.app_context():
        rows = notify(session(), [user_id(app, username)], title, **kwargs)
        session().commit()
        return [r.id for r in rows]


def _dispatch(app: Any) -> None:
    with app.app_context():
        dispatch_pending()


def _deliveries(app: Any) -> dict[str, NotificationDelivery]:
    with app.app_context():
        rows = session().scalars(select(NotificationDelivery)).all()
        session().expunge_all()
        return {row.channel: row for row in rows}


def _bell(page: str) -> str | None:
    marker = 'id="crm-unread-count">'
    if marker not in page:
        return None
    return page.split(marker, 1)[1].split("<", 1)[0]


# --------------------------------------------------------------------------- the inbox


def test_notify_shows_in_the_inbox_and_the_bell_until_read(app, rep_client):
    _notify(app, "Sales Rep", "新客户分配给你：上海华东精密机械有限公司", url="/customers/list/")
    _notify(app, "Sales Rep", "审批已通过", kind="approval")
    _notify(app, "Sales Manager", "只给经理看的通知")

    home = rep_client.get("/").get_data(as_text=True)
    assert _bell(home) == "2"
    page = rep_client.get("/notifications/").get_data(as_text=True)
    assert "新客户分配给你：上海华东精密机械有限公司" in page
    assert page.index("审批已通过") < page.index("新客户分配给你")  # newest first
    assert "只给经理看的通知" not in page

    with app.app_context():
        first = session().scalar(select(Notification).where(Notification.title.like("新客户%")))
        pk = first.id
    opened = rep_client.post(f"/notifications/{pk}/read", data={"open": "1"})
    assert opened.status_code == 302 and opened.headers["Location"].endswith("/customers/list/")
    assert _bell(rep_client.get("/").get_data(as_text=True)) == "1"

    rep_client.post("/notifications/read")
    assert _bell(rep_client.get("/").get_data(as_text=True)) is None
    manager = login_client(app, "Sales Manager")
    assert _bell(manager.get("/").get_data(as_text=True)) == "1"  # others' stay unread


def test_api_lists_the_callers_notifications_and_marks_them_read(app, rep_client):
    for n in range(35):
        _notify(app, "Sales Rep", f"提醒 {n}", kind="reminder")
    [other] = _notify(app, "Sales Manager", "经理的通知")

    first = rep_client.get("/api/v1/notification/").get_json()
    assert first["unread"] == 35 and len(first["result"]) == 30
    assert first["result"][0]["title"] == "提醒 34"
    rest = rep_client.get(f"/api/v1/notification/?before={first['next_before']}").get_json()
    assert [r["title"] for r in rest["result"]] == [f"提醒 {n}" for n in range(4, -1, -1)]
    assert rest["next_before"] is None

    pk = first["result"][0]["id"]
    answer = rep_client.post(f"/api/v1/notification/{pk}/read")
    assert answer.status_code == 200 and answer.get_json()["unread"] == 34
    assert rep_client.post(f"/api/v1/notification/{other}/read").status_code == 404
    unread = rep_client.get("/api/v1/notification/?unread=1").get_json()
    assert pk not in [r["id"] for r in unread["result"]]
    assert rep_client.post("/api/v1/notification/read").get_json()["marked"] == 34
    assert rep_client.get("/api/v1/notification/").get_json()["unread"] == 0


def test_notify_refuses_an_empty_title(app):
    from crm_core.errors import FieldError

    with app.app_context(), pytest.raises(FieldError) as refused:
        notify(session(), [user_id(app, "Sales Rep")], "  ")
    assert refused.value.messages == {"title": ["通知必须有标题。"]}


# --------------------------------------------------------------------------- channels


def test_approval_mail_reaches_the_smtp_server_in_chinese(app, admin_client, smtp):
    mailbox, port = smtp
    _configure(admin_client, smtp_host="127.0.0.1", smtp_port=str(port))
    _notify(
        app,
        "Sales Rep",
        "请审批：信用额度调整",
        body="深圳市前海云图科技有限公司申请把信用额度调到 ¥500,000。",
        url="/customers/list/",
        kind="approval",
    )
    _notify(app, "Sales Rep", "一般通知")  # info: inbox only by default
    _dispatch(app)

    assert len(mailbox.messages) == 1
    envelope = mailbox.messages[0]
    assert envelope.rcpt_tos == ["t_rep@example.cn"]
    mail = message_from_bytes(envelope.content, policy=policy.default)
    assert mail["To"] == "t_rep@example.cn"
    assert mail["Subject"] == "请审批：信用额度调整"
    text = mail.get_content()
    assert "深圳市前海云图科技有限公司申请把信用额度调到 ¥500,000。" in text
    assert "https://crm.example.cn/customers/list/" in text
    assert _deliveries(app)["email"].status == "done"


def test_robots_get_their_own_formats(app, admin_client, robot):
    response = admin_client.post(
        "/notification-channels/",
        data=_channels_form(
            wecom_webhook=f"{robot.base}/wecom?key=k1",
            dingtalk_webhook=f"{robot.base}/dingtalk?access_token=t1",
            dingtalk_secret="SEC-测试",
            feishu_webhook=f"{robot.base}/feishu/hook",
        ),
    )
    assert response.status_code == 302
    rep = login_client(app, "Sales Rep")
    saved = rep.post(
        "/notifications/settings/",
        data={"info:wecom": "on", "info:dingtalk": "on", "info:feishu": "on"},
    )
    assert saved.status_code == 302
    _notify(app, "Sales Rep", "新线索", body="来自展会的线索：王芳", url="/customers/list/")
    _dispatch(app)

    got = {urlsplit(path).path: (path, body) for path, body in robot.received}
    assert set(got) == {"/wecom", "/dingtalk", "/feishu/hook"}
    wecom = got["/wecom"][1]
    assert wecom["msgtype"] == "markdown"
    assert "新线索" in wecom["markdown"]["content"]
    assert "来自展会的线索：王芳" in wecom["markdown"]["content"]
    assert "https://crm.example.cn/customers/list/" in wecom["markdown"]["content"]
    ding_path, ding = got["/dingtalk"]
    assert ding["msgtype"] == "markdown" and ding["markdown"]["title"] == "新线索"
    assert "来自展会的线索：王芳" in ding["markdown"]["text"]
    query = parse_qs(urlsplit(ding_path).query)
    assert query["access_token"] == ["t1"]
    assert query["sign"] == [dingtalk_sign("SEC-测试", query["timestamp"][0])]
    feishu = got["/feishu/hook"][1]
    assert feishu["msg_type"] == "text"
    assert "新线索" in feishu["content"]["text"] and "王芳" in feishu["content"]["text"]
    assert {d.status for d in _deliveries(app).values()} == {"done"}


def test_a_failing_robot_is_retried_with_back_off_then_failed_and_shown(app, admin_client, robot):
    _configure(
        admin_client,
        wecom_webhook=f"{robot.base}/fail/wecom",
        feishu_webhook=f"{robot.base}/feishu/ok",
    )
    rep = login_client(app, "Sales Rep")
    rep.post("/notifications/settings/", data={"info:wecom": "on", "info:feishu": "on"})
    _notify(app, "Sales Rep", "客户升级为 VIP")
    _dispatch(app)

    first = _deliveries(app)
    assert first["feishu"].status == "done"
    assert (first["wecom"].status, first["wecom"].attempts) == ("pending", 1)
    assert "500" in (first["wecom"].last_error or "")
    with app.app_context():
        # the notifications' delivery of the event (other core handlers delivered theirs)
        event_delivery = session().scalar(
            select(EventDelivery).where(EventDelivery.status == "pending")
        )
        first_due = event_delivery.next_attempt_at
        assert first_due is not None and first_due > datetime.utcnow()  # noqa: DTZ003
    _dispatch(app)  # not due yet: nothing is tried
    assert _deliveries(app)["wecom"].attempts == 1

    for _ in range(MAX_ATTEMPTS - 1):
        with app.app_context():
            session().execute(update(EventDelivery).values(next_attempt_at=datetime(2000, 1, 1)))
            session().commit()
        _dispatch(app)
    final = _deliveries(app)
    assert (final["wecom"].status, final["wecom"].attempts) == ("failed", MAX_ATTEMPTS)
    assert final["feishu"].attempts == 1  # what was sent is never sent again
    paths = [urlsplit(p).path for p, _ in robot.received]
    assert paths.count("/fail/wecom") == MAX_ATTEMPTS and paths.count("/feishu/ok") == 1

    log = admin_client.get("/notification-deliveries/list/").get_data(as_text=True)
    assert "客户升级为 VIP" in log and "HTTP Error 500" in log
    assert rep.get("/notification-deliveries/list/").status_code in (302, 403, 404)


def test_preferences_decide_the_channels(app, admin_client, smtp):
    _mailbox, port = smtp
    _configure(admin_client, smtp_host="127.0.0.1", smtp_port=str(port))
    rep = login_client(app, "Sales Rep")
    page = rep.get("/notifications/settings/").get_data(as_text=True)
    assert 'name="approval:email" checked' in page  # the default for approvals
    assert 'name="info:email" checked' not in page
    rep.post("/notifications/settings/", data={"info:email": "on"})  # and no approval mail
    _notify(app, "Sales Rep", "审批通知", kind="approval")
    _notify(app, "Sales Rep", "普通通知", kind="info")
    _notify(app, "Sales Manager", "经理的审批", kind="approval")  # keeps the default
    with app.app_context():
        rows = session().scalars(select(NotificationDelivery)).all()
        sent = sorted((r.notification.title, r.channel) for r in rows)
    assert sent == [("普通通知", "email"), ("经理的审批", "email")]


# --------------------------------------------------------------------------- admin


def test_secrets_are_never_shown_or_exported(app, admin_client):
    _configure(admin_client, smtp_host="mail.example.cn", smtp_password="口令-s3cret")
    page = admin_client.get("/notification-channels/").get_data(as_text=True)
    assert "口令-s3cret" not in page and "mail.example.cn" in page
    assert "口令-s3cret" not in admin_client.get("/settings/").get_data(as_text=True)
    with app.app_context():
        exported = bundle.dump(bundle.export(session()))
    assert "口令-s3cret" not in exported and "mail.example.cn" in exported
    _configure(admin_client, smtp_host="mail.example.cn")  # an empty box keeps it
    from crm_core.workflow.notifications.config import secret

    with app.app_context():
        assert secret("smtp_password") == "口令-s3cret"


def test_bad_channel_settings_are_refused_naming_the_field(app, admin_client):
    response = admin_client.post(
        "/notification-channels/",
        data=_channels_form(smtp_port="abc", feishu_webhook="ftp://x"),
    )
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "SMTP" in text and "ftp://x" not in text
    with app.app_context():
        from crm_core.workflow.notifications.config import secret

        assert secret("feishu_webhook") is None


def test_site_defaults_travel_in_a_bundle(app, admin_client, robot):
    ticks = {"reminder:feishu": "on", "approval:email": ""}
    _configure(admin_client, feishu_webhook=f"{robot.base}/feishu/x", **ticks)
    with app.app_context():
        data = bundle.export(session())
    assert data["notification_defaults"]["reminder"] == ["feishu"]
    assert data["notification_defaults"]["approval"] == []  # the admin unticked e-mail
    _configure(admin_client, **{"approval:email": "on"})
    with app.app_context():
        changes = bundle.apply(session(), data)
        session().commit()
        assert any("notification_defaults.approval" in c for c in changes)
        assert bundle.export(session())["notification_defaults"] == data["notification_defaults"]
        data["notification_defaults"]["info"] = ["pigeon"]
        with pytest.raises(bundle.BundleError, match="pigeon"):
            bundle.apply(session(), data)


def test_pages_read_in_chinese(app, admin_client):
    from test_translations import untranslated

    _notify(app, "Admin", "新客户分配给你")
    names = [v["name"] for v in app.config["LANGUAGES"].values()]
    pages = {
        "/notifications/": (admin_client.get("/notifications/"), ["收件箱", "新客户分配给你"]),
        "/notifications/settings/": (
            admin_client.get("/notifications/settings/"),
            ["通知设置", "审批"],
        ),
        "/notification-channels/": (admin_client.get("/notification-channels/"), ["保存"]),
        "/notification-deliveries/list/": (
            admin_client.get("/notification-deliveries/list/"),
            [],
        ),
    }
    problems = untranslated(pages, names)
    assert not problems, "\n".join(problems)

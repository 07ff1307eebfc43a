"""Login protection as users and admins meet it: locked accounts, blocked addresses, the Login
security screen, the audit trail, the password policy and the security headers."""

from __future__ import annotations

import re
from datetime import timedelta

from click.testing import CliRunner
from flask import Flask
from flask.cli import ScriptInfo
from sqlalchemy import select, update

from crm_core.cli import main
from crm_core.db import session, utcnow
from crm_core.jobs.runner import run_job
from crm_core.security import headers
from crm_core.security.audit import AuditLog
from crm_core.security.lockout import IP_LIMIT, LOCK_AFTER
from crm_core.security.login_models import LoginFailure, LoginLock
from crm_core.settings.store import set_setting
from crm_core.testing.plugin import PASSWORD, ROLE_USERS, user_id

READER = ROLE_USERS["Read-only"]
WRONG = "Wrong-pass-9"
LOCKED_ZH = "该账户已被锁定"
LOCKED_EN = "this account is locked"
INVALID_ZH = "用户名或密码错误"
NETWORK_ZH = "来自您网络的登录失败次数过多"


def _login(client, username: str, password: str, ip: str = "127.0.0.1"):  # type: ignore[no-untyped-def]
    """Post the login form; returns (logged in?, the page the user sees next)."""
    response = client.post(
        "/login/",
        data={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": ip},
    )
    assert response.status_code == 302, response.status_code
    logged_in = "/login" not in response.headers["Location"]
    page = client.get(response.headers["Location"], environ_base={"REMOTE_ADDR": ip})
    if logged_in:
        client.get("/logout/")
    return logged_in, page.get_data(as_text=True)


def _api_login(client, username: str, password: str, ip: str = "127.0.0.1"):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/v1/security/login",
        json={"username": username, "password": password, "provider": "db"},
        environ_base={"REMOTE_ADDR": ip},
    )


def _fail(client, username: str, times: int) -> str:  # type: ignore[no-untyped-def]
    page = ""
    for _ in range(times):
        ok, page = _login(client, username, WRONG)
        assert not ok
    return page


def _set(app: Flask, key: str, value: int) -> None:
    with app.app_context():
        set_setting(key, value)
        session().commit()


def _audit(app: Flask, operation: str) -> list[AuditLog]:
    with app.app_context():
        rows = session().scalars(select(AuditLog).where(AuditLog.operation == operation)).all()
        session().expunge_all()
        return list(rows)


def _lock_id(app: Flask, account: str) -> int:
    with app.app_context():
        return int(session().scalar(select(LoginLock.id).where(LoginLock.account == account)))


def test_ten_wrong_passwords_lock_the_account_even_for_the_right_password(app):
    client = app.test_client()
    page = _fail(client, READER, 9)
    assert INVALID_ZH in page and LOCKED_ZH not in page
    page = _fail(client, READER, 1)  # the tenth
    assert LOCKED_ZH in page and "30" in page
    ok, page = _login(client, READER, PASSWORD)
    assert not ok
    assert LOCKED_ZH in page
    client.get("/lang/en")
    ok, page = _login(client, READER, PASSWORD)
    assert not ok and LOCKED_EN in page
    # Other accounts are not affected.
    assert _login(app.test_client(), ROLE_USERS["Sales Rep"], PASSWORD)[0]


def test_the_right_password_before_the_tenth_starts_the_count_again(app):
    client = app.test_client()
    _fail(client, READER, 9)
    assert _login(client, READER, PASSWORD)[0]
    page = _fail(client, READER, 9)
    assert LOCKED_ZH not in page
    assert _login(client, READER, PASSWORD)[0]


def test_unknown_names_get_the_same_answers_as_real_accounts(app):
    client = app.test_client()
    _ok, known = _login(client, READER, WRONG)
    _ok, unknown = _login(client, "no_such_user", WRONG)
    assert INVALID_ZH in known and INVALID_ZH in unknown
    page = _fail(client, "no_such_user", 9)
    assert LOCKED_ZH in page  # no difference that would tell which names exist
    assert _audit(app, "lock") == []  # only real accounts are in the audit trail


def test_jwt_login_is_locked_too(app):
    client = app.test_client()
    for _ in range(10):
        response = _api_login(client, READER, WRONG)
        assert response.status_code == 401
    assert LOCKED_ZH in response.get_json()["message"]  # the tenth locks
    refused = _api_login(client, READER, PASSWORD)
    assert refused.status_code == 401
    assert LOCKED_ZH in refused.get_json()["message"]
    assert "access_token" not in refused.get_json()
    # The form and the API share the count: the form is locked as well.
    assert not _login(client, READER, PASSWORD)[0]


def test_lock_is_audited_and_listed_and_an_admin_unlocks(app, admin_client):
    reader = user_id(app, "Read-only")
    _fail(app.test_client(), READER, 10)
    [entry] = _audit(app, "lock")
    assert (entry.model, entry.record_id, entry.channel, entry.ip) == (
        "user",
        reader,
        "web",
        "127.0.0.1",
    )
    assert entry.user_id is None  # nobody was signed in: the guesses locked it
    assert entry.changes["failures"] == [None, 10]
    assert entry.changes["locked_until"][1]

    screen = admin_client.get("/loginsecurity/list/").get_data(as_text=True)
    assert READER in screen and "登录安全" in screen and "锁定至" in screen
    assert "label-danger" in screen  # the lock is shown as running
    trail = admin_client.get("/auditlog/list/").get_data(as_text=True)
    assert "账户锁定" in trail

    pk = _lock_id(app, READER)
    done = admin_client.post(
        "/loginsecurity/action_post",
        data={"action": "unlock", "rowid": [str(pk)]},
        follow_redirects=True,
    )
    assert done.status_code == 200
    assert "已解锁账户：1" in done.get_data(as_text=True)
    [unlocked] = _audit(app, "unlock")
    assert (unlocked.record_id, unlocked.user_id, unlocked.username, unlocked.channel) == (
        reader,
        user_id(app, "Admin"),
        ROLE_USERS["Admin"],
        "web",
    )
    assert unlocked.changes["failures"] == [10, None]
    assert _login(app.test_client(), READER, PASSWORD)[0]
    assert "账户解锁" in admin_client.get("/auditlog/list/").get_data(as_text=True)


def test_only_admins_unlock(app, rep_client):
    _fail(app.test_client(), READER, 10)
    assert rep_client.get("/loginsecurity/list/").status_code in (302, 403)
    rep_client.post(
        "/loginsecurity/action_post",
        data={"action": "unlock", "rowid": [str(_lock_id(app, READER))]},
    )
    assert not _login(app.test_client(), READER, PASSWORD)[0]
    assert _audit(app, "unlock") == []


def test_lock_ends_after_its_time(app):
    client = app.test_client()
    _fail(client, READER, 10)
    assert not _login(client, READER, PASSWORD)[0]
    with app.app_context():
        session().execute(update(LoginLock).values(locked_until=utcnow() - timedelta(seconds=1)))
        session().commit()
    assert _login(client, READER, PASSWORD)[0]
    page = _fail(client, READER, 1)  # a fresh count after the lock
    assert INVALID_ZH in page and LOCKED_ZH not in page


def test_lock_threshold_is_a_setting(app):
    _set(app, LOCK_AFTER, 3)
    page = _fail(app.test_client(), READER, 3)
    assert LOCKED_ZH in page


def test_many_failures_from_one_address_block_it_for_every_name(app):
    _set(app, IP_LIMIT, 5)
    client = app.test_client()
    for name in ("zhangsan", "lisi", "wangwu", ROLE_USERS["Sales Rep"], "admin"):
        assert not _login(client, name, WRONG)[0]
    ok, page = _login(client, READER, PASSWORD)  # right password, never tried before
    assert not ok and NETWORK_ZH in page
    api = _api_login(client, READER, PASSWORD)
    assert api.status_code == 429
    assert int(api.headers["Retry-After"]) > 0
    # Another address is not affected.
    assert _login(app.test_client(), READER, PASSWORD, ip="10.1.2.3")[0]
    # The block lifts once the failures are older than the window.
    with app.app_context():
        session().execute(update(LoginFailure).values(occurred_at=utcnow() - timedelta(minutes=16)))
        session().commit()
    assert _login(client, READER, PASSWORD)[0]


def test_the_cleanup_job_forgets_old_failures_and_keeps_running_locks(app):
    client = app.test_client()
    _fail(client, READER, 10)
    _fail(client, "no_such_user", 2)
    with app.app_context():
        old = utcnow() - timedelta(days=2)
        session().execute(update(LoginFailure).values(occurred_at=old))
        session().execute(update(LoginLock).values(last_failure_at=old))
        session().commit()
        run = run_job("core.prune_login_failures")
        assert run is not None and run.outcome == "ok"
        assert run.counts == {"failures": 12, "accounts": 1}
        assert session().scalars(select(LoginLock.account)).all() == [READER]
    assert not _login(client, READER, PASSWORD)[0]  # still locked


def test_strange_input_never_breaks_the_login(app):
    client = app.test_client()
    for name in ("x" * 500, "王芳' OR 1=1 --", " ", "a\u0000b"):
        response = client.post("/login/", data={"username": name, "password": WRONG})
        assert response.status_code in (200, 302)
        api = _api_login(client, name, WRONG)
        assert api.status_code in (400, 401)


def test_cli_unlocks_an_account(app):
    _fail(app.test_client(), READER, 10)
    result = CliRunner().invoke(
        main, ["users", "unlock", READER], obj=ScriptInfo(create_app=lambda: app)
    )
    assert result.exit_code == 0, result.output
    assert "unlocked" in result.output
    [entry] = _audit(app, "unlock")
    assert (entry.channel, entry.user_id) == ("cli", None)
    assert _login(app.test_client(), READER, PASSWORD)[0]
    again = CliRunner().invoke(
        main, ["users", "unlock", READER], obj=ScriptInfo(create_app=lambda: app)
    )
    assert again.exit_code == 0 and "not locked" in again.output


# -- the password policy ---------------------------------------------------------------------


def _add_user(client, username: str, password: str):  # type: ignore[no-untyped-def]
    with client.application.app_context():
        role = client.application.appbuilder.sm.find_role("Read-only")
        role_id = str(role.id)
    return client.post(
        "/users/add",
        data={
            "first_name": "Lei",
            "last_name": "Li",
            "username": username,
            "active": "y",
            "email": f"{username}@example.cn",
            "roles": [role_id],
            "password": password,
            "conf_password": password,
        },
    )


def _user_exists(app: Flask, username: str) -> bool:
    with app.app_context():
        return app.appbuilder.sm.find_user(username=username) is not None


def _field_error(page: str) -> str:
    """The error shown under the password field (before the confirmation field)."""
    field = page.split('name="password"', 1)[1].split('name="conf_password"', 1)[0]
    match = re.search(r'<div class="alert alert-danger">(.*?)</div>', field, re.S)
    assert match, "no error under the password field"
    return match.group(1).strip()


def test_weak_passwords_are_refused_on_the_add_user_screen(app, admin_client):
    for password, zh in (
        ("short1a", "密码至少需要 10 个字符"),
        ("onlyletterspassword", "密码必须同时包含字母和数字"),
        ("12345678901", "密码必须同时包含字母和数字"),
        ("lilei2026ab", "密码不能与用户名相同"),
    ):
        response = _add_user(admin_client, "lilei2026ab", password)
        assert response.status_code == 200, password
        assert zh in _field_error(response.get_data(as_text=True)), password
        assert not _user_exists(app, "lilei2026ab")
    admin_client.get("/lang/en")
    page = _add_user(admin_client, "lilei2026ab", "short1a").get_data(as_text=True)
    assert "The password must have at least 10 characters." in _field_error(page)
    good = _add_user(admin_client, "lilei2026ab", "Spring-rain-2026")
    assert good.status_code == 302
    assert _user_exists(app, "lilei2026ab")


def test_password_reset_screens_apply_the_policy(app, admin_client):
    reader = user_id(app, "Read-only")
    weak = admin_client.post(
        f"/resetpassword/form?pk={reader}",
        data={"password": READER, "conf_password": READER},
    )
    assert weak.status_code == 200
    assert "密码" in _field_error(weak.get_data(as_text=True))
    mine = admin_client.post(
        "/resetmypassword/form", data={"password": "abc", "conf_password": "abc"}
    )
    assert "密码至少需要 10 个字符" in _field_error(mine.get_data(as_text=True))
    form = admin_client.get("/resetmypassword/form").get_data(as_text=True)
    assert "至少 10 个字符" in form  # the policy is stated beside the field
    ok = admin_client.post(
        f"/resetpassword/form?pk={reader}",
        data={"password": "New-pass-2026", "conf_password": "New-pass-2026"},
    )
    assert ok.status_code == 302
    assert _login(app.test_client(), READER, "New-pass-2026")[0]
    with app.app_context():  # the fixture user keeps its documented password
        app.appbuilder.sm.reset_password(reader, PASSWORD)


def test_minimum_length_is_a_setting(app, admin_client):
    _set(app, "security.password_min_length", 14)
    page = _add_user(admin_client, "hanmeimei", "Abcdefgh1234").get_data(as_text=True)
    assert "密码至少需要 14 个字符" in _field_error(page)


def test_cli_create_applies_the_policy_and_generates_good_passwords(app):
    def crm(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))

    weak = crm("users", "create", "zhaoliu", "--email", "zl@example.cn", "--password", "zhaoliu")
    assert weak.exit_code != 0
    assert not _user_exists(app, "zhaoliu")
    made = crm("users", "create", "zhaoliu", "--email", "zl@example.cn", "--role", "Read-only")
    assert made.exit_code == 0, made.output
    generated = made.output.split(" / ")[1].split(" ")[0]
    assert len(generated) >= 10
    assert _login(app.test_client(), "zhaoliu", generated)[0]


# -- headers and cookies ---------------------------------------------------------------------


def test_pages_and_api_answers_carry_the_security_headers(app, admin_client):
    page = app.test_client().get("/login/")
    api = admin_client.get("/api/v1/customer/")
    assert api.status_code == 200
    for response in (page, api):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert "camera=()" in response.headers["Permissions-Policy"]
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    # The page's inline scripts carry the nonce its policy allows.
    nonce = re.search(r"'nonce-([^']+)'", page.headers["Content-Security-Policy"])
    assert nonce and f'nonce="{nonce.group(1)}"' in page.get_data(as_text=True)
    other = app.test_client().get("/login/").headers["Content-Security-Policy"]
    assert nonce.group(0) not in other  # a new nonce per response


def test_session_cookie_is_http_only_and_same_site(app):
    client = app.test_client()
    response = client.post("/login/", data={"username": READER, "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie
    assert "Strict-Transport-Security" not in response.headers


def test_behind_https_cookies_are_secure_and_hsts_is_sent():
    site = Flask("https_site")
    site.config.update(SECRET_KEY="x", CRM_HTTPS=True)
    headers.install(site)

    @site.route("/")
    def index() -> str:
        from flask import session as cookie_session

        cookie_session["seen"] = True
        return "ok"

    response = site.test_client().get("/")
    assert "Secure" in response.headers["Set-Cookie"]
    assert "HttpOnly" in response.headers["Set-Cookie"]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_security_screens_speak_chinese(app, admin_client):
    from test_translations import untranslated

    _fail(app.test_client(), READER, 10)
    names = [v["name"] for v in app.config["LANGUAGES"].values()]
    with app.app_context():  # roles admins made are shown as they named them
        names += [r.name for r in app.appbuilder.sm.get_all_roles() if str(r) == r.name]
    pages = {
        "/loginsecurity/list/": ["登录安全", "账户名", "连续输错密码次数", "锁定至"],
        f"/loginsecurity/show/{_lock_id(app, READER)}": ["来源 IP 地址", "锁定时间"],
        "/apikeys/list/": ["API 密钥", "最近使用时间"],
        "/apikeys/add": ["密钥名称", "有效天数"],
        "/users/add": ["密码", "同时包含字母和数字"],
        "/resetmypassword/form": ["密码", "至少 10 个字符"],
        "/settings/": ["连续输错密码多少次后锁定账户", "密码最短长度"],
        "/recordrules/list/": ["数据权限", "可查看", "可修改", "本人的记录", "全部记录"],
        "/recordrules/add": ["记录类型", "可查看公海", "其他所有记录类型"],
    }
    problems = untranslated(
        {url: (admin_client.get(url), words) for url, words in pages.items()}, names
    )
    assert not problems, "\n".join(problems)


def test_jwt_access_tokens_expire_and_refresh_tokens_renew_them(app, monkeypatch):
    from datetime import timedelta

    client = app.test_client()
    login = {"username": "t_rep", "password": "Test-pass-1", "provider": "db", "refresh": True}
    monkeypatch.setitem(app.config, "JWT_ACCESS_TOKEN_EXPIRES", timedelta(seconds=-1))
    tokens = client.post("/api/v1/security/login", json=login).get_json()
    expired = client.get(
        "/api/v1/customer/", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert expired.status_code == 401
    monkeypatch.setitem(app.config, "JWT_ACCESS_TOKEN_EXPIRES", timedelta(minutes=15))
    renewed = client.post(
        "/api/v1/security/refresh",
        headers={"Authorization": f"Bearer {tokens['refresh_token']}"},
    )
    assert renewed.status_code == 200
    fresh = renewed.get_json()["access_token"]
    listed = client.get("/api/v1/customer/", headers={"Authorization": f"Bearer {fresh}"})
    assert listed.status_code == 200
    # A refresh token is not an access token.
    wrong = client.get(
        "/api/v1/customer/", headers={"Authorization": f"Bearer {tokens['refresh_token']}"}
    )
    assert wrong.status_code in (401, 422)
    assert "Traceback" not in wrong.get_data(as_text=True)
    # A deactivated user's renewed token opens nothing.
    with app.app_context():
        user = app.appbuilder.sm.find_user(username="t_rep")
        user.active = False
        session().commit()
    try:
        again = client.post(
            "/api/v1/security/refresh",
            headers={"Authorization": f"Bearer {tokens['refresh_token']}"},
        ).get_json()
        token = again.get("access_token") if again else None
        if token:
            blocked = client.get("/api/v1/customer/", headers={"Authorization": f"Bearer {token}"})
            assert blocked.status_code == 401
    finally:
        with app.app_context():
            user = app.appbuilder.sm.find_user(username="t_rep")
            user.active = True
            session().commit()

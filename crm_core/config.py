"""Defaults and settings from the environment.

Every value can be overridden by the ``config`` mapping given to :func:`crm_core.create_app`;
environment variables (``CRM_*``) override the defaults.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from .security.passwords import validate_password

PACKAGE_DIR = Path(__file__).resolve().parent


def _instance_dir() -> Path:
    path = Path(os.environ.get("CRM_INSTANCE_DIR", Path.cwd() / "instance"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _secret_key(instance: Path) -> str:
    """A stable secret per instance: taken from the environment or created once on disk."""
    if os.environ.get("CRM_SECRET_KEY"):
        return os.environ["CRM_SECRET_KEY"]
    key_file = instance / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def default_config() -> dict[str, Any]:
    """The configuration an app gets before the caller's overrides."""
    instance = _instance_dir()
    database_url = os.environ.get("CRM_DATABASE_URL") or f"sqlite:///{instance / 'crm.db'}"
    return {
        "APP_NAME": "CRM",
        "SECRET_KEY": _secret_key(instance),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        "CRM_INSTANCE_DIR": str(instance),
        # Files the CRM keeps (uploaded import files, attachments); part of every backup.
        "CRM_FILES_DIR": os.environ.get("CRM_FILES_DIR", str(instance / "files")),
        "CRM_HOOKS_DIR": os.environ.get("CRM_HOOKS_DIR", str(Path.cwd() / "hooks")),
        "CRM_PLUGINS": os.environ.get("CRM_PLUGINS"),
        "CRM_STRICT_PLUGINS": os.environ.get("CRM_STRICT_PLUGINS", "") == "1",
        "CRM_PAGE_SIZE": 25,
        # Rows an import writes per transaction (its checkpoint).
        "CRM_IMPORT_BATCH": int(os.environ.get("CRM_IMPORT_BATCH", "1000")),
        # Flask-AppBuilder
        "AUTH_TYPE": 1,  # AUTH_DB
        "AUTH_ROLE_ADMIN": "Admin",
        "AUTH_ROLE_PUBLIC": "Public",
        "FAB_UPDATE_PERMS": False,  # permissions are synced by `crm upgrade`, never by workers
        "FAB_CREATE_DB": False,  # tables come from Alembic migrations only
        "FAB_API_SWAGGER_UI": True,
        "FAB_ADD_SECURITY_API": False,
        "FAB_API_MAX_PAGE_SIZE": 100,
        "FAB_BASE_TEMPLATE": "crm/base.html",
        "FAB_INDEX_VIEW": "crm_core.web.home.HomeView",
        "FAB_MENU": "crm_core.web.menu.CrmMenu",
        "FAB_SECURITY_MANAGER_CLASS": "crm_core.security.manager.CrmSecurityManager",
        "FAB_ADD_OPENAPI_VIEWS": False,  # replaced by crm_core.web.openapi
        "BABEL_DEFAULT_LOCALE": os.environ.get("CRM_DEFAULT_LOCALE", "zh_CN"),
        "BABEL_TRANSLATION_DIRECTORIES": str(PACKAGE_DIR / "translations"),
        "LANGUAGES": {
            "zh_CN": {"flag": "cn", "name": "中文"},
            "en": {"flag": "gb", "name": "English"},
        },
        "WTF_CSRF_ENABLED": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # Behind HTTPS (CRM_HTTPS=1): cookies over HTTPS only, and HSTS (crm_core.security.headers).
        "CRM_HTTPS": os.environ.get("CRM_HTTPS", "") == "1",
        # Keys of encrypted custom fields, current first (crm_core.security.keyring).
        "CRM_ENCRYPTION_KEYS": os.environ.get("CRM_ENCRYPTION_KEYS"),
        # The password policy of Flask-AppBuilder's user and password forms.
        "FAB_PASSWORD_COMPLEXITY_ENABLED": True,
        "FAB_PASSWORD_COMPLEXITY_VALIDATOR": validate_password,
        # API keys of integrations (crm_core.security.api_keys), on every REST API.
        "FAB_API_KEY_ENABLED": True,
        # JWTs of POST /api/v1/security/login: short-lived access tokens, renewed with the
        # refresh token (login with "refresh": true) at POST /api/v1/security/refresh.
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(
            minutes=int(os.environ.get("CRM_JWT_ACCESS_MINUTES", "15"))
        ),
        "JWT_REFRESH_TOKEN_EXPIRES": timedelta(
            days=int(os.environ.get("CRM_JWT_REFRESH_DAYS", "7"))
        ),
        "JSON_AS_ASCII": False,
    }

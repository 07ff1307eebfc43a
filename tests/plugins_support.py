"""Test plugins as real distributions: built as wheels, pip-installed for the session, and a
``crm`` command line that runs in a process of its own against a test database.

The plugins' sources live in ``tests/plugins/``; that folder is never put on ``sys.path``, so a
plugin imported here comes from site-packages, as it would for a user.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import ScriptInfo
from flask.testing import FlaskClient
from packaging.version import Version
from sqlalchemy import Engine

from crm_core.cli import main
from crm_core.cli.db import upgrade_all
from crm_core.cli.users import ensure_user
from crm_core.plugins import lifecycle
from crm_core.testing.databases import backend_url, drop
from crm_core.testing.plugin import PASSWORD, login_client, make_test_app

PLUGIN_SOURCES = Path(__file__).resolve().parent / "plugins"
#: Source folders (and package names) of the plugins built as wheels.
WHEEL_PLUGINS = ("crm_testplugin", "crm_brokenplugin")
SITE_HOOKS = PLUGIN_SOURCES / "site_hooks"
CRM = Path(sys.executable).with_name("crm")


def _pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")


def _offline_build_flags() -> list[str]:
    """Build with this environment's setuptools when it can make wheels (setuptools 70.1 has
    ``bdist_wheel`` built in, older ones need the ``wheel`` package); otherwise let pip fetch
    the build requirements."""
    try:
        modern = Version(importlib.metadata.version("setuptools")) >= Version("70.1")
    except importlib.metadata.PackageNotFoundError:
        return []
    if modern or importlib.util.find_spec("wheel") is not None:
        return ["--no-build-isolation"]
    return []


def _site_packages(prefix: Path) -> Path:
    """The ``site-packages`` folder that ``pip install --prefix`` fills for this interpreter."""
    scheme = "posix_prefix" if os.name == "posix" else "nt"
    vars_ = {"base": str(prefix), "platbase": str(prefix)}
    return Path(sysconfig.get_path("purelib", scheme, vars=vars_))


@pytest.fixture(scope="session")
def plugin_wheels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Build every test plugin as a wheel and pip-install the wheels for this session.

    They go into a ``site-packages`` folder of the session's own, added to ``sys.path`` here
    and to ``PYTHONPATH`` for the ``crm`` processes, and gone when the session ends: another
    test run or a developer's ``crm`` in the same virtualenv never sees them, and a run that is
    killed leaves nothing installed. Yields that ``site-packages`` folder.
    """
    work = tmp_path_factory.mktemp("plugin_wheels")
    sources = []
    for folder in WHEEL_PLUGINS:
        # Built from a copy: setuptools writes build/ and *.egg-info next to the sources.
        target = work / "src" / folder
        shutil.copytree(
            PLUGIN_SOURCES / folder,
            target,
            ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"),
        )
        sources.append(str(target))
    out = work / "dist"
    _pip("wheel", "--no-deps", *_offline_build_flags(), "-w", str(out), *sources)
    wheels = sorted(str(w) for w in out.glob("*.whl"))
    assert len(wheels) == len(WHEEL_PLUGINS), wheels
    prefix = work / "env"
    # --ignore-installed: a copy in the virtualenv (left by an older run) must not stop this one.
    _pip(
        "install", "--no-deps", "--no-index", "--ignore-installed", "--prefix", str(prefix), *wheels
    )
    site_packages = _site_packages(prefix)
    assert (site_packages / "crm_testplugin").is_dir(), f"nothing installed in {site_packages}"
    sys.path.insert(0, str(site_packages))  # first, as PYTHONPATH puts it for the processes
    importlib.invalidate_caches()
    try:
        yield site_packages
    finally:
        sys.path.remove(str(site_packages))
        for name in [m for m in sys.modules if m.split(".")[0] in WHEEL_PLUGINS]:
            del sys.modules[name]
        importlib.invalidate_caches()


@dataclass
class CrmCli:
    """The ``crm`` command, run as a separate process on one test database."""

    database_url: str
    workdir: Path
    plugins: str
    site_packages: Path
    hooks_dir: Path | None = None
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "FLASK_"))}
        env.update(
            PYTHONPATH=os.pathsep.join(
                p for p in (str(self.site_packages), env.get("PYTHONPATH")) if p
            ),
            CRM_DATABASE_URL=self.database_url,
            CRM_INSTANCE_DIR=str(self.workdir / "instance"),
            CRM_HOOKS_DIR=str(self.hooks_dir or self.workdir / "no-hooks"),
            CRM_PLUGINS=self.plugins,
            CRM_SECRET_KEY="test-secret",
            COLUMNS="200",
        )
        self.env = env

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``crm *args``; returns the finished process whatever its exit code."""
        return subprocess.run(
            [str(CRM), *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def __call__(self, *args: str) -> str:
        """Run ``crm *args``, assert that it succeeded, and return what it printed."""
        result = self.run(*args)
        assert result.returncode == 0, (
            f"crm {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
        return result.stdout


@dataclass
class InProcessCrm:
    """The ``crm`` command run in this process with click's runner: each command builds a new
    app from ``make_app``, as a ``crm`` process would. Much faster than :class:`CrmCli`, for
    tests whose subject is not the separate process."""

    make_app: Callable[[], Flask]

    def run(self, *args: str) -> Result:
        """Run ``crm *args``; returns click's result whatever the exit code."""
        return CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=self.make_app))

    def __call__(self, *args: str) -> str:
        """Run ``crm *args``, assert that it succeeded, and return what it printed."""
        result = self.run(*args)
        assert result.exit_code == 0, (
            f"crm {' '.join(args)} exited {result.exit_code}:\n{result.output}"
            f"\n{result.exception!r}"
        )
        return result.stdout


def engine_of(app: Flask) -> Engine:
    """The app's SQLAlchemy engine (Flask-SQLAlchemy hands it out inside an app context only)."""
    with app.app_context():
        return app.extensions["crm_db"].engine  # type: ignore[no-any-return]


def state_of(app: Flask, name: str) -> str:
    """Plugin ``name``'s state as ``app`` reads it from its database now."""
    with app.app_context():
        return app.extensions["crm"].state_of(name)  # type: ignore[no-any-return]


def install_and_enable(app: Flask, name: str) -> None:
    """What ``crm upgrade`` and ``crm plugins enable`` do, in this process (for tests whose
    subject is not the command line)."""
    with app.app_context():
        upgrade_all()
        lifecycle.enable(name)


def plugin_row(listing: str, name: str) -> str:
    """The row of ``crm plugins list`` output that describes plugin ``name``, its cells joined
    with ``" | "`` and each cell's text unwrapped onto one line."""
    rows: list[list[list[str]]] = []
    for line in listing.splitlines():
        if not line.startswith("│"):
            continue  # borders and the header
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if cells[0] or not rows:
            rows.append([[c] if c else [] for c in cells])
        else:  # a wrapped cell goes on in the next line
            for parts, more in zip(rows[-1], cells, strict=True):
                if more:
                    parts.append(more)
    for row in rows:
        if row[0] == [name]:
            return " | ".join(" ".join(parts) for parts in row)
    raise AssertionError(f"plugin {name!r} is not in the listing:\n{listing}")


def install_site_hooks(hooks_dir: Path, *names: str) -> Path:
    """Copy site-local hooks files (``tests/plugins/site_hooks/<name>.py``) into ``hooks_dir``."""
    hooks_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(SITE_HOOKS / f"{name}.py", hooks_dir / f"{name}.py")
    return hooks_dir


@dataclass
class PluginSite:
    """One CRM installation for a plugin test: its own database, ``crm`` command line and apps
    (each app built here is a fresh start of the CRM, as after a restart)."""

    database_url: str
    workdir: Path
    plugins: str
    site_packages: Path
    hooks_dir: Path | None = None
    apps: list[Flask] = field(default_factory=list)

    @property
    def cli(self) -> CrmCli:
        """``crm`` as a process of its own."""
        return CrmCli(
            self.database_url, self.workdir, self.plugins, self.site_packages, self.hooks_dir
        )

    @property
    def crm(self) -> InProcessCrm:
        """``crm`` in this process."""
        return InProcessCrm(self.start)

    def start(self) -> Flask:
        """A new app on this site's database, loading the site's plugins and hooks files."""
        hooks = str(self.hooks_dir) if self.hooks_dir else None
        app = make_test_app(self.database_url, CRM_PLUGINS=self.plugins, CRM_HOOKS_DIR=hooks)
        self.apps.append(app)
        return app

    def client(self, app: Flask, role: str = "Admin") -> FlaskClient:
        """A test client logged in with ``role`` (the user is made on first use)."""
        username = "t_" + role.lower().replace(" ", "_").replace("-", "_")
        with app.app_context():
            ensure_user(username, PASSWORD, f"{username}@example.cn", role)
        return login_client(app, username)

    def close(self) -> None:
        for app in self.apps:
            with app.app_context():
                app.extensions["crm_db"].session.remove()
                app.extensions["crm_db"].engine.dispose()


@pytest.fixture
def plugin_site(
    crm_backend: str, tmp_path: Path, plugin_wheels: Path
) -> Iterator[Callable[..., PluginSite]]:
    """``plugin_site("testplugin,brokenplugin", hooks=["flaky"])``: a fresh database on the
    backend, with the test plugins pip-installed and the named site hooks files in its hooks
    directory. Dropped after the test."""
    sites: list[PluginSite] = []

    def make(plugins: str, hooks: Sequence[str] = ()) -> PluginSite:
        name = f"crm_plg_{os.getpid()}_{len(sites)}"
        url = backend_url(crm_backend, name, tmp_path)
        hooks_dir = install_site_hooks(tmp_path / "hooks", *hooks) if hooks else None
        site = PluginSite(url, tmp_path, plugins, plugin_wheels, hooks_dir)
        sites.append(site)
        return site

    yield make
    for site in sites:
        site.close()
        drop(site.database_url)

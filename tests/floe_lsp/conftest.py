"""Fixtures for the language server tests: a copy of the example project and a real server."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_lsp
from lsp_helpers import EXAMPLE, PROFILES, SERVER, start
from pytest_lsp import LanguageClient


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh copy of the example pipeline (floe.yaml, platform/dev, platform/prod, dbt/)."""
    dest = tmp_path / "ws" / "customer-analytics"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("target", ".floe", "logs"))
    return dest


@pytest_lsp.fixture(config=SERVER, params=PROFILES)  # type: ignore[untyped-decorator]
async def client(
    lsp_client: LanguageClient, request: pytest.FixtureRequest, project: Path
) -> AsyncIterator[None]:
    """A server over the example's workspace, for each client profile."""
    await start(lsp_client, request.param, [project.parent])
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=SERVER, params=["pull"])  # type: ignore[untyped-decorator]
async def pull_client(
    lsp_client: LanguageClient, request: pytest.FixtureRequest, project: Path
) -> AsyncIterator[None]:
    """A server for a client that pulls diagnostics and supports refresh."""
    await start(lsp_client, request.param, [project.parent])
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=SERVER, params=[*PROFILES, "utf-32"])  # type: ignore[untyped-decorator]
async def any_client(
    lsp_client: LanguageClient, request: pytest.FixtureRequest, project: Path
) -> AsyncIterator[None]:
    """Like `client`, plus a client that negotiates UTF-32 positions."""
    await start(lsp_client, request.param, [project.parent])
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=SERVER, params=PROFILES)  # type: ignore[untyped-decorator]
async def multi_root_client(
    lsp_client: LanguageClient, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[None]:
    """A server over two workspace folders, each holding a copy of the example."""
    folders = []
    for name in ("one", "two"):
        dest = tmp_path / name / "customer-analytics"
        shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("target", ".floe", "logs"))
        folders.append(dest.parent)
    broken = folders[1] / "customer-analytics" / "floe.yaml"
    broken.write_text(broken.read_text().replace("compute: default", "compute: nowhere"))
    await start(lsp_client, request.param, folders)
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=SERVER, params=["plain"])  # type: ignore[untyped-decorator]
async def plain_client(
    lsp_client: LanguageClient, request: pytest.FixtureRequest, project: Path
) -> AsyncIterator[None]:
    """A server for a client without snippet support."""
    await start(lsp_client, request.param, [project.parent])
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=SERVER, params=PROFILES)  # type: ignore[untyped-decorator]
async def bare_client(
    lsp_client: LanguageClient, request: pytest.FixtureRequest
) -> AsyncIterator[None]:
    """A server started with no workspace folder (a file opened on its own)."""
    await start(lsp_client, request.param, [])
    yield
    await lsp_client.shutdown_session()

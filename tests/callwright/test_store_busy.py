"""An API request that finds every store connection busy for the pool's whole
timeout (overload) gets 503 with Retry-After, not a 500 and a traceback."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text

from callwright.app import json_errors
from store.db import make_engine, sqlite_url


async def test_a_request_that_waits_out_the_pool_gets_503_and_retry_after(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(
        sqlite_url(tmp_path / "data"), pool_size=1, max_overflow=0, pool_timeout=0.2
    )

    async def handler(request: web.Request) -> web.Response:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return web.json_response({"ok": True})

    app = web.Application(middlewares=[json_errors])
    app.router.add_get("/api/thing", handler)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/api/thing")).status == 200
        async with engine.connect():  # the pool's only connection, held
            with caplog.at_level(logging.WARNING, logger="callwright.app"):
                response = await client.get("/api/thing")
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        body = await response.json()
        assert body["error"] == "busy"
        assert "store busy" in caplog.text and "Traceback" not in caplog.text
        assert (await client.get("/api/thing")).status == 200  # free again
    await engine.dispose()

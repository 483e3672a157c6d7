"""A FAKE OAuth2 provider (GitHub-shaped) for tests: the real GitHub/Google cannot be reached from
here, so this small local server speaks their authorize/token/user endpoints instead."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import uvicorn
from litestar import Litestar, Request, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Response


@dataclass
class FakeProvider:
    url: str = ""
    client_id: str = "fake-client"
    client_secret: str = "fake-secret"
    deny: bool = False
    profile: dict[str, Any] = field(
        default_factory=lambda: {"id": 4242, "login": "octo", "name": "Octo Cat", "email": None}
    )
    emails: list[dict[str, Any]] = field(
        default_factory=lambda: [{"email": "octo@example.com", "primary": True, "verified": True}]
    )
    codes: dict[str, str] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)

    def settings(self) -> dict[str, Any]:
        return {
            "authorize_url": f"{self.url}/login/oauth/authorize",
            "token_url": f"{self.url}/login/oauth/access_token",
            "user_url": f"{self.url}/user",
            "emails_url": f"{self.url}/user/emails",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }

    def app(self) -> Litestar:
        fake = self

        @get("/login/oauth/authorize")
        async def authorize(
            client_id: FromQuery[str], redirect_uri: FromQuery[str], request: Request[Any, Any, Any]
        ) -> Redirect:
            state = request.query_params.get("state", "")
            if fake.deny or client_id != fake.client_id:
                query = urlencode({"error": "access_denied", "state": state})
                return Redirect(f"{redirect_uri}?{query}", status_code=302)
            code = secrets.token_hex(8)
            fake.codes[code] = redirect_uri
            return Redirect(
                f"{redirect_uri}?{urlencode({'code': code, 'state': state})}", status_code=302
            )

        @post("/login/oauth/access_token", status_code=200)
        async def token(request: Request[Any, Any, Any]) -> Response[Any]:
            form = await request.form()
            code = form.get("code")
            if (
                form.get("client_secret") != fake.client_secret
                or code not in fake.codes
                or fake.codes.pop(code) != form.get("redirect_uri")
            ):
                return Response({"error": "bad_verification_code"}, status_code=400)
            access = "gho_" + secrets.token_hex(8)
            fake.tokens.add(access)
            return Response({"access_token": access, "token_type": "bearer", "scope": ""})

        def _authorized(request: Request[Any, Any, Any]) -> bool:
            header = request.headers.get("authorization", "")
            return header.removeprefix("Bearer ") in fake.tokens

        @get("/user")
        async def user(request: Request[Any, Any, Any]) -> Response[Any]:
            if not _authorized(request):
                return Response({"message": "Bad credentials"}, status_code=401)
            return Response(fake.profile)

        @get("/user/emails")
        async def emails(request: Request[Any, Any, Any]) -> Response[Any]:
            if not _authorized(request):
                return Response({"message": "Bad credentials"}, status_code=401)
            return Response(fake.emails)

        return Litestar([authorize, token, user, emails])


@contextlib.asynccontextmanager
async def running_fake_provider() -> AsyncIterator[FakeProvider]:
    fake = FakeProvider()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    fake.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(fake.app(), log_config=None, access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield fake
    finally:
        server.should_exit = True
        await task
        sock.close()

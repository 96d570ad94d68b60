"""An MCP server built on the official Python SDK (`mcp` from PyPI, FastMCP,
unmodified): Streamable HTTP with the SDK's session manager (stateful, or
stateless with --stateless), protected by the SDK's own bearer-auth and
protected-resource metadata, tokens checked by introspection at the
authorization server.

python py_server.py PORT ISSUER [--stateless]
Prints its MCP URL when it listens. GET /_test/stats: what it saw.
"""

import base64
import os
import sys

import httpx
import uvicorn
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.fastmcp import Context, FastMCP
from starlette.requests import Request
from starlette.responses import JSONResponse

port = int(sys.argv[1])
issuer = sys.argv[2]
stateless = "--stateless" in sys.argv[3:]
secret = os.environ.get("INTROSPECTION_SECRET", "resource-server-introspection-secret")
base = f"http://127.0.0.1:{port}"
stats = {"calls": {}, "introspections": 0, "session_misses": 0}

metadata = httpx.get(f"{issuer}/.well-known/openid-configuration").json()


class IntrospectionVerifier(TokenVerifier):
    """RFC 7662 introspection at the authorization server."""

    async def verify_token(self, token: str) -> AccessToken | None:
        stats["introspections"] += 1
        basic = base64.b64encode(f"resource-server:{secret}".encode()).decode()
        async with httpx.AsyncClient() as client:
            response = await client.post(
                metadata["introspection_endpoint"],
                data={"token": token},
                headers={"authorization": f"Basic {basic}"},
            )
        info = response.json()
        if not info.get("active"):
            return None
        aud = info.get("aud")
        return AccessToken(
            token=token,
            client_id=info.get("client_id", ""),
            scopes=(info.get("scope") or "").split(),
            expires_at=info.get("exp"),
            resource=aud[0] if isinstance(aud, list) else aud,
            subject=info.get("sub"),
        )


mcp = FastMCP(
    "py-sdk-peer",
    host="127.0.0.1",
    port=port,
    stateless_http=stateless,
    token_verifier=IntrospectionVerifier(),
    auth=AuthSettings(
        issuer_url=issuer,
        resource_server_url=f"{base}/mcp",
        required_scopes=["mcp:tools"],
        validate_token_resource=True,
    ),
)


def counted(name: str) -> None:
    stats["calls"][name] = stats["calls"].get(name, 0) + 1


@mcp.tool()
def echo(text: str) -> str:
    """Echoes its text."""
    counted("echo")
    return text


@mcp.tool()
def add(a: int, b: int) -> int:
    """Adds two numbers."""
    counted("add")
    return a + b


@mcp.tool()
def whoami(ctx: Context) -> str:
    """Who the token belongs to."""
    counted("whoami")
    from mcp.server.auth.middleware.auth_context import get_access_token

    token = get_access_token()
    return f"{token.subject if token else None} via {token.client_id if token else None}"


@mcp.custom_route("/_test/stats", methods=["GET"])
async def test_stats(request: Request) -> JSONResponse:
    return JSONResponse(stats)


class CountSessionMisses:
    """Counts the requests that carried a session id the SDK answered 404."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not any(k == b"mcp-session-id" for k, _ in scope["headers"]):
            return await self.app(scope, receive, send)

        async def counting_send(message):
            if message["type"] == "http.response.start" and message["status"] == 404:
                stats["session_misses"] += 1
            await send(message)

        return await self.app(scope, receive, counting_send)


if __name__ == "__main__":
    app = CountSessionMisses(mcp.streamable_http_app())
    print(f"{base}/mcp", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")

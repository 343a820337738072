"""The official MCP Python SDK's OAuth client against an OAuth-protected MCP server.

    python oauth_client.py --url CONNECTOR_URL --login USER --tool NAME [--arguments JSON]

Connects with `mcp.client.auth.OAuthClientProvider` as the `httpx2` auth of a Streamable
HTTP transport, so the SDK itself does the discovery: the server's 401, its protected
resource metadata (RFC 9728), the authorization server's metadata (RFC 8414), dynamic
client registration (RFC 7591), and the authorization code flow with PKCE and the RFC 8707
`resource` parameter. No browser: the redirect handler plays the person, signing in as
USER on the authorization server's login page and accepting its consent page over HTTP,
then hands the code, state and issuer of the redirect to the callback handler. Then it
lists the tools and calls NAME once.

Prints one JSON object to stdout: every HTTP exchange of the MCP client (method, URL,
status, whether it carried a bearer token, the challenge of a 401 or 403), the discovered
metadata, the registration, the token's scope and claims (never the token itself), the
listed tools with their read-only hints and the call's outcome. Exits 1 on any failure
(the JSON then carries `error`), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import traceback
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

# Most requests the login and consent pages may take before the redirect comes back.
MAX_BROWSER_STEPS = 16
# The password the authorization server's development login page is given (any works).
PASSWORD = "test-password"
# How much of a tool result's text goes into the summary.
TEXT_LIMIT = 4000


class MemoryStorage(TokenStorage):
    """Tokens and the registered client, kept for this run only."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class FormParser(HTMLParser):
    """The first `<form>` of a page: its action and its inputs' names and values."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: list[tuple[str, str]] = []
        self._in_form = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._done:
            return
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action = a.get("action", "")
            self._in_form = True
        elif tag == "input" and self._in_form and a.get("name"):
            self.fields.append((a["name"], a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._in_form:
            self._in_form = False
            self._done = True


class Browser:
    """Plays the person at the authorization server: follows redirects, signs in on the
    login page and accepts the consent page, until the redirect to `redirect_uri`."""

    def __init__(self, login: str, redirect_uri: str) -> None:
        self.login = login
        self.redirect_uri = redirect_uri
        self.trail: list[dict[str, Any]] = []
        self.redirect: dict[str, str] | None = None

    async def authorize(self, authorization_url: str) -> None:
        # Cookies of the interaction live in the client's jar; redirects are followed here,
        # one by one, so the one to the redirect URI is caught instead of followed.
        async with httpx2.AsyncClient(follow_redirects=False, timeout=30.0) as http:
            method, url, form = "GET", authorization_url, None
            for _ in range(MAX_BROWSER_STEPS):
                if form is None:
                    resp = await http.get(url)
                else:
                    resp = await http.post(url, data=dict(form))
                self.trail.append({"method": method, "path": urlsplit(url).path, "status": resp.status_code})
                if resp.is_redirect:
                    location = urljoin(url, resp.headers["location"])
                    if location.startswith(self.redirect_uri):
                        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
                        if "error" in query:
                            raise RuntimeError(f"the authorization server refused: {query}")
                        self.redirect = query
                        return
                    method, url, form = "GET", location, None
                    continue
                if resp.status_code != 200:
                    raise RuntimeError(f"{method} {url}: HTTP {resp.status_code}: {resp.text[:2000]}")
                page = FormParser()
                page.feed(resp.text)
                if page.action is None:
                    raise RuntimeError(f"{method} {url}: no form on the page: {resp.text[:2000]}")
                fields = []
                for name, value in page.fields:
                    if name == "login":
                        value = self.login
                    elif name == "password":
                        value = PASSWORD
                    fields.append((name, value))
                method, url, form = "POST", urljoin(url, page.action), fields
            raise RuntimeError(f"no redirect to {self.redirect_uri} within {MAX_BROWSER_STEPS} steps: {self.trail}")

    async def callback(self) -> AuthorizationCodeResult:
        if self.redirect is None or "code" not in self.redirect:
            raise RuntimeError(f"the redirect carried no code: {self.redirect}")
        return AuthorizationCodeResult(
            code=self.redirect["code"],
            state=self.redirect.get("state"),
            iss=self.redirect.get("iss"),
        )


def jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a compact JWS, not verified (the resource server does that)."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


def token_summary(tokens: OAuthToken | None) -> dict[str, Any] | None:
    """What the token response said, and the access token's claims; not the tokens."""
    if tokens is None:
        return None
    return {
        "token_type": tokens.token_type,
        "scope": tokens.scope,
        "expires_in": tokens.expires_in,
        "refresh_token": tokens.refresh_token is not None,
        "claims": jwt_claims(tokens.access_token),
    }


def tool_text(result: Any) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content if getattr(c, "type", None) == "text")


async def run(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    exchanges: list[dict[str, Any]] = summary["http"]

    async def record(response: httpx2.Response) -> None:
        request = response.request
        exchanges.append(
            {
                "method": request.method,
                "url": str(request.url),
                "status": response.status_code,
                "bearer": request.headers.get("authorization", "").lower().startswith("bearer "),
                "www_authenticate": response.headers.get("www-authenticate"),
            }
        )

    storage = MemoryStorage()
    browser = Browser(args.login, args.redirect_uri)
    provider = OAuthClientProvider(
        server_url=args.url,
        client_metadata=OAuthClientMetadata(
            client_name="atomicwork-mcp python sdk test",
            redirect_uris=[args.redirect_uri],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=browser.authorize,
        callback_handler=browser.callback,
    )
    summary["browser"] = browser.trail
    http = httpx2.AsyncClient(auth=provider, timeout=30.0, event_hooks={"response": [record]})
    async with http:
        async with Client(streamable_http_client(args.url, http_client=http)) as client:
            summary["protocol_version"] = client.protocol_version
            ctx = provider.context
            prm = ctx.protected_resource_metadata
            asm = ctx.oauth_metadata
            summary["resource_metadata"] = None if prm is None else prm.model_dump(mode="json", exclude_none=True)
            summary["authorization_server"] = (
                None
                if asm is None
                else {
                    "issuer": str(asm.issuer),
                    "authorization_endpoint": str(asm.authorization_endpoint),
                    "token_endpoint": str(asm.token_endpoint),
                    "registration_endpoint": None
                    if asm.registration_endpoint is None
                    else str(asm.registration_endpoint),
                }
            )
            info = storage.client_info
            summary["registration"] = (
                None
                if info is None
                else {
                    "client_id": info.client_id,
                    "token_endpoint_auth_method": info.token_endpoint_auth_method,
                    "issuer": info.issuer,
                }
            )
            summary["redirect"] = (
                None
                if browser.redirect is None
                else {"state": "state" in browser.redirect, "iss": browser.redirect.get("iss")}
            )
            summary["token"] = token_summary(storage.tokens)

            listing = await client.list_tools()
            summary["tools"] = [
                {
                    "name": tool.name,
                    "read_only": None if tool.annotations is None else tool.annotations.read_only_hint,
                }
                for tool in listing.tools
            ]
            if not listing.tools:
                raise RuntimeError("tools/list returned no tools")

            result = await client.call_tool(args.tool, args.arguments)
            text = tool_text(result)
            summary["call"] = {"tool": args.tool, "is_error": result.is_error, "text": text[:TEXT_LIMIT]}
            # Differs from `token` when the call made the SDK step up to more scopes.
            summary["token_after_call"] = token_summary(storage.tokens)
            if result.is_error:
                raise RuntimeError(f"{args.tool} answered an error: {text[:2000]}")


def leaves(e: BaseException) -> list[BaseException]:
    """The exceptions inside `e`, task groups' exception groups opened."""
    if isinstance(e, BaseExceptionGroup):
        return [leaf for inner in e.exceptions for leaf in leaves(inner)]
    return [e]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the server's connector URL")
    parser.add_argument("--login", required=True, help="the user to sign in as")
    parser.add_argument("--tool", required=True, help="the tool to call")
    parser.add_argument("--arguments", default="{}", help="the call's arguments, a JSON object")
    parser.add_argument(
        "--redirect-uri",
        default="http://127.0.0.1:8765/callback",
        help="the loopback redirect URI to register (nothing needs to listen there)",
    )
    args = parser.parse_args()
    try:
        args.arguments = json.loads(args.arguments)
    except ValueError as e:
        parser.error(f"--arguments is not JSON: {e}")
    if not isinstance(args.arguments, dict):
        parser.error("--arguments must be a JSON object")

    summary: dict[str, Any] = {"ok": False, "http": []}
    code = 0
    try:
        asyncio.run(run(args, summary))
        summary["ok"] = True
    except BaseException as e:  # noqa: BLE001 - every failure is reported the same way
        if isinstance(e, KeyboardInterrupt):
            raise
        summary["error"] = "; ".join(f"{type(leaf).__name__}: {leaf}" for leaf in leaves(e))
        summary["traceback"] = traceback.format_exception(e)
        code = 1
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return code


if __name__ == "__main__":
    sys.exit(main())

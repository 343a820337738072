"""The official MCP Python SDK, in MCP 2026-07-28 mode with an elicitation callback,
against a server whose destructive calls need a person's approval.

    python approval_client.py --ask URL_A --retry URL_B --tool NAME --arguments JSON --decision approve|decline

Connects to URL_A, calls NAME and receives the server's `input_required` result (the
SDK's low-level `call_tool(..., allow_input_required=True)`), answers its elicitation
with the SDK's elicitation callback type as a person would (approve or decline), then
connects to URL_B (another process serving the same server) and retries the call there
with the answer and the `requestState`, through the SDK's `Client.call_tool(...,
input_responses=..., request_state=...)`.

Prints one JSON object: the elicitation message shown, the decision, and the final
result (isError and its text). Exits 1 on any failure, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import traceback
from typing import Any

import mcp_types as types
from mcp import Client

MODE = "2026-07-28"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    arguments = json.loads(args.arguments)
    shown: dict[str, Any] = {}

    async def elicit(_context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        # The person reads the form and decides.
        shown["message"] = params.message
        schema = params.requested_schema
        shown["schema"] = schema if isinstance(schema, dict) else schema.model_dump(by_alias=True, exclude_none=True)
        return types.ElicitResult(action="accept", content={"approve": args.decision == "approve"})

    async with Client(args.ask, mode=MODE, elicitation_callback=elicit) as first:
        interim = await first.session.call_tool(args.tool, arguments, allow_input_required=True)
    if not isinstance(interim, types.InputRequiredResult):
        raise RuntimeError(f"expected input_required, got {type(interim).__name__}")
    requests = interim.input_requests or {}
    responses: dict[str, Any] = {}
    for key, request in requests.items():
        if request.method != "elicitation/create":
            raise RuntimeError(f"unexpected input request {request.method}")
        responses[key] = await elicit(None, request.params)
    async with Client(args.retry, mode=MODE, elicitation_callback=elicit) as second:
        result = await second.call_tool(
            args.tool,
            arguments,
            input_responses=responses,
            request_state=interim.request_state,
        )
    texts = [c.text for c in result.content if getattr(c, "type", "") == "text"]
    return {
        "message": shown.get("message"),
        "schema": shown.get("schema"),
        "input_request_keys": sorted(requests),
        "decision": args.decision,
        "is_error": bool(result.is_error),
        "texts": texts,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ask", required=True)
    parser.add_argument("--retry", required=True)
    parser.add_argument("--tool", required=True)
    parser.add_argument("--arguments", default="{}")
    parser.add_argument("--decision", choices=["approve", "decline"], required=True)
    try:
        args = parser.parse_args()
    except SystemExit:
        return 2
    try:
        summary = asyncio.run(run(args))
    except Exception as e:  # noqa: BLE001 - the test reads the error from the summary
        print(json.dumps({"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}))
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A local Slack (incoming webhooks and ``chat.postMessage``) for the tests and the demo.

* ``POST /services/T.../B.../<secret>``: an incoming webhook. The URL is the secret; a
  wrong one answers 404 ``no_service``. JSON with ``text`` and/or ``blocks``; answers
  ``200 ok`` as plain text, or 400 ``no_text`` / ``invalid_blocks`` / ``invalid_payload``.
* ``POST /api/chat.postMessage``: a Bearer token (or a ``token`` field); JSON or form
  body whose fields are checked against the method's parameters in Slack's own Web API
  description (``specs/slack-web-api-openapi-v2.json``: names, types, ``channel``
  required). Errors are ``200 {"ok": false, "error": ...}`` as Slack answers them
  (``not_authed``, ``invalid_auth``, ``channel_not_found``, ``no_text``, ``invalid_blocks``,
  ``msg_too_long``, ``invalid_arguments``).
* Block Kit limits (Slack's reference): at most 50 blocks; a section's text at most 3,000
  characters and at most 10 fields of 2,000; a header's plain text at most 150; a context
  at most 10 elements; a ``block_id`` at most 255; a message's text at most 40,000.
* About one message a second per channel: beyond ``per_channel_per_s``, 429 with
  ``Retry-After`` (seconds).

Served through :mod:`retention.local_servers.base` (own process, fault injection,
request log); the view ``slack`` of ``GET /__control/log`` lists every accepted message
(channel, text, blocks, how it came) and every refused one.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from retention.local_servers.base import LocalServer, register
from retention.local_servers.specs import SLACK_SUBSET, load_subset

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_BLOCK_ID = 255
MAX_MESSAGE_TEXT = 40_000
BLOCK_TYPES = {"section", "header", "divider", "context", "actions", "image", "rich_text", "markdown"}


def block_problems(blocks: Any) -> list[str]:
    """Why Slack would refuse ``blocks`` (empty when it would accept them)."""
    if not isinstance(blocks, list):
        return ["blocks must be an array"]
    problems = []
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"{len(blocks)} blocks; at most {MAX_BLOCKS}")
    for i, block in enumerate(blocks):
        where = f"blocks[{i}]"
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            problems.append(f"{where}: unknown block type")
            continue
        if len(str(block.get("block_id", ""))) > MAX_BLOCK_ID:
            problems.append(f"{where}.block_id longer than {MAX_BLOCK_ID}")
        kind = block["type"]
        if kind == "section":
            text, fields = block.get("text"), block.get("fields")
            if text is None and not fields:
                problems.append(f"{where}: a section needs text or fields")
            if text is not None:
                problems += _text_problems(text, f"{where}.text", MAX_SECTION_TEXT)
            if fields is not None:
                if not isinstance(fields, list) or len(fields) > MAX_FIELDS:
                    problems.append(f"{where}.fields: at most {MAX_FIELDS}")
                else:
                    for j, f in enumerate(fields):
                        problems += _text_problems(f, f"{where}.fields[{j}]", MAX_FIELD_TEXT)
        elif kind == "header":
            problems += _text_problems(block.get("text"), f"{where}.text", MAX_HEADER_TEXT, plain_only=True)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
                problems.append(f"{where}.elements: 1 to {MAX_CONTEXT_ELEMENTS}")
            else:
                for j, e in enumerate(elements):
                    if isinstance(e, dict) and e.get("type") in ("plain_text", "mrkdwn"):
                        problems += _text_problems(e, f"{where}.elements[{j}]", MAX_SECTION_TEXT)
    return problems


def _text_problems(obj: Any, where: str, limit: int, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in (("plain_text",) if plain_only else ("plain_text", "mrkdwn")):
        return [f"{where}: a {'plain_text' if plain_only else 'text'} object is required"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"{where}.text must be a non-empty string"]
    if len(text) > limit:
        return [f"{where}.text is {len(text)} characters; at most {limit}"]
    return []


class PostMessageSpec:
    """``chat.postMessage``'s parameters from Slack's Web API description."""

    def __init__(self) -> None:
        operation = load_subset(SLACK_SUBSET)["paths"]["/chat.postMessage"]["post"]
        params = operation["parameters"]
        self.types = {p["name"]: p.get("type", "string") for p in params}
        self.required = {p["name"] for p in params if p.get("required") and p["in"] == "formData"}

    def problems(self, body: dict[str, Any], from_json: bool) -> list[str]:
        problems = [f"missing {name}" for name in sorted(self.required) if name not in body]
        for name, value in body.items():
            if name not in self.types:
                problems.append(f"unknown argument {name}")
                continue
            kind = self.types[name]
            if name in ("blocks", "attachments") and from_json and isinstance(value, list):
                continue  # a JSON body carries them as arrays; a form body as JSON-encoded strings
            if kind == "boolean" and not isinstance(value, bool) and str(value).lower() not in ("true", "false", "1", "0"):
                problems.append(f"{name} must be a boolean")
            elif kind == "string" and not isinstance(value, (str, int, float)):
                problems.append(f"{name} must be a string")
        return problems


class SlackWorkspace:
    def __init__(self, token: str, webhook_secret: str, channels: tuple[str, ...], per_channel_per_s: float) -> None:
        self.token, self.webhook_secret = token, webhook_secret
        self.channels = set(channels)
        self.per_channel_interval = 1.0 / per_channel_per_s if per_channel_per_s > 0 else 0.0
        self.last_post: dict[str, float] = {}
        self.messages: list[dict[str, Any]] = []
        self.refused: list[dict[str, Any]] = []
        self.rate_limited = 0

    def throttle(self, channel: str) -> float | None:
        """Seconds to wait when the channel is over its rate, else None (and the post is counted)."""
        now = time.monotonic()
        last = self.last_post.get(channel)
        if last is not None and now - last < self.per_channel_interval:
            self.rate_limited += 1
            return max(1.0, self.per_channel_interval - (now - last))
        self.last_post[channel] = now
        return None

    def accept(self, channel: str, body: dict[str, Any], via: str) -> dict[str, Any]:
        ts = f"{time.time():.6f}"
        message = {"channel": channel, "ts": ts, "via": via, "text": body.get("text"), "blocks": body.get("blocks")}
        self.messages.append(message)
        return message


def message_problems(body: dict[str, Any]) -> str | None:
    """Slack's error code for a message it would refuse, or None."""
    blocks = body.get("blocks")
    if isinstance(blocks, str):
        try:
            blocks = body["blocks"] = json.loads(blocks)
        except ValueError:
            return "invalid_blocks_format"
    if not body.get("text") and not blocks and not body.get("attachments"):
        return "no_text"
    if blocks is not None and block_problems(blocks):
        return "invalid_blocks"
    if len(str(body.get("text") or "")) > MAX_MESSAGE_TEXT:
        return "msg_too_long"
    return None


def slack_error_body(status: int, code: str) -> dict[str, Any]:
    return {"ok": False, "error": {"rate_limited": "ratelimited", "internal_error": "internal_error",
                                   "timeout": "request_timeout"}.get(code, code)}


@register("slack", error_body=slack_error_body)
def build(server: LocalServer) -> None:
    """Options: ``token``, ``webhook_secret``, ``channels``, ``per_channel_per_s`` (default 1)."""
    opts = server.options
    workspace = SlackWorkspace(
        str(opts.get("token") or "xoxb-local-slack-token"), str(opts.get("webhook_secret") or secrets.token_hex(12)),
        tuple(opts.get("channels") or ("C0RETENTION", "#retention")), float(opts.get("per_channel_per_s", 1.0)),
    )
    spec = PostMessageSpec()
    app = server.app

    @server.view("slack")
    def view() -> dict[str, Any]:
        return {"messages": workspace.messages, "refused": workspace.refused, "rate_limited": workspace.rate_limited,
                "webhook_path": f"/services/TLOCAL/BLOCAL/{workspace.webhook_secret}"}

    @app.post("/services/{team}/{bot}/{secret}")
    async def webhook(team: str, bot: str, secret: str, request: Request) -> Response:
        if secret != workspace.webhook_secret:
            return PlainTextResponse("no_service", status_code=404)
        try:
            body = json.loads(await request.body())
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            return PlainTextResponse("invalid_payload", status_code=400)
        problem = message_problems(body)
        if problem:
            workspace.refused.append({"via": "webhook", "error": problem})
            return PlainTextResponse(problem, status_code=400)
        wait = workspace.throttle("webhook")
        if wait is not None:
            return PlainTextResponse("rate_limited", status_code=429, headers={"Retry-After": str(int(wait + 0.999))})
        workspace.accept("webhook", body, "webhook")
        return PlainTextResponse("ok")

    @app.post("/api/chat.postMessage")
    async def post_message(request: Request) -> Response:
        raw = await request.body()
        from_json = request.headers.get("content-type", "").startswith("application/json")
        try:
            body = json.loads(raw) if from_json else {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            return JSONResponse({"ok": False, "error": "invalid_json"})
        auth = request.headers.get("authorization", "")
        supplied = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else body.pop("token", None)
        if not supplied:
            return JSONResponse({"ok": False, "error": "not_authed"})
        if supplied != workspace.token:
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        problems = spec.problems(body, from_json)
        if problems:
            workspace.refused.append({"via": "chat.postMessage", "error": "invalid_arguments", "why": problems})
            return JSONResponse({"ok": False, "error": "invalid_arguments",
                                 "response_metadata": {"messages": [f"[ERROR] {p}" for p in problems]}})
        channel = str(body["channel"])
        if channel not in workspace.channels:
            return JSONResponse({"ok": False, "error": "channel_not_found"})
        problem = message_problems(body)
        if problem:
            workspace.refused.append({"via": "chat.postMessage", "error": problem})
            return JSONResponse({"ok": False, "error": problem})
        wait = workspace.throttle(channel)
        if wait is not None:
            return JSONResponse({"ok": False, "error": "ratelimited"}, status_code=429,
                                headers={"Retry-After": str(int(wait + 0.999))})
        message = workspace.accept(channel, body, "chat.postMessage")
        return JSONResponse({"ok": True, "channel": channel, "ts": message["ts"],
                             "message": {"type": "message", "text": message["text"] or "", "ts": message["ts"]}})

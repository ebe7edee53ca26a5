"""An independent MCP client for the tests: the Python SDK's own client
drives `jarvis mcp` over stdio, or `jarvis serve`'s /mcp over streamable
HTTP, through a list of steps.

Usage:
    client.py stdio STEPS_JSON -- COMMAND [ARG...]
    client.py http STEPS_JSON URL          (the token in MCP_TOKEN)

STEPS_JSON is a JSON list; each step is {"list_tools": true} or
{"tool": NAME, "args": {...}}. For each step one JSON line goes to stdout
as soon as it is answered (so the test can act while a later step waits):
    {"step": N, "tools": [{"name", "description", "input_schema"}]}
    {"step": N, "is_error": bool, "text": "...", "structured": {...},
     "progress": ["message", ...]}
A protocol error (the call itself failed) is {"step": N, "error": "..."}.
The process exits 0 when every step was answered.
"""

import asyncio
import json
import os
import sys

import httpx2
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def run_steps(session, steps):
    await session.initialize()
    for n, step in enumerate(steps):
        if step.get("list_tools"):
            listed = await session.list_tools()
            say(
                {
                    "step": n,
                    "tools": [
                        {
                            "name": t.name,
                            "description": t.description,
                            "input_schema": t.input_schema,
                        }
                        for t in listed.tools
                    ],
                }
            )
            continue
        progress = []

        async def on_progress(done, total, message):
            progress.append(message)
            # The test may be waiting for this line to act (approve).
            say({"step": n, "progress_now": message})

        try:
            result = await session.call_tool(
                step["tool"],
                step.get("args", {}),
                read_timeout_seconds=300,
                progress_callback=on_progress,
            )
        except Exception as e:  # the call failed at the protocol level
            say({"step": n, "error": f"{type(e).__name__}: {e}"})
            continue
        text = "".join(c.text for c in result.content if getattr(c, "type", "") == "text")
        say(
            {
                "step": n,
                "is_error": bool(result.is_error),
                "text": text,
                "structured": result.structured_content,
                "progress": progress,
            }
        )


async def main(argv):
    mode, steps = argv[1], json.loads(argv[2])
    if mode == "stdio":
        command = argv[argv.index("--") + 1 :]
        params = StdioServerParameters(
            command=command[0], args=command[1:], env=dict(os.environ)
        )
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await run_steps(session, steps)
    elif mode == "http":
        url = argv[3]
        headers = {"Authorization": f"Bearer {os.environ['MCP_TOKEN']}"}
        timeout = httpx2.Timeout(30, read=300)
        async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http:
            async with streamable_http_client(url, http_client=http) as streams:
                read, write = streams[0], streams[1]
                async with ClientSession(read, write) as session:
                    await run_steps(session, steps)
    else:
        sys.exit(f"unknown mode {mode!r}: stdio or http")


if __name__ == "__main__":
    asyncio.run(main(sys.argv))

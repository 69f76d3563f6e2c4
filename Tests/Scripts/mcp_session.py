"""Drives an MCP server over stdio with the official MCP Python SDK client and prints what it
saw as JSON, for the Swift tests to assert on.

usage: mcp_session.py [--human] STEPS_JSON -- COMMAND [ARGS...]
--human prints one line per tool listed and per call instead of the JSON report.
STEPS_JSON is a list of steps run in order after initialize and tools/list: [tool, arguments] is
one call; {"parallel": [[tool, arguments], ...]} sends several calls at once and waits for all;
{"sleep": seconds} keeps the session open (a server that runs more than tools meanwhile).
"""
import asyncio
import json
import os
import sys
import time
from importlib.metadata import version

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
try:  # the 1.x line
    from mcp.shared.exceptions import McpError as MCPError
except ImportError:  # 2.x renamed it
    from mcp.shared.exceptions import MCPError


def field(model, name):
    """A result field by its wire name: 1.x models use it as is, 2.x in snake case."""
    snake = "".join("_" + c.lower() if c.isupper() else c for c in name)
    return getattr(model, snake) if hasattr(model, snake) else getattr(model, name)


async def session(steps, command):
    # The SDK passes a server only a few safe variables by default; BRANE_HOME must reach it too.
    params = StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))
    report = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as client:
            started = time.perf_counter()
            init = await client.initialize()
            report["sdk"] = version("mcp")
            report["server"] = field(init, "serverInfo").name
            listed = await client.list_tools()
            report["listSeconds"] = time.perf_counter() - started
            report["tools"] = {tool.name: field(tool, "inputSchema") for tool in listed.tools}
            report["calls"] = []
            for step in steps:
                if isinstance(step, dict) and "sleep" in step:
                    await asyncio.sleep(step["sleep"])
                    continue
                calls = step["parallel"] if isinstance(step, dict) else [step]
                report["calls"] += await asyncio.gather(*(call(client, name, arguments) for name, arguments in calls))
    return report


async def call(client, name, arguments):
    try:
        result = await client.call_tool(name, arguments)
        text = "".join(part.text for part in result.content if part.type == "text")
        return {"tool": name, "isError": bool(field(result, "isError")), "text": text}
    except MCPError as error:
        return {"tool": name, "protocolError": error.error.message}


def show(report):
    print(f"{report['server']}: {len(report['tools'])} tools listed in {report['listSeconds'] * 1000:.0f} ms: {', '.join(report['tools'])}")
    for call in report["calls"]:
        outcome = f"protocol error: {call['protocolError']}" if "protocolError" in call else \
            ("error: " if call["isError"] else "ok: ") + " ".join(call["text"].split())[:150]
        print(f"  {call['tool']} → {outcome}")


def main():
    human = sys.argv[1] == "--human"
    split = sys.argv.index("--")
    steps = json.loads(sys.argv[2 if human else 1])
    report = asyncio.run(session(steps, sys.argv[split + 1:]))
    if human:
        show(report)
    else:
        print(json.dumps(report))


if __name__ == "__main__":
    main()

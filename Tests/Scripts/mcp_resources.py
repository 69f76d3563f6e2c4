"""Drives a neuron's MCP resources with the official MCP Python SDK client and prints what it saw
as JSON, for the Swift tests to assert on.

usage: mcp_resources.py EXPECTED FEED_JSON -- COMMAND [ARGS...]
       mcp_resources.py EXPECTED FEED_JSON --url URL     (Streamable HTTP; token in $BRANE_MCP_TOKEN)
After initialize it lists resources and templates, calls the latest_reading tool, reads the
alerts resource, subscribes to it and to every listed sensor's latest reading, then runs
FEED_JSON (a command, as a JSON list, with this environment) and waits until EXPECTED
notifications of the alerts resource arrived (at most 60 s), then reads the alerts again.
"""
import asyncio
import json
import os
import subprocess
import sys
import time
from importlib.metadata import version

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def field(model, name):
    """A field by its wire name: 1.x models use it as is, 2.x in snake case."""
    snake = "".join("_" + c.lower() if c.isupper() else c for c in name)
    return getattr(model, snake) if hasattr(model, snake) else getattr(model, name)


def alerts_in(result):
    return json.loads(result.contents[0].text)


def connect(target):
    """The client transport: a server started with a command over stdio, or a URL."""
    if target[0] == "--url":
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client
        client = create_mcp_http_client(headers={"Authorization": "Bearer " + os.environ["BRANE_MCP_TOKEN"]})
        return streamable_http_client(target[1], http_client=client)
    return stdio_client(StdioServerParameters(command=target[0], args=target[1:], env=dict(os.environ)))


async def session(expected, feed, target):
    updates = []
    arrived = asyncio.Event()

    async def on_message(message):
        # 1.x wraps a notification in a root model; 2.x passes it as is.
        message = getattr(message, "root", message)
        if getattr(message, "method", None) == "notifications/resources/updated":
            updates.append((str(message.params.uri), time.monotonic()))
            if sum(1 for uri, _ in updates if uri.endswith("/alerts")) >= expected:
                arrived.set()

    report = {"sdk": version("mcp")}
    async with connect(target) as streams:
        async with ClientSession(streams[0], streams[1], message_handler=on_message) as client:
            init = await client.initialize()
            resources_capability = field(init, "capabilities").resources
            report["subscribe"] = bool(resources_capability and resources_capability.subscribe)
            listed = await client.list_resources()
            report["resources"] = sorted(str(r.uri) for r in listed.resources)
            report["mimeTypes"] = sorted({field(r, "mimeType") for r in listed.resources})
            called = await client.call_tool("latest_reading", {})
            report["latestReading"] = {"isError": bool(field(called, "isError")),
                                       "text": "".join(part.text for part in called.content if part.type == "text")}
            templates = await client.list_resource_templates()
            report["templates"] = sorted(field(t, "uriTemplate") for t in field(templates, "resourceTemplates"))
            alerts_uri = next(uri for uri in report["resources"] if uri.endswith("/alerts"))
            report["before"] = alerts_in(await client.read_resource(alerts_uri))
            await client.subscribe_resource(alerts_uri)
            for uri in report["resources"]:
                if uri.endswith("/latest"):
                    await client.subscribe_resource(uri)
            fed = subprocess.run(feed, env=dict(os.environ), capture_output=True, text=True, timeout=120)
            report["feed"] = {"status": fed.returncode, "stderr": fed.stderr[-2000:]}
            try:
                await asyncio.wait_for(arrived.wait(), 60)
            except asyncio.TimeoutError:
                pass
            report["updates"] = sorted({uri for uri, _ in updates})
            report["alertUpdates"] = sum(1 for uri, _ in updates if uri == alerts_uri)
            report["after"] = alerts_in(await client.read_resource(alerts_uri))
    return report


def main():
    target = sys.argv[4:] if sys.argv[3] == "--" else sys.argv[3:]
    print(json.dumps(asyncio.run(session(int(sys.argv[1]), json.loads(sys.argv[2]), target))))


if __name__ == "__main__":
    main()

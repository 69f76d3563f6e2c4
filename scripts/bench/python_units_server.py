"""The baseline for scripts/bench-mcp: a Python MCP server (the `mcp` package's low-level
Server, stdio) with a convert_units tool answering like com.brane.units — in-process, unsandboxed."""
import asyncio
import json

import mcp.server.stdio
import mcp.types as types
from mcp.server.lowlevel import Server

FACTORS = {"kg": 1000.0, "lb": 453.59237, "g": 1.0}
SCHEMA = {"type": "object", "required": ["value", "from", "to"], "additionalProperties": False,
          "properties": {"value": {"type": "number"}, "from": {"type": "string"}, "to": {"type": "string"}}}
server = Server("python-units")


@server.list_tools()
async def list_tools():
    return [types.Tool(name="convert_units", description="Convert a value between units.", inputSchema=SCHEMA)]


@server.call_tool()
async def call_tool(name, arguments):
    value, source, target = arguments["value"], arguments["from"], arguments["to"]
    if (source, target) == ("degF", "degC"):
        result = round((value - 32) * 5 / 9, 4)
    else:
        result = round(value * FACTORS[source] / FACTORS[target], 4)
    answer = {"value": result, "unit": target, "text": f"{value} {source} = {result} {target}"}
    return [types.TextContent(type="text", text=json.dumps(answer))]


async def main():
    async with mcp.server.stdio.stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


if __name__ == "__main__":
    asyncio.run(main())

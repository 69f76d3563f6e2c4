"""MCP round trips through `brane mcp serve` against a Python MCP server exposing the same
tool, both driven by the official MCP Python SDK client in one run (docs/performance.md).

usage: scripts/bench-mcp   (builds release, then runs this with the SDK's venv)
"""
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

CALLS = int(os.environ.get("CALLS", "1000"))
ARGS = {"value": 98.6, "from": "degF", "to": "degC"}


async def measure(command):
    params = StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))
    started = time.perf_counter()
    async with stdio_client(params, errlog=open(os.devnull, "w")) as (read, write):
        async with ClientSession(read, write) as client:
            await client.initialize()
            await client.list_tools()
            ready = time.perf_counter() - started
            for _ in range(50):  # warm up: instance start, caches
                await client.call_tool("convert_units", ARGS)
            samples = []
            for _ in range(CALLS):
                t = time.perf_counter()
                result = await client.call_tool("convert_units", ARGS)
                samples.append(time.perf_counter() - t)
                assert not result.isError, result
    samples.sort()
    return ready, samples[len(samples) // 2], samples[int(len(samples) * 0.99)]


def main():
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with tempfile.TemporaryDirectory() as home:
        neuron = os.path.join(home, "units.yaml")
        with open(neuron, "w") as f:
            f.write("apiVersion: brane.dev/v1\nkind: Neuron\nid: bench\nname: Bench\nprivacyTier: 0\n"
                    "model: {provider: ollama, model: m, endpoint: 'http://127.0.0.1:11434'}\n"
                    "tools:\n  - plugin: com.brane.units\n")
        os.environ["BRANE_HOME"] = home
        brane = [os.path.join(repo, ".build/release/brane"), "mcp", "serve", "--neuron", neuron,
                 "--plugins", os.path.join(repo, "Plugins")]
        python = [sys.executable, os.path.join(repo, "scripts/bench/python_units_server.py")]
        rows = [("brane mcp serve → sandboxed com.brane.units (Swift plugin)", asyncio.run(measure(brane))),
                ("Python MCP server (mcp low-level Server), same tool in-process", asyncio.run(measure(python)))]
    print(f"| server | start → tools/list answered | tools/call p50 | tools/call p99 |")
    print(f"|---|---|---|---|")
    for name, (ready, p50, p99) in rows:
        print(f"| {name} | {ready * 1000:.1f} ms | {p50 * 1000:.3f} ms | {p99 * 1000:.3f} ms |")
    print(f"\n{CALLS} calls each after 50 warm-up calls; client: MCP Python SDK over stdio.")


if __name__ == "__main__":
    main()

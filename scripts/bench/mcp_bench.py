"""MCP round trips through `brane mcp serve` against a Python MCP server exposing the same
tool, both driven by the official MCP Python SDK client in one run (docs/performance.md).

usage: scripts/bench-mcp   (builds release, then runs this with the SDK's venv)
"""
import asyncio
import json
import os
import subprocess
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


def raw_round_trips(command):
    """The server alone: newline-delimited JSON-RPC written and read directly, no client SDK."""
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)

    def rpc(number, method, params):
        server.stdin.write((json.dumps({"jsonrpc": "2.0", "id": number, "method": method, "params": params}) + "\n").encode())
        return server.stdout.readline()

    rpc(0, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}})
    server.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
    medians = {}
    for method, params in [("ping", {}), ("tools/call", {"name": "convert_units", "arguments": ARGS})]:
        samples = []
        for number in range(1, CALLS + 51):
            started = time.perf_counter()
            rpc(number, method, params)
            samples.append(time.perf_counter() - started)
        samples = sorted(samples[50:])
        medians[method] = samples[len(samples) // 2]
    server.stdin.close()
    server.wait()
    return medians


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
        raw = raw_round_trips(brane)
    print(f"| server | start → tools/list answered | tools/call p50 | tools/call p99 |")
    print(f"|---|---|---|---|")
    for name, (ready, p50, p99) in rows:
        print(f"| {name} | {ready * 1000:.1f} ms | {p50 * 1000:.3f} ms | {p99 * 1000:.3f} ms |")
    print(f"\n{CALLS} calls each after 50 warm-up calls; client: MCP Python SDK over stdio.")
    print(f"\nThe brane server alone (raw JSON-RPC lines, no client SDK), p50: ping {raw['ping'] * 1000:.3f} ms, "
          f"tools/call {raw['tools/call'] * 1000:.3f} ms.")


if __name__ == "__main__":
    main()

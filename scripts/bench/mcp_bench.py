"""MCP round trips through `brane mcp serve` against a Python MCP server exposing the same
tool, both driven by the official MCP Python SDK client in one run (docs/performance.md).

usage: scripts/bench-mcp   (builds release, then runs this with the SDK's venv)
"""
import asyncio
import io
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

CALLS = int(os.environ.get("CALLS", "1000"))
ARGS = {"value": 98.6, "from": "degF", "to": "degC"}


def start_http(command):
    """`command` (a `brane mcp serve`) over Streamable HTTP instead, on a free loopback port:
    the server to stop, its URL and the token."""
    server = subprocess.Popen(command + ["--http", "127.0.0.1:0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Read raw, with a deadline: a server that never says where it listens must not hang the bench.
    deadline, seen, url = time.monotonic() + 30, b"", None
    while url is None:
        ready = select.select([server.stderr], [], [], max(0, deadline - time.monotonic()))[0]
        chunk = os.read(server.stderr.fileno(), 4096) if ready else b""
        if not chunk:
            server.kill()
            sys.exit("mcp serve --http " + ("exited" if ready else "said nothing for 30 s") + " before saying where it listens:\n" + seen.decode(errors="replace"))
        seen += chunk
        line = next((line for line in seen.decode(errors="replace").splitlines() if "/mcp (" in line), None)
        url = line and line.split(" at ")[1].split(" ")[0]
    # Drained from here on, so a server that logs more never blocks on a full pipe.
    threading.Thread(target=lambda: all(iter(lambda: os.read(server.stderr.fileno(), 65536), b"")), daemon=True).start()
    token = subprocess.run([command[0], "mcp", "token"], capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    return server, url, token


def over_http(command):
    """The SDK's Streamable HTTP client transport to `command` served over HTTP, and the server."""
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client
    server, url, token = start_http(command)
    return streamable_http_client(url, http_client=create_mcp_http_client(headers={"Authorization": "Bearer " + token})), server


async def measure(command, http=False):
    server = None
    if http:
        transport, server = over_http(command)
    else:
        transport = stdio_client(StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ)), errlog=open(os.devnull, "w"))
    started = time.perf_counter()
    async with transport as streams:
        async with ClientSession(streams[0], streams[1]) as client:
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
    if server:
        server.terminate()
        server.wait()
    samples.sort()
    return ready, samples[len(samples) // 2], samples[int(len(samples) * 0.99)]


def raw_round_trips(command):
    """The server alone: newline-delimited JSON-RPC written and read directly, no client SDK."""
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
    # Buffered: readline on the unbuffered pipe reads a byte per system call.
    answers = io.BufferedReader(server.stdout)

    def rpc(number, method, params):
        server.stdin.write((json.dumps({"jsonrpc": "2.0", "id": number, "method": method, "params": params}) + "\n").encode())
        return answers.readline()

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


def raw_http_round_trips(command):
    """The server alone over Streamable HTTP: requests on one kept-alive connection with
    http.client, each answer's SSE stream read whole; no client SDK."""
    import http.client
    server, url, token = start_http(command)
    host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port))
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json", "Accept": "application/json, text/event-stream"}

    def post(message):
        connection.request("POST", "/mcp", body=json.dumps(message), headers=headers)
        response = connection.getresponse()
        response.read()
        return response

    opened = post({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                   "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
    headers.update({"Mcp-Session-Id": opened.getheader("Mcp-Session-Id"), "MCP-Protocol-Version": "2025-11-25"})
    post({"jsonrpc": "2.0", "method": "notifications/initialized"})
    medians = {}
    for method, params in [("ping", {}), ("tools/call", {"name": "convert_units", "arguments": ARGS})]:
        samples = []
        for number in range(1, CALLS + 51):
            started = time.perf_counter()
            post({"jsonrpc": "2.0", "id": number, "method": method, "params": params})
            samples.append(time.perf_counter() - started)
        samples = sorted(samples[50:])
        medians[method] = samples[len(samples) // 2]
    connection.close()
    server.terminate()
    server.wait()
    return medians


async def httpx_round_trips(command):
    """The SDK client's HTTP library alone: tools/call POSTs through httpx.AsyncClient, the one
    the SDK's Streamable HTTP transport uses, on one kept-alive connection, each answer read
    whole; no MCP client code. No server can make the SDK's HTTP calls cheaper than this."""
    import httpx
    server, url, token = start_http(command)
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    try:
        async with httpx.AsyncClient() as client:
            opened = await client.post(url, headers=headers, json={"jsonrpc": "2.0", "id": 0, "method": "initialize",
                                       "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
            headers.update({"Mcp-Session-Id": opened.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-11-25"})
            await client.post(url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
            samples = []
            for number in range(1, CALLS + 51):
                started = time.perf_counter()
                answer = await client.post(url, headers=headers, json={"jsonrpc": "2.0", "id": number, "method": "tools/call",
                                                                        "params": {"name": "convert_units", "arguments": ARGS}})
                answer.read()
                samples.append(time.perf_counter() - started)
    finally:
        server.terminate()
        server.wait()
    samples = sorted(samples[50:])
    return samples[len(samples) // 2]


class RawServer:
    """`brane mcp serve` driven with raw JSON-RPC lines: a reader thread hands each answer to
    whoever waits for its id, so many calls can be in flight at once."""

    def __init__(self, command):
        self.server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
        # Buffered, as in raw_round_trips (kept here: dropping it would close the pipe). After the
        # handover nothing is in flight, so the buffer holds nothing the new reader misses.
        self.answers = io.BufferedReader(self.server.stdout)
        self.lock = threading.Lock()
        self.waiting = {}
        self.handover = threading.Event()
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()
        self.call(0, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}).wait()
        self.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')

    def write(self, data):
        with self.lock:
            self.server.stdin.write(data)

    def read(self):
        for line in self.answers:
            if self.handover.is_set():
                return
            answer = json.loads(line)
            with self.lock:
                done = self.waiting.pop(answer.get("id"), None)
            if done:
                done.at = time.perf_counter()
                done.set()

    def call(self, number, method, params):
        done = threading.Event()
        with self.lock:
            self.waiting[number] = done
        self.write((json.dumps({"jsonrpc": "2.0", "id": number, "method": method, "params": params}) + "\n").encode())
        return done

    def close_reader(self):
        """Stops the reader thread (after the next answer) so the caller reads stdout itself."""
        self.handover.set()
        self.call(-1, "ping", {}).wait(0)
        self.reader.join()

    def close(self):
        self.server.stdin.close()
        self.server.wait()


def throughput(command, in_flight, calls):
    """Calls per second with `in_flight` calls outstanding at every moment: one thread writes a
    call whenever fewer are outstanding and reads answers as they come (select), so the client
    costs little next to the server."""
    import select
    server = RawServer(command)
    params = {"name": "convert_units", "arguments": ARGS}
    for number in range(1, 201):  # warm up every instance of the pool
        server.call(number, "tools/call", params).wait()
    server.close_reader()
    request = lambda n: (json.dumps({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": params}) + "\n").encode()
    out, inp = server.server.stdout.fileno(), server.server.stdin
    sent = answered = 0
    pending = b""
    started = time.perf_counter()
    while answered < calls:
        while sent < calls and sent - answered < in_flight:
            sent += 1
            inp.write(request(1000 + sent))
        select.select([out], [], [])
        pending += os.read(out, 1 << 16)
        *lines, pending = pending.split(b"\n")
        answered += len(lines)
    elapsed = time.perf_counter() - started
    server.close()
    return calls / elapsed


def p99_beside_saturated(command, calls, saturating):
    """p50/p99 of the units tool's calls, alone and while `saturating` slow calls of another tool wait."""
    server = RawServer(command)
    params = {"name": "convert_units", "arguments": ARGS}
    for number in range(1, 101):
        server.call(number, "tools/call", params).wait()

    def measure(first):
        samples = []
        for number in range(first, first + calls):
            started = time.perf_counter()
            done = server.call(number, "tools/call", params)
            done.wait()
            samples.append(done.at - started)
        samples.sort()
        return samples[len(samples) // 2], samples[int(len(samples) * 0.99)]

    alone = measure(1000)
    stop = threading.Event()

    def keep_saturated():
        number = 10_000_000
        outstanding = []
        while not stop.is_set():
            while len(outstanding) < saturating:
                number += 1
                outstanding.append(server.call(number, "tools/call", {"name": "slow", "arguments": {}}))
            outstanding[0].wait(1)
            outstanding = [d for d in outstanding if not d.is_set()]

    saturator = threading.Thread(target=keep_saturated, daemon=True)
    saturator.start()
    time.sleep(0.5)
    loaded = measure(100_000)
    stop.set()
    saturator.join()
    server.close()
    return alone, loaded


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
                ("the same over Streamable HTTP (`--http`; from an already listening server)", asyncio.run(measure(brane, http=True))),
                ("Python MCP server (mcp low-level Server), same tool in-process", asyncio.run(measure(python)))]
        raw = raw_round_trips(brane)
        raw_http = raw_http_round_trips(brane)
        httpx_p50 = asyncio.run(httpx_round_trips(brane))

        # A neuron with a pool of 4 units instances and the hostile fixture's slow tool (2 instances).
        plugins = os.path.join(home, "bench-plugins")
        os.makedirs(plugins)
        os.symlink(os.path.join(repo, "Tests/Fixtures/Hostile"), os.path.join(plugins, "test.brane.hostile"))
        pooled = os.path.join(home, "pooled.yaml")
        with open(pooled, "w") as f:
            f.write("apiVersion: brane.dev/v1\nkind: Neuron\nid: bench-pool\nname: Bench\nprivacyTier: 0\n"
                    "model: {provider: ollama, model: m, endpoint: 'http://127.0.0.1:11434'}\n"
                    "tools:\n  - plugin: com.brane.units\n    pool: 4\n  - plugin: test.brane.hostile\n    tools: [slow]\n    pool: 2\n")
        serve_pooled = [os.path.join(repo, ".build/release/brane"), "mcp", "serve", "--neuron", pooled,
                        "--plugins", plugins, "--plugins", os.path.join(repo, "Plugins")]
        rates = {}
        for label, command in [("pool 1", brane), ("pool 4", serve_pooled)]:
            for in_flight in (1, 16):
                rates[(label, in_flight)] = sorted(throughput(command, in_flight, CALLS * 4) for _ in range(3))[1]
        alone, loaded = p99_beside_saturated(serve_pooled, CALLS, 64)
    print(f"| server | start → tools/list answered | tools/call p50 | tools/call p99 |")
    print(f"|---|---|---|---|")
    for name, (ready, p50, p99) in rows:
        print(f"| {name} | {ready * 1000:.1f} ms | {p50 * 1000:.3f} ms | {p99 * 1000:.3f} ms |")
    ratio = rows[1][1][1] / rows[0][1][1]
    print(f"\n{CALLS} calls each after 50 warm-up calls; client: MCP Python SDK over stdio, and its Streamable HTTP client "
          f"for the second row (p50 {ratio:.2f}× the stdio p50; target ≤ 2×).")
    print(f"\nThe brane server alone (raw JSON-RPC lines, no client SDK), p50: ping {raw['ping'] * 1000:.3f} ms, "
          f"tools/call {raw['tools/call'] * 1000:.3f} ms; over Streamable HTTP (http.client, one kept-alive connection): "
          f"ping {raw_http['ping'] * 1000:.3f} ms, tools/call {raw_http['tools/call'] * 1000:.3f} ms "
          f"({raw_http['tools/call'] / raw['tools/call']:.2f}× the stdio call).")
    print(f"\nThe SDK client's HTTP library alone (httpx.AsyncClient, no MCP code), tools/call p50 {httpx_p50 * 1000:.3f} ms: "
          f"{httpx_p50 / rows[0][1][1]:.2f}× the SDK's stdio p50 before any of the SDK's own HTTP transport runs.")
    print(f"\nThroughput (raw JSON-RPC client, {CALLS * 4} calls of convert_units, median of 3 runs):\n")
    print("| units instances | 1 call in flight | 16 calls in flight | ratio |")
    print("|---|---|---|---|")
    for label in ("pool 1", "pool 4"):
        one, many = rates[(label, 1)], rates[(label, 16)]
        print(f"| {label} | {one:.0f} calls/s | {many:.0f} calls/s | {many / one:.2f}× |")
    print(f"\nconvert_units beside a saturated tool (64 calls of the fixture's 300 ms `slow` always waiting for its 2 instances), "
          f"{CALLS} calls: alone p50 {alone[0] * 1000:.3f} ms, p99 {alone[1] * 1000:.3f} ms; "
          f"saturated beside it p50 {loaded[0] * 1000:.3f} ms, p99 {loaded[1] * 1000:.3f} ms ({loaded[1] / alone[1]:.2f}× the p99 alone).")


if __name__ == "__main__":
    main()

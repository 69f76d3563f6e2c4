"""Raw HTTP requests against `brane mcp serve --http`, each of which must be refused in a given
way, and a session's life; prints what came back as JSON for the Swift tests to assert on.

usage: http_refusals.py HOST PORT TOKEN
"""
import http.client
import json
import socket
import sys
import threading
import time

HOST, PORT, TOKEN = sys.argv[1], int(sys.argv[2]), sys.argv[3]
INIT = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                   "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})
LIST = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})


def request(body, headers=None, path="/mcp", method="POST", token=TOKEN):
    connection = http.client.HTTPConnection(HOST, PORT, timeout=20)
    sent = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if token is not None:
        sent["Authorization"] = "Bearer " + token
    sent.update(headers or {})
    connection.request(method, path, body=body, headers=sent)
    response = connection.getresponse()
    text = response.read().decode("utf-8", "replace")
    connection.close()
    return {"status": response.status, "body": text[:600], "session": response.getheader("Mcp-Session-Id"),
            "authenticate": response.getheader("WWW-Authenticate")}


def slow_client():
    """Headers one byte every half second: how long until the server gives up on them."""
    started = time.monotonic()
    sock = socket.create_connection((HOST, PORT))
    sock.settimeout(30)
    head = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n{"
    answer = b""
    try:
        for byte in head:
            sock.send(bytes([byte]))
            time.sleep(0.5)
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass
    return {"seconds": round(time.monotonic() - started, 1), "answer": answer.decode("utf-8", "replace")[:80]}


def oversized_stream():
    """A chunked body that never ends: refused once it passes the bound."""
    sock = socket.create_connection((HOST, PORT))
    sock.settimeout(20)
    sock.send(("POST /mcp HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\n\r\n" % (HOST, PORT, TOKEN)).encode())
    chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    sent = 0
    try:
        for _ in range(200):
            sock.send(chunk)
            sent += 65536
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        answer = sock.recv(4096).decode("utf-8", "replace")
    except (ConnectionResetError, socket.timeout):
        answer = ""
    return {"sentMiB": sent >> 20, "answer": answer[:40]}


def raw(data, read=4096):
    """Bytes written on a connection of their own; the first line of the answer and its headers."""
    sock = socket.create_connection((HOST, PORT))
    sock.settimeout(10)
    started = time.monotonic()
    sock.sendall(data)
    answer = b""
    try:
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(read)
            if not chunk:
                break
            answer += chunk
    except socket.timeout:
        pass
    sock.close()
    head = answer.split(b"\r\n\r\n")[0].decode("utf-8", "replace").lower()
    return {"line": head.split("\r\n")[0], "head": head, "seconds": round(time.monotonic() - started, 2)}


def held_connections(count):
    """`count` connections that never finish their headers, then a client with the token."""
    held = []
    for _ in range(count):
        try:
            sock = socket.create_connection((HOST, PORT))
            sock.send(b"POST /mcp HTTP/1.1\r\nX-Slow: ")
            held.append(sock)
        except OSError:
            break
    time.sleep(0.5)
    started = time.monotonic()
    try:
        status = request(INIT)["status"]
    except OSError as error:
        status = str(error)
    result = {"held": len(held), "status": status, "seconds": round(time.monotonic() - started, 2)}
    for sock in held:
        sock.close()
    return result


def main():
    report = {
        "noToken": request(INIT, token=None),
        "wrongToken": request(INIT, token="0" * 64),
        "tokenPrefix": request(INIT, token=TOKEN[:-1]),
        "basicScheme": request(INIT, headers={"Authorization": "Basic " + TOKEN}, token=None),
        "foreignOrigin": request(INIT, headers={"Origin": "http://evil.example"}),
        "forgedHost": request(INIT, headers={"Host": "rebound.example:%d" % PORT}),
        "otherPath": request(INIT, path="/other"),
        "put": request(INIT, method="PUT"),
        "parseError": request("{not json"),
        "batch": request("[" + LIST + "]"),
        "noSession": request(LIST),
        "unknownSession": request(LIST, headers={"Mcp-Session-Id": "0" * 48}),
        "longID": request(json.dumps({"jsonrpc": "2.0", "id": "x" * 300, "method": "initialize",
                                      "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})),
    }
    # Two spellings of Authorization are one header, and it is no token: refused every time.
    report["caseTwins"] = sorted({raw(("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer junk\r\nauthorization: Bearer %s\r\n"
                                       "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (PORT, TOKEN, len(INIT), INIT)).encode())["line"]
                                  for _ in range(6)})
    # Without the token a body is not read: the refusal comes at once, before the 3 MiB are sent.
    report["unauthorizedBody"] = raw(("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: %d\r\n\r\n" % (PORT, 3 << 20)).encode())
    # HTTP/1.0 has no chunks: a stream's end is the connection's.
    report["http10"] = raw(("POST /mcp HTTP/1.0\r\nHost: 127.0.0.1:%d\r\nConnection: keep-alive\r\nAuthorization: Bearer %s\r\n"
                            "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: %d\r\n\r\n%s"
                            % (PORT, TOKEN, len(INIT), INIT)).encode())
    report["heldConnections"] = held_connections(140)
    # A body larger than the bound, declared: refused before it is read.
    sock = socket.create_connection((HOST, PORT))
    sock.settimeout(20)
    sock.send(("POST /mcp HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
               % (HOST, PORT, TOKEN, 5 << 20)).encode())
    report["declaredTooLarge"] = sock.recv(4096).decode("utf-8", "replace").split("\r\n")[0]
    sock.close()
    report["streamedTooLarge"] = oversized_stream()

    # A session: made by initialize, used, ended by DELETE, gone after.
    opened = request(INIT)
    session = opened["session"]
    report["initialize"] = {"status": opened["status"], "hasSession": bool(session)}
    with_session = {"Mcp-Session-Id": session or "", "MCP-Protocol-Version": "2025-11-25"}
    report["listed"] = request(LIST, headers=with_session)["status"]
    report["deleted"] = request("", headers=with_session, method="DELETE")["status"]
    report["afterDelete"] = request(LIST, headers=with_session)["status"]

    # A slow client does not hold up another.
    slow = {}
    thread = threading.Thread(target=lambda: slow.update(slow_client()))
    thread.start()
    time.sleep(1)
    started = time.monotonic()
    report["servedBesideSlow"] = {"status": request(INIT)["status"], "seconds": round(time.monotonic() - started, 2)}
    thread.join()
    report["slowClient"] = slow

    # At most 16 sessions, none idle long enough to give way: initialize until one is refused.
    for opened in range(20):
        status = request(INIT)["status"]
        if status != 200:
            report["sessionCap"] = {"openedNow": opened, "status": status}
            break

    print(json.dumps(report))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Drives example_legacy_http_server with curl and wrk, as its users' clients would.

Checks the answers of each route, the 504 of the routes that miss the deadline (with the
calls still running cancelled, none left in flight), that a connection idle or trickling past
the read timeout is closed (408 for a partial request) while the others go on, zero non-2xx
answers from wrk at a few connections for 3 s, and that on SIGTERM every request in flight gets its full answer and
the server exits 0 with its loops' shutdown reports.

Usage: client_test.py PATH_TO_example_legacy_http_server
"""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from example_process import ExampleProcess, check, program_path, require_tools, run_checks  # noqa: E402

DEADLINE_MS = 1500
READ_TIMEOUT_MS = 1000


def curl(base, path, method="GET"):
    """(status, body, seconds) of one request."""
    started = time.monotonic()
    result = subprocess.run(["curl", "-sS", "--max-time", "15", "-X", method, "-o", "-",
                             "-w", "\n%{http_code}", base + path],
                            capture_output=True, text=True, timeout=20)
    elapsed = time.monotonic() - started
    check(result.returncode == 0, f"curl {path} failed: {result.stderr.strip()}")
    body, _, status = result.stdout.rpartition("\n")
    print(f"{method} {path} -> {status} in {elapsed * 1000:.0f} ms: {body.strip()[:160]}", flush=True)
    return int(status), body, elapsed


def get_json(base, path, expected_status):
    status, body, elapsed = curl(base, path)
    check(status == expected_status, f"GET {path}: expected {expected_status}, got {status}: {body}")
    return json.loads(body), elapsed


def check_dashboard(base, user):
    document, _ = get_json(base, f"/dashboard?user={user}", 200)
    check(document["user"] == user, f"dashboard for the wrong user: {document}")
    check(document["profile"]["name"] == f"user-{user}", f"profile: {document['profile']}")
    check(document["profile"]["tier"] == ("gold" if user % 2 == 0 else "silver"), f"tier: {document['profile']}")
    check(len(document["orders"]["orders"]) == user % 3 + 1, f"orders: {document['orders']}")
    check(document["recommendations"]["items"] == [f"item-{user + i}" for i in (1, 2, 3)],
          f"recommendations: {document['recommendations']}")


def check_missed_deadline(base, path, expected_outcomes):
    document, elapsed = get_json(base, path, 504)
    check(document["upstream_calls"] == expected_outcomes, f"{path}: outcomes {document['upstream_calls']}")
    check(elapsed < DEADLINE_MS / 1000 + 3, f"{path} took {elapsed:.1f} s for a {DEADLINE_MS} ms deadline")


def check_nothing_in_flight(base):
    """Every upstream call and fan-out task has ended, the loop's counts reconcile, and the
    services have dropped the requests whose client hung up. The counters are read while
    the last requests' tasks may still be finishing on the loops, so they get 5 s to settle."""
    deadline = time.monotonic() + 5
    while True:
        stats, _ = get_json(base, "/stats", 200)
        calls, fanout = stats["upstream_calls"], stats["loops"]["fanout"]
        problems = []
        if calls["in_flight"] != 0:
            problems.append(f"upstream calls still in flight: {calls}")
        if calls["started"] != calls["answered"] + calls["failed"] + calls["cancelled"]:
            problems.append(f"upstream calls do not add up: {calls}")
        if fanout["in_flight"] != 0:
            problems.append(f"fan-out tasks still in flight on the loop: {fanout}")
        if fanout["submitted"] != fanout["completed"] + fanout["failed"] + fanout["cancelled"] + fanout["rejected"]:
            problems.append(f"the fan-out loop's counts do not reconcile: {fanout}")
        if stats["upstream_services"]["open_connections"] != 0:
            problems.append(f"upstream connections stay open: {stats['upstream_services']}")
        if not problems:
            return stats
        check(time.monotonic() < deadline, "; ".join(problems))
        time.sleep(0.05)


def check_malformed_request(base):
    """A request that is not HTTP gets 400 and the connection closes; the server goes on."""
    host, port = base[len("http://"):].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(b"NOT AN HTTP REQUEST\r\n\r\n")
        answer = b""
        while chunk := raw.recv(4096):
            answer += chunk
    status_line = answer.split(b"\r\n", 1)[0].decode(errors="replace")
    print(f"a request that is not HTTP -> {status_line}", flush=True)
    check(status_line.startswith("HTTP/1.1 400"), f"a malformed request got {answer[:200]!r}")


def read_until_closed(base, sent):
    """Sends `sent` on a new connection, then reads until the server closes it: (answer, seconds)."""
    host, port = base[len("http://"):].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        started = time.monotonic()
        raw.sendall(sent)
        answer = b""
        while chunk := raw.recv(4096):
            answer += chunk
        return answer, time.monotonic() - started


def check_read_timeout(base):
    """An idle connection and one whose request trickles in are closed at the read timeout,
    the second with 408; a third connection is served meanwhile."""
    results = {}

    def hold(name, sent):
        results[name] = read_until_closed(base, sent)

    clients = [threading.Thread(target=hold, args=("idle", b"")),
               threading.Thread(target=hold, args=("partial", b"GET /stats HTTP/1.1\r\nHost: x\r\n"))]
    for client in clients:
        client.start()
    get_json(base, "/stats", 200)
    for client in clients:
        client.join(timeout=15)
    check(set(results) == {"idle", "partial"}, f"a connection past the read timeout was not closed: {results}")
    for name, (answer, seconds) in results.items():
        status_line = answer.split(b"\r\n", 1)[0].decode(errors="replace")
        print(f"{name} connection closed after {seconds * 1000:.0f} ms: {status_line or 'no answer'}", flush=True)
        check(READ_TIMEOUT_MS / 1000 * 0.9 <= seconds < READ_TIMEOUT_MS / 1000 + 3,
              f"the {name} connection closed after {seconds:.2f} s for a {READ_TIMEOUT_MS} ms read timeout")
    check(results["idle"][0] == b"", f"the idle connection got {results['idle'][0][:200]!r}")
    check(results["partial"][0].startswith(b"HTTP/1.1 408"), f"a partial request got {results['partial'][0][:200]!r}")


def parse_wrk(output):
    """The counts wrk printed: requests, seconds, non-2xx responses, socket errors."""
    total = re.search(r"(\d+) requests in ([\d.]+)(m?s)", output)
    check(total is not None, f"no request count in wrk's output:\n{output}")
    seconds = float(total.group(2)) / (1000 if total.group(3) == "ms" else 1)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "requests": int(total.group(1)),
        "seconds": seconds,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sum(int(n) for n in errors.groups()) if errors else 0,
    }


def load_test(base):
    """wrk on the dashboard for 3 s at 4 connections, while the slow route times out beside it."""
    slow_results = []
    slow = [threading.Thread(target=lambda: slow_results.append(curl(base, "/dashboard/slow?user=5")[0]))
            for _ in range(2)]
    for thread in slow:
        thread.start()
    result = subprocess.run(["wrk", "-t2", "-c4", "-d3s", "--timeout", "5s", "--latency", base + "/dashboard?user=42"],
                            capture_output=True, text=True, timeout=30)
    for thread in slow:
        thread.join(timeout=20)
    print(result.stdout, flush=True)
    check(result.returncode == 0, f"wrk failed: {result.stderr}")
    counts = parse_wrk(result.stdout)
    print(f"wrk: {counts['requests']} requests in {counts['seconds']:.2f} s "
          f"({counts['requests'] / counts['seconds']:.0f}/s), {counts['non_2xx']} non-2xx, "
          f"{counts['socket_errors']} socket errors", flush=True)
    check(counts["requests"] >= 20, f"wrk got only {counts['requests']} answers in 3 s")
    check(counts["non_2xx"] == 0, f"wrk saw {counts['non_2xx']} non-2xx answers")
    check(counts["socket_errors"] == 0, f"wrk saw {counts['socket_errors']} socket errors")
    check(slow_results == [504, 504], f"the slow route under load answered {slow_results}")


def sigterm_with_requests_in_flight(server, base):
    """Three slow-but-in-time requests are in flight when SIGTERM arrives: all get their answer."""
    answers = []

    def slow_request(user):
        answers.append((user, *curl(base, f"/dashboard?user={user}&delay_ms=700")[:2]))

    requests = [threading.Thread(target=slow_request, args=(user,)) for user in (11, 12, 13)]
    for thread in requests:
        thread.start()
    deadline = time.monotonic() + 5
    while True:  # the /stats request counts itself
        stats, _ = get_json(base, "/stats", 200)
        if stats["requests_in_flight"] >= 4:
            break
        check(time.monotonic() < deadline, f"the slow requests never showed up as in flight: {stats}")
        time.sleep(0.02)
    print("sending SIGTERM with 3 requests in flight", flush=True)
    status = server.stop(timeout=20)
    for thread in requests:
        thread.join(timeout=20)
    check(len(answers) == 3, f"only {len(answers)} of the 3 requests in flight got an answer")
    for user, code, body in answers:
        check(code == 200, f"request in flight at SIGTERM for user {user} answered {code}: {body}")
        check(json.loads(body)["user"] == user, f"wrong answer for user {user}: {body}")
    return status


def main():
    require_tools("curl", "wrk")
    program = program_path()
    with ExampleProcess([program, "--deadline-ms", str(DEADLINE_MS), "--read-timeout-ms", str(READ_TIMEOUT_MS)],
                        "http server") as server:
        base = "http://" + server.wait_for_line(r"listening on http://([\d.]+:\d+)").group(1)

        for user in (7, 8, 9):
            check_dashboard(base, user)
        check_missed_deadline(base, "/dashboard/slow?user=7",
                              {"profile": "answered", "orders": "answered", "recommendations": "cancelled"})
        check_missed_deadline(base, "/dashboard?user=3&delay_ms=5000",
                              {"profile": "cancelled", "orders": "cancelled", "recommendations": "cancelled"})
        stats = check_nothing_in_flight(base)
        check(stats["upstream_services"]["client_hung_up"] >= 4,
              f"the upstream services kept waiting for clients that hung up: {stats['upstream_services']}")
        for path, method, expected in (("/dashboard", "GET", 400), ("/dashboard?user=0", "GET", 400),
                                       ("/dashboard?user=1&delay_ms=99999", "GET", 400),
                                       ("/nowhere", "GET", 404), ("/dashboard?user=1", "POST", 405)):
            status, body, _ = curl(base, path, method)
            check(status == expected, f"{method} {path}: expected {expected}, got {status}: {body}")
        check_malformed_request(base)
        check_read_timeout(base)

        load_test(base)
        check_nothing_in_flight(base)

        status = sigterm_with_requests_in_flight(server, base)
        output = "\n".join(server.output)
        check(status == 0, f"the server exited with status {status}")
        check(re.search(r"SIGTERM: stopping; requests in flight: 3\b", output), "no SIGTERM line with 3 in flight")
        check(re.search(r"every request settled: \d+ received, 0 in flight", output), "requests left in flight")
        check(re.search(r"upstream calls: .* 0 in flight", output), "upstream calls left in flight")
        check("unhandled error" not in output and "session failed" not in output, "errors were reported")
        for loop in ("fanout", "upstreams"):
            report = re.search(rf"shutdown report \({loop} loop\): (.*)", output)
            check(report and "abandoned 0" in report.group(1), f"no clean shutdown report for the {loop} loop")


if __name__ == "__main__":
    run_checks(main)

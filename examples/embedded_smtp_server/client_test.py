#!/usr/bin/env python3
"""Drives example_embedded_smtp_server with Python's standard smtplib.

Checks that mails arrive intact (dot-stuffed lines, empty lines, 8-bit text, several
recipients, the null sender), that malformed and out-of-order commands get SMTP error
replies, that over-long lines and oversized messages are refused while the connection stays
usable, that a silent client is disconnected, that the server listens on loopback only, and
that SIGTERM ends the program cleanly with its shutdown report.

Usage: client_test.py PATH_TO_example_embedded_smtp_server
"""

import json
import os
import re
import smtplib
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from example_process import ExampleProcess, check, program_path, run_checks  # noqa: E402

MAX_MESSAGE = 20_000
IDLE_TIMEOUT_MS = 1000
TIMEOUT = 10  # seconds, for every client socket operation


def wire_form(message):
    """What the server should store for `message` (bytes): CRLF line ends, a final CRLF."""
    data = re.sub(rb"\r?\n", b"\r\n", message)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


class Mailbox:
    """The mails the test expects the program to print, by their X-Test-Id."""

    def __init__(self):
        self.expected = {}

    def message(self, test_id, body):
        return (f"X-Test-Id: {test_id}\r\nSubject: {test_id}\r\n\r\n").encode() + body

    def expect(self, test_id, sender, recipients, message):
        self.expected[test_id] = {"from": sender, "to": recipients, "data": wire_form(message).decode("utf-8")}


def expect_code(reply, code, what):
    check(reply[0] == code, f"{what}: expected {code}, got {reply[0]} {reply[1]!r}")
    print(f"{what} -> {reply[0]} {reply[1].decode(errors='replace')}", flush=True)


def connect(port):
    return smtplib.SMTP("127.0.0.1", port, timeout=TIMEOUT)


def send_intact_mails(port, mailbox, tag):
    body = (b"Lines that start with a dot must survive dot-stuffing:\r\n"
            b".\r\n"
            b"..two dots\r\n"
            b". a dot and a space\r\n"
            b"\r\n"
            b"An empty line above, a long line below.\r\n" + b"x" * 900 + b"\r\n"
            b"8-bit text: caf\xc3\xa9, \xe2\x82\xac 5\r\n"
            b"No final newline")
    with connect(port) as client:
        message = mailbox.message(f"intact-{tag}", body)
        refused = client.sendmail("alice@example.com", ["bob@example.com", "carol@example.org"], message)
        check(refused == {}, f"recipients refused: {refused}")
        mailbox.expect(f"intact-{tag}", "alice@example.com", ["bob@example.com", "carol@example.org"], message)
        print("sent a mail with dot-led lines, 8-bit text and two recipients: accepted", flush=True)

        # HELO instead of EHLO, the null sender, and postmaster without a domain.
        expect_code(client.helo("client.example"), 250, "HELO client.example")
        expect_code(client.mail("<>"), 250, "MAIL FROM:<>")
        expect_code(client.rcpt("postmaster"), 250, "RCPT TO:<postmaster>")
        message = mailbox.message(f"bounce-{tag}", b"A bounce has the null sender.\r\n")
        expect_code(client.data(message), 250, "DATA (null sender)")
        mailbox.expect(f"bounce-{tag}", "", ["postmaster"], message)


def send_concurrently(port, mailbox):
    """Four clients at once, three mails each."""
    errors = []

    def client_thread(number):
        try:
            with connect(port) as client:
                for mail in range(3):
                    test_id = f"concurrent-{number}-{mail}"
                    message = mailbox.message(test_id, f"mail {mail} of client {number}\r\n".encode())
                    client.sendmail(f"client{number}@example.com", ["inbox@example.com"], message)
                    mailbox.expect(test_id, f"client{number}@example.com", ["inbox@example.com"], message)
        except Exception as error:  # reported below, on the main thread
            errors.append(f"client {number}: {error!r}")

    threads = [threading.Thread(target=client_thread, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    check(not errors, f"concurrent clients failed: {errors}")
    print("4 clients sent 3 mails each at once: all accepted", flush=True)


def check_error_replies(port, mailbox):
    with connect(port) as client:
        expect_code(client.docmd("MAIL", "FROM:<a@example.com>"), 503, "MAIL before HELO")
        expect_code(client.docmd("BOGUS"), 500, "unknown command")
        expect_code(client.docmd(""), 500, "empty line")
        expect_code(client.docmd("HELO"), 501, "HELO without a name")
        expect_code(client.docmd("EHLO", "client.example"), 250, "EHLO client.example")
        expect_code(client.docmd("RCPT", "TO:<b@example.com>"), 503, "RCPT before MAIL")
        expect_code(client.docmd("DATA"), 503, "DATA before RCPT")
        expect_code(client.docmd("MAIL", "TO:<a@example.com>"), 501, "MAIL TO:")
        expect_code(client.docmd("MAIL", "FROM:a@example.com"), 501, "MAIL FROM without brackets")
        expect_code(client.docmd("MAIL", "FROM:<not an address>"), 501, "MAIL FROM a bad address")
        expect_code(client.docmd("MAIL", "FROM:<a@example.com> FOO=1"), 555, "MAIL FROM an unknown parameter")
        expect_code(client.docmd("MAIL", "FROM:<a@example.com> SIZE=lots"), 501, "MAIL FROM SIZE=lots")
        expect_code(client.docmd("MAIL", "FROM:<a@example.com> BODY=8BITMIME"), 250, "MAIL FROM BODY=8BITMIME")
        expect_code(client.docmd("MAIL", "FROM:<a@example.com>"), 503, "nested MAIL")
        expect_code(client.docmd("RCPT", "TO:<nobody>"), 501, "RCPT TO a bad address")
        expect_code(client.docmd("RCPT", "TO:<b@example.com> NOTIFY=NEVER"), 555, "RCPT TO an unknown parameter")
        expect_code(client.docmd("DATA", "now"), 501, "DATA with an argument")
        expect_code(client.docmd("RSET", "everything"), 501, "RSET with an argument")
        expect_code(client.docmd("QUIT", "now"), 501, "QUIT with an argument")
        client.send(b"NO\x01OP\r\n")
        expect_code(client.getreply(), 500, "a control character in a command")
        expect_code(client.docmd("NOOP"), 250, "NOOP")
        expect_code(client.docmd("VRFY", "b@example.com"), 252, "VRFY")
        # The transaction opened above is still there: finish it, on the same connection.
        expect_code(client.docmd("RCPT", "TO:<b@example.com>"), 250, "RCPT TO after the errors")
        message = mailbox.message("after-errors", b"Sent after 16 error replies on this connection.\r\n")
        expect_code(client.data(message), 250, "DATA after the errors")
        mailbox.expect("after-errors", "a@example.com", ["b@example.com"], message)

    with connect(port) as client:  # a client that only sends garbage is shown the door
        replies = [client.docmd("BOGUS")[0] for _ in range(19)]
        check(replies == [500] * 19, f"replies to garbage: {replies}")
        expect_code(client.docmd("BOGUS"), 421, "the 20th error")
        check(client.sock.recv(1) == b"", "the connection stayed open after 421")


def check_long_lines(port, mailbox):
    with connect(port) as client:
        client.ehlo("client.example")
        expect_code(client.docmd("NOOP " + "x" * 600), 500, "a 606-byte command line")
        expect_code(client.docmd("NOOP " + "x" * 100_000), 500, "a 100006-byte command line")
        expect_code(client.docmd("NOOP"), 250, "NOOP after the long lines (still in step)")

        expect_code(client.mail("a@example.com"), 250, "MAIL FROM")
        expect_code(client.rcpt("b@example.com"), 250, "RCPT TO")
        expect_code(client.data(b"Subject: long line\r\n\r\n" + b"y" * 5000 + b"\r\n"), 500,
                    "DATA with a 5002-byte line")
        message = mailbox.message("after-long-line", b"A normal mail after a refused one.\r\n")
        client.sendmail("a@example.com", ["b@example.com"], message)
        mailbox.expect("after-long-line", "a@example.com", ["b@example.com"], message)
        print("a normal mail after the long lines: accepted", flush=True)


def check_size_limit(port, mailbox):
    big = b"Subject: big\r\n\r\n" + (b"z" * 70 + b"\r\n") * 500  # 36 kB
    with connect(port) as client:
        try:
            client.sendmail("a@example.com", ["b@example.com"], big)  # announces SIZE=
            check(False, "an oversized mail was accepted")
        except smtplib.SMTPSenderRefused as refused:
            check(refused.smtp_code == 552, f"oversized mail with SIZE=: {refused.smtp_code}")
            print(f"sendmail of 36 kB (limit {MAX_MESSAGE}) -> 552 at MAIL FROM", flush=True)

        expect_code(client.mail("a@example.com"), 250, "MAIL FROM without SIZE=")
        expect_code(client.rcpt("b@example.com"), 250, "RCPT TO")
        expect_code(client.data(big), 552, "DATA of 36 kB without SIZE=")
        message = mailbox.message("after-big", b"A small mail after a refused big one.\r\n")
        client.sendmail("a@example.com", ["b@example.com"], message)
        mailbox.expect("after-big", "a@example.com", ["b@example.com"], message)
        print("a small mail after the oversized ones: accepted", flush=True)


def check_idle_timeout(port):
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        started = time.monotonic()
        received = b""
        while True:
            chunk = raw.recv(4096)
            if not chunk:
                break
            received += chunk
        elapsed = time.monotonic() - started
    lines = received.decode().splitlines()
    check(len(lines) == 2 and lines[0].startswith("220 ") and lines[1].startswith("421 4.4.2"),
          f"a silent client got {lines!r}")
    check(IDLE_TIMEOUT_MS / 1000 * 0.8 <= elapsed < IDLE_TIMEOUT_MS / 1000 + 5,
          f"a silent client was dropped after {elapsed:.2f} s (idle timeout {IDLE_TIMEOUT_MS} ms)")
    print(f"a silent client -> {lines[1]!r} after {elapsed:.2f} s", flush=True)


def received_messages(output):
    messages = {}
    for line in output:
        if line.startswith("message "):
            message = json.loads(line[len("message "):])
            test_id = re.search(r"X-Test-Id: (\S+)", message["data"]).group(1)
            check(test_id not in messages, f"{test_id} delivered twice")
            messages[test_id] = {key: message[key] for key in ("from", "to", "data")}
    return messages


def main():
    program = program_path()
    mailbox = Mailbox()
    with ExampleProcess([program, "--idle-timeout-ms", str(IDLE_TIMEOUT_MS),
                         "--max-message-bytes", str(MAX_MESSAGE)], "smtp server") as server:
        listening = server.wait_for_line(r"smtp listening on ([\d.]+):(\d+)")
        check(listening.group(1) == "127.0.0.1", f"listening on {listening.group(1)}, not loopback")
        port = int(listening.group(2))

        send_intact_mails(port, mailbox, "first")
        send_concurrently(port, mailbox)
        check_error_replies(port, mailbox)
        check_long_lines(port, mailbox)
        check_size_limit(port, mailbox)
        check_idle_timeout(port)
        send_intact_mails(port, mailbox, "last")  # the loop still serves after all of the above

        # A client in the middle of a transaction when SIGTERM arrives: the stop hook closes it.
        lingering = connect(port)
        lingering.ehlo("client.example")
        expect_code(lingering.mail("late@example.com"), 250, "MAIL FROM, then SIGTERM")
        status = server.stop(timeout=20)
        try:
            lingering.noop()
            check(False, "the connection survived the stop hook")
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            print("the lingering client was disconnected by the stop hook", flush=True)

        check(status == 0, f"the program exited with status {status}")
        output = server.output
        text = "\n".join(output)
        check(re.search(r"shutdown report: .*abandoned 0", text), "no clean shutdown report")
        check(re.search(r"0 connections open after the stop hook", text), "connections left open")
        check("unhandled error" not in text and "session failed" not in text, "errors were reported")

        received = received_messages(output)
        for test_id, expected in mailbox.expected.items():
            check(received.get(test_id) == expected,
                  f"{test_id}: expected {expected!r}, received {received.get(test_id)!r}")
        check(len(received) == len(mailbox.expected),
              f"{len(received)} messages printed, {len(mailbox.expected)} sent and accepted")
        print(f"all {len(received)} mails arrived intact; the refused ones did not arrive", flush=True)


if __name__ == "__main__":
    run_checks(main)

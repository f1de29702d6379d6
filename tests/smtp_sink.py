"""A tiny SMTP server for the integration tests (Python's aiosmtpd).

    python3 tests/smtp_sink.py PORT DIR

Listens on 127.0.0.1:PORT and writes every message it receives to DIR/<n>.json as
{mail_from, rcpt_tos, headers: [[name, value], ...], subject, to, text, html}, the text and
HTML parts decoded. Prints "ready" on standard output once it accepts connections.
"""

import email
import email.policy
import json
import os
import sys
import threading
import time

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, folder):
        self.folder = folder
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        text = html = None
        for part in msg.walk():
            ctype = part.get_content_type()
            if ctype == "text/plain" and text is None:
                text = part.get_content()
            elif ctype == "text/html" and html is None:
                html = part.get_content()
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "headers": [[k, str(v)] for k, v in msg.items()],
            "subject": str(msg.get("subject", "")),
            "to": str(msg.get("to", "")),
            "text": text,
            "html": html,
        }
        with self.lock:
            self.count += 1
            n = self.count
        tmp = os.path.join(self.folder, f".{n}.tmp")
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.folder, f"{n}.json"))
        return "250 Message accepted for delivery"


def main():
    port, folder = int(sys.argv[1]), sys.argv[2]
    os.makedirs(folder, exist_ok=True)
    controller = Controller(Sink(folder), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        # Exit when the test process closes our standard input (or after an hour at most).
        deadline = time.time() + 3600
        while time.time() < deadline:
            if not sys.stdin.read(1):
                break
    finally:
        controller.stop()


if __name__ == "__main__":
    main()

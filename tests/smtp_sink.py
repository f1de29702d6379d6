"""A tiny SMTP server for the integration tests (Python's aiosmtpd).

    python3 tests/smtp_sink.py PORT DIR [starttls|tls CERT KEY [USER PASSWORD]]

Listens on 127.0.0.1:PORT and writes every message it receives to DIR/<n>.json as
{mail_from, rcpt_tos, headers: [[name, value], ...], subject, to, text, html, login}, the text
and HTML parts decoded. With `starttls` the server requires STARTTLS, with `tls` it speaks TLS
from the first byte, both with the given certificate; with USER and PASSWORD it also requires
SMTP AUTH with them (`login` records the user). Prints "ready" on standard output once it
accepts connections.
"""

import email
import email.policy
import json
import logging
import os
import ssl
import sys
import threading
import time
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def login_of(session):
    auth = getattr(session, "auth_data", None)
    login = getattr(auth, "login", None)
    return login.decode() if isinstance(login, bytes) else None


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
            "login": login_of(session),
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
    # Refused handshakes and logins are what some tests provoke: keep them out of the output.
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")
    port, folder = int(sys.argv[1]), sys.argv[2]
    mode = sys.argv[3] if len(sys.argv) > 3 else "plain"
    os.makedirs(folder, exist_ok=True)
    kwargs = {}
    if mode in ("starttls", "tls"):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(sys.argv[4], sys.argv[5])
        if mode == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        else:
            kwargs.update(ssl_context=context)
    if len(sys.argv) > 7:
        user, password = sys.argv[6].encode(), sys.argv[7].encode()

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = getattr(auth_data, "login", None) == user and auth_data.password == password
            return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

        kwargs.update(authenticator=authenticator, auth_required=True)
    controller = Controller(Sink(folder), hostname="127.0.0.1", port=port, **kwargs)
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

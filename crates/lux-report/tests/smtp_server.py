"""The local SMTP server of tests/smtp.rs: aiosmtpd on 127.0.0.1:PORT, accepting AUTH PLAIN/LOGIN
for USER/PASSWORD without TLS, refusing recipients at refused.example.net, writing each message it receives to OUT as N.eml (the raw
message) and N.json (envelope, headers and every leaf part, decoded by Python's email package).

Usage: python3 smtp_server.py PORT OUT USER PASSWORD
"""

import email
import email.policy
import json
import os
import signal
import sys
import threading
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

# AUTH without TLS is what the test wants (no certificate to set up); aiosmtpd warns about it.
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")

PORT, OUT, USER, PASSWORD = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]


def authenticator(server, session, envelope, mechanism, auth_data):
    login = auth_data.login.decode()
    ok = login == USER and auth_data.password.decode() == PASSWORD
    return AuthResult(success=ok, auth_data=login if ok else None)


class Handler:
    def __init__(self):
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@refused.example.net"):
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = []
        for part in message.walk():
            if part.is_multipart():
                continue
            content = part.get_content()
            if isinstance(content, bytes):
                content = content.decode("utf-8", "replace")
            parts.append({
                "content_type": part.get_content_type(),
                "disposition": part.get_content_disposition(),
                "filename": part.get_filename(),
                "content": content,
            })
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "authenticated_as": session.auth_data,
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "content_type": message.get_content_type(),
            "parts": parts,
        }
        base = os.path.join(OUT, str(self.count))
        with open(base + ".eml", "wb") as f:
            f.write(envelope.content)
        with open(base + ".json.tmp", "w") as f:
            json.dump(record, f)
        os.rename(base + ".json.tmp", base + ".json")
        return "250 Message accepted for delivery"


controller = Controller(
    Handler(),
    hostname="127.0.0.1",
    port=PORT,
    authenticator=authenticator,
    auth_required=True,
    auth_require_tls=False,
)
controller.start()
print("ready", flush=True)
stopped = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stopped.set())
signal.signal(signal.SIGINT, lambda *_: stopped.set())
stopped.wait()
controller.stop()

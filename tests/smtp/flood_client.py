"""The crash test's client, a separate process: floods the gateway, logs every Message-ID that got
250.

``python tests/smtp/flood_client.py PORT CAFILE LOGIN PASSWORD TO SECONDS SESSIONS LOGFILE``
"""

from __future__ import annotations

import smtplib
import ssl
import sys
import threading
import time
import uuid

ACKED_LOCK = threading.Lock()


def session(
    port: int,
    context: ssl.SSLContext,
    login: str,
    password: str,
    to: str,
    until: float,
    log: object,
    worker: int,
) -> None:
    while time.monotonic() < until:
        try:
            with smtplib.SMTP_SSL("localhost", port, context=context, timeout=5) as client:
                client.login(login, password)
                while time.monotonic() < until:
                    message_id = f"<{uuid.uuid4().hex}.{worker}@flood>"
                    raw = (
                        f"From: {login}\r\nTo: {to}\r\nSubject: flood\r\nMessage-ID: "
                        f"{message_id}\r\n"
                        f"\r\nbody {message_id}\r\n"
                    ).encode()
                    client.sendmail(login, [to], raw)  # raises unless 250
                    with ACKED_LOCK:
                        log.write(message_id + "\n")  # type: ignore[attr-defined]
                        log.flush()  # type: ignore[attr-defined]
        except (OSError, smtplib.SMTPException):
            time.sleep(0.05)


def main() -> None:
    port, cafile, login, password, to, seconds, sessions, logfile = sys.argv[1:9]
    context = ssl.create_default_context(cafile=cafile)
    until = time.monotonic() + float(seconds)
    with open(logfile, "a", encoding="ascii") as log:
        threads = [
            threading.Thread(
                target=session, args=(int(port), context, login, password, to, until, log, n)
            )
            for n in range(int(sessions))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


if __name__ == "__main__":
    main()

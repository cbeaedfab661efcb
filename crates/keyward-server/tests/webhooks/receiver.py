"""A webhook receiver for tests/webhooks.rs: verifies every delivery with the official
Standard Webhooks library and appends what it got to a file, one JSON object a line.

    receiver.py OUT_FILE        (WEBHOOK_SECRET, and optionally PORT, ANSWER in the environment)

Prints its port on the first line of stdout. ANSWER=410 answers every request 410 Gone.
"""

import http.server
import json
import os
import sys

from standardwebhooks.webhooks import Webhook

OUT = sys.argv[1]
HOOK = Webhook(os.environ["WEBHOOK_SECRET"])
ANSWER = int(os.environ.get("ANSWER", "204"))


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (the standard library's name)
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            payload = HOOK.verify(body, headers)
            record = {
                "ok": True,
                "webhook_id": headers.get("webhook-id"),
                "signatures": len(headers.get("webhook-signature", "").split()),
                "type": payload["type"],
                "data": payload["data"],
            }
        except Exception as e:  # noqa: BLE001 (any failure is a bad delivery)
            record = {"ok": False, "error": repr(e)}
        with open(OUT, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        status = ANSWER if record["ok"] else 400
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "0"))), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()

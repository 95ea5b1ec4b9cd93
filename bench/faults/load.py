"""Steady signed SendGrid webhook load that retries like SendGrid and logs every attempt.

Usage:
  load.py keygen --key FILE                  create FILE (a private key) if missing; print the
                                             public key (base64 DER) for SENDGRID_WEBHOOK_PUBLIC_KEY
  load.py run --url URL --key FILE --log LOG --id-prefix ID [--rate 10] [--events 20]
              [--duration 60] [--connections 4] [--retry-grace 30] [--timeout 15] [--url URL2 ...]

`run` posts `rate` bodies a second for `duration` seconds, each a JSON array of `events` SendGrid
events with ids `<ID>-<body:06>-<n:02>` (see `event_ids`); every tenth body carries one event
of an unknown type, which the plugin dead-letters. Every body is signed at the moment it is
sent. A body answered with anything but 2xx (or not answered) is sent again, as SendGrid does,
after 1, 2, then 4 s, until `retry-grace` seconds after the load's end. Each attempt is one JSON
line in LOG, written as it completes: {"seq", "attempt", "status" (0 when there was no answer),
"error", "t0", "t1"} with Unix times. Several --url values are used in turn (body n goes to
url n mod count). The last line is {"done": true, ...totals}.
"""

from __future__ import annotations

import argparse
import heapq
import http.client
import json
import sys
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import p256  # noqa: E402

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
EVENT_TYPES = ("delivered", "open")
# All events fall on one day, so the table has few partitions and each window few objects.
DAY_START = 1_767_225_600  # 2026-01-01T00:00:00Z
MALFORMED_EVERY = 10


def event_ids(prefix: str, seq: int, events: int) -> list[str]:
    """The sg_event_ids of body `seq`, in body order (checked by check.py)."""
    return [f"{prefix}-{seq:06d}-{n:02d}" for n in range(events)]


def is_malformed(seq: int, n: int) -> bool:
    """Whether event n of body seq has an unknown type (a dead letter, not a row)."""
    return seq % MALFORMED_EVERY == 3 and n == 0


def make_body(prefix: str, seq: int, events: int) -> bytes:
    items = []
    for n, sg_event_id in enumerate(event_ids(prefix, seq, events)):
        kind = "teleported" if is_malformed(seq, n) else EVENT_TYPES[(seq + n) % len(EVENT_TYPES)]
        items.append(
            {
                "email": f"user{(seq * events + n) % 997}@example.com",
                "timestamp": DAY_START + seq % 80_000,
                "event": kind,
                "sg_event_id": sg_event_id,
                "sg_message_id": f"msg-{seq:06d}",
                "category": ["faults"],
            }
        )
    return json.dumps(items, separators=(",", ":")).encode()


def load_key(path: Path) -> p256.SigningKey:
    if not path.exists():
        path.write_text(f"{p256.SigningKey.generate().secret:064x}\n")
    return p256.SigningKey(int(path.read_text().strip(), 16))


class Schedule:
    """Bodies due to be sent, earliest first; attempts that failed come back after a delay."""

    def __init__(self, start: float, rate: float, bodies: int, retry_until: float):
        self.queue = [(start + seq / rate, seq, 1) for seq in range(bodies)]
        heapq.heapify(self.queue)
        self.retry_until = retry_until
        self.in_flight = 0
        self.cond = threading.Condition()

    def take(self) -> tuple[int, int] | None:
        with self.cond:
            while True:
                if not self.queue:
                    if self.in_flight == 0:
                        self.cond.notify_all()
                        return None
                    self.cond.wait(0.5)
                    continue
                due, seq, attempt = self.queue[0]
                wait = due - time.time()
                if wait <= 0:
                    heapq.heappop(self.queue)
                    self.in_flight += 1
                    return seq, attempt
                self.cond.wait(min(wait, 0.5))

    def finish(self, seq: int, attempt: int, acked: bool) -> None:
        with self.cond:
            self.in_flight -= 1
            now = time.time()
            if not acked and now < self.retry_until:
                heapq.heappush(self.queue, (now + min(2 ** (attempt - 1), 4), seq, attempt + 1))
            self.cond.notify_all()


def post(conn_box: list, target: urllib.parse.SplitResult, body: bytes, headers: dict, timeout: float):
    """One POST on the worker's kept-alive connection; (status, error)."""
    try:
        if conn_box[0] is None:
            conn_box[0] = http.client.HTTPConnection(target.hostname, target.port, timeout=timeout)
        conn = conn_box[0]
        conn.request("POST", target.path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.getheader("connection", "").lower() == "close":
            conn.close()
            conn_box[0] = None
        return response.status, None
    except (OSError, http.client.HTTPException) as error:
        if conn_box[0] is not None:
            conn_box[0].close()
        conn_box[0] = None
        return 0, f"{type(error).__name__}: {error}"


def run(args: argparse.Namespace) -> None:
    key = load_key(Path(args.key))
    targets = [urllib.parse.urlsplit(url) for url in args.url]
    bodies = int(args.rate * args.duration)
    start = time.time() + 0.2
    schedule = Schedule(start, args.rate, bodies, start + args.duration + args.retry_grace)
    log = open(args.log, "a", buffering=1)
    log_lock = threading.Lock()
    totals: dict[str, int] = {}

    def worker() -> None:
        conns = [[None] for _ in targets]
        while (item := schedule.take()) is not None:
            seq, attempt = item
            body = make_body(args.id_prefix, seq, args.events)
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: p256.sign_webhook(key, timestamp, body),
            }
            which = seq % len(targets)
            t0 = time.time()
            status, error = post(conns[which], targets[which], body, headers, args.timeout)
            t1 = time.time()
            line = {"seq": seq, "attempt": attempt, "status": status, "t0": round(t0, 3), "t1": round(t1, 3)}
            if error:
                line["error"] = error[:200]
            with log_lock:
                log.write(json.dumps(line) + "\n")
                label = str(status) if status else "no answer"
                totals[label] = totals.get(label, 0) + 1
            schedule.finish(seq, attempt, 200 <= status < 300)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.write(json.dumps({"done": True, "bodies": bodies, "events_per_body": args.events, "attempts": totals}) + "\n")
    log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    keygen = commands.add_parser("keygen")
    keygen.add_argument("--key", required=True)
    runner = commands.add_parser("run")
    runner.add_argument("--url", action="append", required=True)
    runner.add_argument("--key", required=True)
    runner.add_argument("--log", required=True)
    runner.add_argument("--id-prefix", required=True)
    runner.add_argument("--rate", type=float, default=10)
    runner.add_argument("--events", type=int, default=20)
    runner.add_argument("--duration", type=float, default=60)
    runner.add_argument("--connections", type=int, default=4)
    runner.add_argument("--retry-grace", type=float, default=30)
    runner.add_argument("--timeout", type=float, default=15)
    args = parser.parse_args()
    if args.command == "keygen":
        print(load_key(Path(args.key)).public_key_base64())
    else:
        run(args)


if __name__ == "__main__":
    main()

"""Samples the chaos soak's hosts every few seconds: RSS, consumer lag, rows and dead letters.

Usage: soak_sample.py --hosts FILE --out SAMPLES.jsonl [--interval 5]

FILE lists the hosts started so far, one `NAME PID PORT` per line (bench/faults/soak.sh appends
to it as hosts come and go). Each tick appends one JSON line to SAMPLES:
{"t": unix seconds, "hosts": {NAME: {"rss_mb", "lag", "rows", "dead_letters"}}} for every host
still alive; `lag` is the sum of sluice_kafka_consumer_lag over its partitions, and a metric the
host did not answer with is null. Runs until it is stopped (SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import time
import urllib.request
from pathlib import Path

METRIC = re.compile(r"^(sluice_kafka_consumer_lag|sluice_sink_rows_total|sluice_dead_letters_total)(\{[^}]*\})? (\S+)$")
FIELDS = {
    "sluice_kafka_consumer_lag": "lag",
    "sluice_sink_rows_total": "rows",
    "sluice_dead_letters_total": "dead_letters",
}


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def metrics(port: int) -> dict[str, float | None]:
    found: dict[str, float | None] = dict.fromkeys(FIELDS.values())
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
            text = answer.read().decode(errors="replace")
    except OSError:
        return found
    for line in text.splitlines():
        match = METRIC.match(line)
        if match:
            field = FIELDS[match.group(1)]
            found[field] = (found[field] or 0) + float(match.group(3))
    return found


def hosts(path: str) -> list[tuple[str, int, int]]:
    listed = []
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return listed
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            listed.append((parts[0], int(parts[1]), int(parts[2])))
    return listed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--interval", type=float, default=5)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(args.out, "a", buffering=1) as out:
        while True:
            tick = time.time()
            sample = {}
            for name, pid, port in hosts(args.hosts):
                rss = rss_mb(pid)
                if rss is not None:
                    sample[name] = {"rss_mb": rss, **metrics(port)}
            out.write(json.dumps({"t": round(tick, 3), "hosts": sample}) + "\n")
            time.sleep(max(0.0, args.interval - (time.time() - tick)))


if __name__ == "__main__":
    main()

"""Reads a fault's events table and dead letters back from S3 and accounts for every acked event.

Usage (the S3 endpoint and keys come from SLUICE_S3_ENDPOINT, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY and AWS_REGION; PREFIX holds `events/` and `dead-letters/`):
  check.py watch  --bucket B --prefix P --log LOG --id-prefix ID --events E --since T
                  --timeout S --out F
      polls until every event acked by time T (Unix seconds) is a row or a dead letter; writes
      {"caught_up_at": time or null}
  check.py verify --bucket B --prefix P --log LOG --id-prefix ID --events E
                  --fault-start T1 --fault-end T2 [--watch F] [--host-log L ...]
                  [--drain-timeout S] --out F
      waits (up to S) until every acked event is stored, then counts: acked, rows, dead letters,
      missing (acked but neither), duplicated rows (split into those SendGrid's own retries
      explain and the rest), answers by status overall and during the fault, table objects and
      windows whose offsets overlap, and windows the hosts' logs say were stored twice

Runs on the project venv's Python with DuckDB (scripts/query-events.sh installs it).
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from xml.etree import ElementTree

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import event_ids, is_malformed  # noqa: E402

OBJECT_NAME = re.compile(r"\+(\d+)\+(\d+)\.parquet$")


def quoted_list(items) -> str:
    return "[" + ", ".join("'" + item.replace("'", "''") + "'" for item in items) + "]"


def list_objects(bucket: str, prefix: str) -> dict[str, str]:
    """Every object under `prefix` with its ETag (ListObjectsV2, signed by curl)."""
    objects, token = {}, None
    while True:
        query = {"list-type": "2", "prefix": prefix}
        if token:
            query["continuation-token"] = token
        url = f"{os.environ['SLUICE_S3_ENDPOINT']}/{bucket}?{urllib.parse.urlencode(query)}"
        answer = subprocess.run(
            [
                "curl",
                "-sS",
                "--fail",
                "--max-time",
                "10",
                "--aws-sigv4",
                f"aws:amz:{os.environ.get('AWS_REGION', 'us-east-1')}:s3",
                "--user",
                f"{os.environ['AWS_ACCESS_KEY_ID']}:{os.environ['AWS_SECRET_ACCESS_KEY']}",
                url,
            ],
            capture_output=True,
            check=False,
        )
        if answer.returncode != 0:
            raise ConnectionError(f"listing s3://{bucket}/{prefix}: {answer.stderr.decode(errors='replace').strip()}")
        root = ElementTree.fromstring(answer.stdout)
        namespace = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        for item in root.iter(f"{namespace}Contents"):
            objects[item.findtext(f"{namespace}Key")] = item.findtext(f"{namespace}ETag") or ""
        if root.findtext(f"{namespace}IsTruncated") != "true":
            return objects
        token = root.findtext(f"{namespace}NextContinuationToken")


def download(bucket: str, keys: list[str], directory: str) -> dict[str, str]:
    """Each object fetched whole by one GET, as {local path: key}. A replay replaces a window's
    objects in place; reading one with ranged requests while it is replaced would mix two
    versions, so the reader only ever sees a copy made by a single request."""
    local = {str(Path(directory) / f"{number}{Path(key).suffix}"): key for number, key in enumerate(keys)}
    command = [
        "curl",
        "-sS",
        "--fail",
        "--max-time",
        "60",
        "--aws-sigv4",
        f"aws:amz:{os.environ.get('AWS_REGION', 'us-east-1')}:s3",
        "--user",
        f"{os.environ['AWS_ACCESS_KEY_ID']}:{os.environ['AWS_SECRET_ACCESS_KEY']}",
    ]
    for path, key in local.items():
        command += ["-o", path, f"{os.environ['SLUICE_S3_ENDPOINT']}/{bucket}/{urllib.parse.quote(key)}"]
    answer = subprocess.run(command, capture_output=True, check=False)
    if answer.returncode != 0:
        raise ConnectionError(f"reading s3://{bucket}/: {answer.stderr.decode(errors='replace').strip()}")
    return local


class StoredEvents:
    """The rows and dead letters under a prefix, read incrementally: an object is read again
    only when its ETag changed (a replay after a failed commit replaces a window's objects
    with the same rows and more)."""

    def __init__(self, bucket: str, prefix: str):
        self.db = duckdb.connect()
        self.bucket = bucket
        self.table = f"{prefix.rstrip('/')}/events/"
        self.letters = f"{prefix.rstrip('/')}/dead-letters/"
        self.etags: dict[str, str] = {}
        self.rows: dict[str, list[tuple[str, int, int]]] = {}  # object -> [(sg_event_id, partition, offset)]
        self.letter_ids: dict[str, list[str]] = {}  # object -> sg_event_ids, in order
        self.trapped: dict[str, int] = {}  # object -> letters the sandbox stopped

    @property
    def trapped_letters(self) -> int:
        return sum(self.trapped.values())

    def _changed(self, prefix: str, suffix: str) -> dict[str, str]:
        """The objects under `prefix` whose ETag differs from the one last read, with their new
        ETags; the caller records those only once it has read the objects."""
        listed = {
            k: e for k, e in list_objects(self.bucket, prefix).items() if k.endswith(suffix) and "/swept/" not in k
        }
        return {k: e for k, e in listed.items() if self.etags.get(k) != e}

    def refresh(self) -> None:
        objects = self._changed(self.table, ".parquet")
        keys = list(objects)
        for start in range(0, len(keys), 200):
            chunk = keys[start : start + 200]
            with tempfile.TemporaryDirectory() as scratch:
                local = download(self.bucket, chunk, scratch)
                found = self.db.execute(
                    f"SELECT filename, sg_event_id, kafka_partition, kafka_offset "
                    f"FROM read_parquet({quoted_list(local)}, filename = true)"
                ).fetchall()
            for key in chunk:
                self.rows[f"s3://{self.bucket}/{key}"] = []
            for name, sg_event_id, partition, offset in found:
                self.rows[f"s3://{self.bucket}/{local[name]}"].append((sg_event_id, partition, offset))
            self.etags.update({key: objects[key] for key in chunk})
        letters = self._changed(self.letters, ".jsonl")
        keys = list(letters)
        for start in range(0, len(keys), 200):
            chunk = keys[start : start + 200]
            with tempfile.TemporaryDirectory() as scratch:
                local = download(self.bucket, chunk, scratch)
                contents = {key: Path(path).read_text() for path, key in local.items()}
            for key, content in contents.items():
                ids, trapped = [], 0
                for line in content.splitlines():
                    if not line.strip():
                        continue
                    letter = json.loads(line)
                    trapped += bool(letter.get("trapped"))
                    ids.extend(letter_event_ids(letter))
                name = f"s3://{self.bucket}/{key}"
                self.letter_ids[name] = ids
                self.trapped[name] = trapped
            self.etags.update({key: letters[key] for key in chunk})

    def row_ids(self) -> collections.Counter:
        return collections.Counter(r[0] for rows in self.rows.values() for r in rows)

    def dead_ids(self) -> collections.Counter:
        return collections.Counter(i for ids in self.letter_ids.values() for i in ids)

    def stored(self) -> set[str]:
        return set(self.row_ids()) | set(self.dead_ids())


def letter_event_ids(letter: dict) -> list[str]:
    """The sg_event_ids in a dead letter's value: one event, or a whole body when a batch trapped."""
    value = letter.get("value")
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return []
    items = parsed if isinstance(parsed, list) else [parsed]
    return [
        item["sg_event_id"] for item in items if isinstance(item, dict) and isinstance(item.get("sg_event_id"), str)
    ]


def read_log(path: str) -> tuple[list[dict], dict | None]:
    attempts, done = [], None
    try:
        with open(path) as log:
            for line in log:
                if not line.endswith("\n"):
                    break  # being written
                record = json.loads(line)
                if record.get("done"):
                    done = record
                else:
                    attempts.append(record)
    except FileNotFoundError:
        pass
    return attempts, done


def acked_ids(attempts: list[dict], id_prefix: str, events: int, until: float | None = None) -> set[str]:
    ids: set[str] = set()
    for attempt in attempts:
        if 200 <= attempt["status"] < 300 and (until is None or attempt["t1"] <= until):
            ids.update(event_ids(id_prefix, attempt["seq"], events))
    return ids


def watch(args: argparse.Namespace) -> None:
    stored = StoredEvents(args.bucket, args.prefix)
    deadline = time.time() + args.timeout
    caught_up_at = None
    while time.time() < deadline:
        attempts, _ = read_log(args.log)
        wanted = acked_ids(attempts, args.id_prefix, args.events, args.since)
        try:
            stored.refresh()
        except (duckdb.Error, ConnectionError) as error:  # S3 down or an object half-listed: try again
            print(f"watch: {str(error)[:200]}", file=sys.stderr)
            time.sleep(1)
            continue
        if wanted <= stored.stored():
            caught_up_at = time.time()
            break
        time.sleep(1)
    Path(args.out).write_text(json.dumps({"caught_up_at": caught_up_at}))


def windows_stored_twice(host_logs: list[str]) -> tuple[int, int]:
    """(windows stored, windows stored more than once) from the hosts' JSON logs."""
    stored = collections.Counter()
    for path in host_logs:
        try:
            lines = open(path, errors="replace").read().splitlines()
        except FileNotFoundError:
            continue
        for line in lines:
            if '"window stored"' not in line:
                continue
            try:
                fields = json.loads(line)
            except ValueError:
                continue
            stored[(fields.get("topic"), fields.get("partition"), fields.get("first_offset"))] += 1
    return len(stored), sum(1 for count in stored.values() if count > 1)


def overlapping_windows(stored: StoredEvents) -> tuple[int, int]:
    """(windows, windows whose offsets reach into the next window of their partition)."""
    windows: dict[tuple[int, int], list[int]] = {}
    for name, rows in stored.rows.items():
        match = OBJECT_NAME.search(name)
        if not match:
            continue
        key = (int(match.group(1)), int(match.group(2)))
        offsets = windows.setdefault(key, [key[1], key[1]])
        for _, _, offset in rows:
            offsets[0], offsets[1] = min(offsets[0], offset), max(offsets[1], offset)
    overlaps = 0
    by_partition = collections.defaultdict(list)
    for (partition, first), span in windows.items():
        by_partition[partition].append((first, span))
    for spans in by_partition.values():
        spans.sort()
        for (first, span), (next_first, _) in zip(spans, spans[1:], strict=False):
            overlaps += span[1] >= next_first or span[0] < first
    return len(windows), overlaps


def topic_event_ids(brokers: str, topic: str) -> set[str] | None:
    """Every sg_event_id in the topic, read from the start to its end; None if some record
    could not be read as a body of events (so nothing can be said about what the topic lost)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": brokers, "group.id": f"faults-check-{time.time_ns()}", "enable.auto.commit": False}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        positions = dict.fromkeys(partitions, 0)
        ids: set[str] = set()
        deadline = time.time() + 60
        while any(positions[p] < ends[p] for p in partitions) and time.time() < deadline:
            for message in consumer.consume(num_messages=500, timeout=1):
                if message.error():
                    continue
                positions[message.partition()] = message.offset() + 1
                try:
                    body = message.value() or b""
                    events = json.loads(gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body)
                except ValueError:
                    return None
                for item in events if isinstance(events, list) else [events]:
                    if isinstance(item, dict) and isinstance(item.get("sg_event_id"), str):
                        ids.add(item["sg_event_id"])
        return ids if all(positions[p] >= ends[p] for p in partitions) else None
    finally:
        consumer.close()


def verify(args: argparse.Namespace) -> None:
    started = time.time()
    attempts, done = read_log(args.log)
    acked = acked_ids(attempts, args.id_prefix, args.events)
    stored = StoredEvents(args.bucket, args.prefix)
    drained_at = None
    while time.time() - started < args.drain_timeout:
        try:
            stored.refresh()
            if acked <= stored.stored():
                drained_at = time.time()
                break
        except (duckdb.Error, ConnectionError) as error:
            print(f"verify: {str(error)[:200]}", file=sys.stderr)
        time.sleep(1)
    time.sleep(args.settle)  # anything extra (a late duplicate) would show up now
    stored = StoredEvents(args.bucket, args.prefix)
    for _attempt in range(30):
        try:
            stored.refresh()
            break
        except (duckdb.Error, ConnectionError) as error:
            print(f"verify: {str(error)[:200]}", file=sys.stderr)
            time.sleep(1)
    else:
        raise SystemExit("verify: could not read the table and dead letters back from S3")

    rows, dead = stored.row_ids(), stored.dead_ids()
    sends = collections.Counter(a["seq"] for a in attempts)
    acked_bodies = {a["seq"] for a in attempts if 200 <= a["status"] < 300}
    seq_of = {i: seq for seq in sends for i in event_ids(args.id_prefix, seq, args.events)}
    missing = sorted(acked - set(rows) - set(dead))
    # An acked event the topic does not hold was lost by the broker after it acknowledged the
    # write (tansu, stopped while it answered produce requests): sluice answers 2xx only after
    # that acknowledgement, so only events still in the topic count against it.
    lost_by_broker: list[str] = []
    if missing and args.brokers and args.topic:
        in_topic = topic_event_ids(args.brokers, args.topic)
        if in_topic is not None:
            lost_by_broker = [i for i in missing if i not in in_topic]
    duplicate_rows = sum(count - 1 for count in rows.values() if count > 1)
    unexplained = sum(count - 1 for i, count in rows.items() if count > 1 and sends.get(seq_of.get(i), 0) < 2)
    in_both = sorted(set(rows) & set(dead))
    expected_malformed = sum(1 for seq in acked_bodies for n in range(args.events) if is_malformed(seq, n))
    statuses = collections.Counter(str(a["status"]) for a in attempts)
    during = collections.Counter(
        str(a["status"]) for a in attempts if a["t1"] >= args.fault_start and a["t0"] <= args.fault_end
    )
    windows, overlaps = overlapping_windows(stored)
    logged_windows, twice = windows_stored_twice(args.host_log or [])
    watch = json.loads(Path(args.watch).read_text()) if args.watch and Path(args.watch).exists() else {}
    caught_up = watch.get("caught_up_at")
    resumed = min((a["t1"] for a in attempts if 200 <= a["status"] < 300 and a["t0"] >= args.fault_end), default=None)
    load_end = max((a["t1"] for a in attempts), default=None)
    result = {
        "bodies": done["bodies"] if done else None,
        "events_per_body": args.events,
        "attempts": len(attempts),
        "bodies_sent_more_than_once": sum(1 for count in sends.values() if count > 1),
        "acked_bodies": len(acked_bodies),
        "acked": len(acked),
        "rows": sum(rows.values()),
        "acked_as_rows": len(acked & set(rows)),
        "dead_letters": sum(dead.values()),
        "acked_as_dead_letters": len(acked & set(dead) - set(rows)),
        "expected_malformed": expected_malformed,
        "trapped_letters": stored.trapped_letters,
        "missing": len(missing),
        "missing_sample": missing[:20],
        "lost_by_broker": len(lost_by_broker),
        "duplicates": duplicate_rows + len(in_both),
        "duplicate_rows": duplicate_rows,
        "duplicates_not_from_retries": unexplained,
        "rows_and_dead_letters": len(in_both),
        "stored_not_acked": len((set(rows) | set(dead)) - acked),
        "statuses": dict(statuses),
        "statuses_during_fault": dict(during),
        "refused_503": statuses.get("503", 0),
        "other_refusals": sum(c for s, c in statuses.items() if s not in ("503",) and not s.startswith("2")),
        "objects": len(stored.rows),
        "windows": windows,
        "overlapping_windows": overlaps,
        "windows_logged": logged_windows,
        "windows_stored_twice": twice,
        "fault_start": args.fault_start,
        "fault_end": args.fault_end,
        "ack_resumed_s": round(resumed - args.fault_end, 1) if resumed else None,
        "caught_up_s": round(caught_up - args.fault_end, 1) if caught_up else None,
        "drained_after_load_s": round(drained_at - load_end, 1) if drained_at and load_end else None,
    }
    parts = [v for v in (result["ack_resumed_s"], result["caught_up_s"]) if v is not None]
    result["recovery_s"] = max(parts) if parts else None
    lost_by_sluice = len(missing) - len(lost_by_broker)
    result["lossless"] = lost_by_sluice == 0 and unexplained == 0 and not in_both and overlaps == 0
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(
        json.dumps(
            {
                k: result[k]
                for k in (
                    "acked",
                    "acked_as_rows",
                    "dead_letters",
                    "missing",
                    "lost_by_broker",
                    "duplicates",
                    "refused_503",
                    "recovery_s",
                    "lossless",
                )
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("watch", "verify"):
        command = commands.add_parser(name)
        command.add_argument("--bucket", required=True)
        command.add_argument("--prefix", required=True)
        command.add_argument("--log", required=True)
        command.add_argument("--id-prefix", required=True)
        command.add_argument("--events", type=int, required=True)
        command.add_argument("--out", required=True)
    commands.choices["watch"].add_argument("--since", type=float, required=True)
    commands.choices["watch"].add_argument("--timeout", type=float, default=180)
    verify_command = commands.choices["verify"]
    verify_command.add_argument("--fault-start", type=float, required=True)
    verify_command.add_argument("--fault-end", type=float, required=True)
    verify_command.add_argument("--watch")
    verify_command.add_argument("--host-log", action="append")
    verify_command.add_argument("--drain-timeout", type=float, default=120)
    verify_command.add_argument("--settle", type=float, default=4)
    verify_command.add_argument("--brokers", help="where to read --topic back for missing events")
    verify_command.add_argument("--topic", help="the topic the webhook wrote; see topic_event_ids")
    args = parser.parse_args()
    {"watch": watch, "verify": verify}[args.command](args)


if __name__ == "__main__":
    main()

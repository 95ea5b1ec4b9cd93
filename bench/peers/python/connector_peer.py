"""Peer of sluice's Kafka → normalize → Parquet-on-S3 connector, in plain Python.

What it measures: how fast a competent single-process Python consumer (confluent-kafka,
orjson, pyarrow, boto3) turns SendGrid webhook bodies from a Kafka topic into the same
Hive-partitioned Snappy Parquet table sluice writes, with the same at-least-once contract:
offsets are committed only after a window's files are uploaded.

Per Kafka partition, events are gathered into a window that closes at --window-events events
or --window-seconds of age. Each event is normalized exactly like the sluice plugin
`normalize-sendgrid-events` (see sendgrid_events.py), deduplicated on sg_event_id within the
window (first wins, like the plugin plus the sink's dedupe_by_key), and grouped by its
`dt=YYYY-MM-DD/event=<type>/` partition. A closed window is encoded (Snappy, as sluice)
and uploaded by a worker thread while the main thread consumes the next one; its offset is
committed once every object of it is stored. Refused events and bodies go as JSON lines (the
shape of sluice's dead letters) under --dead-letter-prefix. Object names are deterministic
from topic+partition+first offset, as sluice names them, so a replay overwrites.

Stops once --expected-events events (elements of bodies, plus one per body that is no
array) are read and every window has closed by its own limits, or after --idle-seconds without
a new record (tansu's high watermarks are not
reliable, so "lag 0" is observed as "nothing new for N seconds"). `seconds` runs from the
first record received to the last commit, so neither group joining nor the idle wait counts.

S3 from the environment: AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3), AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION; path-style addressing. The bucket is created if missing.

Usage:
  eval "$(scripts/services.sh env)"
  .run/bench/venv/bin/python bench/peers/python/connector_peer.py \
      --brokers 127.0.0.1:9092 --topic pypeer_events --group pypeer_connector \
      --bucket pypeer-bench --prefix events --expected-events 1000000

Prints one JSON line:
{"events", "rows", "dead_letters", "seconds", "events_per_s", "peak_rss_mb"} plus the number
of objects written and the duplicates skipped.
"""

import argparse
import io
import json
import os
import resource
import sys
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime

import boto3
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from botocore.config import Config
from botocore.exceptions import ClientError
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from sendgrid_events import DATA_SCHEMA, BodyError, EventError, normalize_event, parse_body

PLUGIN_VERSION = "normalize-sendgrid-events@python-peer"


class Window:
    """One Kafka partition's events since its last commit, grouped by Hive partition."""

    def __init__(self, topic: str, partition: int, first_offset: int):
        self.topic = topic
        self.partition = partition
        self.first_offset = first_offset
        self.last_offset = first_offset
        self.opened_at = time.monotonic()
        self.events = 0
        self.rows = 0
        self.duplicates = 0
        self.seen_event_ids: set[str] = set()
        # (dt, event) → one list per data column.
        self.columns: dict[tuple[str, str], list[list]] = {}
        self.dead_letters: list[bytes] = []

    def add(self, offset: int, key: bytes | None, value: bytes) -> None:
        """Normalizes one webhook body into the window."""
        self.last_offset = offset
        try:
            events = parse_body(value)
        except BodyError as error:
            self.events += 1
            self._dead_letter(offset, key, value, str(error), part=False)
            return
        self.events += len(events)
        for element, event in enumerate(events):
            try:
                row = normalize_event(event, element)
            except EventError as error:
                self._dead_letter(offset, key, orjson.dumps([event]), str(error), part=True)
                continue
            sg_event_id = row[5]
            if sg_event_id in self.seen_event_ids:
                self.duplicates += 1
                continue
            self.seen_event_ids.add(sg_event_id)
            columns = self.columns.get(row[:2])
            if columns is None:
                columns = self.columns[row[:2]] = [[] for _ in DATA_SCHEMA.names]
            # The row has the data columns; the last four, lineage, are filled below.
            for column, cell in zip(columns, row[2:], strict=False):
                column.append(cell)
            columns[-4].append(self.topic)
            columns[-3].append(self.partition)
            columns[-2].append(offset)
            columns[-1].append(PLUGIN_VERSION)
            self.rows += 1

    def _dead_letter(self, offset: int, key: bytes | None, value: bytes, reason: str, part: bool) -> None:
        letter = {
            "topic": self.topic,
            "partition": self.partition,
            "offset": offset,
            "key": None if key is None else key.decode(errors="replace"),
            "value": value.decode(errors="replace"),
            "part": part,
            "reason": reason,
            "step": "normalize-sendgrid-events",
            "plugin_version": PLUGIN_VERSION,
            "trapped": False,
            "failed_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        self.dead_letters.append(orjson.dumps(letter))

    def is_due(self, max_events: int, max_seconds: float) -> bool:
        return self.events >= max_events or time.monotonic() - self.opened_at >= max_seconds


class WindowUploader:
    """Encodes and uploads closed windows on worker threads, in order."""

    def __init__(self, bucket: str, prefix: str, dead_letter_prefix: str, workers: int):
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3")
        self.s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=os.environ.get("AWS_REGION", "us-east-1"),
            config=Config(s3={"addressing_style": "path"}, max_pool_connections=workers * 4),
        )
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.dead_letter_prefix = dead_letter_prefix.strip("/")
        self.encoders = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode")
        self.puts = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="put")
        self.objects = 0

    def ensure_bucket(self) -> None:
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.s3.create_bucket(Bucket=self.bucket)

    def submit(self, window: Window) -> Future:
        return self.encoders.submit(self._store, window)

    def _store(self, window: Window) -> None:
        name = f"{window.topic}+{window.partition}+{window.first_offset:020d}"
        puts = []
        for (dt, event), columns in window.columns.items():
            table = pa.Table.from_arrays(
                [pa.array(values, type=field.type) for values, field in zip(columns, DATA_SCHEMA, strict=True)],
                schema=DATA_SCHEMA,
            )
            buffer = io.BytesIO()
            pq.write_table(table, buffer, compression="snappy")
            key = f"{self.prefix}/dt={dt}/event={event}/{name}.parquet"
            puts.append(self.puts.submit(self._put, key, buffer.getvalue()))
        if window.dead_letters:
            body = b"\n".join(window.dead_letters) + b"\n"
            puts.append(self.puts.submit(self._put, f"{self.dead_letter_prefix}/{name}.jsonl", body))
        for put in puts:
            put.result()
        self.objects += len(puts)

    def _put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)

    def close(self) -> None:
        self.encoders.shutdown()
        self.puts.shutdown()


class Totals:
    def __init__(self):
        self.events = self.rows = self.dead_letters = self.duplicates = 0

    def add(self, window: Window) -> None:
        self.events += window.events
        self.rows += window.rows
        self.dead_letters += len(window.dead_letters)
        self.duplicates += window.duplicates


def run(args: argparse.Namespace) -> dict:
    uploader = WindowUploader(args.bucket, args.prefix, args.dead_letter_prefix, args.upload_threads)
    uploader.ensure_bucket()
    consumer = Consumer(
        {
            "bootstrap.servers": args.brokers,
            "group.id": args.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "fetch.max.bytes": 64 << 20,
            "max.partition.fetch.bytes": 16 << 20,
        }
    )
    windows: dict[int, Window] = {}
    # Closed windows being stored, oldest first; committed in this order once stored.
    in_flight: deque[tuple[Window, Future]] = deque()
    totals = Totals()

    def on_revoke(_consumer, partitions):
        # Uncommitted work of a revoked partition is dropped; its new owner reads it again.
        for revoked in partitions:
            windows.pop(revoked.partition, None)

    def commit_stored(block: bool) -> None:
        while in_flight and (block or in_flight[0][1].done()):
            window, future = in_flight.popleft()
            future.result()
            consumer.commit(
                offsets=[TopicPartition(window.topic, window.partition, window.last_offset + 1)],
                asynchronous=False,
            )
            totals.add(window)

    def close_window(partition: int) -> None:
        window = windows.pop(partition)
        # Bound memory: at most one window encoding while the next one fills.
        while len(in_flight) >= args.max_in_flight:
            in_flight[0][1].result()
            commit_stored(block=False)
        in_flight.append((window, uploader.submit(window)))

    consumer.subscribe([args.topic], on_revoke=on_revoke)
    first_record_at = None
    last_record_at = time.monotonic()
    events_seen = 0
    try:
        while True:
            messages = consumer.consume(num_messages=500, timeout=0.2)
            now = time.monotonic()
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(error)
                if first_record_at is None:
                    first_record_at = now
                partition = message.partition()
                window = windows.get(partition)
                if window is None:
                    window = windows[partition] = Window(message.topic(), partition, message.offset())
                before = window.events
                window.add(message.offset(), message.key(), message.value())
                events_seen += window.events - before
                if window.events >= args.window_events:
                    close_window(partition)
            if messages:
                last_record_at = now
            for partition in [p for p, w in windows.items() if w.is_due(args.window_events, args.window_seconds)]:
                close_window(partition)
            commit_stored(block=False)
            # Windows close by their own limits, as a long-running consumer's do (and as
            # sluice's and bare-connector's): once every expected event is read, the open ones
            # are left to reach their age.
            if args.expected_events and events_seen >= args.expected_events and not windows:
                break
            if args.idle_seconds and first_record_at is not None and now - last_record_at >= args.idle_seconds:
                break
        for partition in list(windows):
            close_window(partition)
        commit_stored(block=True)
        finished_at = time.monotonic()
    finally:
        consumer.close()
        uploader.close()
    seconds = finished_at - (first_record_at or finished_at)
    return {
        "events": totals.events,
        "rows": totals.rows,
        "dead_letters": totals.dead_letters,
        "duplicates_skipped": totals.duplicates,
        "objects": uploader.objects,
        "seconds": round(seconds, 2),
        "events_per_s": round(totals.events / seconds) if seconds > 0 else None,
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", required=True, help="key prefix of the Parquet table")
    parser.add_argument("--dead-letter-prefix", help="key prefix of dead letters (default: PREFIX-dead-letters)")
    stop = parser.add_mutually_exclusive_group(required=True)
    stop.add_argument("--expected-events", type=int, help="stop after this many events")
    stop.add_argument("--idle-seconds", type=float, help="stop after this long without a new record")
    parser.add_argument("--window-events", type=int, default=100_000)
    parser.add_argument("--window-seconds", type=float, default=10.0)
    parser.add_argument("--upload-threads", type=int, default=8)
    parser.add_argument("--max-in-flight", type=int, default=1, help="closed windows stored at once")
    args = parser.parse_args()
    if args.dead_letter_prefix is None:
        args.dead_letter_prefix = args.prefix.rstrip("/") + "-dead-letters"
    try:
        result = run(args)
    except (KafkaException, ClientError) as error:
        sys.exit(f"connector_peer: {error}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

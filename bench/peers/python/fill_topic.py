"""Fills a Kafka topic with SendGrid event webhook bodies for the Kafka → Parquet benchmark.

Writes EVENTS events as bodies (JSON arrays, one Kafka record each) of BODY events, seeded so
every run writes the same records. Events are realistic SendGrid shapes (processed,
delivered, deferred, open, click, bounce/blocked, dropped, spamreport, unsubscribe,
group_unsubscribe, group_resubscribe; see plugins/normalize-sendgrid-events/samples/), each
with a unique sg_event_id, and about 1% of them malformed in ways the normalization refuses
(no sg_event_id, a string timestamp, an unknown event type, a non-object element, a
non-integer asm_group_id), so a consumer should write EVENTS - malformed rows.

Usage:
  python fill_topic.py --brokers 127.0.0.1:9092 --topic pypeer_events --events 1000000 \
      [--body 100] [--partitions 1] [--seed 11] [--malformed 0.01]

Creates the topic if it does not exist. Prints one JSON line:
{"topic", "events", "bodies", "malformed", "expected_rows", "bytes", "seconds"}.
"""

import argparse
import json
import random
import sys
import time

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

BASE_TIMESTAMP = 1_717_200_000  # 2024-06-01T00:00:00Z; events spread over four days.
SPREAD_SECONDS = 4 * 86_400

# (event type, weight): roughly a transactional sender's mix.
EVENT_MIX = (
    ("processed", 24),
    ("delivered", 23),
    ("open", 20),
    ("click", 10),
    ("deferred", 5),
    ("bounce", 4),
    ("dropped", 3),
    ("unsubscribe", 3),
    ("group_unsubscribe", 3),
    ("group_resubscribe", 2),
    ("spamreport", 1),
)
CATEGORIES = ("orders", "receipts", "newsletter", "password-reset", "onboarding")
DOMAINS = ("example.com", "example.org", "example.net", "mail.example")
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (via ggpht.com GoogleImageProxy)",
)


class EventFactory:
    """Seeded SendGrid events with unique ids."""

    def __init__(self, seed: int, malformed_share: float):
        self.rng = random.Random(seed)
        self.malformed_share = malformed_share
        self.types = [name for name, _ in EVENT_MIX]
        self.weights = [weight for _, weight in EVENT_MIX]
        self.serial = 0
        self.malformed = 0

    def next(self):
        rng = self.rng
        self.serial += 1
        serial = self.serial
        event_type = rng.choices(self.types, self.weights)[0]
        message = serial // 4
        event = {
            "email": f"user{rng.randrange(200_000)}@{rng.choice(DOMAINS)}",
            "timestamp": BASE_TIMESTAMP + rng.randrange(SPREAD_SECONDS),
            "smtp-id": f"<{message:x}.{serial % 997:x}@ismtpd-{rng.randrange(1000)}>",
            "event": event_type,
            "category": rng.choice(CATEGORIES) if rng.random() < 0.6 else rng.sample(CATEGORIES, 2),
            "sg_event_id": f"ev-{serial:010d}-{rng.getrandbits(40):010x}",
            "sg_message_id": f"msg-{message:09d}.filter{rng.randrange(10_000):04d}",
            "mail_id": f"mail-{message:09d}",
        }
        if rng.random() < 0.3:
            event["tenant"] = rng.choice(("eu-1", "us-1", "ap-1"))
        self._add_type_fields(event, event_type)
        if rng.random() < self.malformed_share:
            self.malformed += 1
            return self._break(event)
        return event

    def _add_type_fields(self, event: dict, event_type: str) -> None:
        rng = self.rng
        if event_type == "delivered":
            event.update(response="250 OK", tls=1, ip=f"198.51.100.{rng.randrange(256)}")
            event["pool"] = {"name": "transactional", "id": 210}
        elif event_type == "deferred":
            event.update(response="400 try again later", attempt=str(rng.randint(1, 10)), tls=0)
        elif event_type in ("open", "click"):
            event.update(useragent=rng.choice(USER_AGENTS), ip=f"203.0.113.{rng.randrange(256)}")
            event["sg_machine_open"] = event_type == "open" and rng.random() < 0.3
            if event_type == "click":
                event["url"] = f"https://shop.example/orders/{rng.randrange(100_000)}"
                event["url_offset"] = {"index": rng.randrange(3), "type": "html"}
        elif event_type == "bounce":
            blocked = rng.random() < 0.4
            event.update(
                type="blocked" if blocked else "bounce",
                status="5.7.1" if blocked else "5.1.1",
                reason="550 5.7.1 Message rejected due to local policy" if blocked else "550 5.1.1 User unknown",
                bounce_classification="Reputation" if blocked else "Invalid Address",
                tls=1,
            )
        elif event_type == "dropped":
            event["reason"] = rng.choice(("Bounced Address", "Unsubscribed Address", "Spam Reporting Address"))
        elif event_type in ("group_unsubscribe", "group_resubscribe"):
            event["asm_group_id"] = rng.choice((42, "42", 7))
        if rng.random() < 0.05:
            event.update(marketing_campaign_id=9000 + rng.randrange(20), marketing_campaign_name="Spring sale")

    def _break(self, event: dict):
        kind = self.rng.randrange(5)
        if kind == 0:
            del event["sg_event_id"]
        elif kind == 1:
            event["timestamp"] = str(event["timestamp"])
        elif kind == 2:
            event["event"] = event["event"] + "ed"
        elif kind == 3:
            return event["event"]
        else:
            event["asm_group_id"] = "forty-two"
        return event


def ensure_topic(brokers: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": brokers})
    if topic in admin.list_topics(timeout=10).topics:
        return
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    try:
        futures[topic].result(timeout=30)
    except KafkaException as error:
        if "TOPIC_ALREADY_EXISTS" not in str(error):
            raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--body", type=int, default=100, help="events per webhook body (Kafka record)")
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--malformed", type=float, default=0.01, help="share of malformed events")
    args = parser.parse_args()

    ensure_topic(args.brokers, args.topic, args.partitions)
    producer = Producer(
        {
            "bootstrap.servers": args.brokers,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 20,
            "batch.size": 1_000_000,
        }
    )
    failures = []

    def on_delivery(error, _message):
        if error is not None:
            failures.append(error)

    factory = EventFactory(args.seed, args.malformed)
    started = time.monotonic()
    bodies = sent_bytes = 0
    remaining = args.events
    while remaining > 0:
        count = min(args.body, remaining)
        body = json.dumps([factory.next() for _ in range(count)], separators=(",", ":")).encode()
        while True:
            try:
                producer.produce(args.topic, body, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
        remaining -= count
        bodies += 1
        sent_bytes += len(body)
    if producer.flush(120) > 0 or failures:
        sys.exit(f"fill_topic: {len(failures)} records failed, first: {failures[:1]}")
    print(
        json.dumps(
            {
                "topic": args.topic,
                "events": args.events,
                "bodies": bodies,
                "malformed": factory.malformed,
                "expected_rows": args.events - factory.malformed,
                "bytes": sent_bytes,
                "seconds": round(time.monotonic() - started, 2),
            }
        )
    )


if __name__ == "__main__":
    main()

"""Peer of sluice's webhook → Kafka path: FastAPI + confluent-kafka, answering after delivery.

What it measures: requests/s and latency of a well-written Python service that accepts a
SendGrid event webhook (`POST /webhook`, body a JSON array), produces the raw body to Kafka
with acks=all and idempotence, and answers 200 only once the broker has acknowledged the
record (503 if delivery fails or the producer queue is full, 400 if the body is no JSON
array). No signature verification, no plugin: the same work as the bare axum + rdkafka peer.

Each uvicorn worker owns one Producer. A daemon thread polls it, and delivery callbacks
resolve the request's asyncio future with loop.call_soon_threadsafe, so the event loop never
blocks on the broker and many requests wait for their acks at once.

Run (2 workers, as in the benchmark):
  PEER_TOPIC=pypeer_webhook KAFKA_BROKERS=127.0.0.1:9092 \
  .run/bench/venv/bin/python bench/peers/python/webhook_peer.py --port 8090 --workers 2
or, the same thing through uvicorn's CLI:
  PEER_TOPIC=pypeer_webhook KAFKA_BROKERS=127.0.0.1:9092 \
  .run/bench/venv/bin/uvicorn webhook_peer:app --app-dir bench/peers/python \
      --host 127.0.0.1 --port 8090 --workers 2 --loop uvloop --http httptools --no-access-log
The port also comes from PEER_PORT when --port is not given (default 8090);
PEER_DELIVERY_TIMEOUT_MS bounds the wait for an ack (default 30000, then 503). The topic should
exist before the run (fill_topic.py or the benchmark script creates it).
"""

import argparse
import asyncio
import os
import threading
from contextlib import asynccontextmanager

import orjson
import uvicorn
from confluent_kafka import KafkaException, Producer
from fastapi import FastAPI, Request
from fastapi.responses import Response

TOPIC = os.environ.get("PEER_TOPIC", "pypeer_webhook")
BROKERS = os.environ.get("KAFKA_BROKERS", "127.0.0.1:9092")
# A request waits at most this long for its ack, then answers 503 (librdkafka's default is 5 min).
DELIVERY_TIMEOUT_MS = int(os.environ.get("PEER_DELIVERY_TIMEOUT_MS", "30000"))


class DeliveringProducer:
    """A Producer whose deliveries are awaitable from one asyncio loop."""

    def __init__(self, brokers: str, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.producer = Producer(
            {
                "bootstrap.servers": brokers,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 1,
                "message.timeout.ms": DELIVERY_TIMEOUT_MS,
                "queue.buffering.max.messages": 200_000,
            }
        )
        self.running = True
        self.poller = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
        self.poller.start()

    def _poll(self) -> None:
        while self.running:
            self.producer.poll(0.05)

    def deliver(self, topic: str, value: bytes) -> asyncio.Future:
        """Produces `value`; the future resolves once the broker acknowledged it.

        Raises BufferError when the local queue is full, KafkaException on a produce error.
        """
        future = self.loop.create_future()

        def on_delivery(error, _message):
            if error is None:
                self.loop.call_soon_threadsafe(_resolve, future, None)
            else:
                self.loop.call_soon_threadsafe(_resolve, future, KafkaException(error))

        self.producer.produce(topic, value, on_delivery=on_delivery)
        return future

    def close(self) -> None:
        self.producer.flush(10)
        self.running = False
        self.poller.join()


def _resolve(future: asyncio.Future, error: Exception | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.producer = DeliveringProducer(BROKERS, asyncio.get_running_loop())
    yield
    app.state.producer.close()


app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)


def _error(status: int, message: str) -> Response:
    return Response(orjson.dumps({"error": message}), status_code=status, media_type="application/json")


@app.post("/webhook")
async def webhook(request: Request) -> Response:
    body = await request.body()
    try:
        events = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _error(400, "the body is not JSON")
    if not isinstance(events, list):
        return _error(400, "the body is not a JSON array of events")
    producer: DeliveringProducer = request.app.state.producer
    try:
        await producer.deliver(TOPIC, body)
    except BufferError:
        return _error(503, "the Kafka producer queue is full; retry later")
    except KafkaException as error:
        return _error(503, f"Kafka did not store the events: {error}")
    return Response(b'{"stored":true}', status_code=200, media_type="application/json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PEER_PORT", "8090")))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    uvicorn.run(
        "webhook_peer:app",
        app_dir=os.path.dirname(os.path.abspath(__file__)),
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()

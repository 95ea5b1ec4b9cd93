"""Accounts for every event the chaos soak's webhook acknowledged, and writes its table.

Usage: soak_check.py --bucket B --prefix P --log LOAD.csv --id-prefix ID --events E
                     --faults FAULTS.jsonl --samples SAMPLES.jsonl --load-summary SUMMARY.json
                     --metrics-url URL [--brokers B --topic T] [--host-log L ...] [--meta k=v ...]
                     --json OUT.json --markdown OUT.md

First waits until the pipeline has drained: the host at --metrics-url reports no consumer lag and
its rows and dead letters have not changed for longer than a file window. Then reads, with
DuckDB, the attempts `soak-load` logged (LOAD.csv), every row of the table under P/events/ and
every dead letter under P/dead-letters/ (straight from S3; each object's LastModified is when it
was stored), and counts: acked events; rows and dead letters among them; lost (acked, neither a
row nor a dead letter); duplicated rows, split into those SendGrid's own retries explain (the
body was sent more than once) and the rest; events stored both as a row and a dead letter;
answers by status. Per fault (FAULTS.jsonl, from bench/faults/soak.sh): the answers and p99
latency while it lasted, when the webhook acked again after it, and when every event acked
before its end was stored; latency inside the faults (from each start until its recovery) and
outside them; RSS over time from SAMPLES.jsonl (bench/faults/soak_sample.py).

Event ids are `<ID>-<body:09>-<n:03>`, as bench/harness's soak-load makes them. Exit status 1
when an acked event is lost or a row is duplicated beyond what retries explain.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import re
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check import windows_stored_twice  # noqa: E402
from report import typed  # noqa: E402

DESCRIPTIONS = {
    "broker": "tansu frozen (SIGSTOP) {outage_s} s, then resumed",
    "s3": "SeaweedFS stopped {outage_s} s (the table's and dead letters' store)",
    "kill": "host SIGKILLed mid-window, restarted",
    "group": "second host joins the group, killed after {outage_s} s",
    "plugin": "plugin swapped to one trapping on every batch for {outage_s} s, then back",
    "canary": "canary trapping on every batch on 2 of 4 partitions, rolled back by the host",
}


def list_stored(db: duckdb.DuckDBPyConnection, bucket: str, prefix: str) -> list[tuple[str, float]]:
    """(s3 URL, LastModified as Unix seconds) of every object under `prefix`; DuckDB lists them
    and asks for each one's metadata without reading its content."""
    return db.execute(
        f"SELECT filename, epoch(last_modified) FROM read_blob({quoted(f's3://{bucket}/{prefix}**')})"
    ).fetchall()


def host_metrics(url: str) -> dict[str, float] | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            text = answer.read().decode(errors="replace")
    except OSError:
        return None
    found = {"lag": 0.0, "stored": 0.0}
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name == "sluice_kafka_consumer_lag":
            found["lag"] += float(line.rsplit(" ", 1)[1])
        elif name in ("sluice_sink_rows_total", "sluice_dead_letters_total"):
            found["stored"] += float(line.rsplit(" ", 1)[1])
    return found


def drain(url: str, quiet_s: float, timeout_s: float) -> float:
    """Seconds until the host had no lag and stored nothing new for `quiet_s`."""
    started = time.time()
    last, since = None, time.time()
    while time.time() - started < timeout_s:
        seen = host_metrics(url)
        if seen is not None:
            if seen != last:
                last, since = seen, time.time()
            elif seen["lag"] == 0 and time.time() - since >= quiet_s:
                return round(since - started, 1)
        time.sleep(1)
    raise SystemExit(f"soak_check: the pipeline did not drain within {timeout_s:.0f} s (last: {last})")


def connect() -> duckdb.DuckDBPyConnection:
    import duckdb_extension_httpfs

    # Beside a broker holding the whole soak in memory: a bounded memory, the rest spilled to disk.
    db = duckdb.connect(
        config={
            "memory_limit": "3GB",
            "temp_directory": tempfile.mkdtemp(prefix="soak-check-"),
        }
    )
    db.execute("SET enable_progress_bar = false")
    db.load_extension(
        glob.glob(os.path.join(duckdb_extension_httpfs.__path__[0], "extensions/*/httpfs.duckdb_extension"))[0]
    )
    endpoint = os.environ["SLUICE_S3_ENDPOINT"].removeprefix("http://")
    db.execute(
        f"""CREATE SECRET (TYPE s3, KEY_ID '{os.environ["AWS_ACCESS_KEY_ID"]}',
        SECRET '{os.environ["AWS_SECRET_ACCESS_KEY"]}', REGION '{os.environ.get("AWS_REGION", "us-east-1")}',
        ENDPOINT '{endpoint}', URL_STYLE 'path', USE_SSL false)"""
    )
    return db


def quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def load_tables(db: duckdb.DuckDBPyConnection, args: argparse.Namespace) -> None:
    prefix = args.prefix.rstrip("/")
    ids = quoted(args.id_prefix + "-")
    db.execute(
        f"""CREATE TABLE attempts AS SELECT * FROM read_csv({quoted(args.log)}, header = true,
        columns = {{'seq': 'BIGINT', 'attempt': 'INTEGER', 'status': 'INTEGER', 't0': 'DOUBLE', 't1': 'DOUBLE'}})"""
    )
    objects = list_stored(db, args.bucket, f"{prefix}/")
    db.execute("CREATE TABLE objects (url VARCHAR, stored_at DOUBLE)")
    db.executemany("INSERT INTO objects VALUES (?, ?)", objects)
    tables = [u for u, _ in objects if u.endswith(".parquet") and "/events/" in u]
    letters = [
        u
        for u, _ in objects
        if u.endswith(".jsonl") and "/dead-letters/" in u and "/swept/" not in u and "/shadow/" not in u
    ]
    db.execute("CREATE TABLE row_ids (sg_event_id VARCHAR, filename VARCHAR)")
    db.execute("CREATE TABLE letter_ids (sg_event_id VARCHAR, filename VARCHAR, trapped BOOLEAN)")
    for start in range(0, len(tables), 2000):
        chunk = ", ".join(quoted(u) for u in tables[start : start + 2000])
        db.execute(
            f"""INSERT INTO row_ids SELECT sg_event_id, filename FROM read_parquet([{chunk}], filename = true,
            hive_partitioning = false) WHERE starts_with(sg_event_id, {ids})"""
        )
    pattern = quoted('"sg_event_id"\\s*:\\s*"(' + re.escape(args.id_prefix) + '-[0-9]{9}-[0-9]{3})"')
    for start in range(0, len(letters), 2000):
        chunk = ", ".join(quoted(u) for u in letters[start : start + 2000])
        db.execute(
            f"""INSERT INTO letter_ids SELECT unnest(regexp_extract_all(value, {pattern}, 1)), filename, trapped
            FROM read_json([{chunk}], format = 'newline_delimited', filename = true,
                           columns = {{'value': 'VARCHAR', 'trapped': 'BOOLEAN'}})"""
        )
    for name, table in (("row_ids", "event_rows"), ("letter_ids", "event_letters")):
        db.execute(
            f"""CREATE TABLE {table} AS SELECT CAST(substr(sg_event_id, -13, 9) AS BIGINT) AS seq,
            CAST(right(sg_event_id, 3) AS INTEGER) AS n, count(*) AS copies, min(o.stored_at) AS stored_at
            FROM {name} JOIN objects o ON o.url = {name}.filename GROUP BY ALL"""
        )
    db.execute(
        """CREATE TABLE stored AS SELECT seq, n, min(stored_at) AS stored_at FROM
        (SELECT seq, n, stored_at FROM event_rows UNION ALL SELECT seq, n, stored_at FROM event_letters) GROUP BY ALL"""
    )
    db.execute(
        """CREATE TABLE bodies AS SELECT seq, count(*) AS sends,
        min(t1) FILTER (WHERE status BETWEEN 200 AND 299) AS acked_at FROM attempts GROUP BY seq"""
    )


def one(db: duckdb.DuckDBPyConnection, sql: str):
    return db.execute(sql).fetchone()[0]


def account(db: duckdb.DuckDBPyConnection, args: argparse.Namespace) -> dict:
    events = args.events
    acked_bodies = one(db, "SELECT count(*) FROM bodies WHERE acked_at IS NOT NULL")
    acked_stored = one(db, "SELECT count(*) FROM stored JOIN bodies USING (seq) WHERE acked_at IS NOT NULL")
    missing = acked_bodies * events - acked_stored
    missing_sample = []
    if missing:
        missing_sample = [
            f"{args.id_prefix}-{seq:09d}-{n:03d}"
            for seq, n in db.execute(
                f"""SELECT b.seq, g.n FROM bodies b, range({events}) g(n) WHERE b.acked_at IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM stored s WHERE s.seq = b.seq AND s.n = g.n) ORDER BY 1, 2 LIMIT 20"""
            ).fetchall()
        ]
    statuses = dict(
        db.execute("SELECT CAST(status AS VARCHAR), count(*) FROM attempts GROUP BY 1 ORDER BY 1").fetchall()
    )
    return {
        "bodies": one(db, "SELECT count(*) FROM bodies"),
        "events_per_body": events,
        "attempts": one(db, "SELECT count(*) FROM attempts"),
        "bodies_sent_more_than_once": one(db, "SELECT count(*) FROM bodies WHERE sends > 1"),
        "acked_bodies": acked_bodies,
        "acked": acked_bodies * events,
        "rows": one(db, "SELECT coalesce(sum(copies), 0) FROM event_rows"),
        "acked_as_rows": one(db, "SELECT count(*) FROM event_rows JOIN bodies USING (seq) WHERE acked_at IS NOT NULL"),
        "dead_letters": one(db, "SELECT coalesce(sum(copies), 0) FROM event_letters"),
        "acked_as_dead_letters": one(
            db,
            """SELECT count(*) FROM event_letters l JOIN bodies USING (seq) WHERE acked_at IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM event_rows r WHERE r.seq = l.seq AND r.n = l.n)""",
        ),
        "trapped_letters": one(db, "SELECT count(*) FROM letter_ids WHERE trapped"),
        "lost": missing,
        "lost_sample": missing_sample,
        "duplicate_rows": one(db, "SELECT coalesce(sum(copies - 1), 0) FROM event_rows WHERE copies > 1"),
        "duplicates_not_from_retries": one(
            db,
            "SELECT coalesce(sum(copies - 1), 0) FROM event_rows JOIN bodies USING (seq) "
            "WHERE copies > 1 AND sends < 2",
        ),
        "rows_and_dead_letters": one(db, "SELECT count(*) FROM event_rows JOIN event_letters USING (seq, n)"),
        "stored_not_acked": one(
            db, "SELECT count(*) FROM stored LEFT JOIN bodies USING (seq) WHERE bodies.acked_at IS NULL"
        ),
        "statuses": statuses,
        "refused_503": statuses.get("503", 0),
        "no_answer": statuses.get("0", 0),
        "other_refusals": sum(c for s, c in statuses.items() if s not in ("0", "503") and not s.startswith("2")),
        "objects": one(db, "SELECT count(*) FROM objects"),
    }


def latency(db: duckdb.DuckDBPyConnection, where: str) -> dict:
    p50, p99, answered = db.execute(
        f"""SELECT quantile_cont(t1 - t0, 0.5), quantile_cont(t1 - t0, 0.99), count(*) FROM attempts
        WHERE status <> 0 AND ({where})"""
    ).fetchone()
    return {
        "p50_ms": None if p50 is None else round(p50 * 1000, 1),
        "p99_ms": None if p99 is None else round(p99 * 1000, 1),
        "answered": answered,
    }


def faults(db: duckdb.DuckDBPyConnection, windows: list[dict]) -> list[dict]:
    """Per fault: answers and latency while it lasted, and how long recovery took."""
    results = []
    for window in windows:
        start, end = window["start"], window["end"]
        during = f"t1 >= {start} AND t0 <= {end}"
        resumed = one(db, f"SELECT min(t1) FROM attempts WHERE status BETWEEN 200 AND 299 AND t0 >= {end}")
        # Every event acked before the fault's end stored: the last of them to be stored (a
        # window stored again after a replay counts at its last store).
        caught_up = one(
            db,
            f"""SELECT max(s.stored_at) FROM stored s JOIN bodies b USING (seq)
            WHERE b.acked_at <= {end} AND s.stored_at >= {start} - 60""",
        )
        ack_resumed_s = None if resumed is None else round(max(resumed - end, 0), 1)
        caught_up_s = None if caught_up is None else round(max(caught_up - end, 0), 1)
        parts = [v for v in (ack_resumed_s, caught_up_s) if v is not None]
        recovery = max(parts) if parts else None
        statuses = dict(
            db.execute(
                f"SELECT CAST(status AS VARCHAR), count(*) FROM attempts WHERE {during} GROUP BY 1 ORDER BY 1"
            ).fetchall()
        )
        results.append(
            {
                **window,
                "duration_s": round(end - start, 1),
                "statuses": statuses,
                "refused": sum(c for s, c in statuses.items() if not s.startswith("2")),
                "ack_resumed_s": ack_resumed_s,
                "caught_up_s": caught_up_s,
                "recovery_s": recovery,
                "recovered_at": None if recovery is None else end + recovery,
                **latency(db, f"t1 >= {start} AND t0 <= {end + (recovery or 0)}"),
            }
        )
    return results


def acked_per_stretch(db: duckdb.DuckDBPyConnection, events: int, stretch_s: int = 300) -> list[dict]:
    """Acked events/s in each stretch of the run (by when the answer came), to show whether the
    path kept its pace from start to end."""
    rows = db.execute(
        f"""SELECT CAST(floor((t1 - (SELECT min(t0) FROM attempts)) / {stretch_s}) AS INTEGER) AS stretch,
        count(*) FILTER (WHERE status BETWEEN 200 AND 299) FROM attempts GROUP BY 1 ORDER BY 1"""
    ).fetchall()
    return [
        {"from_s": stretch * stretch_s, "acked_events_per_s": round(acked * events / stretch_s)}
        for stretch, acked in rows
    ]


def rss_over_time(samples_path: str, started: float) -> tuple[list[dict], dict]:
    series, peaks = [], {}
    try:
        lines = Path(samples_path).read_text().splitlines()
    except OSError:
        return series, peaks
    for line in lines:
        try:
            sample = json.loads(line)
        except ValueError:
            continue
        hosts = {name: host.get("rss_mb") for name, host in sample.get("hosts", {}).items()}
        lag = sum(host.get("lag") or 0 for host in sample.get("hosts", {}).values())
        series.append({"s": round(sample["t"] - started), "rss_mb": hosts, "lag": lag})
        for name, rss in hosts.items():
            if rss is not None:
                peaks[name] = max(peaks.get(name, 0), rss)
    return series, peaks


def number(value, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}" if isinstance(value, float) or digits else f"{value:,}"


def markdown(result: dict) -> str:
    meta, totals, lat = result["meta"], result["totals"], result["latency"]
    lines = [
        "## Chaos soak",
        "",
        f"_`bench/faults.sh --soak`, run {meta.get('run_id')} (git {meta.get('git')}, {meta.get('host_profile')} host) "
        f"on {result['machine']}, written {result['written']}._",
        "",
        f"The sendgrid-events pipeline as `pipelines/sendgrid-events.toml` configures it (signed webhook → Kafka → "
        f"normalize-sendgrid-events → Parquet on S3, file windows of {number(meta.get('rotate_ms'))} ms) for "
        f"{number(meta.get('seconds'))} s at {number(meta.get('rate_events_per_s'))} events/s offered: "
        f"{number(float(meta.get('share', 0)) * 100)} % of {number(meta.get('capacity_events_per_s'))} events/s, the "
        "capacity of the path measured end to end on this machine at the start of the run, on the same host and "
        f"services ({number(meta.get('calibration_s'))} s with 64 requests in flight; the lower of the events/s "
        f"{str(meta.get('capacity_source')).replace('_', ' ')}, after a third of that time). "
        "The broker is tansu with its log in memory (its S3-backed log fetches slower the more batches a "
        "partition holds), so the broker fault freezes it rather than restarting it. "
        "`soak-load` sends bodies of 100 realistic events (1 % malformed, so dead letters), each signed when sent, "
        "and sends a body again after 1, 2, then 4 s when it is not answered 2xx, as SendGrid does. Each fault comes "
        "once, in a slot of its own, a third of the way in; *refused* counts answers other than 2xx (and attempts "
        "with no answer); *recovery* runs from the fault's end until the webhook acked again and every event acked "
        "before the end was stored (objects' LastModified). Acked events are accounted for in the table and dead "
        "letters with DuckDB.",
        "",
        "| offered events/s | acked events/s | acked events | rows | dead letters | lost | duplicates beyond retries "
        "| duplicates from retries | refused (503 / other / no answer) | p50 / p99 ms outside faults "
        "| p50 / p99 ms inside faults "
        "| peak RSS MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
        f"| {number(meta.get('rate_events_per_s'))} | {number(result['acked_events_per_s'])} | "
        f"{number(totals['acked'])} | {number(totals['acked_as_rows'])} | {number(totals['acked_as_dead_letters'])} | "
        f"**{number(totals['lost'])}** | **{number(totals['duplicates_not_from_retries'])}** | "
        f"{number(totals['duplicate_rows'] - totals['duplicates_not_from_retries'])} | "
        f"{number(totals['refused_503'])} / {number(totals['other_refusals'])} / {number(totals['no_answer'])} | "
        f"{number(lat['outside']['p50_ms'])} / {number(lat['outside']['p99_ms'])} | "
        f"{number(lat['inside']['p50_ms'])} / {number(lat['inside']['p99_ms'])} | "
        f"{number(max(result['peak_rss_mb'].values(), default=None), 1)} |",
        "",
        "| fault | at min | lasted s | refused | p50 / p99 ms | webhook acked again after s | all acked before its end "
        "stored after s | recovery s | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    started = result["started"]
    for fault in result["faults"]:
        description = DESCRIPTIONS.get(fault["fault"], fault["fault"]).format(**meta)
        lines.append(
            f"| {description} | {number((fault['start'] - started) / 60, 1)} | {number(fault['duration_s'], 1)} | "
            f"{number(fault['refused'])} | {number(fault['p50_ms'])} / {number(fault['p99_ms'])} | "
            f"{number(fault['ack_resumed_s'], 1)} | "
            f"{number(fault['caught_up_s'], 1)} | {number(fault['recovery_s'], 1)} | {fault.get('note') or ''} |"
        )
    stretches = result.get("acked_per_stretch") or []
    if stretches:
        lines += [
            "",
            "Acked events/s by stretch of 5 minutes (by when the answer came; the last stretch is partial): "
            + ", ".join(f"{number(s['from_s'] // 60)} min: {number(s['acked_events_per_s'])}" for s in stretches)
            + ".",
        ]
    series = result["rss_series"]
    names = sorted({name for point in series for name in point["rss_mb"]})
    if series:
        step = max(1, len(series) // 30)
        lines += [
            "",
            "RSS over time (MB; " + ", ".join(names) + "; every "
            f"{number(series[step]['s'] - series[0]['s'] if len(series) > step else 0)} s) and consumer lag (records):",
            "",
            "| s | " + " | ".join(f"{name} RSS MB" for name in names) + " | lag |",
            "|---:|" + "---:|" * len(names) + "---:|",
        ]
        for point in series[::step]:
            cells = " | ".join(number(point["rss_mb"].get(name), 1) for name in names)
            lines.append(f"| {number(point['s'])} | {cells} | {number(point['lag'])} |")
    verdict = (
        "Every acked event was stored once"
        if result["lossless"]
        else f"**{number(totals['lost'])} acked events lost, {number(totals['duplicates_not_from_retries'])} "
        "unexplained duplicates**"
    )
    lines += [
        "",
        f"{verdict}; windows the hosts logged as stored twice: {totals['windows_stored_twice']} of "
        f"{totals['windows_logged']} (a replay after a failed commit replaces the same objects).",
        "",
    ]
    return "\n".join(lines)


def targets(result: dict) -> list[list]:
    """[bench, target, measured, met] rows for the targets table of bench/RESULTS.md."""
    meta, totals = result["meta"], result["totals"]
    bench = f"chaos soak, {number(float(meta.get('seconds', 0)) / 60)} min, every fault + a canary"
    capacity = float(meta.get("capacity_events_per_s") or 0)
    share = result["acked_events_per_s"] / capacity if capacity else None
    canary = [f for f in result["faults"] if f["fault"] == "canary"]
    return [
        [
            bench,
            "acked events/s ≥ 50 % of the path's measured capacity",
            f"{number(share * 100 if share else None, 1)} % ({number(result['acked_events_per_s'])} of "
            f"{number(capacity)} events/s)",
            share is not None and share >= 0.5,
        ],
        [bench, "0 acked events lost", number(totals["lost"]), totals["lost"] == 0],
        [
            bench,
            "0 duplicates beyond SendGrid's retries",
            number(totals["duplicates_not_from_retries"]),
            totals["duplicates_not_from_retries"] == 0,
        ],
        [
            bench,
            "the canary rolled back by the host",
            canary[0].get("note") if canary else "no canary",
            bool(canary) and "rolled back" in (canary[0].get("note") or ""),
        ],
    ]


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("--bucket", "--prefix", "--log", "--id-prefix", "--faults", "--samples", "--load-summary"):
        parser.add_argument(name, required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--metrics-url", required=True)
    parser.add_argument("--drain-timeout", type=float, default=900)
    parser.add_argument("--no-drain", action="store_true", help="count at once (to count a finished run again)")
    parser.add_argument("--brokers")
    parser.add_argument("--topic")
    parser.add_argument("--host-log", action="append", default=[])
    parser.add_argument("--meta", action="append", default=[])
    parser.add_argument("--json", required=True)
    parser.add_argument("--markdown", required=True)
    parser.add_argument("--targets", required=True, help="the target rows for bench/RESULTS.md, as JSON")
    args = parser.parse_args()
    meta = {k: typed(v) for k, v in (item.split("=", 1) for item in args.meta)}

    quiet = float(meta.get("rotate_ms", 10000)) / 1000 * 1.5 + 3
    drained_s = None if args.no_drain else drain(args.metrics_url, quiet, args.drain_timeout)
    print(f"soak_check: drained {drained_s} s after the load; reading the table back", file=sys.stderr)
    db = connect()
    load_tables(db, args)
    totals = account(db, args)
    if totals["lost"] and args.brokers and args.topic:
        totals["lost_sample_in_topic"] = in_topic(args.brokers, args.topic, totals["lost_sample"])
    logged, twice = windows_stored_twice(args.host_log)
    totals.update(windows_logged=logged, windows_stored_twice=twice)
    windows = [json.loads(line) for line in Path(args.faults).read_text().splitlines() if line.strip()]
    per_fault = faults(db, windows)
    inside = " OR ".join(f"(t1 >= {f['start']} AND t0 <= {f['recovered_at'] or f['end']})" for f in per_fault)
    started = one(db, "SELECT min(t0) FROM attempts")
    ended = one(db, "SELECT max(t1) FROM attempts")
    summary = json.loads(Path(args.load_summary).read_text())
    series, peaks = rss_over_time(args.samples, started)
    result = {
        "meta": meta,
        "machine": machine(),
        "written": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "started": started,
        "ended": ended,
        "drained_after_load_s": drained_s,
        "load": summary,
        # Over the time the load really took: a schedule that fell behind ran longer than planned.
        "acked_events_per_s": round(totals["acked"] / (ended - started)),
        "totals": totals,
        "faults": per_fault,
        "latency": {
            "inside": latency(db, inside or "false"),
            "outside": latency(db, f"NOT ({inside})" if inside else "true"),
        },
        "acked_per_stretch": acked_per_stretch(db, args.events),
        "rss_series": series,
        "peak_rss_mb": peaks,
    }
    result["lossless"] = totals["lost"] == 0 and totals["duplicates_not_from_retries"] == 0
    Path(args.json).write_text(json.dumps(result, indent=1))
    Path(args.targets).write_text(json.dumps(targets(result), indent=1) + "\n")
    Path(args.markdown).write_text(markdown(result))
    print(
        json.dumps(
            {
                k: totals[k]
                for k in (
                    "acked",
                    "acked_as_rows",
                    "acked_as_dead_letters",
                    "lost",
                    "duplicates_not_from_retries",
                    "refused_503",
                    "no_answer",
                )
            }
        )
    )
    sys.exit(0 if result["lossless"] else 1)


def in_topic(brokers: str, topic: str, ids: list[str]) -> dict[str, bool]:
    """Whether each of a few lost ids is in the topic at all (a broker that lost an acknowledged
    write, rather than sluice); a byte search of every record, so only for a short list."""
    from confluent_kafka import Consumer, TopicPartition

    wanted = {i: i.encode() for i in ids}
    found = dict.fromkeys(ids, False)
    consumer = Consumer(
        {"bootstrap.servers": brokers, "group.id": f"soak-check-{time.time_ns()}", "enable.auto.commit": False}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        positions = dict.fromkeys(partitions, 0)
        deadline = time.time() + 900
        while any(positions[p] < ends[p] for p in partitions) and time.time() < deadline:
            for message in consumer.consume(num_messages=500, timeout=1):
                if message.error():
                    continue
                positions[message.partition()] = message.offset() + 1
                body = message.value() or b""
                for i, needle in wanted.items():
                    if not found[i] and needle in body:
                        found[i] = True
    finally:
        consumer.close()
    return found


if __name__ == "__main__":
    main()

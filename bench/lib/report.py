"""Writes bench/RESULTS.md from the JSON files bench/run.sh leaves in .run/bench/results/.

Every figure in the files goes into the report, with each ratio against its peer or floor and
a PASS/MISS per target of bench/TARGETS.md. Benchmarks without a result file are listed as not
run. Why each target misses or passes, with the profiles that show it, is docs/performance.md,
which the report's header links. Standard library only.

Usage: python3 bench/lib/report.py --results .run/bench/results --out bench/RESULTS.md
"""

import argparse
import json
import statistics
from pathlib import Path

# The targets of bench/TARGETS.md. The webhook's are against the bare handler checking the same
# signature (WEBHOOK_CEILING).
WEBHOOK_THROUGHPUT_VS_BARE = 0.9
WEBHOOK_P99_VS_BARE = 1.2
CONNECTOR_VS_PYTHON = 3.0
CONNECTOR_VS_PYTHON_FROM_FIRST = 3.5
CONNECTOR_RSS_MB = 300
# Against bare-connector, the same work natively with no platform around it.
CONNECTOR_VS_CEILING = 0.8
CONNECTOR_RSS_VS_CEILING = 1.3
# The connector is judged in its default configuration; other variants are rows for scale.
CONNECTOR_JUDGED = "default"
WASM_VS_NATIVE = 0.75
NATIVE_NORMALIZE_EVENTS_PER_S = 700_000
# Judged at this batch size; others are rows for scale.
WASM_JUDGED_RECORDS = 500
ETL_VS_FLOOR = 1.3
ETL_VS_BINARY_FLOOR = 2.0
ETL_RSS_MB = 150
SWAP_VISIBLE_MS = 100
SOAK_FLAT_SHARE = 0.10

# bench/, where the sections written by runs of their own are kept.
BENCH = Path(__file__).resolve().parent.parent
# Written by bench/faults.sh, a run of its own; its section names that run.
FAULTS = BENCH / "results" / "faults.md"
# Written by `bench/faults.sh --soak`, a run of its own: its section, and its target rows.
CHAOS_SOAK = BENCH / "results" / "chaos-soak.md"
CHAOS_SOAK_TARGETS = BENCH / "results" / "chaos-soak.targets.json"
# Written by bench/fuzz.sh, also a run of its own (its header names it).
FUZZ = BENCH / "results" / "fuzz.txt"


def load(results: Path, name: str) -> dict | None:
    path = results / f"{name}.json"
    if not path.exists():
        return None
    with open(path) as source:
        return json.load(source)


def verdict(ok: bool | None) -> str:
    if ok is None:
        return "n/a"
    return "**PASS**" if ok else "**MISS**"


def number(value, digits: int = 0) -> str:
    if value is None:
        return "—"
    if isinstance(value, (int, float)):
        if digits == 0:
            return f"{round(value):,}"
        return f"{value:,.{digits}f}"
    return str(value)


def ratio(a, b) -> float | None:
    if a is None or b in (None, 0):
        return None
    return a / b


def provenance(result: dict) -> str:
    quick = " — **quick run (smoke sizes; not comparable with the targets' sizes)**" if result.get("quick") else ""
    load = f", load average at its end {result['loadavg_at_end']}" if result.get("loadavg_at_end") else ""
    # Sections come from runs of their own, not always on the header's machine.
    machine = f" on {result['machine']}" if result.get("machine") else ""
    return (f"_Run {result.get('run_id')} (git {result.get('git')}){machine}, written {result.get('written_at')}"
            f"{load}{quick}._")


class Report:
    def __init__(self):
        self.lines: list[str] = []
        self.targets: list[tuple[str, str, str, str]] = []  # benchmark, target, measured, verdict

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def target(self, bench: str, what: str, measured: str, ok: bool | None) -> None:
        self.targets.append((bench, what, measured, verdict(ok)))


BROKERS = {
    "memory": "tansu keeping its log in memory (no storage behind the broker)",
    "s3": "the services' tansu, which stores every produced batch in SeaweedFS",
}

# The webhook systems in the order of the tables. sluice is judged against bare-verify, the bare
# handler doing the same signature check; the others are references. Results written before
# bare-verify was measured have no such runs, and their targets show n/a.
WEBHOOK_SYSTEMS = ("sluice", "bare-verify", "bare", "python")
WEBHOOK_CEILING = "bare-verify"
WEBHOOK_REFERENCES = {
    "bare-verify": "bare axum + rdkafka, same signature check (the ceiling, judged)",
    "bare": "bare axum + rdkafka, no signature check (reference)",
    "python": "FastAPI peer, no signature check (reference)",
}


def webhook(report: Report, result: dict) -> None:
    # Runs before the broker was recorded all went to the services' S3-backed tansu.
    runs = {(r.get("broker", "s3"), r["system"], r["events_per_body"]): r for r in result.get("runs", [])}
    brokers = [b for b in BROKERS if any(key[0] == b for key in runs)]
    report.add(
        "## 1. Webhook → Kafka (answer after acks=all)",
        "",
        provenance(result),
        "",
        f"wrk -t{result.get('threads')} -c{result.get('connections')} -d{result.get('duration_s')}s after a "
        f"{result.get('warmup_s')} s warm-up, one fixed body per run (bench/wrk/post.lua), topics of "
        f"{result.get('partitions')} partitions. Every request carries a SendGrid ECDSA P-256 signature (body "
        "signed by `sign-webhook` just before each run). sluice checks it; **bare-verify** is bare-ingest "
        "(axum + rdkafka) with `--verify-key`, checking the same signature the same way (aws-lc-rs, key parsed "
        "once, SHA-256 of timestamp + body, 600 s tolerance) before storing the body — the ceiling sluice's "
        "targets are judged against; **bare** is bare-ingest without the check and the FastAPI peer "
        "(2 uvicorn workers) checks none either: both only check that the body is a JSON array, and stay as "
        "references. Each system runs against "
        + " and then ".join(f"**{b}**: {BROKERS[b]}" for b in brokers)
        + ".",
        "",
        "| broker | body | system | req/s | events/s | p50 ms | p99 ms | max ms | requests | non-2xx | socket errors |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    )
    for broker in brokers:
        for events in (100, 1):
            for system in WEBHOOK_SYSTEMS:
                run = runs.get((broker, system, events))
                if run is None:
                    continue
                errors = sum(run.get("socket_errors", {}).values())
                report.add(
                    f"| {broker} | {events} event{'s' if events > 1 else ''} | {system} | "
                    f"{number(run['requests_per_s'])} | {number(run['requests_per_s'] * events)} | "
                    f"{number(run['p50_ms'], 2)} | {number(run['p99_ms'], 2)} | {number(run['max_ms'], 1)} | "
                    f"{number(run['requests'])} | {number(run['non_2xx'])} | {number(errors)} |"
                )
    report.add(
        "",
        "| broker | body | reference | sluice ÷ reference, req/s | sluice ÷ reference, p99 |",
        "|---|---|---|---:|---:|",
    )
    for broker in brokers:
        for events in (100, 1):
            sluice = runs.get((broker, "sluice", events))
            if sluice is None:
                continue
            for system, description in WEBHOOK_REFERENCES.items():
                reference = runs.get((broker, system, events))
                if reference is None:
                    continue
                report.add(
                    f"| {broker} | {events} | {system}: {description} | "
                    f"{number(ratio(sluice['requests_per_s'], reference['requests_per_s']), 2)} | "
                    f"{number(ratio(sluice['p99_ms'], reference['p99_ms']), 2)} |"
                )
            webhook_targets(report, f"webhook, {events}-event body, {broker} broker", sluice,
                            runs.get((broker, WEBHOOK_CEILING, events)))
    report.add("")


def webhook_targets(report: Report, bench: str, sluice: dict, ceiling: dict | None) -> None:
    """Judges one sluice run against the signature-checking bare handler's run beside it.

    No verdict when there is no such run (results older than it) or when the ceiling itself
    failed requests: a bare handler answering 401 or 503 is fast for the wrong reason.
    """
    throughput = p99 = None
    why_not = None
    if ceiling is None:
        why_not = f"no {WEBHOOK_CEILING} run"
    elif ceiling.get("failed", 0):
        why_not = f"{WEBHOOK_CEILING} failed {number(ceiling['failed'])} requests"
    else:
        throughput = ratio(sluice["requests_per_s"], ceiling["requests_per_s"])
        p99 = ratio(sluice["p99_ms"], ceiling["p99_ms"])
    report.target(
        bench,
        f"throughput ≥ {WEBHOOK_THROUGHPUT_VS_BARE}× {WEBHOOK_CEILING}",
        why_not or f"{number(throughput, 2)}×",
        None if throughput is None else throughput >= WEBHOOK_THROUGHPUT_VS_BARE,
    )
    report.target(
        bench,
        f"p99 ≤ {WEBHOOK_P99_VS_BARE}× {WEBHOOK_CEILING}",
        why_not or f"{number(p99, 2)}× ({number(sluice['p99_ms'], 2)} vs {number(ceiling['p99_ms'], 2)} ms)",
        None if p99 is None else p99 <= WEBHOOK_P99_VS_BARE,
    )
    failed = sluice.get("failed", 0)
    report.target(bench, "no failed requests (sluice)", f"{failed}", failed == 0)


def connector(report: Report, result: dict) -> None:
    fill, python = result.get("fill", {}), result.get("python", {})
    peer = python.get("output") or {}
    events = result.get("events")
    python_rate = ratio(events, python.get("wall_seconds"))
    # The default configuration (one member per core), then one member. Results written while
    # one member was the default have it under "sluice" and two members under "sluice_members_2".
    if result.get("sluice_members_1"):
        default_label = f"sluice, default ({result.get('members_default', '?')} members)"
        keys = ((default_label, "sluice"), ("sluice, 1 member", "sluice_members_1"))
    else:
        keys = (("sluice, 1 member", "sluice"), ("sluice, 2 members", "sluice_members_2"))
    variants = [(label, result[key]) for label, key in keys if result.get(key)]
    report.add(
        "## 2. Kafka → normalize-sendgrid-events → Parquet on S3",
        "",
        provenance(result),
        "",
        f"`fill-topic` stored {number(fill.get('events'))} events ({number(fill.get('malformed'))} malformed) in "
        f"{number(fill.get('bodies'))} bodies of {result.get('events_per_body')} events on {result.get('partitions')} "
        f"partitions ({number(fill.get('bytes', 0) / 1e6, 1)} MB, {number(fill.get('seconds'), 1)} s). Every system reads "
        f"the same topic with its own consumer group; file windows: {result.get('window')}. sluice runs once as "
        "configured by default (`members` unset: one consumer-group member per core) and once with `members = 1`. "
        "Wall time runs from "
        "starting the process until every event is accounted for (sluice: `sluice_sink_rows_total` + "
        "`sluice_dead_letters_total` on /metrics, polled every 0.1 s; Python: until the process exits), so it "
        "includes start-up and joining the group. Peak RSS: sluice VmHWM, Python ru_maxrss.",
        "",
        "| system | wall s | events/s (wall) | s from first record | events/s (from first record) | rows | dead letters | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    )
    for label, sluice in variants:
        report.add(
            f"| {label} | {number(sluice.get('seconds'), 2)} | {number(sluice.get('events_per_s'))} | "
            f"{number(sluice.get('seconds_from_first_record'), 2)} | {number(sluice.get('events_per_s_from_first_record'))} | "
            f"{number(sluice.get('rows'))} | {number(sluice.get('dead_letters'))} | {number(sluice.get('peak_rss_mb'), 1)} |"
        )
    ceiling = result.get("ceiling") or {}
    bare = ceiling.get("output") or {}
    ceiling_rate = ratio(events, ceiling.get("wall_seconds"))
    if ceiling:
        report.add(
            f"| bare-connector (native ceiling, {bare.get('members', '?')} members) | "
            f"{number(ceiling.get('wall_seconds'), 2)} | {number(ceiling_rate)} | {number(bare.get('seconds'), 2)} | "
            f"{number(bare.get('events_per_s'))} | {number(bare.get('rows'))} | {number(bare.get('dead_letters'))} | "
            f"{number(ceiling.get('max_child_rss_mb'), 1)} |"
        )
    report.add(
        f"| Python peer | {number(python.get('wall_seconds'), 2)} | {number(python_rate)} | "
        f"{number(peer.get('seconds'), 2)} | {number(peer.get('events_per_s'))} | {number(peer.get('rows'))} | "
        f"{number(peer.get('dead_letters'))} | {number(peer.get('peak_rss_mb'), 1)} |",
        "",
    )
    if ceiling:
        report.add(
            "**bare-connector** is the native ceiling: the same normalization compiled natively, sluice's consumer "
            "settings, table sink (Arrow, Parquet, partitions, dedupe) and windows, each closed window stored by a "
            "task of its own and committed after it; no WASM, markers, chain or metrics. Wall time from starting "
            "the process until it exits after storing every event.",
            "",
        )
        if ceiling_rate is not None and python_rate:
            report.add(
                f"bare-connector / Python events/s: {number(ratio(ceiling_rate, python_rate), 2)}× by wall time, "
                f"{number(ratio(bare.get('events_per_s'), peer.get('events_per_s')), 2)}× from the first record "
                "received.",
                "",
            )
    for label, sluice in variants:
        vs_python = ratio(sluice.get("events_per_s"), python_rate)
        vs_python_first = ratio(sluice.get("events_per_s_from_first_record"), peer.get("events_per_s"))
        report.add(
            f"{label} / Python events/s: **{number(vs_python, 2)}×** by wall time, {number(vs_python_first, 2)}× "
            "from the first record received.",
            "",
        )
        bench = f"connector, {label.removeprefix('sluice, ')}"
        if CONNECTOR_JUDGED not in label:
            continue
        report.target(bench, f"≥ {CONNECTOR_VS_PYTHON:g}× the Python peer (wall)", f"{number(vs_python, 2)}×",
                      None if vs_python is None else vs_python >= CONNECTOR_VS_PYTHON)
        report.target(bench, f"≥ {CONNECTOR_VS_PYTHON_FROM_FIRST:g}× the Python peer (from the first record)",
                      f"{number(vs_python_first, 2)}×",
                      None if vs_python_first is None else vs_python_first >= CONNECTOR_VS_PYTHON_FROM_FIRST)
        rss = sluice.get("peak_rss_mb")
        report.target(bench, f"peak RSS ≤ {CONNECTOR_RSS_MB} MB", f"{number(rss, 1)} MB",
                      None if rss is None else rss <= CONNECTOR_RSS_MB)
        vs_ceiling = ratio(sluice.get("events_per_s"), ceiling_rate)
        report.target(bench, f"≥ {CONNECTOR_VS_CEILING:g}× bare-connector (wall)", f"{number(vs_ceiling, 2)}×",
                      None if vs_ceiling is None else vs_ceiling >= CONNECTOR_VS_CEILING)
        rss_vs_ceiling = ratio(rss, ceiling.get("max_child_rss_mb"))
        report.target(bench, f"peak RSS ≤ {CONNECTOR_RSS_VS_CEILING:g}× bare-connector's",
                      f"{number(rss_vs_ceiling, 2)}×",
                      None if rss_vs_ceiling is None else rss_vs_ceiling <= CONNECTOR_RSS_VS_CEILING)


def plugin_ratio(report: Report, result: dict) -> None:
    runs = result.get("runs", [])
    report.add(
        "## 3. WASM vs native normalization (`plugin-ratio`)",
        "",
        provenance(result),
        "",
        "The same batches through `normalize_sendgrid_events::transform_batch` natively and through sluice's "
        "plugin runtime: as it runs (an idle instance reused, `transform` only) and on a fresh instance every "
        "call (instantiate, `init`, `transform`). The three passes take turns; each WASM/native is the median "
        "of the rounds' ratios (the reused range beside it), events/s the fastest pass of each. Call overhead "
        "is one call on an empty batch.",
        "",
        "| records per call | events | native events/s | WASM events/s | WASM/native (median) | range | "
        "fresh-instance WASM/native | call overhead µs, reused / fresh |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    )
    normalize = [run for run in runs if run.get("plugin", "normalize-sendgrid-events") == "normalize-sendgrid-events"]
    etl_plugins = [run for run in runs if run not in normalize]
    for run in normalize:
        spread = "—"
        if "wasm_to_native_min" in run:
            spread = f"{number(run['wasm_to_native_min'], 3)}–{number(run['wasm_to_native_max'], 3)}"
        report.add(
            f"| {run['batch_records']} | {number(run['events'])} | {number(run['native_events_per_s'])} | "
            f"{number(run['wasm_events_per_s'])} | {number(run['wasm_to_native'], 3)} | {spread} | "
            f"{number(run.get('fresh_wasm_to_native'), 3)} | {number(run['wasm_call_overhead_us'])} / "
            f"{number(run.get('wasm_fresh_call_overhead_us'))} |"
        )
        if run["batch_records"] == WASM_JUDGED_RECORDS:
            report.target(f"ratio, {run['batch_records']} records/call", f"WASM ≥ {WASM_VS_NATIVE}× native",
                          f"{number(run['wasm_to_native'], 3)}×", run["wasm_to_native"] >= WASM_VS_NATIVE)
            report.target("ratio, native", f"normalization ≥ {NATIVE_NORMALIZE_EVENTS_PER_S:,} events/s, Arrow included",
                          f"{number(run['native_events_per_s'])} events/s",
                          run["native_events_per_s"] >= NATIVE_NORMALIZE_EVENTS_PER_S)
    breakdown = [run for run in normalize if "us_per_event_native_plugin" in run]
    if breakdown:
        report.add(
            "",
            "Where an event's time goes (µs per event, each contender's fastest pass): the plugin alone natively, "
            "the plugin as WASM with its rows lifted into the host's typed rows, and the host's Arrow step (the "
            "native pass less the native plugin alone).",
            "",
            "| records per call | native plugin | WASM plugin + lift | Arrow | native total | WASM total |",
            "|---:|---:|---:|---:|---:|---:|",
        )
        for run in breakdown:
            report.add(
                f"| {run['batch_records']} | {number(run['us_per_event_native_plugin'], 3)} | "
                f"{number(run['us_per_event_wasm_plugin'], 3)} | {number(run['us_per_event_arrow'], 3)} | "
                f"{number(run['us_per_event_native'], 3)} | {number(run['us_per_event_wasm'], 3)} |"
            )
    if etl_plugins:
        report.add(
            "",
            "The ETL's plugins the same way on the ETL's records (validate-user-status on the generated file, "
            "explode-status-logs on the `status_logs` rows validate passes it, as the job's chain does); outputs "
            "taken into the host's typed rows. For scale, no target.",
            "",
            "| plugin | records per call | records | native records/s | WASM records/s | WASM/native (median) | range |",
            "|---|---:|---:|---:|---:|---:|---:|",
        )
        for run in etl_plugins:
            report.add(
                f"| {run['plugin']} | {number(run['batch_records'])} | {number(run['records'])} | "
                f"{number(run['native_records_per_s'])} | {number(run['wasm_records_per_s'])} | "
                f"{number(run['wasm_to_native'], 3)} | {number(run['wasm_to_native_min'], 3)}–"
                f"{number(run['wasm_to_native_max'], 3)} |"
            )
    report.add("")


def etl(report: Report, result: dict) -> None:
    records = result.get("records")
    sluice, spark, floor = result.get("sluice", {}), result.get("pyspark", {}), result.get("floor", {})
    spark_out, floor_out = spark.get("output") or {}, floor.get("output") or {}
    rows = sluice.get("rows", {})
    sluice_s = sluice.get("wall_seconds")
    spark_s = spark_out.get("seconds") or spark.get("wall_seconds")
    floor_s = floor_out.get("seconds")
    report.add(
        "## 4. User-status ETL: S3 JSON lines → 3 PostgreSQL tables",
        "",
        provenance(result),
        "",
        f"{number(records)} records ({number((result.get('input_bytes') or 0) / 2**20)} MiB JSON lines, "
        "bench/peers/python/gen_user_status.py, same bytes as bench/etl-1m.sh) on S3. sluice: `sluice job run` "
        "into a fresh schema, wall time and peak RSS measured by the parent; row counts checked "
        f"({'match' if sluice.get('counts_match') else 'DO NOT MATCH'}: "
        f"{number(rows.get('user_status'))} user_status, {number(rows.get('user_status_log'))} user_status_log, "
        f"{number(rows.get('user_status_error_rec'))} user_status_error_rec). PySpark `local[2]` peer: its own "
        "`seconds` (download + Spark start + load + replace). Floor: plain `COPY` of the finished rows from CSV.",
        "",
        "| system | seconds | records/s | peak RSS MB | wall s (process) |",
        "|---|---:|---:|---:|---:|",
        f"| sluice | {number(sluice_s, 2)} | {number(ratio(records, sluice_s))} | "
        f"{number(sluice.get('max_child_rss_mb'), 1)} | {number(sluice_s, 2)} |",
        f"| PySpark | {number(spark_s, 2)} | {number(ratio(records, spark_s))} | "
        f"{number(spark_out.get('peak_rss_mb'), 1)} | {number(spark.get('wall_seconds'), 2)} |",
        f"| COPY floor | {number(floor_s, 2)} | {number(ratio(records, floor_s))} | — | "
        f"{number(floor.get('wall_seconds'), 2)} (incl. untimed CSV preparation) |",
    )
    binary_s = floor_out.get("binary_seconds")
    if binary_s is not None:
        report.add(
            f"| COPY floor, binary format (for scale) | {number(binary_s, 2)} | {number(ratio(records, binary_s))} "
            "| — | same process |"
        )
    report.add("")
    vs_spark = ratio(spark_s, sluice_s)
    vs_floor = ratio(sluice_s, floor_s)
    against_binary = ""
    if binary_s is not None:
        against_binary = (f" Against the same rows in binary `COPY` format (no text for the server to parse, as "
                          f"sluice sends them): {number(ratio(sluice_s, binary_s), 2)}×.")
    report.add(f"PySpark/sluice time: **{number(vs_spark, 2)}×**; sluice/floor time: **{number(vs_floor, 2)}×**."
               f"{against_binary}", "")
    report.target("etl", f"≤ {ETL_VS_FLOOR}× the COPY floor", f"{number(vs_floor, 2)}×",
                  None if vs_floor is None else vs_floor <= ETL_VS_FLOOR)
    vs_binary = ratio(sluice_s, binary_s)
    report.target("etl", f"≤ {ETL_VS_BINARY_FLOOR:g}× the binary COPY floor", f"{number(vs_binary, 2)}×",
                  None if vs_binary is None else vs_binary <= ETL_VS_BINARY_FLOOR)
    rss = sluice.get("max_child_rss_mb")
    report.target("etl", f"peak RSS ≤ {ETL_RSS_MB} MB", f"{number(rss, 1)} MB",
                  None if rss is None else rss <= ETL_RSS_MB)
    report.target("etl", "row counts match the generator", "yes" if sluice.get("counts_match") else "no",
                  bool(sluice.get("counts_match")))


def swap(report: Report, result: dict) -> None:
    swaps = result.get("swaps", {})
    load = (result.get("load") or [{}])
    load = load[0] if isinstance(load, list) else load
    errors = sum((load.get("socket_errors") or {}).values())
    failed = load.get("non_2xx", 0) + errors
    precompile_ms = result.get("precompile_ms")
    report.add(
        "## 5. Plugin hot swap under load",
        "",
        provenance(result),
        "",
        f"An HTTP request/reply pipeline answered by `fixture-hostile` (`behavior = \"fail-before-v2\"`), wrk "
        f"-c{result.get('connections')} for {result.get('load_seconds')} s posting `{{\"id\":…,\"n\":1}}`; "
        f"{swaps.get('swaps')} swaps alternating v3/v2 by copy to a temporary file + rename over "
        "`fixture-hostile.wasm` in the watched plugins directory "
        f"(`watch_debounce_ms = {result.get('watch_debounce_ms')}`; the default is 200), a fresh compile cache"
        + (" (the first swap to v3 compiles it)." if precompile_ms is None else
           f": the host compiled v2 at start, and `sluice plugin compile` put v3 in the cache before the swaps, "
           f"as a deploy does, in {number(precompile_ms)} ms (what the first swap takes without that step).")
        + " Latency: rename → `GET /v1/admin/plugins` shows the new version "
        f"(polled every {swaps.get('poll_ms')} ms). Swaps finished {result.get('swaps_finished_at_s')} s into the load.",
        "",
        "| swaps | not visible | p50 ms | max ms | first swap ms | requests | req/s | p99 ms | non-2xx | socket errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {swaps.get('swaps')} | {swaps.get('not_visible')} | {number(swaps.get('p50_ms'), 1)} | "
        f"{number(swaps.get('max_ms'), 1)} | {number(swaps.get('first_ms'), 1)} | {number(load.get('requests'))} | "
        f"{number(load.get('requests_per_s'))} | {number(load.get('p99_ms'), 2)} | {number(load.get('non_2xx'))} | "
        f"{number(errors)} |",
        "",
        "Each swap (ms): " + ", ".join(f"{s['version']} {number(s['visible_ms'], 1)}" for s in swaps.get("each", [])),
        "",
    )
    later = [s["visible_ms"] for s in swaps.get("each", [])[1:] if s["visible_ms"] is not None]
    if later and precompile_ms is None:
        report.add(
            "Swaps 2–20 load versions whose compiled code is already cached (v2 was compiled at start, v3 by "
            f"the first swap): max {number(max(later), 1)} ms, p50 {number(statistics.median(later), 1)} ms. The verdict "
            "below counts every swap, the compiling ones included.",
            "",
        )
    report.target("swap", "0 failed requests", f"{failed}", failed == 0 and load.get("requests", 0) > 0)
    max_ms = swaps.get("max_ms")
    report.target("swap", f"every swap visible < {SWAP_VISIBLE_MS} ms", f"max {number(max_ms, 1)} ms, "
                  f"p50 {number(swaps.get('p50_ms'), 1)} ms",
                  None if max_ms is None else (max_ms < SWAP_VISIBLE_MS and swaps.get("not_visible") == 0))


def soak_windows(duration: float) -> tuple[tuple[float, float], tuple[float, float], str]:
    if duration >= 300:
        return (60, 180), (duration - 60, duration + 1), "minutes 2–3 vs the last minute"
    return (duration * 0.2, duration * 0.4), (duration * 0.8, duration + 1), \
        "20–40% of the run vs its last 20% (the run is shorter than 5 minutes)"


def soak(report: Report, result: dict) -> None:
    samples = result.get("rss", {}).get("samples", [])
    load = (result.get("load") or [{}])
    load = load[0] if isinstance(load, list) else load
    counts = result.get("counts", {})
    duration = result.get("seconds") or (samples[-1]["t"] if samples else 0)
    base_window, last_window, rule = soak_windows(duration)
    base = [s["rss_mb"] for s in samples if base_window[0] <= s["t"] < base_window[1]]
    last = [s["rss_mb"] for s in samples if last_window[0] <= s["t"] < last_window[1]]
    base_mean = statistics.mean(base) if base else None
    last_mean = statistics.mean(last) if last else None
    change = ratio(last_mean, base_mean)
    after_first_minute = [s for s in samples if s["t"] >= min(60, duration * 0.2)]
    slope = None
    if len(after_first_minute) >= 2:
        ts = [s["t"] / 60 for s in after_first_minute]
        ys = [s["rss_mb"] for s in after_first_minute]
        mean_t, mean_y = statistics.mean(ts), statistics.mean(ys)
        denominator = sum((t - mean_t) ** 2 for t in ts)
        slope = sum((t - mean_t) * (y - mean_y) for t, y in zip(ts, ys)) / denominator if denominator else None
    rss = [s["rss_mb"] for s in samples]
    errors = sum((load.get("socket_errors") or {}).values())
    report.add(
        "## 6. Soak: RSS under steady load",
        "",
        provenance(result),
        "",
        f"The full sendgrid-events style pipeline (signed webhook → Kafka → normalize-sendgrid-events → Parquet "
        f"on S3 + dead letters) for {number(duration)} s under wrk -c{result.get('connections')} with a "
        f"{result.get('delay_ms')} ms pause per connection between requests, one signed {result.get('events_per_body')}-event "
        f"body replayed throughout — so for the soak only the pipeline's `tolerance_secs` is "
        f"{result.get('tolerance_secs')} (a day) instead of 600. The same sg_event_ids repeat, so most rows are "
        "deduplicated within a file window. RSS (VmRSS) sampled every "
        f"{result.get('rss', {}).get('interval_s')} s.",
        "",
        "| requests | req/s | events/s | p99 ms | non-2xx | socket errors | Kafka records consumed | rows written | dead letters |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {number(load.get('requests'))} | {number(load.get('requests_per_s'))} | "
        f"{number((load.get('requests_per_s') or 0) * (result.get('events_per_body') or 0))} | "
        f"{number(load.get('p99_ms'), 2)} | {number(load.get('non_2xx'))} | {number(errors)} | "
        f"{number(counts.get('kafka_consumed'))} | {number(counts.get('sink_rows'))} | {number(counts.get('dead_letters'))} |",
        "",
        "| first RSS MB | last RSS MB | max RSS MB | slope MB/min (after warm-up) | baseline mean MB | last mean MB | change |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {number(rss[0] if rss else None, 1)} | {number(rss[-1] if rss else None, 1)} | "
        f"{number(max(rss) if rss else None, 1)} | {number(slope, 2)} | {number(base_mean, 1)} | "
        f"{number(last_mean, 1)} | {number(None if change is None else (change - 1) * 100, 1)}% |",
        "",
        f"Flat means the last window's mean RSS is within {SOAK_FLAT_SHARE:.0%} of the baseline's ({rule}).",
        "",
        "RSS samples (s: MB): " + ", ".join(f"{number(s['t'])}: {number(s['rss_mb'], 1)}" for s in samples),
        "",
    )
    flat = None if change is None else abs(change - 1) <= SOAK_FLAT_SHARE
    report.target("soak", f"RSS flat (±{SOAK_FLAT_SHARE:.0%})",
                  f"{number(None if change is None else (change - 1) * 100, 1)}%, slope {number(slope, 2)} MB/min", flat)


def languages(report: Report, result: dict) -> None:
    runs = result.get("runs", [])
    expected = result.get("expected") or {}
    rust = next((run for run in runs if run.get("label") == "rust"), None)
    # The rows and failures every contender must give (plugin-languages checks its own agree).
    want = rust and (rust.get("rows"), rust.get("failures"))
    report.add(
        "## 7. One plugin in three languages",
        "",
        provenance(result),
        "",
        f"validate-user-status on the ETL's {number(result.get('records'))} generated records "
        f"({number(expected.get('valid'))} valid, {number(expected.get('invalid'))} invalid), 5,000 per call: "
        "the Rust plugin, its Python port (componentize-py) and a JavaScript port (componentize-js), each as a "
        "component in sluice's runtime with the default limits (`plugin-languages`: an idle instance reused, "
        "outputs taken into the host's typed rows), and for scale the Rust plugin compiled natively. Beside them "
        "the Python port's own code (app.py with the contract's generated bindings) run without WebAssembly: by "
        "CPython in one process, and by PySpark `local[2]` (`mapPartitions` over `textFile`; two cores, job time "
        "after Spark's start). Compile: loading the component without a cache, Cranelift included (once per "
        "version; `sluice plugin compile` does it ahead). Instantiate: a fresh instance, `init` and an empty "
        "call. First call: the first 5,000 records after loading, its instance included. Memory: how far the "
        "instance's linear memory grew, of the default 256 MiB limit.",
        "",
        "| language | runs as | records/s | vs the Rust component | compile s | component MB | instantiate ms | "
        "first call ms | memory MiB | same rows and failures |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    )
    for run in runs:
        label = run.get("label", "?")
        if run.get("bench") == "plugin-native":
            language, runs_as = "python", label
        elif run.get("native"):
            language, runs_as = "rust", "native code"
        else:
            language, runs_as = label, "component"
        same = "—" if want is None else ("yes" if (run.get("rows"), run.get("failures")) == want else "**no**")
        compile_s = run.get("compile_ms")
        report.add(
            f"| {language} | {runs_as} | {number(run.get('records_per_s'))} | "
            f"{number(ratio(run.get('records_per_s'), rust and rust.get('records_per_s')), 2)}× | "
            f"{number(None if compile_s is None else compile_s / 1000, 1)} | "
            f"{number(None if 'component_bytes' not in run else run['component_bytes'] / 2**20, 1)} | "
            f"{number(run.get('instantiate_ms'), 1)} | {number(run.get('first_call_ms'), 1)} | "
            f"{number(None if 'memory_bytes' not in run else run['memory_bytes'] / 2**20, 1)} | {same} |"
        )
    report.add("")


SECTIONS = (
    ("webhook", webhook),
    ("connector", connector),
    ("ratio", plugin_ratio),
    ("etl", etl),
    ("swap", swap),
    ("soak", soak),
    ("languages", languages),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    machine = load(args.results, "machine") or {}
    report = Report()
    body = Report()
    missing = []
    for name, section in SECTIONS:
        result = load(args.results, name)
        if result is None:
            missing.append(name)
            continue
        section(body, result)
    report.targets = body.targets
    if CHAOS_SOAK_TARGETS.exists():
        for bench, what, measured, ok in json.loads(CHAOS_SOAK_TARGETS.read_text()):
            report.target(bench, what, measured, ok)

    written = max(
        (json.load(open(p)).get("written_at", "") for p in args.results.glob("*.json") if p.name != "machine.json"),
        default="",
    )
    report.add(
        "# Benchmark results",
        "",
        "Generated by `bench/run.sh` (this whole file is rewritten on every run; raw JSON in "
        "`.run/bench/results/`). Reproduce with:",
        "",
        "```sh",
        "bench/run.sh                  # every benchmark and its peers, 20–60 min",
        "bench/run.sh --quick          # smoke sizes: 100k events/records, 5 s wrk runs, 1-minute soak",
        "bench/run.sh --only webhook,swap",
        "```",
        "",
        f"- **Date:** {written[:10] or '—'} (latest result written {written or '—'}; each section names its run)",
        f"- **Machine:** {machine.get('cpu_model', '?')}, {machine.get('cores', '?')} cores, "
        f"{machine.get('ram_gib', '?')} GiB RAM, Linux {machine.get('kernel', '?')} (a section that names a machine "
        "ran on that one)",
        "- **Services:** tansu (Kafka, stored on SeaweedFS S3; the webhook benchmark also runs against a second "
        "tansu in memory), SeaweedFS `weed mini` (S3), local PostgreSQL — "
        "all on the same machine as the systems measured and the load generator.",
        "- **Targets:** [TARGETS.md](TARGETS.md); peers run in the same invocation, "
        "one after another; rows without a target are for scale.",
        "- **Why each target misses or passes:** [../docs/performance.md](../docs/performance.md), "
        "with the profiles that explain the figures and what was tried.",
        "",
        "## Targets",
        "",
        "| benchmark | target | measured | verdict |",
        "|---|---|---|---|",
    )
    for bench, what, measured, result in report.targets:
        report.add(f"| {bench} | {what} | {measured} | {result} |")
    if missing:
        report.add("", "Not run (no result file): " + ", ".join(missing) + ".")
    report.add("")
    report.add(*body.lines)
    if FAULTS.exists():
        report.add("", FAULTS.read_text().rstrip(), "")
    if CHAOS_SOAK.exists():
        report.add("", CHAOS_SOAK.read_text().rstrip(), "")
    if FUZZ.exists():
        report.add("", "## Fuzzing", "", "`bench/fuzz.sh` (`bench/results/fuzz.txt`):", "", "```text",
                   FUZZ.read_text().rstrip(), "```", "")
    args.out.write_text("\n".join(report.lines).rstrip() + "\n")


if __name__ == "__main__":
    main()

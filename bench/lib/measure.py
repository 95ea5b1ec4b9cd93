"""Measuring helpers for bench/run.sh: wrk runs, process RSS, /metrics polling, plugin swaps.

Standard library only, so it runs with the system python3 before any venv exists. Each
subcommand does one measurement and writes (or appends) JSON; bench/lib/report.py turns the
files under .run/bench/results/ into bench/RESULTS.md.

  measure.py free-port
  measure.py machine
  measure.py wait-ready --url URL [--pid PID] [--log FILE] [--timeout S]
  measure.py wrk --url URL --body-file F [--sign-env F] --duration S --append F.jsonl [--extra k=v ...]
  measure.py connector-wait --metrics-url URL --pid PID --since EPOCH --target N --out F
  measure.py timed --out F [--label L] -- COMMAND ...
  measure.py swap --plugins-dir D --v2 F --v3 F --admin-url URL --token T --out F
  measure.py rss-sample --pid PID --interval S --duration S --out F
  measure.py bundle --bench NAME --out F [--meta k=v ...] [--jsonl F] [--part name=F ...]
"""

import argparse
import json
import os
import platform
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def fail(message: str) -> None:
    sys.exit(f"measure: {message}")


def parse_pairs(pairs: list[str] | None) -> dict:
    """`k=v` strings into a dict; values that read as JSON numbers or booleans are typed.

    Only when the typed value writes back as the same text: a commit like `1787e63` stays a
    string instead of becoming the number 1.787e+66.
    """
    result = {}
    for pair in pairs or []:
        key, _, value = pair.partition("=")
        try:
            typed = json.loads(value)
        except json.JSONDecodeError:
            typed = value
        result[key] = typed if json.dumps(typed) == value else value
    return result


def proc_status_kib(pid: int, field: str) -> int | None:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM), or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def http_get(url: str, token: str | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout):
        return 0, b""


def metric_sum(text: str, name: str, label_filter: str | None = None) -> float:
    """The sum of every sample of metric `name` (optionally only lines containing `label_filter`)."""
    total = 0.0
    pattern = re.compile(r"^" + re.escape(name) + r"(\{[^}]*\})?\s+([0-9.eE+-]+)")
    for line in text.splitlines():
        match = pattern.match(line)
        if match and (label_filter is None or label_filter in (match.group(1) or "")):
            total += float(match.group(2))
    return total


def write_json(path: str, value) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as out:
        json.dump(value, out, indent=1)
        out.write("\n")


def read_export_file(path: str) -> dict:
    """The `export NAME='value'` lines sign-webhook writes, as a dict."""
    values = {}
    for line in Path(path).read_text().splitlines():
        match = re.match(r"^export ([A-Za-z_][A-Za-z0-9_]*)='(.*)'$", line)
        if match:
            values[match.group(1)] = match.group(2).replace("'\\''", "'")
    return values


# --- subcommands ---------------------------------------------------------------------------


def cmd_free_port(_args) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        print(sock.getsockname()[1])


def cmd_machine(_args) -> None:
    model = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    print(
        json.dumps(
            {
                "cpu_model": model,
                "cores": os.cpu_count(),
                "ram_gib": round(mem_kib / 1024 / 1024, 1),
                "kernel": platform.release(),
                "os": platform.platform(),
            }
        )
    )


def cmd_wait_ready(args) -> None:
    deadline = time.monotonic() + args.timeout
    last = (0, b"")
    while time.monotonic() < deadline:
        if args.pid and proc_status_kib(args.pid, "VmRSS") is None:
            tail = ""
            if args.log and os.path.exists(args.log):
                tail = "".join(open(args.log, errors="replace").readlines()[-30:])
            fail(f"process {args.pid} exited before {args.url} answered 200; log tail:\n{tail}")
        last = http_get(args.url, timeout=2)
        if last[0] == 200 or (args.any_status and last[0] != 0):
            return
        time.sleep(0.2)
    fail(f"{args.url} did not answer 200 within {args.timeout}s (last: {last[0]} {last[1][:300]!r})")


def cmd_wrk(args) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WRK_")}
    if args.sign_env:
        env.update({k: v for k, v in read_export_file(args.sign_env).items() if k.startswith("WRK_")})
    env["WRK_BODY_FILE"] = args.body_file
    env["WRK_LABEL"] = args.label or ""
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--timeout",
        "10s",
        "-s",
        args.script,
        args.url,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        fail(f"wrk failed ({done.returncode}): {done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    result = json.loads(lines[-1])
    errors = result.get("socket_errors", {})
    result["failed"] = result.get("non_2xx", 0) + sum(errors.values())
    result.update(parse_pairs(args.extra))
    if args.append:
        with open(args.append, "a") as out:
            out.write(json.dumps(result) + "\n")
    print(json.dumps(result))


def cmd_connector_wait(args) -> None:
    """Polls /metrics until rows + dead letters reach the target; reports wall time and peak RSS."""
    deadline = args.since + args.timeout
    first_consumed = None
    rows = dead = 0.0
    peak_kib = 0
    complete = False
    progress = []
    last_progress_at = 0.0
    while time.time() < deadline:
        hwm = proc_status_kib(args.pid, "VmHWM")
        if hwm is None:
            fail(f"sluice (pid {args.pid}) exited while the connector ran; see its log")
        peak_kib = max(peak_kib, hwm)
        status, body = http_get(args.metrics_url)
        now = time.time()
        if status == 200:
            text = body.decode("utf-8", "replace")
            label = f'pipeline="{args.pipeline}"' if args.pipeline else None
            rows = metric_sum(text, "sluice_sink_rows_total", label)
            dead = metric_sum(text, "sluice_dead_letters_total", label)
            consumed = metric_sum(text, "sluice_kafka_consumed_total")
            if first_consumed is None and (consumed > 0 or rows > 0):
                first_consumed = now
            if now - last_progress_at >= 5:
                progress.append({"t": round(now - args.since, 1), "rows": rows, "dead_letters": dead})
                last_progress_at = now
            if rows + dead >= args.target:
                complete = True
                break
        time.sleep(args.poll)
    finished = time.time()
    peak_kib = max(peak_kib, proc_status_kib(args.pid, "VmHWM") or 0)
    wall = finished - args.since
    from_first = finished - first_consumed if first_consumed else None
    result = {
        "complete": complete,
        "target_events": args.target,
        "rows": rows,
        "dead_letters": dead,
        "seconds": round(wall, 2),
        "seconds_from_first_record": round(from_first, 2) if from_first else None,
        "events_per_s": round(args.target / wall) if complete else None,
        "events_per_s_from_first_record": round(args.target / from_first) if complete and from_first else None,
        "peak_rss_mb": round(peak_kib / 1024, 1),
        "progress": progress,
    }
    write_json(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "progress"}))
    if not complete:
        fail(f"only {rows + dead:.0f} of {args.target} events were accounted for within {args.timeout}s")


def cmd_timed(args) -> None:
    """Runs a command; records wall time, the child's peak RSS and its last JSON stdout line."""
    command = args.command[1:] if args.command and args.command[0] == "--" else args.command
    if not command:
        fail("timed: no command given")
    started = time.monotonic()
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    wall = time.monotonic() - started
    output = None
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            try:
                output = json.loads(line)
                break
            except json.JSONDecodeError:
                continue
    result = {
        "label": args.label,
        "command": command,
        "exit_code": done.returncode,
        "wall_seconds": round(wall, 2),
        # Linux reports ru_maxrss in KiB; the largest child's peak, not a sum.
        "max_child_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "output": output,
        "stdout_tail": done.stdout[-1500:] if output is None else None,
    }
    write_json(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if k not in ("stdout_tail", "command")}))
    if done.returncode != 0:
        fail(f"{' '.join(command[:3])} … exited {done.returncode}")


def plugin_version(admin_url: str, token: str, name: str) -> str | None:
    status, body = http_get(admin_url, token=token, timeout=2)
    if status != 200:
        return None
    for plugin in json.loads(body).get("plugins", []):
        if plugin.get("name") == name:
            return plugin.get("version")
    return None


def cmd_swap(args) -> None:
    """Alternates v3/v2 by copy + rename in the plugins dir; times until the admin view shows it."""
    plugins_dir = Path(args.plugins_dir)
    target = plugins_dir / f"{args.plugin}.wasm"
    temporary = plugins_dir / f".{args.plugin}.wasm.tmp"
    builds = [(Path(args.v3), "3.0.0"), (Path(args.v2), "2.0.0")]
    initial = plugin_version(args.admin_url, args.token, args.plugin)
    if initial != "2.0.0":
        fail(f"{args.plugin} should start at 2.0.0, the admin API shows {initial!r}")
    swaps = []
    for number in range(args.swaps):
        source, expected = builds[number % 2]
        shutil.copyfile(source, temporary)
        renamed = time.monotonic()
        os.rename(temporary, target)
        seen = None
        while time.monotonic() - renamed < args.timeout:
            if plugin_version(args.admin_url, args.token, args.plugin) == expected:
                seen = time.monotonic()
                break
            time.sleep(args.poll_ms / 1000)
        latency = round((seen - renamed) * 1000, 1) if seen else None
        swaps.append({"swap": number, "version": expected, "visible_ms": latency})
        print(json.dumps(swaps[-1]), file=sys.stderr)
        time.sleep(args.settle_ms / 1000)
    visible = [s["visible_ms"] for s in swaps if s["visible_ms"] is not None]
    result = {
        "swaps": len(swaps),
        "not_visible": len(swaps) - len(visible),
        "p50_ms": round(statistics.median(visible), 1) if visible else None,
        "max_ms": max(visible) if visible else None,
        "first_ms": swaps[0]["visible_ms"] if swaps else None,
        "poll_ms": args.poll_ms,
        "timeout_s": args.timeout,
        "each": swaps,
    }
    write_json(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "each"}))


def cmd_rss_sample(args) -> None:
    started = time.monotonic()
    samples = []
    while True:
        elapsed = time.monotonic() - started
        rss = proc_status_kib(args.pid, "VmRSS")
        if rss is None:
            fail(f"process {args.pid} exited during the soak after {elapsed:.0f}s")
        samples.append({"t": round(elapsed, 1), "rss_mb": round(rss / 1024, 1)})
        if elapsed >= args.duration:
            break
        time.sleep(max(0.0, min(args.interval, args.duration - elapsed)))
    write_json(args.out, {"interval_s": args.interval, "duration_s": args.duration, "samples": samples})
    print(json.dumps({"samples": len(samples), "first_mb": samples[0]["rss_mb"], "last_mb": samples[-1]["rss_mb"]}))


def cmd_bundle(args) -> None:
    result = {"bench": args.bench, "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    # Other work on the machine skews every figure; the load average at the end shows it.
    result["loadavg_at_end"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    result.update(parse_pairs(args.meta))
    if args.jsonl:
        with open(args.jsonl) as lines:
            result["runs"] = [json.loads(line) for line in lines if line.strip().startswith("{")]
    for part in args.part or []:
        name, _, path = part.partition("=")
        with open(path) as source:
            text = source.read().strip()
        try:
            result[name] = json.loads(text)
        except json.JSONDecodeError:
            # A file of JSON lines (e.g. plugin-ratio's output).
            result[name] = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    write_json(args.out, result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("free-port").set_defaults(run=cmd_free_port)
    commands.add_parser("machine").set_defaults(run=cmd_machine)

    ready = commands.add_parser("wait-ready")
    ready.add_argument("--url", required=True)
    ready.add_argument("--pid", type=int)
    ready.add_argument("--log")
    ready.add_argument("--timeout", type=float, default=90)
    ready.add_argument("--any-status", action="store_true", help="any HTTP answer will do (no health route)")
    ready.set_defaults(run=cmd_wait_ready)

    wrk = commands.add_parser("wrk")
    wrk.add_argument("--url", required=True)
    wrk.add_argument("--body-file", required=True)
    wrk.add_argument("--sign-env", help="sign-webhook's export lines (signature headers)")
    wrk.add_argument("--script", default=str(Path(__file__).resolve().parent.parent / "wrk" / "post.lua"))
    wrk.add_argument("--threads", type=int, default=2)
    wrk.add_argument("--connections", type=int, default=32)
    wrk.add_argument("--duration", type=int, default=20)
    wrk.add_argument("--label")
    wrk.add_argument("--extra", action="append")
    wrk.add_argument("--append")
    wrk.set_defaults(run=cmd_wrk)

    connector = commands.add_parser("connector-wait")
    connector.add_argument("--metrics-url", required=True)
    connector.add_argument("--pid", type=int, required=True)
    connector.add_argument("--since", type=float, required=True, help="Unix time the process was started")
    connector.add_argument("--target", type=int, required=True)
    connector.add_argument("--pipeline")
    connector.add_argument("--timeout", type=float, default=900)
    connector.add_argument("--poll", type=float, default=0.1)
    connector.add_argument("--out", required=True)
    connector.set_defaults(run=cmd_connector_wait)

    timed = commands.add_parser("timed")
    timed.add_argument("--out", required=True)
    timed.add_argument("--label")
    timed.add_argument("command", nargs=argparse.REMAINDER)
    timed.set_defaults(run=cmd_timed)

    swap = commands.add_parser("swap")
    swap.add_argument("--plugins-dir", required=True)
    swap.add_argument("--plugin", default="fixture-hostile")
    swap.add_argument("--v2", required=True)
    swap.add_argument("--v3", required=True)
    swap.add_argument("--admin-url", required=True)
    swap.add_argument("--token", required=True)
    swap.add_argument("--swaps", type=int, default=20)
    swap.add_argument("--poll-ms", type=float, default=5)
    swap.add_argument("--settle-ms", type=float, default=400)
    swap.add_argument("--timeout", type=float, default=10)
    swap.add_argument("--out", required=True)
    swap.set_defaults(run=cmd_swap)

    rss = commands.add_parser("rss-sample")
    rss.add_argument("--pid", type=int, required=True)
    rss.add_argument("--interval", type=float, default=10)
    rss.add_argument("--duration", type=float, required=True)
    rss.add_argument("--out", required=True)
    rss.set_defaults(run=cmd_rss_sample)

    bundle = commands.add_parser("bundle")
    bundle.add_argument("--bench", required=True)
    bundle.add_argument("--out", required=True)
    bundle.add_argument("--meta", action="append")
    bundle.add_argument("--jsonl")
    bundle.add_argument("--part", action="append")
    bundle.set_defaults(run=cmd_bundle)

    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()

"""Bundles the fault suite's per-fault results into one JSON file and the "Faults" Markdown.

Usage: report.py --results DIR --order LIST --json OUT.json --markdown OUT.md [--meta k=v ...]
DIR holds one <fault>.json per fault, from check.py verify (webhook faults) or bench/faults.sh
(ETL faults). Exit status 1 when any fault lost data (see `lossless` in each file), or an ETL
fault came after its job had committed (`fault_hit_the_load`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DESCRIPTIONS = {
    "broker": "tansu stopped {outage_s} s, started again",
    "s3": "SeaweedFS stopped {outage_s} s while windows close (tansu stores on it)",
    "kill": "host SIGKILLed mid-window, restarted",
    "group": "second host joins the group, killed after {outage_s} s",
    "plugin": "plugin swapped to one trapping on every batch for {outage_s} s, then back",
    "etl-pg": "ETL: PostgreSQL restarted mid-load ({etl_records:,} records)",
    "etl-kill": "ETL: host SIGKILLed mid-load, restarted ({etl_records:,} records)",
}


def typed(value: str):
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return parsed if json.dumps(parsed) == value else value


def cell(value) -> str:
    return "–" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def webhook_notes(result: dict) -> str:
    other = {s: c for s, c in result["statuses"].items() if s not in ("503",) and not s.startswith("2")}
    notes = []
    if other:
        notes.append(
            "other answers " + ", ".join(f"{'no answer' if s == '0' else s}: {c}" for s, c in sorted(other.items()))
        )
    if result.get("lost_by_broker"):
        notes.append(
            f"{result['lost_by_broker']} of the missing events are not in the topic: the broker lost them "
            "after acknowledging them (sluice answered 2xx only after that), so they do not count against sluice"
        )
    if result["duplicates"]:
        notes.append(f"{result['duplicates_not_from_retries']} duplicates not explained by retries")
    if result["trapped_letters"]:
        notes.append(f"{result['trapped_letters']} bodies dead-lettered by traps")
    if result["stored_not_acked"]:
        notes.append(f"{result['stored_not_acked']} events stored without a 2xx")
    if result["overlapping_windows"]:
        notes.append(f"{result['overlapping_windows']} overlapping windows")
    if result["windows_stored_twice"]:
        notes.append(
            f"{result['windows_stored_twice']} of {result['windows_logged']} windows stored twice "
            "(a replay after a failed commit replaces the same objects)"
        )
    if result["caught_up_s"] is None:
        notes.append("table did not catch up while watched")
    if result["drained_after_load_s"] is not None:
        notes.append(f"all stored {result['drained_after_load_s']} s after the load")
    return "; ".join(notes)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", required=True)
    parser.add_argument("--order", required=True)
    parser.add_argument("--json", required=True)
    parser.add_argument("--markdown", required=True)
    parser.add_argument("--meta", action="append", default=[])
    args = parser.parse_args()
    meta = {
        key: value if key in ("run_id", "git") else typed(value)
        for key, _, value in (pair.partition("=") for pair in args.meta)
    }
    faults = {}
    for name in args.order.split(","):
        path = Path(args.results) / f"{name}.json"
        faults[name] = json.loads(path.read_text()) if path.exists() else {"lossless": False, "error": "no result"}
    lossless = all(result.get("lossless") for result in faults.values())
    # An ETL fault that came after its job had committed tested nothing: the load must be made
    # longer (FAULTS_ETL_RECORDS) for the fault to meet it.
    missed = [name for name, result in faults.items() if result.get("fault_hit_the_load") is False]
    Path(args.json).write_text(
        json.dumps({"bench": "faults", "meta": meta, "lossless": lossless, "faults": faults}, indent=1)
    )

    lines = [
        "## Faults",
        "",
        f"`bench/faults.sh{' --quick' if meta.get('quick') else ''}` (run {meta.get('run_id')}, "
        f"{meta.get('host_profile')} host, git {meta.get('git')}): signed webhook load of "
        f"{meta.get('rate_bodies_per_s')} bodies/s × {meta.get('events_per_body')} events for {meta.get('load_s')} s "
        "per fault (one event in every tenth body malformed, so a dead letter), the fault "
        f"{meta.get('fault_at_s')} s in, windows of {meta.get('rotate_ms')} ms; "
        "unanswered or non-2xx bodies are retried as SendGrid does. *Acked*: events in bodies answered 2xx; "
        "*missing*: acked but neither a row nor a dead letter; *duplicates*: rows beyond one per event; "
        "*recovery*: from the fault's end until the webhook acked again and every event acked before then was "
        "stored (ETL: until the job succeeded). ETL rows compare the three tables (counts and md5) "
        "with a load that met no fault.",
        "",
        "| fault | acked | arrived as rows | dead letters | missing | duplicates | 503s | recovery s | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, result in faults.items():
        notes_file = Path(args.results) / f"{name}.notes"
        if notes_file.exists():
            result["notes"] = notes_file.read_text().splitlines()
        description = DESCRIPTIONS.get(name, name).format(**meta)
        extra = "".join(f"; {line}" for line in result.get("notes", []))
        if "error" in result:
            cells = [description, *["–"] * 7, result["error"] + extra]
        elif name.startswith("etl-"):
            note = (
                f"job {result['final_state']} after {result['attempts']} attempt(s)"
                f"{', asked again after it failed' if result['resubmitted'] else ''}; "
                f"tables {'equal to' if result['tables_equal'] else 'DIFFER from'} the clean load; "
                f"{len(result['jobs'])} job row(s){extra}"
            )
            if result.get("fault_hit_the_load") is False:
                note += "; **the fault came after the job had committed: it tested nothing**"
            cells = [description, f"{cell(result['records'])} records", cell(result["rows"])]
            cells += [cell(result[key]) for key in ("dead_letters", "missing", "duplicates")]
            cells += ["–", cell(result["recovery_s"]), note]
        else:
            keys = ("acked", "acked_as_rows", "acked_as_dead_letters", "missing", "duplicates", "refused_503")
            cells = [description, *(cell(result[key]) for key in keys), cell(result["recovery_s"])]
            cells.append(webhook_notes(result) + extra)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Every fault kept every acked event."
        if lossless
        else "At least one fault lost or duplicated events: see the rows above."
    )
    if missed:
        lines.append(f"Not tested, the fault came too late: {', '.join(missed)}.")
    Path(args.markdown).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    sys.exit(0 if lossless and not missed else 1)


if __name__ == "__main__":
    main()

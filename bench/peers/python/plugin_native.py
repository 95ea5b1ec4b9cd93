"""A Python plugin's own code run natively, as plain CPython or as a PySpark job.

What it measures: records/s of the very module a Python plugin is built from (for example
plugins/validate-user-status/python/app.py), run without WebAssembly, on a JSON-lines file, so
the languages benchmark can put a plugin's cost as a component beside the same Python code run
the ways a Python user would run it otherwise:

- `cpython`: one process calls the plugin's `Transformer.transform` on batches of
  `--batch-records` records, as sluice calls the component.
- `pyspark`: a PySpark local[N] job (`--spark-cores`) reads the file with `textFile` and calls
  the same `transform` on each partition's batches in `mapPartitions`, as the original system's
  Glue job would run the rules.

The module imports the bindings componentize-py generates for the contract
(`componentize-py -d wit/transform.wit -w plugin bindings DIR`) and the helper module `sluice
plugin new --lang python` ships; `--bindings` and `--path` put them on `sys.path` (and on the
Spark workers' `PYTHONPATH`).

`seconds` covers only the transform calls for `cpython` (the records are read into memory
first, as the components' benchmark does) and the whole job, from `SparkContext` ready to the
last partition counted, for `pyspark`; `startup_seconds` is Spark's own start. Counts: rows per
output and failures, so the runs can be checked against each other.

Usage:
  .run/bench/venv/bin/python bench/peers/python/plugin_native.py --mode cpython \
      --bindings .run/bench/py-bindings --path plugins/validate-user-status/python \
      --path host/src/cli/plugin_new/python --module app --input us-1m.jsonl
Prints one JSON line.
"""

import argparse
import importlib
import json
import os
import resource
import sys
import time


def run_batches(transformer, record_in, values, batch_records):
    """Rows per output and failures over `values` (bytes), `batch_records` at a time."""
    rows, failures = {}, 0
    batch = []

    def flush():
        nonlocal failures
        result = transformer.transform(batch)
        failures += len(result.failures)
        for output in result.outputs:
            rows[output.output] = rows.get(output.output, 0) + len(output.inputs)
        batch.clear()

    for value in values:
        batch.append(record_in(None, value, []))
        if len(batch) == batch_records:
            flush()
    if batch:
        flush()
    return rows, failures


def new_transformer(module_name):
    """The plugin module's transformer, `init` run with no config, and the contract's record type."""
    module = importlib.import_module(module_name)
    from wit_world.imports import types as wit

    transformer = module.Transformer()
    transformer.init([])
    return transformer, wit.RecordIn


def non_blank_lines(path):
    with open(path, "rb") as file:
        return [line.rstrip(b"\r\n") for line in file if line.strip()]


def run_cpython(args):
    transformer, record_in = new_transformer(args.module)
    values = non_blank_lines(args.input)
    started = time.perf_counter()
    rows, failures = run_batches(transformer, record_in, values, args.batch_records)
    seconds = time.perf_counter() - started
    return {
        "records": len(values),
        "seconds": seconds,
        "rows": rows,
        "failures": failures,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_pyspark(args):
    # The workers import the plugin module and its bindings too.
    os.environ["PYTHONPATH"] = os.pathsep.join([*args.search_path, os.environ.get("PYTHONPATH", "")])
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark import SparkConf, SparkContext

    started = time.perf_counter()
    conf = (
        SparkConf()
        .setMaster(f"local[{args.spark_cores}]")
        .setAppName("plugin-native")
        .set("spark.ui.enabled", "false")
        .set("spark.ui.showConsoleProgress", "false")
        .set("spark.driver.memory", "2g")
    )
    context = SparkContext(conf=conf)
    context.setLogLevel("ERROR")
    ready = time.perf_counter()
    module_name, batch_records = args.module, args.batch_records

    def partition(lines):
        transformer, record_in = new_transformer(module_name)
        values = (line.encode() for line in lines if line.strip())
        count = 0

        def counted():
            nonlocal count
            for value in values:
                count += 1
                yield value

        rows, failures = run_batches(transformer, record_in, counted(), batch_records)
        yield count, rows, failures

    totals = {"records": 0, "rows": {}, "failures": 0}
    for count, rows, failures in (
        context.textFile(args.input, minPartitions=args.spark_cores * 2).mapPartitions(partition).collect()
    ):
        totals["records"] += count
        totals["failures"] += failures
        for output, n in rows.items():
            totals["rows"][output] = totals["rows"].get(output, 0) + n
    seconds = time.perf_counter() - ready
    context.stop()
    return {**totals, "seconds": seconds, "startup_seconds": ready - started, "cores": args.spark_cores}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["cpython", "pyspark"], required=True)
    parser.add_argument("--bindings", required=True, help="componentize-py bindings for wit/transform.wit")
    parser.add_argument("--path", action="append", default=[], help="a directory the module imports from")
    parser.add_argument("--module", default="app", help="the plugin's module (default: app)")
    parser.add_argument("--input", required=True, help="JSON lines, one record each")
    parser.add_argument("--batch-records", type=int, default=5000)
    parser.add_argument("--spark-cores", type=int, default=2)
    args = parser.parse_args()
    if args.batch_records < 1:
        parser.error("--batch-records must be at least 1")
    args.search_path = [os.path.abspath(path) for path in [args.bindings, *args.path]]
    sys.path[:0] = args.search_path
    result = run_cpython(args) if args.mode == "cpython" else run_pyspark(args)
    label = "CPython, natively" if args.mode == "cpython" else f"PySpark local[{args.spark_cores}]"
    result.update(
        bench="plugin-native",
        label=label,
        mode=args.mode,
        module=args.module,
        batch_records=args.batch_records,
        records_per_s=round(result["records"] / result["seconds"]),
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()

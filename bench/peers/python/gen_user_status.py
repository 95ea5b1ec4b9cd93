"""Writes the user-status ETL's input: a seeded JSON-lines file with about 5% invalid records.

This is the generator of bench/etl-1m.sh, unchanged (same seed, same draws, same bytes), so
every system in the ETL benchmark reads the same file and the row counts can be checked:
1,000,000 records give 949,647 user_status rows, 50,353 user_status_error_rec rows and
1,423,996 user_status_log rows.

Usage: python gen_user_status.py RECORDS OUT.jsonl EXPECTED.json

EXPECTED.json receives {"records", "valid", "invalid", "log_rows"}.
"""

import json
import random
import sys


def generate(records: int, path: str) -> dict:
    """Writes `records` records to `path` and returns the counts the tables should hold."""
    rng = random.Random(7)
    valid = invalid = logs = 0
    with open(path, "w") as out:
        for i in range(records):
            record = {
                "userId": f"u{i:08d}",
                "createdAt": "2022-02-10T21:09:51Z",
                "lastVisitedAt": 1644527391 + i,
                "status": rng.choice(["VERIFIED", "INITIATED", "BLOCKED"]),
                "isBlacklisted": rng.random() < 0.1,
                "statusLogs": [{"status": "INITIATED", "updatedOn": 1644527391 + j} for j in range(rng.randint(0, 3))],
            }
            if rng.random() < 0.05:
                broken = rng.choice(["null", "empty", "missing"])
                field = rng.choice(["createdAt", "lastVisitedAt", "status", "isBlacklisted"])
                if broken == "null":
                    record[field] = None
                elif broken == "empty":
                    record["status"] = ""
                else:
                    del record[field]
                invalid += 1
            else:
                valid += 1
                logs += len(record["statusLogs"])
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
    return {"records": records, "valid": valid, "invalid": invalid, "log_rows": logs}


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    records, path, expected_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    expected = generate(records, path)
    with open(expected_path, "w") as out:
        json.dump(expected, out)


if __name__ == "__main__":
    main()

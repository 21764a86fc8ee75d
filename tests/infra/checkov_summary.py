"""Prints checkov's JSON report (stdin) briefly: counts, every failure, every skip with its reason.

Exits non-zero when any check failed or the report has no summary.
"""

import json
import sys


def main() -> int:
    report = json.load(sys.stdin)
    reports = report if isinstance(report, list) else [report]
    passed = failed = skipped = 0
    for r in reports:
        summary = r.get("summary")
        if summary is None:
            print("checkov: report without a summary", file=sys.stderr)
            return 2
        passed += summary["passed"]
        failed += summary["failed"]
        skipped += summary["skipped"]
        results = r.get("results", {})
        for c in results.get("failed_checks", []):
            print(f"FAILED  {c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]}): {c['check_name']}")
        for c in results.get("skipped_checks", []):
            reason = (c.get("check_result") or {}).get("suppress_comment", "")
            print(f"skipped {c['check_id']} {c['resource']}: {reason}")
    print(f"checkov: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

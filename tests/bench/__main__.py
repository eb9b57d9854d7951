"""`make bench`: measure flux-batch against its performance targets and print a table."""

from __future__ import annotations

import os
import platform

from tests.bench import bench_pace, bench_plan, bench_report, bench_resume, bench_review, bench_throughput, bench_thumbs


def main() -> int:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"machine: {platform.system()} {platform.machine()}, {os.cpu_count()} cores, {cpu}")
    print(f"python {platform.python_version()}\n")
    rows = bench_plan.run() + bench_resume.run() + bench_review.run() + bench_report.run() + bench_throughput.run()
    rows += bench_thumbs.run() + bench_pace.run()
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'result':>22}  {'target':>18}  verdict")
    failed = 0
    for name, result, target, ok in rows:
        failed += not ok
        print(f"{name:<{width}}  {result:>22}  {target:>18}  {'ok' if ok else 'MISSED'}")
    return 1 if failed else 0


raise SystemExit(main())

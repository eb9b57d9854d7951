"""The least a client can do: a semaphore around the POST, then download, write, log a line.

`python -m tests.bench.baseline URL JOBS.jsonl CONCURRENCY OUT_DIR` sends every job of a
`flux-batch plan --json` listing. It is the yardstick of `make bench`, not part of flux-batch.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp

KEY = "emulator-key"


async def main(url: str, jobs_file: str, concurrency: int, out: Path) -> None:
    jobs = [json.loads(line) for line in open(jobs_file, encoding="utf-8")]
    out.mkdir(parents=True, exist_ok=True)
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        with open(out / "records.jsonl", "a", encoding="utf-8") as records:

            async def one(job: dict[str, Any]) -> None:
                async with gate:
                    async with session.post(f"{url}/api/features", json=job["request"], headers={"API-KEY": KEY}) as answer:
                        record = (await answer.json())["aiRecord"]
                async with session.get(record["temporaryUrl"]) as image:
                    data = await image.read()
                (out / f"{job['job_id']}.webp").write_bytes(data)
                records.write(json.dumps({"job_id": job["job_id"], "aiRecord": record}) + "\n")

            await asyncio.gather(*(one(job) for job in jobs))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])))

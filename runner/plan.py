"""Expand a checked manifest into jobs: pure, streaming, with ids stable under key reordering.

Jobs = for each prompt: product(vars) x product(sweep) x len(zip) x len(seeds). They are
generated one at a time; what is held in memory is the grid's axes and each prompt's filled
texts, never the jobs, so a million-job manifest plans in constant memory.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import math
import random
from array import array
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from runner import checks
from runner.manifest import Manifest, PromptSpec
from runner.template import Scalar

MODEL = "black-forest-labs/flux-dev"
FEATURE_TYPE = "IMAGE_GENERATOR"
# A manifest makes at most this many jobs unless told otherwise (--max-grid): every verb walks
# the grid somewhere (a resume's count, the report, a shuffle), and a typo in a sweep can make
# a trillion. A million plans in seconds and tens of megabytes.
MAX_GRID = 1_000_000


@dataclass(frozen=True, slots=True)
class Survey:
    """One pass over a plan's job ids against what a run dir holds: counts, and which
    positions (in manifest order) are still to run, as a bitmap."""

    done: int  # jobs of the plan with a success line
    held_back: int  # failed for good, or paid and waiting to be fetched: not sent again
    recovered: tuple[int, ...]  # positions whose image is on disk without a success line
    to_run: int
    runnable: bytearray  # bit p set: position p is to run

    def runs(self, position: int) -> bool:
        return bool(self.runnable[position >> 3] & (1 << (position & 7)))


@dataclass(frozen=True, slots=True)
class Job:
    """One paid request: the promptObject to send and the axis values that produced it."""

    job_id: str
    prompt_id: str
    axes: dict[str, Any]
    request: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "prompt_id": self.prompt_id, "axes": self.axes, "request": self.request}


def job_id(prompt_object: Mapping[str, Any]) -> str:
    """A stable id of the request: a hash of the model and the promptObject, keys sorted."""
    canonical = json.dumps(
        {"model": MODEL, "promptObject": prompt_object}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


_CANONICAL = {"sort_keys": True, "separators": (",", ":"), "ensure_ascii": False}


_HEAD = f'{{"model":{json.dumps(MODEL)},"promptObject":{{'


def derive_seed(seed_base: int, index: int) -> int:
    """The seed of repeat `index`: the same for every prompt and grid point, so arms compare fairly.

    A hash rather than seed_base + index keeps the default seeds away from 0, which some
    relays read as "random".
    """
    digest = hashlib.sha256(f"flux-batch/seed/{seed_base}/{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True, slots=True)
class PromptPlan:
    spec: PromptSpec
    base: Mapping[str, Any]  # defaults overlaid by the prompt's own fields
    texts: tuple[tuple[dict[str, Scalar], str], ...]  # (var values, filled prompt text)


@dataclass(frozen=True, slots=True)
class Plan:
    manifest: Manifest
    prompts: tuple[PromptPlan, ...]
    seeds: tuple[int, ...]

    @property
    def grid_size(self) -> int:
        size = 1
        for _, values in self.manifest.sweep:
            size *= len(values)
        return size * (len(self.manifest.zip[0][1]) if self.manifest.zip else 1)

    def count(self, prompt: PromptPlan) -> int:
        return len(prompt.texts) * self.grid_size * len(self.seeds)

    @property
    def total(self) -> int:
        return sum(self.count(p) for p in self.prompts)

    def jobs(self, order: str = "manifest", skip: Container[str] = frozenset(), survey: Survey | None = None) -> Iterator[Job]:
        """Every job once, in `order`: "manifest" (prompt by prompt, as written), "interleave"
        (prompts in turn, each spreading over its grid) or "shuffle" (a seeded permutation).

        The last two keep a run cut short by a cap a fair sample of the prompts and the grid.
        Ids in `skip` are left out before their Job is built; with a `survey`, only the
        positions it marks to run are built at all, which makes resuming cheap.
        """
        starts = self._starts()
        if survey is not None:
            for position in self._positions(order):
                if survey.runs(position):
                    yield self.job_at_position(position, starts)
            return
        if order == "manifest":
            # The ids come from job_ids, which walks the same order without building each
            # promptObject's canonical JSON: plan --json and export spent most of their time there.
            for (prompt, var_values, point, seed, prompt_object), identity in zip(self._expand(), self.job_ids(), strict=True):
                if identity not in skip:
                    yield self._job(prompt, var_values, point, seed, prompt_object, identity)
            return
        for position in self._positions(order):
            job = self.job_at_position(position, starts)
            if job.job_id not in skip:
                yield job

    def _positions(self, order: str) -> Iterator[int]:
        """Positions in manifest order (0 .. total-1), visited in `order`."""
        if order == "manifest":
            yield from range(self.total)
        elif order == "interleave":
            counts = [self.count(p) for p in self.prompts]
            starts = self._starts()
            strides = [_spreading_stride(n) for n in counts]
            for rank in range(max(counts, default=0)):
                for index, n in enumerate(counts):
                    if rank < n:
                        yield starts[index] + rank * strides[index] % n
        elif order == "shuffle":
            # 8 bytes a job, not a Job a job: a million-job shuffle holds 8 MB.
            indices = array("Q", range(self.total))
            random.Random(f"flux-batch/shuffle/{self.manifest.seed_base}").shuffle(indices)
            yield from indices
        else:
            raise ValueError(f"unknown order {order!r}")

    def _starts(self) -> list[int]:
        return list(itertools.accumulate((self.count(p) for p in self.prompts), initial=0))

    def job_at_position(self, position: int, starts: list[int] | None = None) -> Job:
        """The job at `position` in manifest order (`starts`: each prompt's first position)."""
        starts = starts or self._starts()
        prompt_index = bisect.bisect_right(starts, position) - 1
        return self.job_at(prompt_index, position - starts[prompt_index])

    def survey(
        self, done: Container[str], held_back: Container[str] = frozenset(), on_disk: Container[str] = frozenset()
    ) -> Survey:
        """Walk the job ids once: those `done`, those `held_back` (not to send), those whose
        image is `on_disk` without a record (to recover), and the rest, to run."""
        runnable = bytearray((self.total + 7) // 8)
        n_done = n_held = to_run = 0
        recovered = []
        for position, identity in enumerate(self.job_ids()):
            if identity in done:
                n_done += 1
            elif identity in on_disk:
                recovered.append(position)
            elif identity in held_back:
                n_held += 1
            else:
                runnable[position >> 3] |= 1 << (position & 7)
                to_run += 1
        return Survey(n_done, n_held, tuple(recovered), to_run, runnable)

    def job_at(self, prompt_index: int, k: int) -> Job:
        """Job number `k` of prompt `prompt_index` in manifest order, computed directly."""
        prompt = self.prompts[prompt_index]
        rest, seed_index = divmod(k, len(self.seeds))
        text_index, point_index = divmod(rest, self.grid_size)
        var_values, text = prompt.texts[text_index]
        point = self._point(point_index)
        seed = self.seeds[seed_index]
        prompt_object = {"prompt": text, **prompt.base, **point, "seed": seed}
        return self._job(prompt, var_values, point, seed, prompt_object)

    def job_ids(self) -> Iterator[str]:
        """Every job's id in manifest order, as `job_id` computes it, without building the jobs.

        The canonical JSON is put together from its `"key":value` parts, each encoded once per
        plan, and in a key order sorted once per prompt. Within one grid point only the seed
        varies, so the text around it is hashed once per point and each seed finishes a copy
        of that hash. A resume over 100,000 records spent most of its start-up on ids."""
        seeds = [str(seed).encode() for seed in self.seeds]
        swept = [name for name, _ in (*self.manifest.sweep, *self.manifest.zip)]
        encoded: dict[tuple[str, type, Any], str] = {}

        def part(key: str, value: Any) -> str:
            cached = encoded.get((key, type(value), value))
            if cached is None:
                cached = f"{json.dumps(key, ensure_ascii=False)}:{json.dumps(value, **_CANONICAL)}"  # type: ignore[arg-type]
                encoded[key, type(value), value] = cached
            return cached

        for prompt in self.prompts:
            keys = sorted({"prompt", "seed", *prompt.base, *swept})
            cut = keys.index("seed")
            before, after = keys[:cut], keys[cut + 1 :]
            for _, text in prompt.texts:
                for point in self._grid():
                    values = {"prompt": text, **prompt.base, **point}
                    head = _HEAD + "".join([part(key, values[key]) + "," for key in before]) + '"seed":'
                    tail = "".join(["," + part(key, values[key]) for key in after]) + "}}"
                    started = hashlib.sha256(head.encode())
                    ending = tail.encode()
                    for seed in seeds:
                        finished = started.copy()
                        finished.update(seed + ending)
                        yield finished.hexdigest()[:16]

    def _job(
        self,
        prompt: PromptPlan,
        var_values: dict[str, Scalar],
        point: dict[str, Any],
        seed: int,
        prompt_object: dict[str, Any],
        identity: str | None = None,
    ) -> Job:
        axes = {**var_values, **point, "seed": seed}
        request = {"type": FEATURE_TYPE, "model": MODEL, "promptObject": prompt_object}
        return Job(identity or job_id(prompt_object), prompt.spec.id, axes, request)

    def _expand(self) -> Iterator[tuple[PromptPlan, dict[str, Scalar], dict[str, Any], int, dict[str, Any]]]:
        for prompt in self.prompts:
            for var_values, text in prompt.texts:
                for point in self._grid():
                    fixed = {"prompt": text, **prompt.base, **point}
                    for seed in self.seeds:
                        yield prompt, var_values, point, seed, {**fixed, "seed": seed}

    def _grid(self) -> Iterator[dict[str, Any]]:
        sweep_names = [name for name, _ in self.manifest.sweep]
        zip_names = [name for name, _ in self.manifest.zip]
        zip_rows = list(zip(*(values for _, values in self.manifest.zip), strict=True)) or [()]
        for point in itertools.product(*(values for _, values in self.manifest.sweep)):
            swept = dict(zip(sweep_names, point, strict=True))
            for row in zip_rows:
                yield {**swept, **dict(zip(zip_names, row, strict=True))}

    def _point(self, index: int) -> dict[str, Any]:
        """Grid point `index` in the order `_grid` yields them: zip rows fastest, then the
        last sweep list, as itertools.product does."""
        zip_length = len(self.manifest.zip[0][1]) if self.manifest.zip else 1
        index, row = divmod(index, zip_length)
        point: dict[str, Any] = {}
        for name, values in reversed(self.manifest.sweep):
            index, position = divmod(index, len(values))
            point[name] = values[position]
        point = dict(reversed(point.items()))
        for name, values in self.manifest.zip:
            point[name] = values[row]
        return point


def _spreading_stride(n: int) -> int:
    """A step coprime to n near n / golden ratio: k * step mod n visits 0..n-1 once each,
    and any first few visits lie spread over the whole range."""
    if n <= 2:
        return 1
    step = max(1, round(n / 1.618033988749895))
    while math.gcd(step, n) != 1:
        step += 1
    return step


def make_plan(manifest: Manifest, max_grid: int = MAX_GRID) -> Plan:
    """Expand `manifest`, once checks.py finds the grid sound; ManifestError if it is not. A grid
    of more than `max_grid` jobs is refused before anything of it is expanded."""
    checks.grid_size(manifest, max_grid)
    seeds = manifest.seeds or tuple(derive_seed(manifest.seed_base, i) for i in range(manifest.repeats))
    prompts = tuple(PromptPlan(spec, {**manifest.defaults, **spec.fields}, _texts(spec)) for spec in manifest.prompts)
    checks.whole_grid(manifest, prompts, seeds)
    return Plan(manifest, prompts, seeds)


def _texts(spec: PromptSpec) -> tuple[tuple[dict[str, Scalar], str], ...]:
    """Every combination of the prompt's vars, and the text it fills its template to."""
    names = [name for name, _ in spec.vars]
    combos = itertools.product(*(values for _, values in spec.vars))
    return tuple((values, spec.template.fill(values)) for values in (dict(zip(names, combo, strict=True)) for combo in combos))

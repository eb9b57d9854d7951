"""Expanding a manifest (runner/plan.py): counts, ids, seeds, orders, and the properties that make
the duplicate check trustworthy."""

from __future__ import annotations

import itertools
import json
import math
import random
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.errors import ManifestError
from runner.manifest import load, loads
from runner.plan import Plan, derive_seed, job_id, make_plan
from runner.template import render
from tests.support import SPEC_EXAMPLE

GRID = (
    "version: 1\nname: grid\nprompts:\n  - {id: a, prompt: 'one {x}', vars: {x: [p, q]}}\n"
    "  - {id: b, prompt: 'two'}\n  - {id: c, prompt: 'three'}\n"
    "sweep:\n  guidance: [1, 2, 3]\n  num_inference_steps: [10, 20]\nzip:\n  output_quality: [50, 60]\n  go_fast: [true, false]\n"
    "seeds: [5, 6]\n"
)


@pytest.mark.parametrize("order", ["interleave", "shuffle"])
def test_every_order_yields_each_job_exactly_once(order: str) -> None:
    plan = make_plan(loads(GRID))
    reference = [job.as_dict() for job in plan.jobs()]
    reordered = [job.as_dict() for job in plan.jobs(order)]
    assert len(reordered) == plan.total == 96
    key = lambda job: job["job_id"]  # noqa: E731
    assert sorted(reordered, key=key) == sorted(reference, key=key)
    assert [j["job_id"] for j in reordered] != [j["job_id"] for j in reference]


def test_job_at_computes_the_manifest_order() -> None:
    plan = make_plan(loads(GRID))
    listed = [job.as_dict() for job in plan.jobs()]
    computed = [plan.job_at(p, k).as_dict() for p in range(len(plan.prompts)) for k in range(plan.count(plan.prompts[p]))]
    assert computed == listed


def test_interleave_takes_prompts_in_turn_and_spreads_over_the_grid() -> None:
    plan = make_plan(loads(GRID))
    first = list(plan.jobs("interleave"))[:12]
    assert [job.prompt_id for job in first[:6]] == ["a", "b", "c", "a", "b", "c"]
    b_jobs = [job for job in first if job.prompt_id == "b"]
    assert len({job.axes["guidance"] for job in b_jobs}) == 3  # 4 jobs of b already cover every guidance


def test_shuffle_is_deterministic() -> None:
    plan = make_plan(loads(GRID))
    assert [j.job_id for j in plan.jobs("shuffle")] == [j.job_id for j in plan.jobs("shuffle")]


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    seeds=st.integers(1, 3),
    order=st.sampled_from(["interleave", "shuffle"]),
)
def test_orders_are_permutations(sizes: list[int], seeds: int, order: str) -> None:
    prompts = "".join(f"  - {{id: p{i}, prompt: 'p{i} {{v}}', vars: {{v: {list(range(n))}}}}}\n" for i, n in enumerate(sizes))
    plan = make_plan(loads(f"version: 1\nname: t\nprompts:\n{prompts}sweep: {{guidance: [1, 2]}}\nrepeats: {seeds}\n"))
    assert sorted(j.job_id for j in plan.jobs(order)) == sorted(plan.job_ids())


def test_the_spec_example_plans_to_exactly_32_jobs() -> None:
    plan = make_plan(load(SPEC_EXAMPLE))
    jobs = list(plan.jobs())
    assert plan.total == len(jobs) == 32
    assert len({job.job_id for job in jobs}) == 32
    assert [plan.count(p) for p in plan.prompts] == [16, 16]
    first = jobs[0]
    assert first.axes == {
        "vehicle": "flying cars",
        "num_inference_steps": 20,
        "guidance": 2.5,
        "output_quality": 70,
        "seed": 11,
    }
    assert first.request == {
        "type": "IMAGE_GENERATOR",
        "model": "black-forest-labs/flux-dev",
        "promptObject": {
            "prompt": "A futuristic cityscape at sunset with flying cars",
            "aspect_ratio": "16:9",
            "megapixels": "1",
            "guidance": 2.5,
            "num_inference_steps": 20,
            "output_quality": 70,
            "seed": 11,
        },
    }
    zipped = {(j.axes["guidance"], j.axes["output_quality"]) for j in jobs}
    assert zipped == {(2.5, 70), (5, 90)}


def test_precedence_defaults_then_params_then_sweep() -> None:
    plan = make_plan(
        loads(
            "version: 1\nname: t\ndefaults: {guidance: 1, output_quality: 10, go_fast: true}\n"
            "prompts:\n  - {id: a, prompt: c, params: {guidance: 2, output_quality: 20}}\n"
            "sweep: {output_quality: [30]}\n"
        )
    )
    (job,) = plan.jobs()
    assert job.request["promptObject"] | {"seed": 0} == {
        "prompt": "c",
        "guidance": 2,
        "output_quality": 30,
        "go_fast": True,
        "seed": 0,
    }


def test_every_job_carries_an_explicit_seed_shared_by_all_arms() -> None:
    plan = make_plan(
        loads(
            "version: 1\nname: t\nprompts:\n  - {id: a, prompt: one}\n  - {id: b, prompt: two}\n"
            "sweep: {guidance: [2, 3]}\nrepeats: 3\nseed_base: 9\n"
        )
    )
    expected = [derive_seed(9, i) for i in range(3)]
    assert len(set(expected)) == 3
    seeds_by_arm: dict[str, list[int]] = {}
    for job in plan.jobs():
        assert job.request["promptObject"]["seed"] == job.axes["seed"]
        seeds_by_arm.setdefault(f"{job.prompt_id}/{job.axes['guidance']}", []).append(job.axes["seed"])
    assert all(seeds == expected for seeds in seeds_by_arm.values())


def test_seed_base_changes_the_derived_seeds() -> None:
    assert [derive_seed(0, i) for i in range(4)] != [derive_seed(1, i) for i in range(4)]
    assert derive_seed(0, 0) == derive_seed(0, 0)


def test_job_id_ignores_key_order_and_tracks_every_value() -> None:
    a = {"prompt": "x", "guidance": 3, "seed": 1}
    assert job_id(a) == job_id(dict(reversed(list(a.items()))))
    assert job_id(a) != job_id(a | {"seed": 2})


def test_jobs_stream_without_holding_the_plan(tmp_path: Path) -> None:
    # 8 prompts x 25 x 25 x 4 seeds = 20,000 jobs: holding them would take megabytes.
    plan = make_plan(
        loads(
            "version: 1\nname: big\nprompts:\n"
            + "".join(f"  - {{id: p{i}, prompt: 'subject {i}'}}\n" for i in range(8))
            + f"sweep:\n  guidance: {list(range(25))}\n  num_inference_steps: {list(range(1, 26))}\n"
            + f"seeds: {list(range(4))}\n"
        )
    )
    tracemalloc.start()
    count = sum(1 for _ in plan.jobs())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == plan.total == 20_000
    assert peak < 2_000_000, f"expanding held {peak} bytes at once"


FIELD_VALUES: dict[str, list[Any]] = {
    "guidance": [0, 1.5, 2.5, 3.5, 7, 50],
    "num_inference_steps": [1, 4, 20, 28, 50],
    "output_quality": [0, 60, 80, 100],
    "prompt_strength": [0, 0.25, 0.8, 1],
    "megapixels": ["0.25", "1", "2"],
    "aspect_ratio": ["1:1", "16:9", "9:16", "3:2"],
    "go_fast": [True, False],
}

WORDS = ["fox", "owl", "red", "blue", "tiny", "vast", "x", "xy"]


@st.composite
def manifests(draw: st.DrawFn, distinct: bool = True) -> dict[str, Any]:
    """A manifest as data. With distinct=True it is valid by construction: no list repeats a
    value, zip rows differ, and each arm's text names the arm. With distinct=False lists may
    repeat values, zip rows may repeat, and arms may coincide."""
    fields = list(FIELD_VALUES)
    axis_fields = draw(st.lists(st.sampled_from(fields), unique=True, max_size=4))
    split = draw(st.integers(0, len(axis_fields)))

    def pick(values: list[Any], size: int | None = None) -> list[Any]:
        """1 to 3 of `values` (exactly `size` if given), distinct unless `distinct` is off."""
        return draw(st.lists(st.sampled_from(values), min_size=size or 1, max_size=size or 3, unique=distinct))

    sweep = {f: pick(FIELD_VALUES[f]) for f in axis_fields[:split]}
    zip_fields = axis_fields[split:]
    zip_len = draw(st.integers(1, min([3, *(len(FIELD_VALUES[f]) for f in zip_fields)])))
    zipped = {f: pick(FIELD_VALUES[f], zip_len) for f in zip_fields}
    prompts = []
    for index in range(draw(st.integers(1, 3))):
        names = draw(st.lists(st.sampled_from(["a", "b", "c"]), unique=True, max_size=2))
        text = draw(st.sampled_from(["", "photo of ", "a "])) + " ".join(f"{{{n}}}" for n in names)
        prompt: dict[str, Any] = {"id": f"p{index}", "prompt": (f"arm {index}: " if distinct else "") + (text or "still life")}
        if names:
            prompt["vars"] = {n: pick(WORDS) for n in names}
        prompts.append(prompt)
    manifest: dict[str, Any] = {"version": 1, "name": "prop", "prompts": prompts}
    if sweep:
        manifest["sweep"] = sweep
    if zipped:
        manifest["zip"] = zipped
    if draw(st.booleans()):
        manifest["seeds"] = draw(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=3, unique=distinct))
    else:
        manifest["repeats"] = draw(st.integers(1, 3))
    return manifest


def expected_count(data: dict[str, Any]) -> int:
    grid = math.prod(len(v) for v in data.get("sweep", {}).values())
    grid *= len(next(iter(data["zip"].values()))) if data.get("zip") else 1
    seeds = len(data["seeds"]) if "seeds" in data else data["repeats"]
    return sum(math.prod(len(v) for v in p.get("vars", {}).values()) * grid * seeds for p in data["prompts"])


def shuffled(data: Any, rng: random.Random) -> Any:
    """The same manifest with the keys of every mapping in another order."""
    if isinstance(data, dict):
        items = list(data.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(data, list):
        return [shuffled(v, rng) for v in data]
    return data


def plan_of(data: dict[str, Any]) -> Plan:
    return make_plan(loads(yaml.safe_dump(data, sort_keys=False)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=manifests(), order=st.randoms(use_true_random=False))
def test_expansion_properties(data: dict[str, Any], order: random.Random) -> None:
    plan = plan_of(data)  # valid by construction: no example is thrown away
    jobs = list(plan.jobs())
    assert len(jobs) == plan.total == expected_count(data)
    ids = [job.job_id for job in jobs]
    assert len(set(ids)) == len(ids)
    assert ids == list(plan.job_ids())
    assert sorted(ids) == sorted(job.job_id for job in plan_of(shuffled(data, order)).jobs())
    seeds_per_prompt: dict[str, list[int]] = {p.spec.id: [] for p in plan.prompts}
    for job in jobs:
        seeds_per_prompt[job.prompt_id].append(job.axes["seed"])
    assert len({tuple(sorted(set(s))) for s in seeds_per_prompt.values()}) == 1


def brute_force_requests(data: dict[str, Any]) -> list[str]:
    """Every promptObject a manifest asks for, expanded the slow, obvious way (no plan.py)."""
    sweep, zipped = data.get("sweep", {}), data.get("zip", {})
    seeds = data["seeds"] if "seeds" in data else [derive_seed(0, i) for i in range(data["repeats"])]
    rows = list(zip(*zipped.values(), strict=True)) if zipped else [()]
    requests = []
    for prompt in data["prompts"]:
        names = list(prompt.get("vars", {}))
        for combo in itertools.product(*(prompt["vars"][name] for name in names)):
            text = prompt["prompt"]
            for name, value in zip(names, combo, strict=True):
                text = text.replace(f"{{{name}}}", render(value))
            for point in itertools.product(*sweep.values()):
                for row in rows:
                    for seed in seeds:
                        fields = {**dict(zip(sweep, point, strict=True)), **dict(zip(zipped, row, strict=True))}
                        requests.append(json.dumps({"prompt": text, **fields, "seed": seed}, sort_keys=True))
    return requests


@settings(max_examples=200, deadline=None)
@given(data=manifests(distinct=False))
def test_a_plan_is_refused_exactly_when_it_would_pay_twice(data: dict[str, Any]) -> None:
    """The duplicate check against a brute force, both ways: a manifest that repeats a request
    is refused, saying so; one that does not is accepted and asks for exactly those requests."""
    expected = brute_force_requests(data)
    if len(set(expected)) < len(expected):
        with pytest.raises(ManifestError) as refused:
            plan_of(data)
        assert all("paid for twice" in problem.message or "listed twice" in problem.message for problem in refused.value.problems)
        return
    requests = [json.dumps(job.request["promptObject"], sort_keys=True) for job in plan_of(data).jobs()]
    assert sorted(requests) == sorted(expected)


def test_duplicate_check_refuses_a_duplicate_the_brute_force_finds() -> None:
    data = {
        "version": 1,
        "name": "t",
        "prompts": [{"id": "a", "prompt": "{a}{b}", "vars": {"a": ["x", "xy"], "b": ["yz", "z"]}}],
    }
    texts = ["".join(p) for p in itertools.product(["x", "xy"], ["yz", "z"])]
    assert len(set(texts)) < len(texts)
    with pytest.raises(ManifestError, match="paid for twice"):
        plan_of(data)


def test_fast_ids_equal_the_canonical_ones_with_fields_from_everywhere() -> None:
    """job_ids() assembles the canonical JSON from cached parts; ids are kept in every run dir,
    so it must agree with job_id() byte for byte, whatever the text and wherever a field is set."""
    text = (
        "version: 1\nname: ids\ndefaults: {aspect_ratio: '16:9', megapixels: 1, go_fast: true, output_quality: 80}\n"
        "prompts:\n"
        "  - {id: a, prompt: 'ein \"Fuchs\" im Schnee, {x} \\\\ é ☃', vars: {x: [1, 2.5, true, 'zwölf']}}\n"
        "  - {id: b, prompt: 'plain', params: {guidance: 4, prompt_strength: 0.25, go_fast: false}}\n"
        "sweep:\n  num_inference_steps: [4, 28]\nzip:\n  guidance: [2, 3.5]\n  output_quality: [60, 90]\nrepeats: 3\n"
    )
    plan = make_plan(loads(text))
    canonical = [job_id(job.request["promptObject"]) for job in plan.jobs()]
    assert list(plan.job_ids()) == canonical and len(set(canonical)) == plan.total == 60

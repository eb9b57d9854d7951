"""RUN_DIR/report.html: a gallery that answers "which setting, which prompt?" at a glance.

A page that opens from disk with nothing from the network (inline CSS and JS; images by
relative links), and beside it, in report-data/, one script per prompt holding its jobs, which
the page loads as the prompt comes into view. Per prompt a grid whose rows and columns are two
of the axes that vary (the reader may choose), the other axes as selectors; arms of an A/B test
side by side; failed and pending jobs in their cells. Thumbnails are made with Pillow beside
the images, a process per core, only where missing (a run makes most as its pictures land:
thumbs.py). sheets.py draws contact sheets.
"""

from __future__ import annotations

import contextlib
import html
import itertools
import json
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from runner import endpoint, schemas
from runner.arms import RunSet
from runner.diskwriter import write_whole
from runner.export import Fate, fates
from runner.plan import Plan
from runner.ratings import JobMarks, standing
from runner.records import SUCCESS, utc_timestamp
from runner.store import THUMBS
from runner.summary import read_summary
from runner.template import render
from runner.thumbnail import abandoned
from runner.thumbnail import make as make_thumbnail
from runner.thumbs import thumb_of
from runner.verdict import verdict

REPORT = "report.html"
REPORT_DATA = "report-data"  # beside report.html: one script of jobs per prompt, loaded as it is shown
_TEMPLATE = Path(__file__).with_name("report_template.html")
_CHARTS = Path(__file__).with_name("verdict_charts.js")


def write_report(run_dir: Path, plan: Plan) -> Path:
    """(Re)write RUN_DIR/report.html and its per-prompt data for `plan`; returns its path."""
    page_data = gather(run_dir, plan)
    folder = run_dir / REPORT_DATA
    folder.mkdir(exist_ok=True)
    stamp = page_data["generated"].replace(":", "")
    for index, jobs in enumerate(page_data.pop("jobs")):
        # A script, not JSON: Chromium refuses fetch() of file:// URLs but runs <script src>.
        text = json.dumps(jobs, ensure_ascii=False, separators=(",", ":"))
        _write_atomically(folder / f"p{index}.js", f"FLUX_REPORT_DATA({index}, {text});\n")
        page_data["prompts"][index]["file"] = f"{REPORT_DATA}/p{index}.js?{stamp}"
    for stale in folder.glob("p*.js"):
        if not stale.stem[1:].isdigit() or int(stale.stem[1:]) >= len(plan.prompts):
            stale.unlink(missing_ok=True)
    page = _TEMPLATE.read_text(encoding="utf-8")
    # Inside a <script>, "</script>" ends it early and "<!--" changes how it is parsed: a server's
    # message holding either would blank the page. JSON may spell every "<" as \u003c.
    payload = json.dumps(page_data, ensure_ascii=False).replace("<", "\\u003c")
    page = page.replace("{{title}}", html.escape(f"{plan.manifest.name}: flux-batch report"))
    page = page.replace("{{charts}}", _CHARTS.read_text(encoding="utf-8"))
    page = page.replace("{{data}}", payload)
    _write_atomically(run_dir / REPORT, page)
    return run_dir / REPORT


def _write_atomically(target: Path, text: str) -> None:
    # Made again from the run dir whenever it is lost: whole, but not worth an fsync.
    write_whole(str(target), text.encode(), durable=False)


def gather(run_dir: Path, plan: Plan) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready data: "prompts" without their jobs, and "jobs",
    each prompt's jobs in manifest order in their compact form (`expand` reads them). Streams
    over the records without their aiRecords, and makes missing thumbnails on the way."""
    found = fates(run_dir)
    thumbs = _thumbnails(run_dir, found)
    inputs = _input_thumbnails(run_dir, plan)
    judged = standing(run_dir)
    marks = JobMarks.of(judged)
    counts = {"total": plan.total, "done": 0, "failed": 0, "pending": 0}
    prompts, jobs = [], []
    ids = plan.job_ids()
    for index, prompt in enumerate(plan.prompts):
        prompts.append(_prompt_data(plan, index, inputs))
        compact = []
        for job_id in itertools.islice(ids, plan.count(prompt)):
            fate = found.get(job_id)
            counts[{"success": "done"}.get(fate.status, "failed") if fate else "pending"] += 1
            compact.append(_compact(job_id, fate, thumbs.get(job_id), marks.mean_score.get(job_id)))
        jobs.append(compact)
    provenance = endpoint.read(run_dir)
    priced = [fate.credits for fate in found.values() if fate.status == SUCCESS and fate.credits is not None]
    found_verdict = verdict(RunSet([run_dir], 0, [plan]), judged) if judged else None
    return {
        "name": plan.manifest.name,
        "generated": utc_timestamp(precision="seconds"),
        "counts": counts,
        "summary": summary.as_json() if (summary := read_summary(run_dir)) else None,
        "emulated": provenance.emulated if provenance is not None else False,
        "credits": round(sum(priced), 6) if priced else None,
        "endpoint": provenance.describe() if provenance is not None else None,
        "prompts": prompts,
        "arms": _arms(prompts),
        "verdict": {**found_verdict.as_json(), "words": found_verdict.words()} if found_verdict else None,
        "jobs": jobs,
    }


def _prompt_data(plan: Plan, index: int, inputs: Mapping[str, str]) -> dict[str, Any]:
    prompt = plan.prompts[index]
    axes = _axes(plan, index)
    token = prompt.base.get("image_prompt")
    swept = {name for name, _ in (*plan.manifest.sweep, *plan.manifest.zip)}
    return {
        "id": prompt.spec.id,
        "template": "".join(_template_text(prompt.spec.template.literals, prompt.spec.template.names)),
        "input": inputs.get(str(token)) if token else None,
        # The settings every image of the prompt shares, as they were sent: a reader comparing
        # grids or arms needs them as much as the axes that vary.
        "fixed": {name: _label(value) for name, value in prompt.base.items() if name not in swept and name != "image_prompt"},
        "axes": [{"name": name, "values": [_label(v) for v in values]} for name, values in axes],
        "count": plan.count(prompt),
        # Job k's prompt text is texts[k // per_text]; its coordinates are k's digits with the
        # axes' lengths as radices, the last axis (seed) fastest: the plan's own order.
        "texts": [text for _, text in prompt.texts],
        "per_text": plan.grid_size * len(plan.seeds),
    }


def _compact(job_id: str, fate: Fate | None, thumb: Thumb | None, score: float | None) -> dict[str, Any]:
    """One job as the page's data file holds it: short keys, and only what is there."""
    entry: dict[str, Any] = {"i": job_id}
    if fate is None:
        return entry
    entry.update(s=fate.status, a=fate.attempts, e=fate.elapsed_s, d=fate.finished_at)
    if fate.status == SUCCESS and fate.files:
        path, problem = thumb or (fate.files[0], None)
        if problem:
            entry["u"] = problem  # linking the original would hand the browser the same picture
        else:
            entry.update(f=fate.files[0], t=path)
        if score is not None:
            entry["x"] = round(score, 2)
    elif fate.error_kind:
        entry.update(k=fate.error_kind, m=fate.error_message)
    return entry


def expand(prompt: Mapping[str, Any], compact: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A prompt's jobs in full, with their coordinates and text, as the page expands them."""
    radices = [len(axis["values"]) for axis in prompt["axes"]]
    jobs = []
    for k, entry in enumerate(compact):
        coords, rest = [0] * len(radices), k
        for axis in range(len(radices) - 1, -1, -1):
            rest, coords[axis] = divmod(rest, radices[axis])
        job = {
            "id": entry["i"],
            "status": entry.get("s", "pending"),
            "coords": coords,
            "prompt": prompt["texts"][k // prompt["per_text"]],
        }
        job.update({name: entry[key] for key, name in _LONG_NAMES.items() if key in entry})
        if "k" in entry:
            job["error"] = {"kind": entry["k"], "message": entry.get("m")}
        jobs.append(job)
    return jobs


_LONG_NAMES = {"f": "image", "t": "thumb", "u": "unviewable", "a": "attempts", "e": "elapsed", "d": "finished", "x": "score"}


def _axes(plan: Plan, index: int) -> list[tuple[str, list[Any]]]:
    """The prompt's axes in manifest order; zip fields, which move together, are one axis."""
    manifest = plan.manifest
    axes: list[tuple[str, list[Any]]] = [(name, list(values)) for name, values in plan.prompts[index].spec.vars]
    axes += [(name, list(values)) for name, values in manifest.sweep]
    if manifest.zip:
        names = [name for name, _ in manifest.zip]
        rows = list(zip(*(values for _, values in manifest.zip), strict=True))
        axes.append((" / ".join(names), [list(row) for row in rows]))
    axes.append(("seed", list(plan.seeds)))
    return axes


def _arms(prompts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Prompts with the same axes and values (vars, sweep, zip, seeds) compare cell by cell;
    `differences` are the settings in which they differ besides the prompt text, which a
    reader would otherwise take the text to explain."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for prompt in prompts:
        groups.setdefault(json.dumps(prompt["axes"]), []).append(prompt)
    arms = []
    for group in groups.values():
        if len(group) < 2:
            continue
        names = sorted({name for prompt in group for name in prompt["fixed"]})
        differences = []
        for name in names:
            values = {prompt["id"]: prompt["fixed"].get(name, _unset(name)) for prompt in group}
            if len(set(values.values())) > 1:
                differences.append({"field": name, "values": values})
        arms.append({"prompts": [prompt["id"] for prompt in group], "differences": differences})
    return arms


def _unset(name: str) -> str:
    default = schemas.prompt_fields().get(name, {}).get("default")
    return f"not set (the API's default, {_label(default)})" if default is not None else "not set"


Thumb = tuple[str, str | None]  # (path to show, relative to the run dir; why it cannot be shown)


def _thumbnails(run_dir: Path, found: Mapping[str, Fate]) -> dict[str, Thumb]:
    """job_id -> its thumbnail (made if missing), or the original and why it cannot be shown."""
    wanted: dict[str, tuple[str, str]] = {}
    for job_id, fate in found.items():
        if fate.status == SUCCESS and fate.files:
            wanted[job_id] = (fate.files[0], thumb_of(fate.files[0], job_id))
    present = _listing(run_dir / THUMBS)
    missing = [(str(run_dir / image), str(run_dir / thumb)) for image, thumb in wanted.values() if thumb not in present]
    for folder in {os.path.dirname(thumb) for _, thumb in missing}:
        os.makedirs(folder, exist_ok=True)  # once per folder here, not once per picture there
    if len(missing) > 16:
        # Decoding and encoding is CPU work: a process per core, each taking a batch at a time.
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            problems = list(pool.map(_thumbnail_of, missing, chunksize=256))
    else:
        problems = [_thumbnail_of(pair) for pair in missing]
    made = {thumb: problem for (_, thumb), problem in zip(missing, problems, strict=True) if problem}
    shown: dict[str, Thumb] = {}
    for job_id, (image, thumb) in wanted.items():
        problem = made.get(str(run_dir / thumb))
        shown[job_id] = (image, problem) if problem else (thumb, None)
    return shown


def _listing(thumbs: Path) -> set[str]:
    """Every thumbnail there is, as `thumbs/<folder>/<name>`: one listing per folder, not a
    stat per image. A partial one whose maker is gone is removed on the way."""
    present: set[str] = set()
    try:
        folders = [entry.name for entry in os.scandir(thumbs) if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return present
    for folder in folders:
        with os.scandir(thumbs / folder) as entries:
            names = [entry.name for entry in entries]
        present.update(f"{THUMBS}/{folder}/{name}" for name in names)
        for name in names:
            if abandoned(name):
                with contextlib.suppress(OSError):  # a read-only run dir keeps it
                    os.unlink(thumbs / folder / name)
    return present


def _thumbnail_of(pair: tuple[str, str]) -> str | None:
    return make_thumbnail(Path(pair[0]), Path(pair[1]))


def _input_thumbnails(run_dir: Path, plan: Plan) -> dict[str, str]:
    """Input image token -> a thumbnail inside the run dir, so the report needs nothing outside."""
    found = {}
    if plan.manifest.local_images:
        (run_dir / THUMBS / "inputs").mkdir(parents=True, exist_ok=True)
    for token, source in plan.manifest.local_images.items():
        thumb = f"{THUMBS}/inputs/{token.removeprefix('sha256:')[:16]}.webp"
        if (run_dir / thumb).exists() or not make_thumbnail(source, run_dir / thumb):
            found[token] = thumb
    return found


def _label(value: Any) -> str:
    return " / ".join(render(v) for v in value) if isinstance(value, list) else render(value)


def _template_text(literals: tuple[str, ...], names: tuple[str, ...]) -> Iterable[str]:
    yield literals[0]
    for name, literal in zip(names, literals[1:], strict=True):
        yield f"{{{name}}}"
        yield literal

"""RUN_DIR/report.html: a gallery that answers "which setting, which prompt?" at a glance.

One self-contained file (inline CSS, JS and data; images by relative links; nothing from the
network) that opens from disk. Per prompt a grid whose rows and columns are two of the axes
that vary (the reader may choose), the other axes as selectors; arms of an A/B test side by
side; failed and pending jobs in their cells. Thumbnails are made with Pillow beside the
images so a 2,000-image report opens fast. `contact_sheets` draws one labelled PNG per prompt.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from runner import endpoint, schemas
from runner.arms import RunSet
from runner.pixels import TooManyPixels, open_bounded
from runner.plan import Job, Plan
from runner.ratings import JobMarks, standing
from runner.records import Record, latest_records, utc_timestamp
from runner.store import THUMBS
from runner.summary import read_summary
from runner.template import render
from runner.verdict import verdict

REPORT = "report.html"
SHEETS = "sheets"
THUMB_SIDE = 320
_TEMPLATE = Path(__file__).with_name("report_template.html")
_CHARTS = Path(__file__).with_name("verdict_charts.js")


def write_report(run_dir: Path, plan: Plan) -> Path:
    """(Re)write RUN_DIR/report.html for `plan`; returns its path."""
    data = gather(run_dir, plan)
    page = _TEMPLATE.read_text(encoding="utf-8")
    # Inside a <script>, "</script>" ends it early and "<!--" changes how it is parsed: a server's
    # message holding either would blank the page. JSON may spell every "<" as \u003c.
    payload = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")
    page = page.replace("{{title}}", html.escape(f"{plan.manifest.name}: flux-batch report"))
    page = page.replace("{{charts}}", _CHARTS.read_text(encoding="utf-8"))
    page = page.replace("{{data}}", payload)
    target = run_dir / REPORT
    temp = target.with_name(f".partial-{REPORT}")
    temp.write_text(page, encoding="utf-8")
    os.replace(temp, target)
    return target


def gather(run_dir: Path, plan: Plan) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready data; makes missing thumbnails on the way."""
    records = latest_records(run_dir)
    thumbs = _thumbnails(run_dir, [r for r in records.values() if r.succeeded and r.files])
    inputs = _input_thumbnails(run_dir, plan)
    prompts = [_prompt_data(plan, index, records, thumbs, inputs) for index in range(len(plan.prompts))]
    provenance = endpoint.read(run_dir)
    priced = [record.credits for record in records.values() if record.succeeded and record.credits is not None]
    judged = standing(run_dir)
    found = verdict(RunSet([run_dir], 0, [plan]), judged) if judged else None
    marks = JobMarks.of(judged)
    for prompt in prompts:
        for job in prompt["jobs"]:
            if job["id"] in marks.mean_score:
                job["score"] = round(marks.mean_score[job["id"]], 2)
    counts = {"total": plan.total, "done": 0, "failed": 0, "pending": 0}
    for prompt in prompts:
        for job in prompt["jobs"]:
            counts[{"success": "done"}.get(job["status"], job["status"])] += 1
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
        "verdict": {**found.as_json(), "words": found.words()} if found else None,
    }


def _prompt_data(
    plan: Plan, index: int, records: Mapping[str, Record], thumbs: Mapping[str, Thumb], inputs: Mapping[str, str]
) -> dict[str, Any]:
    prompt = plan.prompts[index]
    axes = _axes(plan, index)
    jobs = []
    for k in range(plan.count(prompt)):
        job = plan.job_at(index, k)
        jobs.append(_job_data(job, axes, records.get(job.job_id), thumbs))
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
        "jobs": jobs,
    }


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


def _job_data(job: Job, axes: list[tuple[str, list[Any]]], record: Record | None, thumbs: Mapping[str, Thumb]) -> dict[str, Any]:
    coords = []
    for name, values in axes:
        value = [job.axes[part] for part in name.split(" / ")] if " / " in name else job.axes[name]
        coords.append(values.index(value))
    data: dict[str, Any] = {
        "id": job.job_id,
        "coords": coords,
        "prompt": job.request["promptObject"]["prompt"],
        "status": record.status if record else "pending",
    }
    if record:
        data.update(attempts=record.attempts, elapsed=record.elapsed_s, finished=record.finished_at)
        if record.succeeded and record.files:
            path, problem = thumbs.get(job.job_id, (record.files[0], None))
            if problem:
                data["unviewable"] = problem  # linking the original would hand the browser the same picture
            else:
                data["image"] = record.files[0]
                data["thumb"] = path
        elif record.error:
            data["error"] = {"kind": record.error.kind, "message": record.error.message}
    return data


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


def _thumbnails(run_dir: Path, successes: Iterable[Record]) -> dict[str, Thumb]:
    """job_id -> its thumbnail (made if missing), or the original and why it cannot be shown."""
    wanted = {}
    for record in successes:
        wanted[record.job_id] = (record.files[0], f"{THUMBS}/{record.prompt_id}/{record.job_id}.webp")
    missing = [(run_dir / image, run_dir / thumb) for image, thumb in wanted.values() if not (run_dir / thumb).exists()]
    # Pillow releases the GIL while it decodes and encodes: threads use every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        made = dict(zip(missing, pool.map(lambda pair: _thumbnail(*pair), missing), strict=True))
    shown: dict[str, Thumb] = {}
    for job_id, (image, thumb) in wanted.items():
        problem = made.get((run_dir / image, run_dir / thumb))
        shown[job_id] = (image, problem) if problem else (thumb, None)
    return shown


def _input_thumbnails(run_dir: Path, plan: Plan) -> dict[str, str]:
    """Input image token -> a thumbnail inside the run dir, so the report needs nothing outside."""
    found = {}
    for token, source in plan.manifest.local_images.items():
        thumb = f"{THUMBS}/inputs/{token.removeprefix('sha256:')[:16]}.webp"
        if (run_dir / thumb).exists() or not _thumbnail(source, run_dir / thumb):
            found[token] = thumb
    return found


def _thumbnail(image: Path, thumb: Path) -> str | None:
    """Make `thumb` from `image`; None if made, else why the picture cannot be shown."""
    temp = thumb.with_name(f".partial-{thumb.name}")
    try:
        with open_bounded(image) as picture:
            picture.thumbnail((THUMB_SIDE, THUMB_SIDE))
            thumb.parent.mkdir(parents=True, exist_ok=True)
            picture.convert("RGB").save(temp, format="WEBP", quality=80)
        os.replace(temp, thumb)
        return None
    except TooManyPixels as exc:
        return f"not shown: {exc}"
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        temp.unlink(missing_ok=True)
        return f"not shown: the file cannot be read as a picture ({type(exc).__name__})"


def _label(value: Any) -> str:
    return " / ".join(render(v) for v in value) if isinstance(value, list) else render(value)


def _template_text(literals: tuple[str, ...], names: tuple[str, ...]) -> Iterable[str]:
    yield literals[0]
    for name, literal in zip(names, literals[1:], strict=True):
        yield f"{{{name}}}"
        yield literal


def contact_sheets(run_dir: Path, plan: Plan) -> list[Path]:
    """One PNG per prompt: the grid of its two longest axes, labelled, other axes at their first value."""
    data = gather(run_dir, plan)
    written = []
    font = ImageFont.load_default(size=14)
    for prompt in data["prompts"]:
        varying = sorted(
            (i for i, axis in enumerate(prompt["axes"]) if len(axis["values"]) > 1),
            key=lambda i: -len(prompt["axes"][i]["values"]),
        )
        rows_axis = varying[1] if len(varying) > 1 else None
        cols_axis = varying[0] if varying else None
        row_values = prompt["axes"][rows_axis]["values"] if rows_axis is not None else [""]
        col_values = prompt["axes"][cols_axis]["values"] if cols_axis is not None else [""]
        cell, label_w, label_h = 200, 150, 40
        sheet = Image.new("RGB", (label_w + cell * len(col_values), label_h + cell * len(row_values) + 30), (250, 250, 250))
        canvas = ImageDraw.Draw(sheet)
        title = f"{data['name']} / {prompt['id']}"
        if cols_axis is not None:
            title += f"   columns: {prompt['axes'][cols_axis]['name']}"
        if rows_axis is not None:
            title += f"   rows: {prompt['axes'][rows_axis]['name']}"
        canvas.text((8, 6), title, fill=(20, 20, 20), font=font)
        # The sheet shows one value of every other varying axis: say which, or a reader takes
        # the first seed (or step count) for the only one.
        others = [f"{prompt['axes'][i]['name']} = {prompt['axes'][i]['values'][0]}" for i in varying[2:]]
        if others:
            canvas.text((8, 22), f"at {', '.join(others)}", fill=(90, 90, 90), font=font)
        by_coords = {tuple(job["coords"]): job for job in prompt["jobs"]}
        for r, row_label in enumerate(row_values):
            canvas.text((8, 30 + label_h + r * cell + cell // 2), str(row_label)[:18], fill=(20, 20, 20), font=font)
            for c, col_label in enumerate(col_values):
                if r == 0:
                    canvas.text((label_w + c * cell + 6, 30 + 12), str(col_label)[:24], fill=(20, 20, 20), font=font)
                coords = [0] * len(prompt["axes"])
                if rows_axis is not None:
                    coords[rows_axis] = r
                if cols_axis is not None:
                    coords[cols_axis] = c
                job = by_coords.get(tuple(coords))
                box = (label_w + c * cell, 30 + label_h + r * cell)
                if job and job.get("thumb"):
                    with Image.open(run_dir / job["thumb"]) as thumb:
                        sheet.paste(
                            ImageOps.pad(thumb.convert("RGB"), (cell - 8, cell - 8), color=(250, 250, 250)),
                            (box[0] + 4, box[1] + 4),
                        )
                else:
                    state = ("not shown" if job.get("unviewable") else job["status"]) if job else "pending"
                    canvas.rectangle((box[0] + 4, box[1] + 4, box[0] + cell - 4, box[1] + cell - 4), outline=(180, 180, 180))
                    canvas.text((box[0] + 12, box[1] + cell // 2), state, fill=(150, 40, 40), font=font)
        target = run_dir / SHEETS / f"{prompt['id']}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(target)
        written.append(target)
    return written

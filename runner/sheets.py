"""RUN_DIR/sheets/<prompt>.png: one labelled contact sheet per prompt, for pasting into a chat
or a document: the grid of its two longest axes, the other axes at their first value."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from runner.plan import Plan
from runner.report import expand, gather

SHEETS = "sheets"


def contact_sheets(run_dir: Path, plan: Plan) -> list[Path]:
    """One PNG per prompt: the grid of its two longest axes, labelled, other axes at their first value."""
    data = gather(run_dir, plan)
    written = []
    font = ImageFont.load_default(size=14)
    for prompt, compact in zip(data["prompts"], data["jobs"], strict=True):
        prompt = {**prompt, "jobs": expand(prompt, compact)}
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

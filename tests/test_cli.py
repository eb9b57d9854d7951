"""The command line through its real entry points (runner/cli*.py): exit codes, output, help."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from runner.plan import job_id
from tests.conftest import (
    Cli,
    manifest_text,
    write,
)
from tests.support import EXAMPLES, REPO, SPEC_EXAMPLE, imported_by


def test_every_shipped_example_manifest_is_valid(cli: Cli) -> None:
    result = cli("validate", *map(str, EXAMPLES))
    assert result.code == 0, result.err
    assert result.err == ""
    assert result.out.count(": ok, ") == len(EXAMPLES) >= 3
    assert f"{REPO / 'manifests' / 'example.yaml'}: ok, 8 jobs from 2 prompts" in result.out


def test_validate_reports_every_file_and_fails_if_any_is_bad(cli: Cli, tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.yaml", "version: 1\nname: b\nprompts:\n  - {id: a, prompt: c, params: {guidance: -1}}\n")
    result = cli("validate", str(REPO / "manifests" / "example.yaml"), str(bad))
    assert result.code == 2
    assert "example.yaml: ok, 8 jobs" in result.out
    assert f"{bad}:4: prompts[0].params.guidance: -1 is out of range: must be from 0 to 50" in result.err


def test_plan_summarises_prompts_axes_and_estimate(cli: Cli) -> None:
    result = cli("plan", str(SPEC_EXAMPLE))
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == f"plan for city-sweep ({SPEC_EXAMPLE})"
    assert any(line.split()[:3] == ["city", "16", "jobs"] for line in lines)
    assert any(line.split()[:3] == ["city-b", "16", "jobs"] for line in lines)
    assert any(line.split() == ["num_inference_steps", "20,", "28"] for line in lines)
    assert any(line.split() == ["output_quality", "70,", "90"] for line in lines)
    assert any(line.split() == ["total", "32", "jobs"] for line in lines)
    assert "output/city-sweep: 0 done, 32 to run" in result.out
    assert "about 2 min at concurrency 8" in result.out


def test_plan_json_prints_one_job_per_line_as_a_records_line_has_them(cli: Cli) -> None:
    result = cli("plan", "--json", str(SPEC_EXAMPLE))
    assert result.code == 0
    jobs = [json.loads(line) for line in result.out.splitlines()]
    assert len(jobs) == 32
    for job in jobs:
        assert set(job) == {"job_id", "prompt_id", "axes", "request"}
        assert job["job_id"] == job_id(job["request"]["promptObject"])
        assert job["request"]["promptObject"]["seed"] == job["axes"]["seed"]


def test_plan_counts_what_a_run_dir_already_holds(cli: Cli, tmp_path: Path) -> None:
    jobs = [json.loads(line) for line in cli("plan", "--json", str(SPEC_EXAMPLE)).out.splitlines()]
    run_dir = tmp_path / "runs" / "city"
    lines = [json.dumps({"job_id": j["job_id"], "status": "success", "files": []}) for j in jobs[:5]]
    error = {"kind": "http", "status": 500, "message": "HTTP 500", "retryable": True}
    lines.append(json.dumps({"job_id": jobs[5]["job_id"], "status": "failed", "error": error}))
    lines.append(json.dumps({"job_id": "0123456789abcdef", "status": "success", "files": []}))  # not in this plan
    lines.append('{"job_id": "' + jobs[6]["job_id"] + '", "status": "succ')  # torn by a crash
    write(run_dir / "records.jsonl", "\n".join(lines))
    result = cli("plan", str(SPEC_EXAMPLE), "--out", str(run_dir))
    assert f"{run_dir}: 5 done, 1 failed and tried again, 27 to run" in result.out


def test_plan_of_a_bad_manifest_exits_2_with_the_problems(cli: Cli, tmp_path: Path) -> None:
    bad = write(tmp_path / "m.yaml", "version: 1\nname: b\nprompts:\n  - {id: a, prompt: '{x}'}\n")
    result = cli("plan", "--json", str(bad))
    assert result.code == 2
    assert result.out == ""
    assert f"{bad}:4: prompts[0].prompt: placeholder {{x}} has no var" in result.err


def test_a_missing_manifest_file_is_a_clear_error(cli: Cli) -> None:
    result = cli("validate", "nowhere.yaml")
    assert result.code == 2
    assert "nowhere.yaml: cannot read the manifest: No such file or directory" in result.err


def test_unknown_verb_is_a_usage_error_with_a_did_you_mean(cli: Cli) -> None:
    result = cli("frobnicate")
    assert result.code == 2
    assert "'frobnicate' is not a command; `flux-batch --help` lists them: validate, plan, run" in result.err
    typo = cli("stauts", "output/x")
    assert typo.code == 2
    assert "'stauts' is not a command; did you mean 'status'?" in typo.err


def test_console_script_and_module_entry_points(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "flux-batch"
    for command in ([str(script)], [sys.executable, "-m", "runner"]):
        ok = subprocess.run([*command, "validate", str(SPEC_EXAMPLE)], capture_output=True, text=True, cwd=tmp_path)
        assert ok.returncode == 0, ok.stderr
        assert "ok, 32 jobs from 2 prompts" in ok.stdout
        bad = subprocess.run(
            [*command, "validate", str(REPO / "tests" / "bad_manifests" / "python-tag.yaml")],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert bad.returncode == 2
        assert "is not allowed: a manifest holds plain data only" in bad.stderr
        assert "Traceback" not in bad.stderr
    assert not (tmp_path / "pwned").exists()


def test_plan_json_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    big = write(
        tmp_path / "big.yaml",
        "version: 1\nname: big\nprompts:\n  - {id: a, prompt: c}\nsweep:\n"
        f"  guidance: {list(range(50))}\n  num_inference_steps: {list(range(1, 51))}\nrepeats: 20\n",
    )
    pipeline = subprocess.run(
        f"'{sys.executable}' -m runner plan --json '{big}' | head -n 1",
        shell=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert len(pipeline.stdout.splitlines()) == 1
    assert "Traceback" not in pipeline.stderr
    assert "BrokenPipe" not in pipeline.stderr


def test_run_help_states_the_real_defaults_and_the_exit_codes(cli: Cli) -> None:
    from runner.settings import RunSettings

    result = cli("run", "--help")
    assert result.code == 0
    text = " ".join(result.out.split())
    defaults = RunSettings()
    assert f"at once (default {defaults.concurrency})" in text
    assert f"fails (default {defaults.max_attempts})" in text
    assert f"this long, at most 3600 (default {defaults.request_timeout:g})" in text
    assert "ONEMIN_API_KEY" in text and "3 stopped early, resumable" in text


def test_plan_against_a_path_that_holds_no_run_dir(cli: Cli, tmp_path: Path) -> None:
    in_the_way = write(tmp_path / "a-file", "not a directory")
    result = cli("plan", str(SPEC_EXAMPLE), "--out", str(in_the_way))
    assert result.code == 0
    assert f"{in_the_way}: 0 done, 32 to run" in result.out


def test_a_verb_leaves_the_garbage_collector_as_it_found_it(cli: Cli) -> None:
    import gc

    before = gc.get_threshold()
    assert cli("validate", str(EXAMPLES[0])).code == 0
    # The verb froze start-up's objects and raised the threshold while it worked; an
    # in-process caller gets the collector back unchanged.
    assert gc.isenabled() and gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_plan_warns_before_a_very_large_grid(cli: Cli, tmp_path: Path) -> None:
    manifest = write(
        tmp_path / "big.yaml",
        "version: 1\nname: big\nprompts:\n  - {id: a, prompt: x}\nsweep:\n"
        f"  guidance: {list(range(50))}\n  num_inference_steps: {list(range(1, 51))}\nrepeats: 5\n"
        "run: {credits_per_image: 1.5}\n",
    )
    result = cli("plan", str(manifest))
    assert result.code == 0
    assert "warning: " in result.err and "makes 12,500 jobs and about 18,750 credits" in result.err


ROOT = Path(__file__).resolve().parent.parent


def test_a_valid_manifest_is_checked_without_importing_jsonschema(tmp_path: Path) -> None:
    """jsonschema costs 22 ms to import: every run, plan and validate of a valid manifest saves it."""
    example = str(ROOT / "manifests" / "example.yaml")
    assert imported_by(tmp_path, [["validate", example]], ("jsonschema", "referencing")) == ([0], [])


def test_validate_and_plan_start_without_the_network_stack(tmp_path: Path) -> None:
    """aiohttp takes 0.2 s to import: only the verbs that talk to a server load it."""
    example = str(ROOT / "manifests" / "example.yaml")
    verbs = [["validate", example], ["plan", example], ["plan", "--json", example]]
    assert imported_by(tmp_path, verbs, ("aiohttp", "PIL", "tqdm")) == ([0, 0, 0], [])


def test_one_is_singular(cli: Cli, tmp_path: Path) -> None:
    result = cli("validate", str(write(tmp_path / "m.yaml", manifest_text(1))))
    assert result.out.endswith(": ok, 1 job from 1 prompt\n")


def test_every_command_explains_itself_and_each_of_its_arguments() -> None:
    from runner.cli_args import parser as make_parser

    parser = make_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    verbs: dict[str, argparse.ArgumentParser] = subparsers.choices
    assert set(verbs) == {
        "validate", "plan", "run", "report", "status", "runs", "export", "show", "review", "verdict", "emulator",
    }  # fmt: skip
    for name, verb in verbs.items():
        assert verb.description and len(verb.description) > 60, name
        for action in verb._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    knobs = " ".join(verbs["emulator"].format_help().split())
    assert "seconds a generation takes, drawn uniformly from MIN,MAX" in knobs
    assert "probability (0-1) of a 500 with a JSON body" in knobs

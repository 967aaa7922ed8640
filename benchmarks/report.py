"""Result rows, the Markdown table and the JSON file."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any


@dataclass
class Check:
    """One target of the issue: what it asks, the measured value and whether it was met."""

    target: str      # e.g. "≥ 10× sequential"
    value: float
    met: bool


@dataclass
class Row:
    """One line of the table; ``data`` keeps every raw number for the JSON file."""

    scenario: str                 # "a" .. "f"
    title: str
    latency_ms: int | None
    ours: str
    baselines: str
    ratios: str
    checks: list[Check] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def met(self) -> bool | None:
        return all(c.met for c in self.checks) if self.checks else None


def seconds(value: float) -> str:
    """A duration with a sensible unit."""
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def ratio(value: float) -> str:
    return f"{value:.1f}×" if value >= 10 else f"{value:.2f}×"


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def environment(mode: str) -> dict[str, Any]:
    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": mode, "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "platform": platform.platform(), "commit": commit,
        "versions": {name: version(name) for name in ("sm_async_nb", "boto3", "botocore", "moto", "pandas",
                                                      "jupyter_client", "ipykernel")},
        "command": " ".join([Path(sys.executable).name, "-m", "benchmarks", *sys.argv[1:]]),
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(rows: list[Row], env: dict[str, Any], elapsed: float) -> str:
    """The table: scenario, ours, baseline(s), ratio, target, met?"""
    versions = env["versions"]
    lines = [
        f"Benchmarks ({env['mode']} run, {env['date']}): {env['cpu_count']} CPUs, Python {env['python']}, "
        f"boto3 {versions['boto3']}, moto {versions['moto']}, pandas {versions['pandas']}; "
        f"{elapsed:.0f} s. Command: `{env['command']}`.",
        "",
        "| scenario | latency | ours | baseline(s) | ratio | target (at 20 ms) | met? |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        latency = "—" if row.latency_ms is None else f"{row.latency_ms} ms"
        target = "; ".join(c.target for c in row.checks) or "—"
        met = {None: "—", True: "yes"}.get(row.met, "**no**")
        if row.checks and row.met is False:
            met += " (" + "; ".join(c.target for c in row.checks if not c.met) + ")"
        lines.append("| " + " | ".join(_cell(x) for x in (
            f"{row.scenario}. {row.title}", latency, row.ours, row.baselines, row.ratios, target, met)) + " |")
    notes = [f"- {row.scenario} ({'—' if row.latency_ms is None else f'{row.latency_ms} ms'}): {row.note}"
             for row in rows if row.note]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines) + "\n"


def write(out_dir: Path, rows: list[Row], env: dict[str, Any], elapsed: float) -> tuple[Path, Path]:
    """Overwrite results.json and results.md in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {"environment": env, "elapsed_seconds": round(elapsed, 1),
               "scenarios": [{**asdict(row), "met": row.met} for row in rows]}
    json_path, md_path = out_dir / "results.json", out_dir / "results.md"
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    md_path.write_text(markdown(rows, env, elapsed))
    return json_path, md_path

"""``metrics.jsonl``: one JSON record per line, cut back to a checkpoint when a run resumes.

A run killed while appending leaves at most one partial last line (no newline at its end); it is
dropped with a message. Any other line that is not a JSON record with a ``step`` means the file
was damaged or edited, and is an error naming the file and the line, never a bare
``JSONDecodeError``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from genlab.io import write_text_atomic


def read_records(path: str | Path, say: Callable[[str], None] = print) -> list[tuple[int, str]]:
    """``(step, line)`` of every record of ``path`` (none if it is absent), the partial last line dropped."""
    path = Path(path)
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    partial = lines.pop()  # "" when the file ends with a newline, else a line cut short by a kill
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        records.append((_step_of(path, number, line), line))
    if partial.strip():
        say(f"{path}: dropped its partial last line {len(lines) + 1} ({len(partial)} characters, "
            "written when the run was killed)")
    return records


def truncate_records(path: str | Path, step: int, say: Callable[[str], None] = print) -> None:
    """Keep the records of steps ``<= step`` (``step=0``: none), rewritten atomically."""
    path = Path(path)
    if not path.exists():
        return
    keep = [line for s, line in read_records(path, say) if s <= step]
    write_text_atomic(path, "".join(line + "\n" for line in keep))


def _step_of(path: Path, number: int, line: str) -> int:
    try:
        record = json.loads(line)
        step = record["step"]
        if isinstance(step, bool) or not isinstance(step, int):
            raise TypeError(f"step {step!r} is not an integer")
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{str(path)!r} line {number} is not a metrics record ({type(e).__name__}: {e}): "
                         f"{line[:80]!r}. Fix or remove that line, then resume.") from None
    return step


__all__ = ["read_records", "truncate_records"]

"""Importers of other benchmark tools' per-request results (`python -m collector import TOOL FILE`): one module per
tool reads its file into records.ImportedFile; land.py lands that as a run of its own through the real landing code.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

from collector.importers import aiperf, fmbench, guidellm, vllm
from collector.importers.records import ImportedFile, ImportOptions, fault

Reader = Callable[[Path, ImportOptions], ImportedFile]

READERS: dict[str, Reader] = {
    vllm.TOOL: vllm.read,
    guidellm.TOOL: guidellm.read,
    aiperf.TOOL: aiperf.read,
    fmbench.TOOL: fmbench.read,
}
FILES = {
    vllm.TOOL: vllm.WHAT,
    guidellm.TOOL: guidellm.WHAT,
    aiperf.TOOL: aiperf.WHAT,
    fmbench.TOOL: fmbench.WHAT,
}
SNIFF_BYTES = 64 * 1024 * 1024  # a larger file is left to its reader to judge


def identify(path: Path) -> str | None:
    """Which tool's file this looks like (None when none, or it cannot be read: the reader then says why)."""
    try:
        if path.stat().st_size > SNIFF_BYTES:
            return None
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None
    try:
        whole = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        whole = None
    for tool, looks_like in ((guidellm.TOOL, guidellm.looks_like), (vllm.TOOL, vllm.looks_like)):
        if looks_like(whole):
            return tool
    first = next((line for line in text.splitlines() if line.strip()), "")
    try:
        if aiperf.looks_like(json.loads(first)):
            return aiperf.TOOL
    except (json.JSONDecodeError, RecursionError):
        pass
    try:
        header = next(csv.reader(io.StringIO(first)), [])
    except csv.Error:
        return None
    return fmbench.TOOL if fmbench.looks_like(header) else None


def read(tool: str, path: Path, options: ImportOptions) -> ImportedFile:
    """The file read by its tool's importer; a file that is plainly another tool's says which."""
    other = identify(path)
    if other is not None and other != tool:
        raise fault(path, f"looks like {FILES[other]}, not {FILES[tool]}: import it with `import {other}`")
    return READERS[tool](path, options)

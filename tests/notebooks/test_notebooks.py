"""Every notebook in notebooks/ runs top to bottom in a real kernel against the simulator.

The kernel is this virtualenv's Python (a kernel spec written to a temporary directory,
nothing registered globally) with the headless ``Agg`` matplotlib backend. Each notebook
must finish within its time bound, raise nothing, leave no sign of a hidden failure
(tracebacks, unclosed sessions, destroyed tasks) in its streams, and draw at least one
PNG picture.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = (
    "01_quickstart.ipynb",
    "02_order_book.ipynb",
    "03_resilience.ipynb",
    "04_testing_your_pipeline.ipynb",
)
#: Seconds one cell may take, and the whole notebook (kernel start included).
CELL_TIMEOUT = 40
NOTEBOOK_TIMEOUT = 60
#: Text each notebook must show: proof that its key cells did their job, including the
#: live displays landing under the cell that created them (not an earlier one).
EXPECTED_TEXT = {
    "01_quickstart.ipynb": ["trades  VWAP", "stopped after 4 items", "stopped\n"],
    "02_order_book.ipynb": ["---- spread", "crossed: False"],
    "03_resilience.ipynb": ["stale events", "server_time answers again", "latest offset:"],
    "04_testing_your_pipeline.ipynb": ["passed: test_a_quiet_market", "second replay: the same"],
}
#: Text in a stream output that means something failed even though no cell raised.
HIDDEN_FAILURES = (
    "Traceback (most recent call last)",
    "Unclosed client session",
    "Unclosed connector",
    "Task was destroyed but it is pending",
    "was never awaited",
    "Exception in callback",
    "Task exception was never retrieved",
    "ResourceWarning",
    "RuntimeWarning",
)


def _kernel_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make "python3" this interpreter, with MPLBACKEND=Agg, for kernels started now.

    The spec lives in a temporary directory put first on ``JUPYTER_PATH``: nothing is
    registered globally, and nbclient still owns (starts and shuts down) the kernel.
    """
    spec_dir = tmp_path / "jupyter" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "rxconnector test kernel",
        "language": "python",
        "env": {"MPLBACKEND": "Agg", "PYTHONWARNINGS": "default"},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    resolved = KernelSpecManager().get_kernel_spec("python3")
    assert resolved.argv[0] == sys.executable, resolved.resource_dir


def _outputs(nb: Any) -> list[dict[str, Any]]:
    return [output for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs]


def _describe_error(output: dict[str, Any]) -> str:
    return f"{output.get('ename')}: {output.get('evalue')}"


@pytest.mark.slow
class TestNotebooks:
    """Each notebook executes cleanly in a fresh kernel and draws a picture."""

    def test_every_notebook_is_listed(self) -> None:
        found = sorted(p.name for p in NOTEBOOKS_DIR.glob("*.ipynb"))
        assert found == sorted(NOTEBOOKS)

    def test_notebooks_are_committed_without_outputs(self) -> None:
        for name in NOTEBOOKS:
            nb = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
            nbformat.validate(nb)
            assert _outputs(nb) == [], f"{name}: clear the outputs before committing"

    @pytest.mark.parametrize("name", NOTEBOOKS)
    async def test_runs_top_to_bottom(
        self, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _kernel_spec(tmp_path, monkeypatch)
        nb = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
        workdir = tmp_path / "cwd"
        workdir.mkdir()
        client = NotebookClient(
            nb,
            timeout=CELL_TIMEOUT,
            kernel_name="python3",
            resources={"metadata": {"path": str(workdir)}},
        )
        await asyncio.wait_for(client.async_execute(), NOTEBOOK_TIMEOUT)

        outputs = _outputs(nb)
        errors = [_describe_error(o) for o in outputs if o["output_type"] == "error"]
        assert errors == []
        streams = "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")
        hidden = [marker for marker in HIDDEN_FAILURES if marker in streams]
        assert hidden == [], streams
        shown = streams + "".join(
            o["data"].get("text/plain", "")
            for o in outputs
            if o["output_type"] in ("display_data", "execute_result")
        )
        missing = [text for text in EXPECTED_TEXT[name] if text not in shown]
        assert missing == [], shown
        pictures = [
            o
            for o in outputs
            if o["output_type"] in ("display_data", "execute_result") and "image/png" in o["data"]
        ]
        assert pictures, f"{name} drew no PNG picture"
        assert list(workdir.iterdir()) == [], "the notebook left files in its working directory"

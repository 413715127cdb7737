"""The README's "Scale out" API example runs, against a real redis-server."""

from __future__ import annotations

import re
from pathlib import Path

from .conftest import RedisServer

README = Path(__file__).resolve().parents[2] / "README.rst"


def test_the_scale_out_example_runs(redis_server: RedisServer) -> None:
    text = README.read_text()
    match = re.search(
        r"^\.\. bus-example\s*\n\s*\n\.\. code-block:: python\s*\n\s*\n((?:    .*\n|\s*\n)+)",
        text,
        re.MULTILINE,
    )
    assert match is not None, "the README lost its bus example"
    code = "\n".join(line[4:] for line in match.group(1).splitlines()) + "\n"
    namespace: dict[str, object] = {"__name__": "readme_bus_example", "REDIS_URL": redis_server.url}
    exec(compile(code, "README.rst[bus example]", "exec"), namespace)
    assert len(namespace["trades"]) >= 10  # type: ignore[arg-type]

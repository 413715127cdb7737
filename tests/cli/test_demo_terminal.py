"""The demo's live view on real pseudo-terminals: it fits any size, and survives a resize.

The demo runs as a subprocess whose stdout is a pty of a given size (``TIOCSWINSZ``);
everything it writes goes through :class:`tests.cli.vt.Screen`, a small VT100 model
that records text reaching the right margin (a wrap), cursor addressing outside the
screen and scrolling: the three ways an in-place redraw scrambles itself. ``--faults``
makes the long lines (reconnect reasons, errors) appear.
"""

from __future__ import annotations

import codecs
import os
import re
import select
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.vt import Screen

pty = pytest.importorskip("pty")  # POSIX only
fcntl = pytest.importorskip("fcntl")
termios = pytest.importorskip("termios")

ROOT = Path(__file__).resolve().parents[2]
ROW_LABELS = ("ticker", "trades", "book", "health", "last event", "last error", "faults")
Event = tuple[str, str] | tuple[str, int, int]


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _run(
    rows: int, cols: int, seconds: float, resize_to: tuple[int, int] | None = None
) -> tuple[int, list[Event]]:
    """Run ``demo --faults`` on a ``rows`` x ``cols`` pty; optionally resize it (and
    send SIGWINCH, as a terminal emulator does) 1.5 s after the first frame."""
    leader, follower = pty.openpty()
    _set_size(follower, rows, cols)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["TERM"] = "xterm"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rxconnector", "demo", "--seconds", str(seconds), "--faults"],
        stdout=follower,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )
    os.close(follower)
    events: list[Event] = []
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    first_frame: float | None = None
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            if resize_to is not None and first_frame and time.monotonic() > first_frame + 1.5:
                _set_size(leader, *resize_to)
                proc.send_signal(signal.SIGWINCH)
                events.append(("resize", *resize_to))
                resize_to = None
            ready, _, _ = select.select([leader], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            text = decoder.decode(chunk)
            if first_frame is None and "rxconnector demo" in text:
                first_frame = time.monotonic()
            events.append(("data", text))
        proc.wait(timeout=30)
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, events


def _replay(rows: int, cols: int, events: list[Event]) -> tuple[Screen, list[str], str]:
    """Feed the live part (up to the summary) to a Screen. After a resize, output until
    the view's next full redraw (ED 2) may still be a frame drawn for the old size: its
    problems are not the new size's. Returns the screen, the problems, the rest."""
    screen = Screen(rows, cols)
    problems: list[str] = []
    settling = False
    live = True
    rest = ""
    for event in events:
        if event[0] == "resize":
            _, new_rows, new_cols = event
            screen.resize(int(new_rows), int(new_cols))
            settling = True
            continue
        text = str(event[1])
        if not live:
            rest += text
            continue
        cut = text.find("summary after")
        if cut >= 0:
            text, rest, live = text[:cut], text[cut:], False
        if settling:
            clear = text.find("\x1b[2J")
            if clear < 0:
                screen.feed(text)
                screen.problems.clear()
                continue
            screen.feed(text[:clear])
            screen.problems.clear()
            text, settling = text[clear:], False
        screen.feed(text)
        problems.extend(screen.problems)
        screen.problems.clear()
    assert not settling, "no full redraw after the resize"
    return screen, problems, rest


def _check_frame(screen: Screen) -> None:
    """The last frame: the header, then one row per label in order, prices at the
    symbol's tick (BTCUSDT: 0.01), never the wire's 8 decimals."""
    lines = screen.text()
    assert lines[0].startswith("rxconnector demo"), lines
    for offset, label in enumerate(ROW_LABELS, start=1):
        assert label in lines[offset], (label, lines)
    assert all(len(line) < screen.cols for line in lines)
    ticker = lines[1]
    assert re.search(r"last \d+\.\d{2}\b(?!\d)", ticker), ticker
    shown = "\n".join(lines[1:4])
    prices = re.findall(r"(?:last|high|low|bid|ask|vwap) (\d+\.?\d*)", shown)
    assert len(prices) >= 6 and all(re.fullmatch(r"\d+\.\d{2}", p) for p in prices), prices
    assert not re.search(r"\.\d{8}", shown), shown  # nothing at the wire's 8 decimals
    assert "dropped" in lines[7], lines  # the fault row (the first fault came at 2.5 s)


@pytest.mark.slow
@pytest.mark.parametrize(("rows", "cols"), [(24, 80), (40, 120)])
def test_live_view_fits_the_terminal(rows: int, cols: int) -> None:
    code, events = _run(rows, cols, 5.5)
    assert code == 0
    screen, problems, rest = _replay(rows, cols, events)
    assert problems == []
    _check_frame(screen)
    assert screen.clears >= 1
    # the summary comes below the block, not over it
    screen.feed(rest)
    lines = screen.text()
    assert lines[0].startswith("rxconnector demo")
    assert any(line.startswith("summary after") for line in lines[8:]), lines
    assert "(all consistent)" in "".join(lines)


@pytest.mark.slow
def test_live_view_follows_a_resize() -> None:
    code, events = _run(40, 120, 5.5, resize_to=(24, 80))
    assert code == 0
    assert any(event[0] == "resize" for event in events)
    screen, problems, _ = _replay(40, 120, events)
    assert (screen.rows, screen.cols) == (24, 80)
    assert problems == []
    _check_frame(screen)
    assert screen.clears >= 2  # the first frame, and the redraw for the new size


def test_the_vt_model_catches_what_scrambles_a_screen() -> None:
    """The model is the test's eyes: it must see a wrap, a scroll and a bad address."""
    screen = Screen(3, 10)
    screen.feed("0123456789")  # exactly the width: no wrap yet (pending)
    assert screen.problems == []
    screen.feed("X")
    assert screen.problems and "wrapped" in screen.problems[0]
    screen = Screen(3, 10)
    screen.feed("a\nb\nc\nd")
    assert any("scrolled" in p for p in screen.problems)
    screen = Screen(3, 10)
    screen.feed("\x1b[5;1Hx\x1b[9F")
    assert len(screen.problems) == 2
    screen = Screen(3, 10)
    screen.feed("\x1b[2J\x1b[1;1Hab\x1b[Kc\x1b[2;1Hde")
    assert screen.text() == ["abc", "de", ""] and screen.problems == []

"""A small VT100 screen model for checking what a terminal would show.

Only what the CLI's live views write is understood: printable text, CR, LF, and the CSI
sequences CUP (``H``/``f``), ED (``J``), EL (``K``), CPL (``F``), CUU/CUD (``A``/``B``),
CHA (``G``); private modes (``?25l``, ``?1049h``...) are accepted and ignored. The
model records every way a redraw can scramble a screen: text that reached the right
margin and wrapped onto the next row, cursor addressing outside the screen, moving up
past the top row, and scrolling (a block taller than the screen).
"""

from __future__ import annotations

import re

_CSI = re.compile(r"\x1b\[([?]?)([0-9;]*)([A-Za-z])")


class Screen:
    """A ``rows`` x ``cols`` character grid fed with terminal output."""

    def __init__(self, rows: int, cols: int) -> None:
        self.rows = rows
        self.cols = cols
        self.grid = [[" "] * cols for _ in range(rows)]
        self.row = 0
        self.col = 0
        self.pending_wrap = False
        self.problems: list[str] = []
        self.clears = 0  # full-screen erases (ED 2)

    # -- the public face ---------------------------------------------------------------

    def resize(self, rows: int, cols: int) -> None:
        """What a terminal that does not reflow does: keep the top-left corner."""
        grid = [[" "] * cols for _ in range(rows)]
        for r in range(min(rows, self.rows)):
            for c in range(min(cols, self.cols)):
                grid[r][c] = self.grid[r][c]
        self.grid, self.rows, self.cols = grid, rows, cols
        self.row = min(self.row, rows - 1)
        self.col = min(self.col, cols - 1)
        self.pending_wrap = False

    def feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == "\x1b":
                match = _CSI.match(text, i)
                if match is None:  # a lone ESC or a sequence we do not model
                    i += 2
                    continue
                self._csi(match.group(1), match.group(2), match.group(3))
                i = match.end()
                continue
            if ch == "\n":
                self._line_feed()
            elif ch == "\r":
                self.col = 0
                self.pending_wrap = False
            elif ch >= " ":
                self._put(ch)
            i += 1

    def line(self, row: int) -> str:
        return "".join(self.grid[row]).rstrip()

    def text(self) -> list[str]:
        return [self.line(r) for r in range(self.rows)]

    # -- internals ----------------------------------------------------------------------

    def _put(self, ch: str) -> None:
        if self.pending_wrap:
            self.problems.append(
                f"text wrapped past column {self.cols} on row {self.row + 1}: "
                f"{self.line(self.row)[:40]!r}..."
            )
            self.col = 0
            self.pending_wrap = False
            self._line_feed()
        self.grid[self.row][self.col] = ch
        if self.col == self.cols - 1:
            self.pending_wrap = True
        else:
            self.col += 1

    def _line_feed(self) -> None:
        self.pending_wrap = False
        if self.row == self.rows - 1:
            self.problems.append(f"the screen scrolled (line feed on the last row {self.rows})")
            self.grid.pop(0)
            self.grid.append([" "] * self.cols)
        else:
            self.row += 1

    def _csi(self, private: str, params: str, final: str) -> None:
        if private:
            return
        numbers = [int(p) if p else 0 for p in params.split(";")] if params else []

        def arg(index: int, default: int) -> int:
            value = numbers[index] if index < len(numbers) else 0
            return value or default

        self.pending_wrap = False
        if final in "Hf":
            row, col = arg(0, 1), arg(1, 1)
            if row > self.rows or col > self.cols:
                self.problems.append(
                    f"cursor addressed to {row};{col} on a {self.rows}x{self.cols}"
                )
            self.row = min(row, self.rows) - 1
            self.col = min(col, self.cols) - 1
        elif final == "F" or final == "A":
            n = arg(0, 1)
            if self.row - n < 0:
                self.problems.append(f"cursor moved {n} rows up from row {self.row + 1}")
            self.row = max(0, self.row - n)
            if final == "F":
                self.col = 0
        elif final == "B":
            self.row = min(self.rows - 1, self.row + arg(0, 1))
        elif final == "G":
            self.col = min(self.cols, arg(0, 1)) - 1
        elif final == "K":
            mode = numbers[0] if numbers else 0
            start = 0 if mode in (1, 2) else self.col
            end = self.col + 1 if mode == 1 else self.cols
            for c in range(start, end):
                self.grid[self.row][c] = " "
        elif final == "J":
            mode = numbers[0] if numbers else 0
            if mode == 2:
                self.clears += 1
                self.grid = [[" "] * self.cols for _ in range(self.rows)]
            elif mode == 0:
                for c in range(self.col, self.cols):
                    self.grid[self.row][c] = " "
                for r in range(self.row + 1, self.rows):
                    self.grid[r] = [" "] * self.cols

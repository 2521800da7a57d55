"""How the tracks are shown: live bars on a terminal, plain lines otherwise, or JSON.

Each display is told a track's whole state at every change (`show`) and works out
for itself what to draw. Progress goes to stderr; JSON lines to stdout, for scripts.
"""

from __future__ import annotations

import json
import sys
from types import TracebackType
from typing import Any, Protocol, Self, TextIO

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ytmp3.client.track import Phase, Track

# The worker's download fills its progress to 90 %, converting the rest (jobs/tracker.py).
DOWNLOAD_SHARE = 90
LABEL_WIDTH = 40


class Display(Protocol):
    def show(self, track: Track) -> None: ...

    def say(self, line: str) -> None:
        """A sentence for the person (a failure in words), above any bars."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


def failure_line(track: Track) -> str:
    error = track.error
    reason = f"{error.code}: {error.message}" if error else "failed"
    what = "list" if track.is_list else "track"
    name = f"{track.title} ({track.url})" if track.title else track.url
    return f"ytmp3: {what} failed: {name}: {reason}"


def done_detail(track: Track) -> str:
    size = f" ({decimal(track.saved)})" if not track.is_list else ""
    return f"{track.path}{size}" if track.path else (track.note or "")


class _Lines:
    """Shared by the two line-writing displays: entering and leaving do nothing."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


class PlainDisplay(_Lines):
    """One line per change, for a log or a pipe: a new phase, each tenth of a download,
    where the file went, or why it failed."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._last: dict[int, tuple[object, ...]] = {}

    def _write(self, line: str) -> None:
        stream = self._stream or sys.stderr
        stream.write(line + "\n")
        stream.flush()

    def say(self, line: str) -> None:
        self._write(line)

    def show(self, track: Track) -> None:
        step = track.progress // 10 if track.phase is Phase.DOWNLOADING else None
        signature = (track.phase, step, track.label, track.note)
        if self._last.get(track.key) == signature:
            return
        self._last[track.key] = signature
        line = f"{track.label}: {track.phase}"
        if track.phase is Phase.DOWNLOADING:
            line += f" {track.progress}%"
        elif track.phase is Phase.DONE:
            line += f" {done_detail(track)}"
        elif track.phase is Phase.FAILED and track.error:
            line += f" {track.error.code}: {track.error.message}"
        if track.note and track.phase is not Phase.DONE:
            line += f" ({track.note})"
        self._write(line)


class JsonDisplay(_Lines):
    """A JSON line on stdout per finished track (and per list that failed whole);
    failures also in words on stderr."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self._out, self._err = out, err

    def say(self, line: str) -> None:
        err = self._err or sys.stderr
        err.write(line + "\n")
        err.flush()

    def show(self, track: Track) -> None:
        # a list that could not be read has no track to tell it: its own line says so
        if not track.phase.finished or (track.is_list and track.phase is Phase.DONE):
            return
        record: dict[str, object] = {
            "status": str(track.phase),
            "url": track.url,
            "title": track.title,
            "video_id": track.video_id,
        }
        if track.phase is Phase.DONE:
            record.update(path=str(track.path), bytes=track.saved)
        elif track.error:
            record["error"] = {"code": track.error.code, "message": track.error.message}
        out = self._out or sys.stdout
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()


class _SpeedColumn(ProgressColumn):
    """Bytes a second while saving; while the server downloads, seconds of audio a
    second (`12.5x`), when the video's length is known."""

    def render(self, task: Task) -> Text:
        phase, speed = task.fields.get("phase"), task.speed
        if speed is None:
            return Text("", style="progress.data.speed")
        if phase == Phase.SAVING:
            return Text(f"{decimal(int(speed))}/s", style="progress.data.speed")
        duration = task.fields.get("duration")
        if phase == Phase.DOWNLOADING and duration:
            return Text(f"{speed / DOWNLOAD_SHARE * duration:.1f}x", style="progress.data.speed")
        return Text("")


class _PhaseColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        phase = task.fields.get("phase", "")
        style = {Phase.DONE: "green", Phase.FAILED: "bold red"}.get(phase, "cyan")
        return Text(str(phase).ljust(11), style=style)


class BarDisplay:
    """One live rich bar per track, on the terminal behind stderr."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress = Progress(
            # markup off: a title or a path with [brackets] is shown as it is
            TextColumn("{task.description}", markup=False),
            _PhaseColumn(),
            BarColumn(),
            TaskProgressColumn(),
            _SpeedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[detail]}", markup=False),
            console=self.console,
        )
        self._tasks: dict[int, TaskID] = {}
        self._phases: dict[int, Phase] = {}

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def say(self, line: str) -> None:
        self._progress.console.print(line, markup=False, highlight=False)

    def show(self, track: Track) -> None:
        label = _fit(track.label)
        fields: dict[str, Any] = {
            "phase": track.phase,
            "duration": track.duration,
            "detail": _detail(track),
        }
        task = self._tasks.get(track.key)
        if task is None:
            task = self._progress.add_task(label, total=100, **fields)
            self._tasks[track.key] = task
        before = self._phases.get(track.key)
        self._phases[track.key] = track.phase
        if track.phase is Phase.SAVING:
            if before is not Phase.SAVING:
                # now counting bytes: the speed and time left start afresh
                self._progress.reset(task, total=track.size, description=label, **fields)
            self._progress.update(task, completed=track.saved, total=track.size, **fields)
        elif track.phase.finished:
            if track.phase is Phase.DONE:
                total = next(t.total for t in self._progress.tasks if t.id == task)
                fields["completed"] = total or 100
            self._progress.update(task, description=label, **fields)
            self._progress.stop_task(task)
        else:
            self._progress.update(task, completed=track.progress, description=label, **fields)


def _detail(track: Track) -> str:
    if track.phase is Phase.DONE:
        return done_detail(track)
    if track.phase is Phase.FAILED and track.error:
        return track.error.code
    return track.note or ""


def _fit(label: str) -> str:
    """The label cut to a width, so a long title leaves room for its bar."""
    return label if len(label) <= LABEL_WIDTH else label[: LABEL_WIDTH - 1] + "…"


def choose(*, json_lines: bool, terminal: bool) -> Display:
    if json_lines:
        return JsonDisplay()
    return BarDisplay() if terminal else PlainDisplay()

"""How long-running library functions report progress: :class:`ProgressEvent` callbacks.

``prepare``, ``train``, ``evaluate`` and :class:`~gkaan_cli.engine.predict.Predictor` take
``on_progress``, a function called with a :class:`ProgressEvent` as work advances; they draw
nothing themselves. The CLI turns the events into a progress bar
(``gkaan_cli.commands.common.progress_bar``); a Python caller may log them, or pass ``None``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ProgressCallback", "ProgressEvent"]


@dataclass(frozen=True)
class ProgressEvent:
    """``done`` of ``total`` units of one stage of work are finished.

    Attributes:
        stage: what is advancing, e.g. ``"prepare"`` (videos), ``"train"`` (optimizer steps
            of the current epoch), ``"evaluate"`` (batches), ``"frames"`` (a video's frames).
            A stage starts again from 0 when it is repeated (each epoch, each video).
        done: units finished so far.
        total: units in the stage; ``None`` when not known.
        message: a short human-readable status (rates, loss), or ``""``.
    """

    stage: str
    done: int
    total: int | None = None
    message: str = ""


#: The type of every ``on_progress`` parameter.
ProgressCallback = Callable[[ProgressEvent], None]

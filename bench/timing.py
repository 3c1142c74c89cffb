"""A measured rate, as it is stored in the results."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
Figure = dict[str, Any]


def rate(label: str, process: str, items: int, seconds: float, unit: str = "rows") -> Figure:
    """``items`` handled in ``seconds`` by stage ``label`` of ``process``."""
    return {
        "stage": label,
        "process": process,
        "items": items,
        "unit": unit,
        "seconds": round(seconds, 4),
        "rate": items / seconds if seconds > 0 else None,
    }


def timed(action: Callable[[], T]) -> tuple[T, float]:
    """``action()``'s result and the seconds it took."""
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started

"""The emulator's knobs that ``optouts emulate azure`` shows in its help: the faults it can
inject and the development key. Kept apart so the command describes itself without loading
the emulator."""

from __future__ import annotations

import base64
from typing import Final, Literal, get_args

__all__ = ["DEFAULT_ACCESS_KEY", "FAULTS", "RANDOM_FAULTS", "Fault"]

Fault = Literal["error", "unavailable", "items", "drop", "throttle", "invalid_parameter"]
"""``error``: HTTP 500; ``unavailable``: 503; ``items``: 200 with some recipients failed with
500; ``drop``: the connection closes mid-answer; ``throttle``: 429 with Retry-After;
``invalid_parameter``: a check answered 400 "Request parameter   is invalid.", the transient
answer Azure's SDK trackers report (add and remove meeting it are served as usual)."""
FAULTS: Final[tuple[Fault, ...]] = get_args(Fault)
RANDOM_FAULTS: Final[tuple[Fault, ...]] = ("error", "unavailable", "items", "drop")

DEFAULT_ACCESS_KEY: Final = base64.b64encode(b"optouts azure emulator: not a secret!").decode()
"""The development key the emulator accepts unless given another; it guards nothing."""

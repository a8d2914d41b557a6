"""A click test runner that keeps stdout and stderr apart on every supported click.

click 8.2 always does; before it, ``CliRunner`` mixed them unless told ``mix_stderr=False``
(the dependency floors run click 8.1).
"""

from __future__ import annotations

import inspect

from click.testing import CliRunner


def separate_runner() -> CliRunner:
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg,unused-ignore]
    return CliRunner()

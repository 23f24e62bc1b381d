"""The security tests' report: with ``-v``, which wall stopped each corpus payload."""

from __future__ import annotations

import pytest

from tests.security.outcomes import OUTCOMES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if not OUTCOMES or config.getoption("verbose") < 1:
        return
    terminalreporter.section("escape corpus: what stopped each payload")
    for payload_id, outcome in sorted(OUTCOMES.items(), key=lambda item: (item[1].wall, item[0])):
        message = " ".join(outcome.message.split())[:110]
        terminalreporter.write_line(
            f"{payload_id:<32} {outcome.place:<16} {outcome.wall:<34} {outcome.seconds:5.2f}s  {message}"
        )

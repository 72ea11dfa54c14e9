"""Errors a user can fix: each names the file, the field, the value and what was expected."""

from __future__ import annotations

from pathlib import Path


class CcsimError(Exception):
    """Bad input from the user; the CLI prints it as one line and exits with code 2."""


class FileFieldError(CcsimError):
    """A file the user wrote is missing or malformed: one line naming file, field, value, expectation."""

    def __init__(
        self,
        path: Path | str,
        problem: str,
        *,
        field: str | None = None,
        value: object = None,
        expected: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.field = field
        self.value = value
        self.expected = expected
        where = f"{path}" + (f": field '{field}'" if field else "")
        detail = problem
        if field is not None and value is not None:
            detail += f" (got {value!r})"
        if expected:
            detail += f"; expected {expected}"
        super().__init__(f"{where}: {detail}")


class ScenarioError(FileFieldError):
    """A scenario (folder, scenario.toml, .sumocfg, net or route file) is missing or malformed."""


class StudyError(FileFieldError):
    """A study file (``ccsim study STUDY.toml``) is missing or malformed."""


class UnknownNameError(CcsimError):
    """A name looked up in a registry (controller, scenario...) does not exist."""

    def __init__(self, what: str, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"unknown {what} '{name}'; known: {', '.join(sorted(known))}")


class SimulationError(CcsimError):
    """SUMO refused the scenario or failed while running it."""

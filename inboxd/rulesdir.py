"""The rules directory on disk -> a loaded RuleSet; the only I/O of the rule language.

``load_dir`` reads ``*.yaml``/``*.yml`` in lexical order plus the plain VIP list
files (``*.txt``) next to them and hands the texts to the pure loader.
``RuleStore`` keeps the current good set for the daemon: ``reload`` swaps in a
new set atomically, or keeps the old one and returns the errors (also when the
new set lost every team or agent the old one had: see ``lost_desk``).
"""

from __future__ import annotations

import threading
from pathlib import Path

from inboxd.core.rules import LoadResult, RuleError, RuleSet, load_rules
from inboxd.core.rules.load import lost_desk

RULE_SUFFIXES = (".yaml", ".yml")
LIST_SUFFIXES = (".txt",)


def rule_files(directory: Path) -> list[Path]:
    """The rule files of a directory, in the order they load (lexical by name)."""
    return sorted(
        (p for p in directory.iterdir() if p.suffix in RULE_SUFFIXES and p.is_file()),
        key=lambda p: p.name,
    )


def template_names(directory: Path | None) -> set[str] | None:
    """Names an ``auto_reply`` may use: 'ack' for templates/ack.txt.j2 (and the full name)."""
    if directory is None or not directory.is_dir():
        return None
    names: set[str] = set()
    for path in directory.iterdir():
        if path.is_file() and not path.name.startswith("."):
            names.add(path.name)
            names.add(path.name.split(".", 1)[0])
    return names


def _display(path: Path, directory: Path) -> str:
    """Show paths as the admin typed the directory: 'rules/20-billing.yaml'."""
    return str(directory / path.name)


def load_dir(directory: Path, *, templates: Path | None = None) -> LoadResult:
    """Read and load one rules directory; unreadable files become errors, not exceptions."""
    if not directory.is_dir():
        return LoadResult(None, [RuleError(str(directory), 1, 1, "rules directory not found")])
    files: list[tuple[str, str]] = []
    errors: list[RuleError] = []
    for path in rule_files(directory):
        try:
            files.append((_display(path, directory), path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(RuleError(_display(path, directory), 1, 1, f"cannot read: {exc}"))
    lists: dict[str, str] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix in LIST_SUFFIXES and path.is_file():
            try:
                lists[path.name] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                errors.append(RuleError(_display(path, directory), 1, 1, f"cannot read: {exc}"))
    result = load_rules(files, known_templates=template_names(templates), lists=lists)
    if errors:
        return LoadResult(None, sorted(errors + result.errors))
    return result


class RuleStore:
    """The daemon's current rule set; ``reload`` never leaves it without a good set.

    Readers take ``current`` (one attribute read, atomic under the GIL) and keep
    using that snapshot for the whole message; reloads are serialized by a lock.
    """

    def __init__(self, ruleset: RuleSet | None = None, *, templates: Path | None = None) -> None:
        self._current = ruleset
        self._templates = templates
        self._lock = threading.Lock()
        self._last_errors: list[RuleError] = []
        self._generation = 0

    @property
    def current(self) -> RuleSet | None:
        return self._current

    @property
    def last_errors(self) -> list[RuleError]:
        return list(self._last_errors)

    @property
    def generation(self) -> int:
        """Bumped on every successful swap, so callers can tell a reload took effect."""
        return self._generation

    def reload(self, directory: Path) -> list[RuleError]:
        """Load ``directory``; swap it in if valid. Returns the errors (empty on success)."""
        with self._lock:
            result = load_dir(directory, templates=self._templates)
            errors = list(result.errors)
            if result.ruleset is not None and not errors:
                errors = lost_desk(self._current, result.ruleset, str(directory))
            self._last_errors = errors
            if result.ruleset is not None and not errors:
                self._current = result.ruleset
                self._generation += 1
            return list(errors)

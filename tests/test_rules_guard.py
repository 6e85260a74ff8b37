"""An empty or half-copied rules directory must not take the desk's teams and agents.

Issue 15: a reload during a checkout swapped in a set without teams or agents, so
new tickets lost their team and assignee, and an agent's ``#solve`` + answer to a
notification was stored as customer text, never relayed, with no word to the agent.
Here: ``RuleStore.reload`` keeps the last good set and says why; a daemon started
on rules without agents (where reload has no last good set to keep) keeps an
agent's answer as a note and tells the agent, through the real pipeline on SQLite.
"""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest
from mailflow_kit import body_text, mail, make_desk, reply_to_notification
from sqlalchemy import select

from inboxd.daemon import warn_without_agents
from inboxd.db.tables import Message
from inboxd.rulesdir import RuleStore

TEAMS = textwrap.dedent(
    """
    teams:
      frontline:
        agents:
          - {name: alice, email: alice@help.example}
    rules:
      - {name: default, then: {team: frontline}}
    """
)
TAGS_ONLY = "rules:\n  - {name: tag, then: {tag: seen}}\n"


def test_reload_keeps_the_last_good_set_when_the_directory_is_emptied(tmp_path: Path) -> None:
    (tmp_path / "10-teams.yaml").write_text(TEAMS)
    store = RuleStore()
    assert store.reload(tmp_path) == []
    good = store.current
    assert good is not None and set(good.teams) == {"frontline"}
    (tmp_path / "10-teams.yaml").unlink()  # mid-checkout: nothing there yet
    errors = store.reload(tmp_path)
    assert store.current is good and store.generation == 1 and store.last_errors == errors
    [error] = errors
    assert error.file == str(tmp_path) and (error.line, error.column) == (1, 1)
    assert "no teams and no agents" in error.message and "last good" in error.message
    assert str(error).startswith(f"{tmp_path}:1:1: ")


def test_reload_refuses_a_set_that_lost_only_its_teams(tmp_path: Path) -> None:
    """A checkout that wrote the rules file but not yet the teams file."""
    (tmp_path / "10-teams.yaml").write_text(TEAMS)
    store = RuleStore()
    assert store.reload(tmp_path) == []
    good = store.current
    (tmp_path / "10-teams.yaml").write_text(TAGS_ONLY)
    [error] = store.reload(tmp_path)
    assert store.current is good
    assert "no teams and no agents" in error.message


def test_a_set_without_teams_is_fine_when_the_last_good_had_none(tmp_path: Path) -> None:
    """Start-up and desks that never had teams: nothing to lose, nothing refused."""
    store = RuleStore()
    assert store.reload(tmp_path) == []  # empty at start: no last good set to keep
    (tmp_path / "10-tags.yaml").write_text(TAGS_ONLY)
    assert store.reload(tmp_path) == [] and store.generation == 2
    (tmp_path / "10-tags.yaml").write_text(TEAMS)
    assert store.reload(tmp_path) == [] and store.generation == 3


def test_an_agent_answer_to_a_desk_without_agents_is_a_note_and_the_agent_is_told(
    tmp_path: Path,
) -> None:
    """The daemon restarted on an empty rules directory; alice answers a notification
    it sent before: her text and commands must neither reach the customer nor be
    stored as the customer's, and she hears why."""
    for name in ("before", "after"):
        (tmp_path / name).mkdir()
    before = make_desk(tmp_path / "before")
    assert before.deliver(mail()).ticket_id == 1
    [notification] = [m for m in before.outbox_mails("notify") if "alice@" in str(m["To"])]
    url = f"sqlite:///{tmp_path / 'before' / 'desk.db'}"
    after = make_desk(tmp_path / "after", rules="", url=url)
    queued = len(after.outbox())
    answer = reply_to_notification(notification, body="#solve\n\nHello Carol, fixed.\n")
    out = after.deliver(answer)
    assert out.ticket_id == 1
    with after.engine.connect() as conn:
        row = conn.execute(
            select(Message.direction, Message.from_email).where(
                Message.message_id == "a1@help.example"
            )
        ).one()
    assert tuple(row) == ("note", "alice@help.example")
    assert after.ticket(1)["status"] != "solved"
    new = after.outbox()[queued:]
    assert [(r["kind"], r["rcpts"]) for r in new] == [("command_result", ["alice@help.example"])]
    [told] = after.outbox_mails("command_result")
    text = body_text(told)
    assert "not an agent in the current rules" in text and "kept as a note" in text
    assert "commands corrected" not in text  # correcting them would not help
    assert "agent_token_refused" in after.event_kinds(1)


def test_a_daemon_starting_on_rules_without_agents_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """It starts (intake goes on), but the log says what an admin must fix."""
    store = RuleStore()
    assert store.reload(tmp_path) == []
    with caplog.at_level(logging.ERROR, logger="inboxd.daemon"):
        assert warn_without_agents(store.current)
    assert "no agents" in caplog.text
    (tmp_path / "10-teams.yaml").write_text(TEAMS)
    assert store.reload(tmp_path) == []
    assert not warn_without_agents(store.current)

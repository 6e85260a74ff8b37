"""The ``when`` and ``then`` of a rule: YAML nodes -> compiled conditions and actions.

Keywords and regexes are registered in the shared TextIndex as they are read,
so evaluation can answer all of them in one scan per message.
"""

from __future__ import annotations

import re
from typing import Any

from yaml.nodes import MappingNode, Node, SequenceNode

from inboxd.core.calendar import DAYS, Interval, parse_days, parse_range, parse_timezone
from inboxd.core.rules import conditions as c
from inboxd.core.rules import schema as s
from inboxd.core.rules.model import PRIORITIES, STATUSES
from inboxd.core.rules.nodes import NodeReader, did_you_mean, kind_of
from inboxd.core.rules.textindex import FIELDS, compile_regex, fold_keyword
from inboxd.core.sentiment import DEFAULT_THRESHOLD

_TAG = re.compile(r"^[^\s,]+$")


class ClauseParser(NodeReader):
    # -- conditions ----------------------------------------------------------
    def condition(self, node: Node) -> c.Condition | None:
        if isinstance(node, SequenceNode):
            if not node.value:
                self.err(node, "empty list of conditions")
            kids = [k for k in (self.condition(n) for n in node.value) if k is not None]
            return _all(kids)
        items = self.items(node, "condition")
        if items is None:
            return None
        if not items:
            self.err(node, "empty condition")
            return None
        parts: list[c.Condition] = []
        for key, knode, vnode in self.known(items, s.CONDITIONS, "condition"):
            cond = getattr(self, "cond_" + key)(vnode, knode)
            if cond is not None:
                parts.append(cond)
        return _all(parts)

    def cond_list(self, node: Node, key: str) -> list[c.Condition]:
        if not isinstance(node, SequenceNode) or not node.value:
            self.err(node, f"{key}: expected a non-empty list of conditions, got {kind_of(node)}")
            return []
        return [k for k in (self.condition(n) for n in node.value) if k is not None]

    def cond_all(self, node: Node, _: Node) -> c.Condition | None:
        return _all(self.cond_list(node, "all"))

    def cond_any(self, node: Node, _: Node) -> c.Condition | None:
        kids = self.cond_list(node, "any")
        return kids[0] if len(kids) == 1 else (c.AnyOf(tuple(kids)) if kids else None)

    def cond_not(self, node: Node, _: Node) -> c.Condition | None:
        inner = self.condition(node)
        return c.Not(inner) if inner is not None else None

    def globs(self, node: Node, key: str) -> list[str]:
        return [value.lower() for value, _ in self.strings(node, key)]

    def address(self, key: str, node: Node) -> c.Condition | None:
        globs: list[str] = []
        for value, item in self.strings(node, key):
            if key != "mailbox" and "@" not in value and value != "*":
                self.err(
                    item,
                    f"{key}: {value!r} has no '@' and can never match an address"
                    + (
                        " (did you mean from_domain?)" if key == "from" else f" (write '*@{value}')"
                    ),
                )
            globs.append(value.lower())
        if not globs:
            return None
        return c.AddressMatch(key, tuple(globs), c.compile_globs(globs))

    def cond_from(self, node: Node, _: Node) -> c.Condition | None:
        return self.address("from", node)

    def cond_to(self, node: Node, _: Node) -> c.Condition | None:
        return self.address("to", node)

    def cond_cc(self, node: Node, _: Node) -> c.Condition | None:
        return self.address("cc", node)

    def cond_recipient(self, node: Node, _: Node) -> c.Condition | None:
        return self.address("recipient", node)

    def cond_mailbox(self, node: Node, _: Node) -> c.Condition | None:
        return self.address("mailbox", node)

    def cond_from_domain(self, node: Node, _: Node) -> c.Condition | None:
        globs: list[str] = []
        for value, item in self.strings(node, "from_domain"):
            if "@" in value.lstrip("@"):
                self.err(item, f"from_domain: {value!r} is an address (use from:)")
                continue
            globs.append(value.lower().lstrip("@"))
        if not globs:
            return None
        return c.DomainMatch(tuple(globs), c.compile_globs(globs))

    def cond_subject(self, node: Node, _: Node) -> c.Condition | None:
        return self.text_matcher("subject", node)

    def cond_body(self, node: Node, _: Node) -> c.Condition | None:
        return self.text_matcher("body", node)

    def text_matcher(self, what: str, node: Node) -> c.Condition | None:
        assert what in FIELDS
        if not isinstance(node, MappingNode):
            return self.keywords(what, "any", node)
        items = self.items(node, what)
        if items is None:
            return None
        if not items:
            self.err(node, f"{what}: say any, all or regex")
        parts: list[c.Condition] = []
        for key, _, vnode in self.known(items, s.TEXT_KEYS, f"{what} test"):
            cond = self.regexes(what, vnode) if key == "regex" else self.keywords(what, key, vnode)
            if cond is not None:
                parts.append(cond)
        return _all(parts)

    def keywords(self, what: str, mode: str, node: Node) -> c.Condition | None:
        words: list[str] = []
        signals: list[int] = []
        folded_words: list[bytes] = []
        for value, item in self.strings(node, f"{what} {mode}"):
            folded = fold_keyword(value)
            if not folded:
                self.err(item, f"{what}: keyword {value!r} is empty after folding")
                continue
            words.append(value)
            folded_words.append(folded)
            signals.append(self.index.keyword(what, folded))
        if not words:
            return None
        longest = signals[max(range(len(words)), key=lambda i: len(folded_words[i]))]
        return c.Keywords(what, mode, tuple(words), tuple(signals), frozenset(signals), longest)

    def regexes(self, what: str, node: Node) -> c.Condition | None:
        kids: list[c.Condition] = []
        for value, item in self.strings(node, f"{what} regex"):
            try:
                compiled = compile_regex(value)
            except ValueError as exc:
                self.err(item, f"{what}: bad regex /{value}/: {exc}")
                continue
            kids.append(c.RegexMatch(what, value, self.index.regex(what, value, compiled)))
        return kids[0] if len(kids) == 1 else (c.AnyOf(tuple(kids)) if kids else None)

    def cond_header(self, node: Node, _: Node) -> c.Condition | None:
        items = self.items(node, "header")
        if items is None:
            return None
        had_tests = any(k != "name" for k, _, _ in items)
        items = self.known(items, s.HEADER_KEYS, "header test")
        by_key = {k: v for k, _, v in items}
        if "name" not in by_key:
            self.err(node, "header: 'name' is required (e.g. name: X-Spam-Flag)")
            return None
        name = self.scalar(by_key["name"], "header name")
        if name is None:
            return None
        name = name.lower().rstrip(":")
        tests = [(k, v) for k, v in by_key.items() if k != "name"]
        if not tests:
            if not had_tests:
                self.err(node, "header: say exists, equals, any, all or regex")
            return None
        parts: list[c.Condition] = []
        for key, vnode in tests:
            if key == "exists":
                want = self.boolean(vnode, "exists")
                if want is not None:
                    parts.append(c.HeaderMatch(name, "exists" if want else "missing"))
                continue
            values = [v for v, _ in self.strings(vnode, f"header {key}")]
            if not values:
                continue
            if key == "regex":
                compiled = []
                for value, item in self.strings(vnode, "header regex"):
                    try:
                        compiled.append(compile_regex(value))
                    except ValueError as exc:
                        self.err(item, f"header: bad regex /{value}/: {exc}")
                parts.append(c.HeaderMatch(name, key, tuple(values), regexes=tuple(compiled)))
            elif key == "equals":
                folded = tuple(v.strip().casefold() for v in values)
                parts.append(c.HeaderMatch(name, key, tuple(values), folded))
            else:
                words = tuple(w for w in (fold_keyword(v) for v in values) if w)
                parts.append(c.HeaderMatch(name, key, tuple(values), words=words))
        return _all(parts)

    def cond_attachment(self, node: Node, _: Node) -> c.Condition | None:
        want = self.boolean(node, "attachment")
        return c.HasAttachment(want) if want is not None else None

    def cond_attachment_type(self, node: Node, _: Node) -> c.Condition | None:
        globs = self.globs(node, "attachment_type")
        return c.AttachmentType(tuple(globs), c.compile_globs(globs)) if globs else None

    def cond_vip(self, node: Node, _: Node) -> c.Condition | None:
        want = self.boolean(node, "vip")
        return c.Vip(want) if want is not None else None

    def cond_business_hours(self, node: Node, _: Node) -> c.Condition | None:
        name = self.scalar(node, "business_hours")
        if name is None:
            return None
        self.ref("calendar", name, node)
        return c.BusinessHours(name)

    def cond_time(self, node: Node, _: Node) -> c.Condition | None:
        between: Node | None = node
        days = frozenset(range(7))
        tz_name = "UTC"
        zone: Any = parse_timezone("UTC")
        if isinstance(node, MappingNode):
            items = self.known(self.items(node, "time") or [], s.TIME_KEYS, "time key")
            by_key = {k: v for k, _, v in items}
            between = by_key.get("between")
            if between is None:
                self.err(node, "time: 'between' is required (e.g. between: 18:00-08:00)")
                return None
            if "days" in by_key:
                spec = self.scalar(by_key["days"], "days")
                try:
                    days = parse_days(spec or "")
                except ValueError as exc:
                    self.err(by_key["days"], f"time: {exc}")
            if "timezone" in by_key:
                tz = self.scalar(by_key["timezone"], "timezone")
                try:
                    zone = parse_timezone(tz or "")
                    tz_name = tz or "UTC"
                except ValueError as exc:
                    self.err(by_key["timezone"], f"time: {exc}")
        ranges: list[Interval] = []
        texts: list[str] = []
        assert between is not None
        for value, item in self.strings(between, "time"):
            for part in value.split(","):
                try:
                    ranges.append(parse_range(part.strip(), allow_overnight=True))
                    texts.append(part.strip())
                except ValueError as exc:
                    self.err(item, f"time: {exc}")
        if not ranges:
            return None
        spec = ", ".join(texts)
        if days != frozenset(range(7)):
            spec += " on " + ",".join(DAYS[d] for d in sorted(days))
        return c.TimeOfDay(tuple(ranges), days, tz_name, zone, spec)

    def cond_sentiment(self, node: Node, _: Node) -> c.Condition | None:
        label_node: Node = node
        threshold = DEFAULT_THRESHOLD
        if isinstance(node, MappingNode):
            items = self.known(
                self.items(node, "sentiment") or [], s.SENTIMENT_KEYS, "sentiment key"
            )
            by_key = {k: v for k, _, v in items}
            if "is" not in by_key:
                self.err(node, "sentiment: 'is' is required (e.g. is: negative)")
                return None
            label_node = by_key["is"]
            if "threshold" in by_key:
                raw = self.scalar(by_key["threshold"], "sentiment threshold")
                try:
                    threshold = float(raw or "")
                except ValueError:
                    threshold = -1.0
                if not 0.0 < threshold <= 1.0:
                    self.err(
                        by_key["threshold"],
                        f"sentiment: threshold {raw!r} must be a number above 0 and at most 1",
                    )
                    return None
        label = self.scalar(label_node, "sentiment")
        if label is None:
            return None
        label = label.lower()
        if label not in s.SENTIMENTS:
            self.err(
                label_node,
                f"sentiment: unknown value {label!r}{did_you_mean(label, s.SENTIMENTS)}",
            )
            return None
        return c.SentimentIs(label, threshold)

    # -- actions -------------------------------------------------------------
    def actions(self, node: Node) -> tuple[dict[str, Any], Node | None]:
        items = self.items(node, "then")
        out: dict[str, Any] = {}
        assignee_node: Node | None = None
        if items is None:
            return out, None
        if not items:
            self.err(node, "then: a rule needs at least one action")
        for key, _, vnode in self.known(items, s.ACTIONS, "action"):
            if key in ("tag", "untag"):
                tags = []
                for value, item in self.strings(vnode, key):
                    if not _TAG.match(value):
                        self.err(item, f"{key}: bad tag {value!r} (no spaces or commas)")
                    tags.append(value.lower())
                out["tags" if key == "tag" else "untags"] = tuple(tags)
            elif key == "slack":
                channels = []
                for value, item in self.strings(vnode, key):
                    if " " in value:
                        self.err(item, f"slack: bad channel {value!r}")
                    channels.append(value)
                out["slack"] = tuple(channels)
            elif key in ("vip", "stop"):
                flag = self.boolean(vnode, key)
                if key == "vip" and flag is False:
                    self.err(vnode, "vip: only 'vip: true' is meaningful (rules never un-VIP)")
                out[key] = bool(flag)
            elif key == "group":
                out["group"] = self.duration(vnode, "group")
            else:
                val = self.scalar(vnode, key)
                if val is None:
                    continue
                if key == "priority" and val.lower() not in PRIORITIES:
                    self.err(vnode, f"unknown priority {val!r}{did_you_mean(val, PRIORITIES)}")
                elif key == "status" and val.lower() not in STATUSES:
                    self.err(vnode, f"unknown status {val!r}{did_you_mean(val, STATUSES)}")
                elif key in ("team", "sla", "auto_reply"):
                    kind = {"team": "team", "sla": "sla", "auto_reply": "template"}[key]
                    self.ref(kind, val, vnode)
                elif key == "assignee":
                    assignee_node = vnode
                    self.ref("agent", val, vnode)
                out[key] = val.lower() if key in ("priority", "status") else val
        return out, assignee_node


def _all(parts: list[c.Condition]) -> c.Condition | None:
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else c.AllOf(tuple(parts))

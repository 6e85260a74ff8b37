"""What a human wrote this time: quoted history and signature stripped.

Precision first: a line is only treated as the start of quoted history when it
looks like one of the attribution lines real clients write (Gmail, Outlook in
several languages, Apple Mail, Thunderbird, Android and Russian webmails, ...) or
is ">"-quoted. Answers written between ">" blocks below an attribution are kept.
Sign-offs ("Thanks, Bob") are kept: guessing them wrong would cut real text; only
a name signed with a dash on the last line and a mailing list's footer go.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import re2
from selectolax.lexbor import LexborNode

from inboxd.core.html_text import html_to_text, parse_html

# --- attribution lines ("On <date>, <who> wrote:") -------------------------------------------

_LEADS = r"On|Am|Le|El|Il|Op|Em|Den|På|Pe|W\s+dniu|Dne|Dňa|Στις|В|У|Ngày|Vào|Tanggal|Pada|Op\s+\S+"
_VERBS = (
    r"wrote|writes|schrieb|hat\s+geschrieben|a\s+écrit|a\s+ecrit|escribió|escribio|"
    r"ha\s+scritto|scrisse|schreef|heeft\s+geschreven|escreveu|skrev|kirjoitti|napisał|"
    r"napisała|napisal|pisze|napsal|napísal|írta|написал|написала|пише|έγραψε|yazdı|viết|menulis|"
    r"a\s+scris|rašė|rakstīja|kirjutas|je\s+napisao|je\s+napisala|napisao|"
    r"написав|写道|寫道|のメッセージ|님이\s+작성"
)
# Whole attribution on one (possibly re-joined) line.
_ATTRIBUTION = re.compile(
    r"^\s*(?:" + _LEADS + r")\b.{3,300}?(?:" + _VERBS + r")"
    r"(?:\s*[:：]?|\s.{0,200}[:：])\s*$",
    re.IGNORECASE,
)
_LEAD_START = re.compile(r"^\s*(?:" + _LEADS + r")\b", re.IGNORECASE)
# "John Doe <j@x.com> wrote:" / "j@x.com wrote:" followed by ">" lines (Thunderbird, mutt);
# also the verb before the name, as Gmail writes it in Danish, Norwegian and Swedish:
# "15. marts 2017 kl. 11.00 skrev John Doe <j@x.com>:" (the address must then end it).
_WHO_WROTE = re.compile(
    r"^\s*\S.{0,200}\s(?:" + _VERBS + r")"
    r"(?:\s*[:：]|\s.{0,200}<[^<>\s]+@[^<>\s]+>(?:\s+følgende)?\s*[:：])\s*$",
    re.IGNORECASE,
)
# Japanese/Chinese clients: "2024年1月3日(水) 10:00 Taro <t@x.jp>:".
_CJK_ATTRIBUTION = re.compile(r"^\s*\d{4}年\d{1,2}月\d{1,2}日.{0,200}[:：]\s*$")
# Yahoo and some webmails: "On Tuesday, 3 January 2024, 10:00:00 GMT, X <x@y> wrote:"
# is covered by _ATTRIBUTION; "Sent: ..." alone is not a marker.
# Clients that lead with the date and may have no verb at all, right above a ">" quote:
# Android/Yandex in Russian ('02.04.2012 14:20 пользователь "X" <x@y> написал:',
# '26.06.2014, 14:41, "X" <x@y>:'), mail.ru ('Thu, 26 Jun 2014 14:00 +0400 от X <x@y>:'),
# Gmail in many locales ('2014-06-26 14:41 GMT+04:00 X <x@y>:'). A time and an address
# or a leading date, ending with ":" and followed by a quote: a sentence rarely is all that.
_LOOSE_TIME = re.compile(r"\b\d{1,2}:\d{2}\b")
_LOOSE_ADDRESS = re.compile(r"[^\s<>@\"']+@[^\s<>@\"']+\.\w{2,}")
_LOOSE_DATE_LEAD = re.compile(
    r"^\s*(?:\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\d{1,2}\.?\s+\w{3,}\.?,?\s+\d{4}"
    r"|[^\W\d_]{2,}\.?,\s+(?:\d{1,2}\.?\s+[^\W\d_]{3,}|[^\W\d_]{3,}\.?\s+\d{1,2}))"
)

# --- separators --------------------------------------------------------------------------------

_ORIGINAL = re.compile(
    r"^\s*[-_=*\s]*[-_=]{2,}\s*(?:"
    r"original\s+message|forwarded\s+message|ursprüngliche\s+nachricht|"
    r"weitergeleitete\s+nachricht|message\s+d'origine|message\s+transféré|"
    r"mensaje\s+original|mensaje\s+reenviado|messaggio\s+originale|messaggio\s+inoltrato|"
    r"oorspronkelijk\s+bericht|doorgestuurd\s+bericht|origineel\s+bericht|"
    r"ursprungligt\s+meddelande|vidarebefordrat\s+meddelande|opprinnelig\s+melding|"
    r"oprindelig\s+meddelelse|videresendt\s+meddelelse|mensagem\s+original|"
    r"mensagem\s+encaminhada|oryginalna\s+wiadomość|wiadomość\s+oryginalna|"
    r"původní\s+zpráva|alkuperäinen\s+viesti|eredeti\s+üzenet|исходное\s+сообщение|"
    r"пересылаемое\s+сообщение|αρχικό\s+μήνυμα|orijinal\s+mesaj|原始邮件|原始郵件|"
    r"元のメッセージ|reply\s+message|original\s+nachricht"
    r")\s*[-_=*\s]*$",
    re.IGNORECASE,
)
_BEGIN_FORWARDED = re.compile(
    r"^\s*(?:begin\s+forwarded\s+message|anfang\s+der\s+weitergeleiteten\s+nachricht|"
    r"début\s+du\s+message\s+réexpédié|inicio\s+del\s+mensaje\s+reenviado|"
    r"inizio\s+messaggio\s+inoltrato|begin\s+doorgestuurd\s+bericht|"
    r"vidarebefordrat\s+brev)\s*:\s*$",
    re.IGNORECASE,
)
_UNDERSCORES = re.compile(r"^\s*_{10,}\s*$")

# --- Outlook header blocks ("From: / Sent: / To: / Subject:") ---------------------------------

_FROM_WORDS = (
    r"from|von|de|van|från|fra|da|od|lähettäjä|feladó|от|kimden|afzender|remitente|"
    r"expéditeur|mittente|发件人|寄件者|送信者|보낸\s*사람|frá"
)
_DATE_WORDS = (
    r"sent|date|gesendet|datum|envoyé|enviado\s+el|enviad[oa]\s+em|enviado|enviada|fecha|"
    r"verzonden|skickat|sendt|"
    r"inviato|data|wysłano|wysłane|odesláno|lähetetty|päivämäärä|elküldve|dátum|"
    r"отправлено|дата|gönderildi|tarih|发送时间|日期|寄件日期|送信日時|보낸\s*날짜|sent\s+at"
)
_TO_WORDS = (
    r"to|an|à|a|aan|till|til|per|do|vastaanottaja|címzett|кому|kime|para|"
    r"收件人|宛先|받는\s*사람|subject|betreff|objet|asunto|onderwerp|ämne|emne|oggetto|"
    r"temat|předmět|aihe|tárgy|тема|konu|assunto|主题|主旨|件名|제목|cc|kopie|copie"
)
_HDR = r"^\s*[*>]*\s*(?:{words})\s*[*]*\s*[:：]"
_FROM_LINE = re.compile(_HDR.format(words=_FROM_WORDS) + r"\s*\S", re.IGNORECASE)
_DATE_LINE = re.compile(_HDR.format(words=_DATE_WORDS), re.IGNORECASE)
_TO_LINE = re.compile(_HDR.format(words=_TO_WORDS), re.IGNORECASE)

# --- signatures ---------------------------------------------------------------------------------

_MOBILE = re.compile(
    r"^\s*(?:"
    r"sent\s+(?:from|via|with|using)\s+(?:my\s+)?(?:\S+\s+){0,3}?"
    r"(?:iphone|ipad|ipod|android|mobile|phone|smartphone|blackberry|galaxy|samsung|"
    r"huawei|pixel|xiaomi|tablet|device|outlook|yahoo\s+mail|aol|mail\s+for\s+windows|"
    r"proton\s*mail|gmail|windows\s+phone|nokia|htc|motorola|sony|lg|oneplus)\b.*|"
    r"get\s+outlook\s+for\s+(?:ios|android).*|"
    r"von\s+meinem\s+\S+(?:\s+\S+){0,3}\s+gesendet.*|gesendet\s+von\s+meinem\s+.*|"
    r"envoyé\s+(?:de|depuis)\s+mon\s+.*|"
    r"enviado\s+(?:desde|do)\s+(?:mi|meu)\s+.*|"
    r"verzonden\s+(?:vanaf|met)\s+(?:mijn\s+)?.*|skickat\s+från\s+min\s+.*|"
    r"sendt\s+fra\s+min\s+.*|inviato\s+da\s+(?:iphone|ipad|android|il\s+mio\s+).*|"
    r"wysłane\s+z\s+.*(?:iphone|androida?|telefonu).*|"
    r"odesláno\s+z\s+.*|lähetetty\s+.*(?:iphonesta|android).*|"
    r"отправлено\s+с\s+.*|iphone'umdan\s+gönderildi.*"
    r")\s*$",
    re.IGNORECASE,
)

_QUOTED = re.compile(r"^\s*>")
_MAX_LINES = 20_000


def _is_attribution(lines: list[str], i: int) -> int:
    """Number of lines (1-3) forming an attribution starting at ``i``, else 0."""
    line = lines[i]
    if len(line) > 400:
        return 0
    if _match(_ATTRIBUTION, _ATTRIBUTION_ASCII, line) or _CJK_ATTRIBUTION.match(line):
        return 1
    if _LEAD_START.match(line):
        joined = line
        for extra in (1, 2):
            if i + extra >= len(lines) or not lines[i + extra].strip():
                break
            joined = joined.rstrip() + " " + lines[i + extra].strip()
            if _match(_ATTRIBUTION, _ATTRIBUTION_ASCII, joined):
                return extra + 1
    if _match(_WHO_WROTE, _WHO_WROTE_ASCII, line) and _next_is_quote(lines, i + 1):
        return 1
    return _loose_attribution(lines, i)


def _loose_attribution(lines: list[str], i: int) -> int:
    """Lines (1-3) of a date- or address-led attribution at ``i`` right above a quote."""
    joined = ""
    for span in (1, 2, 3):
        line = lines[i + span - 1] if i + span <= len(lines) else ""
        if not line.strip() or _QUOTED.match(line):
            return 0
        joined = (joined + " " + line.strip()).strip()
        if len(joined) > 300:
            return 0
        if joined.endswith((":", "：")) and _looks_like_attribution(joined):
            return span if _next_is_quote(lines, i + span) else 0
    return 0


def _looks_like_attribution(line: str) -> bool:
    return bool(_LOOSE_TIME.search(line)) and bool(
        _LOOSE_ADDRESS.search(line) or _LOOSE_DATE_LEAD.match(line)
    )


def _next_is_quote(lines: list[str], start: int) -> bool:
    for j in range(start, min(len(lines), start + 3)):
        if lines[j].strip():
            return bool(_QUOTED.match(lines[j]))
    return False


def _is_outlook_block(lines: list[str], i: int) -> bool:
    """A "From:" line followed closely by "Sent:/Date:" and "To:/Subject:" lines, or
    a "Date:" line followed closely by "From:" and "To:/Subject:" lines."""
    has_from = bool(_FROM_LINE.match(lines[i]))
    has_date = not has_from and bool(_DATE_LINE.match(lines[i]))
    if not (has_from or has_date):
        return False
    has_to = False
    for j in range(i + 1, min(len(lines), i + 8)):
        candidate = lines[j]
        if not candidate.strip():
            continue
        if not has_date and _DATE_LINE.match(candidate):
            has_date = True
        elif not has_from and _FROM_LINE.match(candidate):
            has_from = True
        elif _TO_LINE.match(candidate):
            has_to = True
        if has_from and has_date and has_to:
            return True
    return False


def _attribution_above_quote(lines: list[str]) -> bool:
    """``lines[0]`` opens an attribution that the ">" block below it belongs to."""
    if _match(_WHO_WROTE, _WHO_WROTE_ASCII, lines[0]) and _quote_start_at(lines, 0):
        return True
    return bool(_loose_attribution(lines, 0))


def _date_line_above(scan: str, start: int) -> int | None:
    """Where a "Date:" line opening a header block sits right above the "From:" line
    after ``scan[start]`` (the scan only stops at "From:" lines), else None."""
    back = scan.rfind("\n", 0, start)
    if back < 0:
        return None
    lines = _window(scan, back)
    if _DATE_LINE.match(lines[0]) and _is_outlook_block(lines, 0):
        return back
    return None


# One cheap multiline scan finds the few lines worth the expensive checks, in order:
# attribution leads, header-block "From:" lines, separators, and ">" quoted lines.
# _grouped_scan_twin rebuilds it for ASCII text: change both together.
_SCAN = re.compile(
    r"\n(?:(?P<q>[ \t]*>)|[ \t*]*(?:(?:" + _LEADS + r")\b|(?:" + _FROM_WORDS + r")\s*\**\s*[:：]"
    r"|[-_=]{2,}|begin\s|anfang\s|début\s|inicio\s|inizio\s|vidarebefordrat\s|\d{4}年))",
    re.IGNORECASE,
)
_SIG_SCAN = re.compile(r"\n(?:-- ?|--|—)[ \t]*(?=\n|$)")
_MOBILE_SCAN = re.compile(
    "\n" + _MOBILE.pattern.replace("^\\s*", "[ \\t]*", 1), re.IGNORECASE | re.MULTILINE
)
_QUOTE_SCAN = re.compile(r"\n[ \t]*>")


def _ascii_lowered(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """``pattern`` without IGNORECASE, for ASCII text that has been lowercased.

    On ASCII text a case-insensitive match is a match of the lowercased text against
    the lowercased literals (no non-ASCII literal here folds to an ASCII letter; a
    test checks both claims). Case-sensitive alternations let the regex engine skip
    a branch on its first character, which makes the per-line scans 2-3x cheaper.
    """
    source = re.sub(
        r"\\.|[^\\]+",
        lambda m: m.group() if m.group().startswith("\\") else m.group().lower(),
        pattern.pattern,
    ).replace("(?p<", "(?P<")
    # A non-ASCII literal that folds to an ASCII letter (Turkish dotless "ı" in "yazdı"
    # matches "i") keeps matching it. These patterns use such letters only as plain
    # literals, never inside a [...] class, where the replacement would not be valid.
    for char in sorted({c for c in source if not c.isascii()}):
        folds = sorted(
            {chr(a).lower() for a in range(128) if re.fullmatch(re.escape(char), chr(a), re.I)}
        )
        if folds:
            source = source.replace(char, "[" + char + "".join(folds) + "]")
    return re.compile(source, pattern.flags & ~re.IGNORECASE)


def _match(pattern: re.Pattern[str], lowered: re.Pattern[str], line: str) -> bool:
    """``pattern.match(line)``, via the ASCII-lowered twin when the line allows it."""
    if line.isascii():
        return lowered.match(line.lower()) is not None
    return pattern.match(line) is not None


# The scans all start with a literal "\n", which the regex engine searches for at C
# speed, so they run on "\n" + text and a match at p starts line text.count("\n", 0, p).
# Every _MOBILE alternative contains one of these (lowercased): a cheap prefilter.
_MOBILE_KEYS = (
    "sent",
    "get outlook",
    "gesendet",
    "envoy",
    "enviado",
    "verzonden",
    "skickat",
    "sendt",
    "inviato",
    "wysłane",
    "odesláno",
    "lähetetty",
    "отправлено",
    "gönderildi",
)


def _grouped_scan_twin() -> re.Pattern[str]:
    """The ASCII twin of ``_SCAN`` with its word alternatives grouped by first letter.

    Built from the same word lists as ``_SCAN`` (keep the two in step). At one
    position only alternatives that start with the letter there can match, so
    grouping them under that letter, in their original order, keeps every match
    identical while a line is rejected after one comparison per group.
    """

    def low(source: str) -> str:
        return re.sub(
            r"\\.|[^\\]+",
            lambda m: m.group() if m.group().startswith("\\") else m.group().lower(),
            source,
        )

    items = [low(w) + r"\b" for w in _LEADS.split("|")]
    items += [low(w) + r"\s*\**\s*[:：]" for w in _FROM_WORDS.split("|")]
    items += [r"begin\s", r"anfang\s", r"début\s", r"inicio\s", r"inizio\s", r"vidarebefordrat\s"]
    groups: dict[str, list[str]] = {}
    for item in items:
        if not item[0].isalpha() or any(
            re.fullmatch(re.escape(c), chr(a), re.I)
            for c in item
            if not c.isascii()
            for a in range(128)
        ):
            raise ValueError(f"cannot group {item!r}")  # keep the grouping argument true
        groups.setdefault(item[0], []).append(item[1:])
    words = "|".join(
        re.escape(first) + "(?:" + "|".join(rests) + ")" for first, rests in groups.items()
    )
    return re.compile(r"\n(?:(?P<q>[ \t]*>)|[ \t*]*(?:" + words + r"|[-_=]{2,}|\d{4}年))")


_SCAN_ASCII = _grouped_scan_twin()
_ATTRIBUTION_ASCII = _ascii_lowered(_ATTRIBUTION)
_WHO_WROTE_ASCII = _ascii_lowered(_WHO_WROTE)
_MOBILE_SCAN_ASCII = _ascii_lowered(_MOBILE_SCAN)


def _scan_matches(scan: str) -> Iterator[re.Match[str]]:
    """``_SCAN.finditer(scan)``; same spans and groups, cheaper on ASCII text."""
    if scan.isascii():
        return _SCAN_ASCII.finditer(scan.lower())
    return _SCAN.finditer(scan)


def _quote_start_at(lines: list[str], i: int) -> bool:
    line = lines[i]
    if _ORIGINAL.match(line) or _BEGIN_FORWARDED.match(line):
        return True
    if _UNDERSCORES.match(line):
        for j in range(i + 1, min(len(lines), i + 3)):
            if lines[j].strip():
                return bool(_FROM_LINE.match(lines[j]))
        return False
    return bool(_is_attribution(lines, i)) or _is_outlook_block(lines, i)


_WINDOW = 4000  # chars examined after a candidate line (attributions, header blocks)


def _window(scan: str, newline: int) -> list[str]:
    """The line starting after ``scan[newline]`` and the few lines that follow it."""
    return scan[newline + 1 : newline + 1 + _WINDOW].split("\n", 9)[:9]


def _find_cut(text: str) -> int | None:
    """Offset in ``text`` of the line where quoted history starts, or None."""
    return _scan_for_cut(text)[0]


def _scan_for_cut(text: str) -> tuple[int | None, bool]:
    """(cut, no_quote_lines): the offset where quoted history starts, or None.

    Scans lazily and stops at the first hit, so the quoted bulk of a long thread is
    never split into lines. When there is no cut, ``no_quote_lines`` says the scan
    proved that no line starts with ">" (it tries its ">" branch at every line start
    it does not skip), which spares :func:`_finish` another pass.
    """
    scan = "\n" + text  # scan[i] == text[i - 1]; a line after scan[p] == "\n" starts at text[p]
    previous_quote_end = -1
    no_quote_lines = True
    for m in _scan_matches(scan):
        start = m.start()
        if m.group("q") is not None:
            no_quote_lines = False
            if start != previous_quote_end:
                # First line of a ">" block: an attribution may sit just above it.
                backs: list[int] = []
                back = start
                for _ in range(3):
                    back = scan.rfind("\n", 0, back)
                    if back < 0:
                        break
                    backs.append(back)
                for back in reversed(backs):
                    lines = _window(scan, back)
                    if lines[0].strip() and _attribution_above_quote(lines):
                        return back, False
            end = scan.find("\n", start + 1)
            previous_quote_end = end if end >= 0 else len(scan)
            continue
        if no_quote_lines and scan.find("\n", start + 1, m.end()) >= 0:
            no_quote_lines = False  # the match ran over a line start the scan then skips
        window = _window(scan, start)
        # a "Date:" line just above a "From:" line opens the block there
        above = _date_line_above(scan, start) if _FROM_LINE.match(window[0]) else None
        if above is not None:
            return above, False
        if _quote_start_at(window, 0):
            return start, False
    return None, no_quote_lines


def _answer_after_quote(text: str, cut: int) -> int | None:
    """Where unquoted text resumes after the attribution and ">" block at ``cut``.

    Only an attribution directly followed by ">" lines qualifies (a header block or
    separator starts history that runs to the end). A single unquoted line squeezed
    between two ">" lines is a quote line the client wrapped, not an answer.
    """
    lines = text[cut : cut + _WINDOW].split("\n", 9)[:9]
    span = _is_attribution(lines, 0)
    if not span or not _next_is_quote(lines, span):
        return None
    pos = cut + len("\n".join(lines[:span]))
    for _ in range(50):
        found = _UNQUOTED_LINE.search(text, pos)
        if found is None:
            return None
        start = found.start() + 1
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        if not text[start:end].strip() or _QUOTED.match(text, start):
            pos = end
            continue
        before = text[text.rfind("\n", 0, found.start()) + 1 : found.start()]
        after = text[end + 1 : end + 1 + 200].split("\n", 1)[0]
        if _SIG_LINE.match(text, start):
            return None  # the writer's signature below the quote
        if not (_QUOTED.match(before) and _QUOTED.match(after)):
            return start
        pos = end
    return None


def find_quote_start(lines: list[str]) -> int | None:
    """Index of the first line of quoted history, or None when there is none."""
    text = "\n".join(lines)
    cut = _find_cut(text)
    return None if cut is None else text.count("\n", 0, cut)


_MOBILE_TAIL = 3000  # "Sent from my phone" ends what was written: only the tail is searched


def _strip_signature(head: str) -> str:
    scan = "\n" + head
    cut: int | None = None
    for sig in _SIG_SCAN.finditer(scan):
        if scan[: sig.start()].strip():
            cut = sig.start()
            break
    tail_start = max(0, len(scan) - _MOBILE_TAIL)
    tail_start = max(0, scan.rfind("\n", 0, tail_start + 1))
    tail = scan[tail_start:]
    mobile_at: int | None = None
    if tail.isascii():
        mobile = _MOBILE_SCAN_ASCII.search(tail.lower())
        if mobile is not None:
            mobile_at = tail_start + mobile.start()
    else:
        low = tail.lower()
        if any(k in low for k in _MOBILE_KEYS):
            mobile = _MOBILE_SCAN.search(scan, tail_start)
            if mobile is not None:
                mobile_at = mobile.start()
    if mobile_at is not None:
        cut = mobile_at if cut is None else min(cut, mobile_at)
    return head if cut is None else head[:cut]


# A Mailman list footer ("____\nNAME mailing list\naddress\nlistinfo URL") is the list's,
# never the sender's.
_LIST_FOOTER = re.compile(r"\n[ \t]*_{10,}[ \t]*\n[^\n]{0,100}mailing\s+list[ \t]*(?=\n|$)", re.I)
# A name signed with a dash or tilde on the last line: "-Ann Lee", "--Bob", "— Ann", "~Kai".
# A single "-" needs the name right after it: "- Milk" is a list item.
_DASH_NAME = re.compile(
    r"\n[ \t]*(?:-(?=[^\W\d_])|--[ \t]?|[–—~][ \t]?)"
    r"(?:[^\W\d_][\w.'’-]*)(?:[ \t]+[^\W\d_][\w.'’-]*){0,3}[ \t]*$"
)


def _strip_tail_signature(head: str) -> str:
    """Drop a list footer and then a dash-signed name that ends the text."""
    if "__________" in head:
        footer = _LIST_FOOTER.search("\n" + head)
        if footer is not None:
            head = head[: footer.start()]
    head = head.rstrip()
    cut = head.rfind("\n")
    last = head[cut + 1 :]
    if len(last) <= 40 and last.lstrip()[:1] in ("-", "–", "—", "~"):
        sig = _DASH_NAME.match("\n" + last)
        words = last.lstrip(" \t-–—~").split()
        if sig is not None and all(w[0].isupper() for w in words):
            above = head[:cut].rstrip(" \t") if cut >= 0 else ""
            previous = above[above.rfind("\n") + 1 :].lstrip()
            if not previous.startswith(("-", "–", "—", "~", "*", "•")):
                head = above
    return head


_TRAILING_SPACE = re.compile(r"[ \t\u00a0]+$", re.MULTILINE)


# Searched in the reversed text: a pattern that starts with a literal "\n" runs at
# memchr speed, while three `in` tests for " \n", "\t\n", "\xa0\n" cost a scan each.
_SPACE_BEFORE_NL_REVERSED = re.compile("\n[ \t\xa0]")


def _trim(head: str) -> str:
    if _SPACE_BEFORE_NL_REVERSED.search(head[::-1]):
        head = _TRAILING_SPACE.sub("", head)
    return head.strip("\n").rstrip()


def _drop_quoted(lines: list[str]) -> list[str]:
    """Remove ">" lines and the attribution lines that introduce them."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if _QUOTED.match(line):
            i += 1
            continue
        span = _is_attribution(lines, i)
        if span and _next_is_quote(lines, i + span):
            i += span
            continue
        out.append(line)
        i += 1
    return out


_MANY_BLANK = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


def _finish(head: str, no_quote_lines: bool = False) -> str:
    """Drop interleaved ">" lines and the signature, trim."""
    if not no_quote_lines and _QUOTE_SCAN.search("\n" + head):
        head = "\n".join(_drop_quoted(head.split("\n")))
        head = _MANY_BLANK.sub("\n\n", head)  # where a quote sat between two answers
    return _trim(_strip_tail_signature(_strip_signature(head)))


MAX_TEXT_CHARS = 2_000_000


def extract_text_reply(text: str) -> str:
    """Plain-text path of :func:`extract_new_text`."""
    if not text:
        return ""
    text = text[:MAX_TEXT_CHARS]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.lstrip("\ufeff")
    return _reply(text, 0)


_RULES_AT_END = re.compile(r"(?:\n[ \t]*[-_=*]{3,}[ \t]*)+\s*$")
_UNQUOTED_LINE = re.compile(r"\n[^>\n]")  # cheaper than "\n[ \t]*[^>\s]"; indents re-checked
_SIG_LINE = re.compile(r"[ \t]*(?:-- ?|--|—)[ \t]*(?:\n|$)")
_MAX_INLINE = 20  # answer/quote alternations followed below an attribution


def _reply(text: str, depth: int) -> str:
    """New text of ``text``; answers written between quoted blocks are kept too."""
    cut, no_quote_lines = _scan_for_cut(text)
    if cut is None:
        return _finish(text, no_quote_lines)
    head = text[:cut]
    if head.rstrip().endswith(("---", "___", "===", "***")):
        head = _RULES_AT_END.sub("", "\n" + head)[1:]  # Outlook's rule above its header block
    result = _finish(head)
    if result:
        resume = _answer_after_quote(text, cut) if depth < _MAX_INLINE else None
        if resume is None:
            return result
        more = _reply(text[resume:], depth + 1)
        return result + "\n\n" + more if more else result
    # Bottom-posting: the attribution is at the top and the answer below the quote.
    rest = text[cut:].split("\n", _MAX_LINES)[:_MAX_LINES]
    if _ORIGINAL.match(rest[0]) or _is_outlook_block(rest, 0) or _UNDERSCORES.match(rest[0]):
        return ""  # a forward with nothing written above it
    span = _is_attribution(rest, 0) or 1
    return _finish("\n".join(rest[span:]))


# --- HTML ---------------------------------------------------------------------------------------

# Removing these removes exactly the quoted history they wrap.
_HTML_REMOVE = (
    "blockquote[type=cite]",
    "div.gmail_quote",
    "blockquote.gmail_quote",
    "div.gmail_quote_container",
    ".moz-cite-prefix",
    ".yahoo_quoted",
    ".protonmail_quote",
    "div.gmail_signature",
    "[data-smartmail=gmail_signature]",
    ".moz-signature",
    "#AppleMailSignature",
)
# These mark where quoted history begins: they and everything after them go.
_HTML_CUT = (
    "#divRplyFwdMsg",
    "#x_divRplyFwdMsg",
    "#appendonsend",
    "div.OutlookMessageHeader",
    "#OLK_SRC_BODY_SECTION",
    "#mail-editor-reference-message-container",
    "hr#stopSpelling",
    "#Zm-_Id_-Sgn",
)


def _html_reply(html: str) -> str | None:
    """New text from the HTML structure, or None when it shows no quote marker."""
    try:
        tree = parse_html(html)
    except Exception:
        return None
    body = tree.body
    if body is None:
        return None
    found = False
    for selector in _HTML_CUT:
        try:
            node = body.css_first(selector)
        except Exception:
            continue
        if node is None:
            continue
        found = True
        # Everything after the marker in document order is history.
        current: LexborNode | None = node
        while current is not None and current.tag != "body":
            sibling = current.next
            while sibling is not None:
                following = sibling.next
                sibling.decompose()
                sibling = following
            current = current.parent
        node.decompose()
        break
    for selector in _HTML_REMOVE:
        try:
            nodes = body.css(selector)
        except Exception:
            continue
        for node in nodes:
            found = True
            node.decompose()
    if not found:
        return None
    return html_to_text(tree.html or "", mark_quotes=True)


_HTML_MARKERS = (
    "gmail_quote",
    "type=cite",
    'type="cite"',
    "type='cite'",
    "divRplyFwdMsg",
    "appendonsend",
    "OutlookMessageHeader",
    "moz-cite-prefix",
    "yahoo_quoted",
    "protonmail_quote",
    "OLK_SRC_BODY_SECTION",
    "stopSpelling",
    "gmail_signature",
    "AppleMailSignature",
    "moz-signature",
    "mail-editor-reference-message-container",
    "Zm-_Id_-Sgn",
)


_MARKER_RE2 = re2.compile("|".join(re.escape(marker) for marker in _HTML_MARKERS))


def _has_html_marker(html: str) -> bool:
    """Any marker substring in ``html``: one linear RE2 pass instead of 17 scans."""
    try:
        return _MARKER_RE2.search(html) is not None
    except Exception:  # lone surrogates cannot go to RE2 as UTF-8
        return any(marker in html for marker in _HTML_MARKERS)


def extract_new_text(text: str, html: str = "") -> str:
    """The part of a reply the sender wrote this time, quotes and signature removed.

    The plain-text rules run on ``text``; the client's own HTML quote containers
    (Gmail ``gmail_quote``, Apple ``blockquote type=cite``, Outlook
    ``divRplyFwdMsg``...) are used when there is no usable text, or when the text
    shows no quote at all but the HTML does. HTML is only parsed when a marker
    substring is present, which keeps the common path fast.
    """
    try:
        if text.strip():
            result = extract_text_reply(text)
            if html and result == text.strip() and _has_html_marker(html):
                from_html = _html_reply(html)
                if from_html is not None:
                    return extract_text_reply(from_html)
            return result
        if not html:
            return ""
        if _has_html_marker(html):
            from_html = _html_reply(html)
            if from_html is not None:
                return extract_text_reply(from_html)
        return extract_text_reply(html_to_text(html))
    except RecursionError:
        return text.strip()

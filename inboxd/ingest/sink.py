"""What a mailbox fetcher hands raw mail to, and the checkpoint it resumes from.

The fetcher knows IMAP; the sink knows storage. Keeping the seam this narrow
lets the fetcher be tested against a real Dovecot with the real pipeline, and
makes "commit before acknowledging" one rule: ``store_batch`` returns only
after the messages AND the new checkpoint are committed in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from inboxd.core.model import ParsedMessage, ParseFailure, pickled_by_fields

if TYPE_CHECKING:  # the ingest workers import this module: no SQLAlchemy in them
    from sqlalchemy import Connection


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where a mailbox folder was left: all UIDs <= last_uid under uidvalidity are stored."""

    uidvalidity: int
    last_uid: int


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class FetchedMail:
    uid: int
    raw: bytes
    # already parsed (by an ingest worker while the previous batch was stored), or None
    parsed: ParsedMessage | ParseFailure | None = None
    # over the size limit: its RFC822.SIZE, and ``raw`` holds only its header block
    # (the mail stays on the server; the sink quarantines it by reference)
    oversize: int = 0
    # when its FETCH answer came (Unix time; 0: unknown): ingest latency counts from it,
    # so a batch that waited behind the one being stored is not reported as fast
    fetched_at: float = 0.0


class MailboxSink(Protocol):
    def checkpoint(self, mailbox: str, folder: str) -> Checkpoint | None:
        """The stored checkpoint, or None for a folder never synced."""
        ...

    def store_batch(
        self,
        mailbox: str,
        folder: str,
        uidvalidity: int,
        mails: Sequence[FetchedMail],
        *,
        guard: Callable[[Connection], None] | None = None,
    ) -> None:
        """Store every mail (dedupe, thread, quarantine on failure) and advance the
        checkpoint to max(uid) in ONE transaction (an ``oversize`` mail is quarantined
        by reference before it, in a transaction of its own). A uidvalidity different from the
        stored one resets the checkpoint (the caller rescans from UID 1; duplicates
        are recognised by Message-ID + content digest). ``guard`` runs first in that
        transaction (the fetcher's lease check); what it raises rolls the batch back.
        Raises only then or when the database itself fails; then nothing of the
        batch is committed."""
        ...

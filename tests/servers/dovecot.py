"""A private Dovecot IMAP server in a temp dir, for tests and benches.

Nothing is read from /etc: the config, passwd file, logs, state and mail all
live under one temp directory, the listener is 127.0.0.1 on a free port and
TLS is off. As root, Dovecot refuses to run login processes as root or to give
mail uid 0, so logins run as ``dovenull`` and mail is owned by ``dovecot``
(the temp dir is made traversable for them); as a normal user, everything runs
as that user. See shared/notes/test-servers.md for the measured facts.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from itertools import count
from pathlib import Path
from typing import Protocol

import psutil
from imapclient import IMAPClient

DOVECOT_BIN = "/usr/sbin/dovecot"

_CONFIG = """\
# Private test instance: reads nothing from /etc.
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/log/dovecot.log
info_log_path = {root}/log/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:~/Maildir
mail_fsync = never
verbose_proctitle = yes
shutdown_clients = yes
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users/%u
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service anvil {{
  chroot =
  # No growing login delay for 127.0.0.1 after a test's failed login.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
"""

_START_TIMEOUT = 10.0  # seconds; a normal start takes ~0.15 s
_STOP_TIMEOUT = 5.0


class DovecotError(RuntimeError):
    """The test server could not be started; the message includes its log tail."""


def dovecot_available() -> str | None:
    """None when Dovecot can be run here, else the reason it cannot."""
    if not os.access(DOVECOT_BIN, os.X_OK):
        return f"{DOVECOT_BIN} is not installed (apt-get install dovecot-imapd)"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def maildir_for(folder: str) -> str:
    """Maildir++ directory of a folder relative to ~/Maildir (INBOX is the root)."""
    if folder.upper() == "INBOX":
        return "."
    if not folder.isascii() or "/" in folder or folder.startswith("."):
        raise ValueError(f"preload supports plain ASCII folder names, not {folder!r}")
    return "." + folder


class DovecotFactory(Protocol):
    """Type of the ``make_dovecot`` fixture."""

    def __call__(self, *, tls: bool = False) -> DovecotServer: ...


class DovecotServer:
    """One private Dovecot master with its own users and Maildirs.

    ``start()`` can be called again after ``crash()`` or ``stop(keep=True)``:
    it reuses the same directory, port and mail, which is how tests simulate a
    server that dies and comes back.
    """

    def __init__(
        self, root: Path | None = None, port: int | None = None, *, tls: bool = False
    ) -> None:
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="inboxd-dovecot-"))
        self.port = port or free_port()
        # With tls: STARTTLS on ``port`` and implicit TLS on ``tls_port``, using a
        # self-signed certificate for 127.0.0.1 (``cert_file`` is its own CA).
        self.tls_port = free_port() if tls else 0
        self.host = "127.0.0.1"
        self.users: dict[str, str] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._seq = count()
        self._as_root = os.geteuid() == 0
        if self._as_root:
            self.mail_uid = pwd.getpwnam("dovecot").pw_uid
            self.mail_gid = grp.getgrnam("dovecot").gr_gid
            login_user, internal_user, internal_group = "dovenull", "dovecot", "dovecot"
        else:
            self.mail_uid, self.mail_gid = os.getuid(), os.getgid()
            login_user = internal_user = pwd.getpwuid(self.mail_uid).pw_name
            internal_group = grp.getgrgid(self.mail_gid).gr_name
        # The mail and auth processes must reach into the dir when we are root.
        self.root.chmod(0o755)
        for sub in ("run", "state", "log", "mail", "users"):
            (self.root / sub).mkdir(exist_ok=True)
        self._chown(self.root / "mail")
        ssl_conf = "ssl = no"
        if tls:
            _make_cert(self.cert_file, self.root / "key.pem")
            ssl_conf = (
                f"ssl = yes\nssl_cert = <{self.cert_file}\nssl_key = <{self.root / 'key.pem'}"
            )
        self.config_file.write_text(
            _CONFIG.format(
                ssl=ssl_conf,
                tls_port=self.tls_port,
                root=self.root,
                port=self.port,
                uid=self.mail_uid,
                gid=self.mail_gid,
                login_user=login_user,
                internal_user=internal_user,
                internal_group=internal_group,
            )
        )

    # -- paths -------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def cert_file(self) -> Path:
        return self.root / "cert.pem"

    @property
    def users_dir(self) -> Path:
        return self.root / "users"

    @property
    def log_file(self) -> Path:
        return self.root / "log" / "dovecot.log"

    @property
    def output_file(self) -> Path:
        return self.root / "log" / "stdout.log"

    def maildir(self, user: str, folder: str = "INBOX") -> Path:
        return (self.root / "mail" / user / "Maildir" / maildir_for(folder)).resolve()

    # -- lifecycle ---------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> DovecotServer:
        if self.running:
            return self
        with open(self.output_file, "ab") as out:
            # Foreground master (-F) in its own session: we hold its pid, and the
            # output goes to a file so no caller's pipe is kept open.
            self._proc = subprocess.Popen(
                [DOVECOT_BIN, "-F", "-c", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise DovecotError(
                    f"dovecot exited with {self._proc.returncode}:\n{self.log_tail()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                    sock.settimeout(2.0)
                    if sock.recv(64).startswith(b"* OK"):
                        return self
            except OSError:
                time.sleep(0.02)
        self._kill_all()
        raise DovecotError(
            f"dovecot did not accept connections in {_START_TIMEOUT} s:\n{self.log_tail()}"
        )

    def _processes(self) -> list[psutil.Process]:
        if self._proc is None:
            return []
        try:
            master = psutil.Process(self._proc.pid)
            return [master, *master.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def _kill_all(self) -> None:
        procs = self._processes()
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGKILL)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=_STOP_TIMEOUT)
        _wait_dead(procs)
        self._proc = None

    def crash(self) -> None:
        """SIGKILL the master and every child, open connections included.

        Killing only the master is not enough: the per-connection ``imap``
        processes would keep serving. Mail and port are kept for ``start()``.
        """
        self._kill_all()

    def kill_connections(self, user: str | None = None) -> int:
        """SIGKILL the ``imap`` processes (of ``user``, or all); the server stays up.

        Returns how many were killed. ``verbose_proctitle`` names each one
        ``imap: [user 127.0.0.1 ...]``.
        """
        victims = []
        for proc in self._processes()[1:]:
            try:
                title = " ".join(proc.cmdline())
            except psutil.NoSuchProcess:
                continue
            is_imap = title.startswith(("dovecot/imap ", "dovecot/imap:"))
            if is_imap and (user is None or f"[{user} " in title):
                victims.append(proc)
        for proc in victims:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGKILL)
        _wait_dead(victims)
        return len(victims)

    def stop(self, keep: bool = False) -> None:
        """Kill the master and all its children; remove the temp dir unless ``keep``.

        SIGKILL rather than SIGTERM: a test server has nothing to flush, and the
        master's graceful shutdown waits seconds for its children.
        """
        self._kill_all()
        if not keep and self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 30) -> str:
        text = ""
        for path in (self.output_file, self.log_file):
            with contextlib.suppress(OSError):
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # -- users and mail ----------------------------------------------------
    def add_user(self, name: str, password: str) -> None:
        """Add (or re-password) a login; works while running.

        One passwd-file per user: Dovecot re-reads a changed passwd-file at most
        once a second, but a file it has never seen is read at first use, so a
        user added just now can log in at once.
        """
        if not name or not name.replace("_", "").replace("-", "").replace(".", "").isalnum():
            raise ValueError(f"test user names are [A-Za-z0-9_.-], not {name!r}")
        if ":" in password or "\n" in password:
            raise ValueError("passwords may not contain ':' or newlines")
        self.users[name] = password
        path = self.users_dir / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"{name}:{{PLAIN}}{password}::::::\n")
        tmp.chmod(0o644)
        tmp.replace(path)

    def _chown(self, path: Path) -> None:
        if self._as_root:
            os.chown(path, self.mail_uid, self.mail_gid)

    def _ensure_maildir(self, user: str, folder: str) -> Path:
        home = self.root / "mail" / user
        parts = [home, home / "Maildir"]
        target = self.maildir(user, folder)
        if target != parts[-1]:
            parts.append(target)
        for path in parts:
            if not path.exists():
                path.mkdir(mode=0o700)
                self._chown(path)
        for sub in ("cur", "new", "tmp"):
            path = target / sub
            if not path.exists():
                path.mkdir(mode=0o700)
                self._chown(path)
        if folder.upper() != "INBOX":
            subs = home / "Maildir" / "subscriptions"
            names = set(subs.read_text().split("\n")) if subs.exists() else set()
            if folder not in names:
                with open(subs, "a") as fh:
                    fh.write(folder + "\n")
                self._chown(subs)
        return target

    def preload(self, user: str, folder: str, messages: Iterable[bytes]) -> int:
        """Write messages straight into ``Maildir/new`` (fast path, no IMAP).

        Dovecot assigns UIDs in file-name order when it next scans the folder,
        so names carry a zero-padded sequence number. Returns the count written.
        """
        new = self._ensure_maildir(user, folder) / "new"
        stamp = int(time.time())
        written = 0
        for raw in messages:
            name = f"{stamp}.M{next(self._seq):09d}P{os.getpid()}.inboxd-test"
            fd = os.open(new / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, raw)
                if self._as_root:
                    os.fchown(fd, self.mail_uid, self.mail_gid)
            finally:
                os.close(fd)
            written += 1
        return written

    def connect(self, user: str, timeout: float = 10.0) -> IMAPClient:
        """A logged-in imapclient connection (plain text, loopback)."""
        client = IMAPClient(self.host, self.port, ssl=False, timeout=timeout)
        client.login(user, self.users[user])
        return client

    def append(
        self,
        user: str,
        folder: str,
        messages: Sequence[bytes],
        flags: Sequence[str] = (),
    ) -> list[int]:
        """APPEND over IMAP (creating the folder if needed); returns the new UIDs."""
        client = self.connect(user)
        try:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            uids: list[int] = []
            for raw in messages:
                resp = client.append(folder, raw, flags=tuple(flags))
                uids.append(_appenduid(resp))
            return uids
        finally:
            with contextlib.suppress(Exception):
                client.logout()


def _make_cert(cert: Path, key: Path) -> None:
    """Self-signed EC certificate for IP 127.0.0.1 (openssl comes with dovecot-core)."""
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=30,
    )
    key.chmod(0o600)
    cert.chmod(0o644)


def _wait_dead(procs: Iterable[psutil.Process], timeout: float = _STOP_TIMEOUT) -> None:
    """Wait until the processes are gone or zombies (orphans are reaped by init, late).

    psutil.wait_procs polls with a growing interval and costs ~1.5 s here."""
    pending = list(procs)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        alive = []
        for proc in pending:
            with contextlib.suppress(psutil.NoSuchProcess):
                if proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
        pending = alive
        if pending:
            time.sleep(0.005)


def _appenduid(resp: bytes | str) -> int:
    """UID from an ``[APPENDUID validity uid]`` response code (UIDPLUS); -1 if absent."""
    text = resp.decode() if isinstance(resp, bytes) else resp
    if "[APPENDUID " in text:
        return int(text.split("[APPENDUID ", 1)[1].split("]", 1)[0].split()[1])
    return -1

"""No password in any output: every URL gbench shows goes through :func:`mask`.

A storage URL (``postgresql://user:pw@host/db``) or an MLflow tracking URI
(``http://user:token@host/``) may carry a credential. gbench keeps the real
URL only where it connects; error messages, tables, files, progress lines,
tracebacks and the trackers' tags and parameters show it masked, as
``user:***@host`` (what SQLAlchemy's ``render_as_string(hide_password=True)``
writes). :func:`mask` takes any text, not just one URL, so that a library's
error message that quotes the URL is masked as well.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

MASK = "***"

# scheme://user:password@host. The password runs to the '@' (one inside a password must be
# written %40, as in any URL); it may hold '/', ':' or '?' as typed, so stopping at those would
# show its rest. A space or a quote ends a URL quoted inside a message. Masking too much (an '@'
# in a path after a port) is harmless; masking too little is the leak this module exists to stop.
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*):(?P<password>[^\s@'\"]+)@")
# libpq and others also take the password as a query parameter: ?password=... or &password=...
_QUERY = re.compile(
    r"(?P<head>[?&](?:password|passwd|pwd|token|secret|api_key|access_token)=)(?P<value>[^&\s'\"#]+)", re.IGNORECASE
)


def mask(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    masked = _USERINFO.sub(lambda found: f"{found['head']}:{MASK}@", text)
    return _QUERY.sub(lambda found: f"{found['head']}{MASK}", masked)


def masked_command(argv: Sequence[str]) -> str:
    """A command line to show a user (``gbench run ... --storage URL``), its URLs masked."""
    return mask(shlex.join(argv))


def first_line(error: BaseException) -> str:
    """An exception as one masked line: its type when it has no message."""
    lines = str(error).strip().splitlines()
    return mask(lines[0] if lines else type(error).__name__)

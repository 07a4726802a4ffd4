"""tox's inline plugin: run the tests in the interpreter that runs tox.

``pip install -c constraints.txt -e ".[test]"`` puts gbench, torch and tox
into one interpreter: a virtualenv's or the system's. tox's own environments
would be built on the *base* interpreter (``system_site_packages`` means the
base's site-packages, not the virtualenv's, so the tests could not import
torch), or would install torch a second time (a multi-GB download anywhere
but here). So tox.ini runs every command with ``{env:GBENCH_TOX_PYTHON}``,
the interpreter tox itself runs under, which this file names.
"""

from __future__ import annotations

import os
import sys

from tox.plugin import impl


@impl
def tox_add_core_config(core_conf, state) -> None:  # noqa: ARG001 - tox's hook signature
    os.environ.setdefault("GBENCH_TOX_PYTHON", sys.executable)

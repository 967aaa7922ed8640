"""Who is submitting a journal row, and what happens to rows whose submitter died.

A row is SUBMITTING while one process uploads and invokes it. If that process dies (a killed
kernel), the next client on the same journal turns its rows into ERROR with what ``resubmit()``
can do for them, according to how far the submission got (``SubmitStep``).
"""

from __future__ import annotations

import logging
import os

from ..context import Context
from ..records import InvocationRecord, SubmitStep

log = logging.getLogger(__name__)

_WHY = {
    "invoking": ("Interrupted during submission (input uploaded, invoke answer lost): resubmit() "
                 "finishes it with the same inference id and input."),
    "inline": ("Interrupted during an inline submission (the payload was only in memory): submit it "
               "again (re-running the cell with the same inference_id continues a batch)."),
    "journaled": ("Interrupted during submission before the input was uploaded: submit the payload "
                  "again (re-running the cell with the same inference_id continues a batch)."),
}


def owner_alive(pid: int) -> bool:
    """Whether the process that journaled a submission can still finish it. A killed kernel may
    linger as a zombie until its parent reaps it: that counts as dead."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _why(record: InvocationRecord) -> str:
    """What resubmit() can do for a row whose submitter died, by how far its submission got."""
    if record.inline:
        return _WHY["inline"]
    if record.submit_step is SubmitStep.INVOKING:
        return _WHY["invoking"]
    return _WHY["journaled"]


def recover_interrupted(ctx: Context) -> list[str]:
    """SUBMITTING rows of this origin whose process died become ERROR; returns their ids."""
    recovered = ctx.journal.recover_dead_owners(ctx.origin, owner_alive, _why)
    if recovered:
        log.info("recovered %d invocation(s) left SUBMITTING by dead processes", len(recovered))
    return recovered

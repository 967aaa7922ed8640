"""Tab completion after ``%sm_async result|wait|forget|resubmit|endpoint``: the labels, batch ids
and inference ids of tracked invocations (endpoint names after ``endpoint``), newest first,
quoted the way the magics parse them (POSIX shell words, IPython's ``$``/``{}`` expansion
escaped, each word checked to read back exactly), so a label with spaces, quotes or markup
completes to something that can be run as is.

An IPython matcher (API v2) registered by the extension; it answers only inside those commands
and then suppresses the other matchers (file names and Python names make no sense there).
"""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Callable
from typing import Any

from IPython.core.completer import CompletionContext, SimpleCompletion, SimpleMatcherResult, context_matcher
from IPython.utils.process import arg_split
from IPython.utils.text import DollarFormatter

from ..journal import Journal, views
from ..records import FINISHED, RESUBMITTABLE, UNFINISHED, Status

log = logging.getLogger(__name__)

# Which rows each command can act on (None: any).
COMMANDS: dict[str, frozenset[Status] | None] = {
    "result": FINISHED, "wait": UNFINISHED, "forget": None, "resubmit": RESUBMITTABLE, "endpoint": None,
}
LIMIT = 50


def _reads_back(word: str) -> str | None:
    """What the magics get from ``word``: IPython's expansion, then POSIX shell splitting."""
    try:
        words = arg_split(DollarFormatter().vformat(word, [], {}), posix=True, strict=True)
    except Exception:  # a name left to expand, or quotes that do not close
        return None
    return words[0] if len(words) == 1 else None


def quote(text: str) -> str | None:
    """``text`` as one word of a magic's line, so that running it gives back ``text``: shell
    quoting, with IPython's ``$name``/``{expr}`` expansion escaped where IPython would apply it
    (it skips ``$`` inside single quotes, but not braces). None when no form reads back exactly
    (the caller then offers the inference id, which always does)."""
    if not text or text.startswith("-"):  # an empty word, or one argparse would take for an option
        return None
    braces = text.replace("{", "{{").replace("}", "}}")
    double = '"' + braces.replace("\\", "\\\\").replace('"', '\\"') + '"'
    for word in (shlex.quote(text).replace("{", "{{").replace("}", "}}"),
                 re.sub(r"\$(?=[\w.$])", "$$", double), double):
        if _reads_back(word) == text:
            return word
    return None


def current_word(line: str) -> tuple[int, str]:
    """Where the word under the cursor starts in ``line`` (the text before the cursor) and what
    it says so far, quotes removed (an unclosed quote is fine: the word is being typed)."""
    start, quote_char, in_word = len(line), "", False
    for i, char in enumerate(line):
        if quote_char:
            if char == quote_char:
                quote_char = ""
        elif char in "'\"":
            quote_char = char
            if not in_word:
                start, in_word = i, True
        elif char.isspace():
            in_word = False
            start = len(line)
        elif not in_word:
            start, in_word = i, True
    fragment = line[start:] if start < len(line) else ""
    try:
        words = shlex.split(fragment + (quote_char if quote_char else ""))
    except ValueError:
        words = [fragment]
    return start, (words[0] if words else "")


def candidates(journal: Journal, origin: str, command: str, prefix: str) -> list[str]:
    if command == "endpoint":
        return [e for e in views.endpoints(journal, origin) if e.lower().startswith(prefix.lower())][:LIMIT]
    return views.keys_starting(journal, origin, prefix, statuses=COMMANDS[command], limit=LIMIT)


def make_matcher(journal_of: Callable[[], tuple[Journal, str] | None]) -> Any:
    """The matcher; ``journal_of()`` gives the kernel's journal and origin (None: no client yet)."""

    @context_matcher()
    def sm_async_matcher(context: CompletionContext) -> SimpleMatcherResult:
        nothing: SimpleMatcherResult = {"completions": [], "suppress": False, "do_not_suppress": set(),
                                        "matched_fragment": context.token, "ordered": False}
        line = context.text_until_cursor
        head = line.lstrip()
        if not head.startswith("%sm_async "):
            return nothing
        words = head.split(None, 2)
        if len(words) < 2 or words[1] not in COMMANDS or (len(words) == 2 and not head[-1].isspace()):
            return nothing
        start, prefix = current_word(line)
        if prefix.startswith("-"):
            return nothing  # an option: IPython's own completion
        try:
            found = journal_of()
            if found is None:
                return nothing
            names = candidates(found[0], found[1], words[1], prefix)
        except Exception:  # completion must never raise into the kernel
            log.debug("completion failed", exc_info=True)
            return nothing
        words = [w for w in (quote(n) for n in names) if w is not None]
        return {"completions": [SimpleCompletion(w, type="sm_async") for w in words],
                "matched_fragment": line[start:], "suppress": True, "do_not_suppress": set(), "ordered": True}

    return sm_async_matcher

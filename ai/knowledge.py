"""A tenant's knowledge base as the AI sees it, and the text normalisation its scorer shares.

``KnowledgeEntry`` is one question/answer pair (with optional keywords that add phrasings the
question does not use, and tags for the console). ``KnowledgeBase`` is an immutable sequence of
entries with a ``version``: the scorer keeps one index per tenant and rebuilds it only when the
version changes, so the worker that loads entries from PostgreSQL passes the row's revision (or
lets the content fingerprint stand in).

``tokenize`` is deliberately small and predictable: Unicode normalisation (NFKD with Latin accents
dropped, case folding), punctuation, symbols and emoji as separators, apostrophes removed
("don't" → "dont"), a short English stop-word list that includes chat fillers ("hi", "please",
"wondering"), and light suffix folding of ASCII words (plural -s/-es/-ies, -ing, -ed, final -e,
doubled consonants) so that "shipping", "shipped" and "ships" meet at "ship". Other scripts keep
their combining marks and are split on whitespace only.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

from pydantic import BaseModel, ConfigDict, Field

STOP_WORDS = frozenset(
    """
    a an the and or but if then so of to in on at by for with from about as into up out over than
    i me my mine myself we us our ours you your yours he him his she her it its they them their
    this that these those there here
    am is are was were be been being do does did doing have has had having
    can could will would shall should may might must
    what which who whom whose when where why how
    not no any some all also just very too more most such only own same other else much many
    until usually really actually still already again ever even maybe perhaps currently
    im ive youre youve weve theyre its isnt arent wasnt werent dont doesnt didnt cant couldnt
    wont wouldnt shouldnt havent hasnt whats hows wheres whens whos thats theres
    hi hello hey dear please pls plz thanks thank thx ok okay yes yeah
    want wanted wanna like know tell let need wonder wondering question ask asking kindly
    """.split()
)

_APOSTROPHES = "'\u2019\u02bc\u2018`"
_SPACE = 0x20


class _SeparatorTable(dict[int, int | None]):
    """A ``str.translate`` table computed lazily from Unicode categories, cached per code point."""

    def __missing__(self, code: int) -> int | None:
        char = chr(code)
        value: int | None
        if char in _APOSTROPHES or 0x300 <= code <= 0x36F:  # apostrophes and Latin combining accents
            value = None
        elif unicodedata.category(char)[0] in "PSZC":  # punctuation, symbols (emoji), separators, controls
            value = _SPACE
        else:
            value = code
        self[code] = value
        return value


_TABLE = _SeparatorTable()


def normalise(text: str) -> str:
    """Lower-case, accent-free (Latin), punctuation-free text with single spaces between words."""
    return " ".join(unicodedata.normalize("NFKD", text).translate(_TABLE).casefold().split())


def fold(word: str) -> str:
    """Fold common English suffixes of an ASCII word (a light stemmer; other words are returned as they are)."""
    if len(word) <= 3 or not word.isascii() or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    elif word.endswith("ing") and len(word) >= 6:
        word = _undouble(word[:-3])
    elif word.endswith("ed") and not word.endswith("eed") and len(word) >= 5:
        word = _undouble(word[:-2])
    if word.endswith("e") and len(word) >= 4:
        word = word[:-1]
    return word


def _undouble(stem: str) -> str:
    if len(stem) >= 3 and stem[-1] == stem[-2] and stem[-1] not in "aeiouls":
        return stem[:-1]
    return stem


def tokenize(text: str) -> list[str]:
    """The searchable terms of ``text``, in order, stop words removed and suffixes folded."""
    return [fold(word) for word in normalise(text).split() if word not in STOP_WORDS]


class KnowledgeEntry(BaseModel):
    """One question and its answer in a tenant's knowledge base."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    keywords: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def search_text(self) -> str:
        """What the scorer indexes: the question and its keywords (not the answer, which would add noise)."""
        return " ".join((self.question, *self.keywords))


def fingerprint(entries: Iterable[KnowledgeEntry]) -> str:
    """A content hash of ``entries`` that changes whenever an entry is added, removed or edited."""
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(entry.model_dump_json().encode())
        digest.update(b"\x1e")
    return digest.hexdigest()[:32]


class KnowledgeBase(Sequence[KnowledgeEntry]):
    """A tenant's entries at one ``version``; the scorer's cache key is ``(tenant_id, version)``."""

    __slots__ = ("_entries", "tenant_id", "version")

    def __init__(self, entries: Iterable[KnowledgeEntry], *, tenant_id: str = "", version: str | None = None) -> None:
        self._entries = tuple(entries)
        self.tenant_id = tenant_id
        self.version = version if version is not None else fingerprint(self._entries)

    @overload
    def __getitem__(self, index: int) -> KnowledgeEntry: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[KnowledgeEntry]: ...

    def __getitem__(self, index: int | slice) -> KnowledgeEntry | Sequence[KnowledgeEntry]:
        return self._entries[index]

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[KnowledgeEntry]:
        return iter(self._entries)

    def __repr__(self) -> str:
        return f"KnowledgeBase(tenant_id={self.tenant_id!r}, version={self.version!r}, entries={len(self)})"

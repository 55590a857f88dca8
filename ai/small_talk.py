"""Greetings, thanks and goodbyes: answered with the tenant's own replies instead of a hand-off.

``detect`` is lexical and English (like the offline model): a short message (at most 8 words)
made only of small-talk words, with at least one that says which kind it is ("hi", "thanks",
"bye"…), or one of a few set phrases ("how are you", "what's up"). "Hi, where is my order?" is not
small talk (it has other words) and goes to the knowledge base. When several kinds are present the
last one said wins ("thanks, bye" is a goodbye). Other languages are not detected: their greetings
reach the knowledge base or the tenant's OpenAI-compatible model like any other message.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ai.knowledge import normalise

Kind = Literal["greeting", "thanks", "goodbye"]
MAX_WORDS = 8
MAX_REPLY = 1000

_CORE: dict[str, Kind] = {
    **dict.fromkeys("hi hello hey hiya heya howdy hallo greetings morning afternoon evening yo".split(), "greeting"),
    **dict.fromkeys("thanks thank thx ty thankyou cheers appreciated appreciate tnx".split(), "thanks"),
    **dict.fromkeys("bye goodbye byebye farewell cya ciao night".split(), "goodbye"),
}
_PHRASES: dict[str, Kind] = {
    "how are you": "greeting", "how are you doing": "greeting", "how is it going": "greeting",
    "hows it going": "greeting", "whats up": "greeting", "good day": "greeting",
    "see you": "goodbye", "see you later": "goodbye", "see you soon": "goodbye", "talk to you later": "goodbye",
    "take care": "goodbye", "have a nice day": "goodbye", "have a good day": "goodbye",
}
_FILLERS = frozenset(
    """
    good so much very a lot all there everyone team guys folks again for your the help ok okay great perfect
    awesome cool how are is it going doing have nice day see soon take care many really dear sir madam oh ah
    well and that was helpful i we me you to later u just once more in advance bunch kind thats super mate
    """.split()
)


class SmallTalk(BaseModel):
    """A tenant's small-talk replies (``/v1/settings/small-talk``); ``enabled`` false hands them over too."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    enabled: bool = True
    greeting: str = Field("Hello! How can we help you today?", min_length=1, max_length=MAX_REPLY)
    thanks: str = Field("You're welcome! Is there anything else we can help you with?", min_length=1,
                        max_length=MAX_REPLY)
    goodbye: str = Field("Goodbye, and have a nice day!", min_length=1, max_length=MAX_REPLY)

    def reply(self, kind: Kind) -> str:
        return {"greeting": self.greeting, "thanks": self.thanks, "goodbye": self.goodbye}[kind]


def detect(text: str) -> Kind | None:
    """The kind of small talk ``text`` is, or None when it says anything else."""
    plain = normalise(text)
    words = plain.split()
    if not words or len(words) > MAX_WORDS:
        return None
    if plain in _PHRASES:
        return _PHRASES[plain]
    kind: Kind | None = None
    for word in words:
        if word in _CORE:
            kind = _CORE[word]
        elif word not in _FILLERS:
            return None
    if kind is None:
        for phrase, phrase_kind in _PHRASES.items():
            if f" {phrase} " in f" {plain} ":
                return phrase_kind
    return kind

"""A small reader of the console's HTML for tests: text by element id, and every tag's attributes."""

from __future__ import annotations

from html.parser import HTMLParser

VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
                  "wbr"})


class Page(HTMLParser):
    """A parsed page: ``text(id)`` (whitespace collapsed), ``ids``, ``tags`` and ``attr_values``."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self._texts: dict[str, list[str]] = {}
        self._open: list[tuple[str, str | None]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        self.tags.append((tag, attributes))
        element_id = attributes.get("id")
        if element_id is not None:
            self._texts.setdefault(element_id, [])
        if tag not in VOID:
            self._open.append((tag, element_id))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self._open) - 1, -1, -1):
            if self._open[depth][0] == tag:
                del self._open[depth:]
                return

    def handle_data(self, data: str) -> None:
        for _, element_id in self._open:
            if element_id is not None:
                self._texts[element_id].append(data)

    @property
    def ids(self) -> set[str]:
        return set(self._texts)

    def text(self, element_id: str) -> str:
        """The text inside the element with ``element_id``, whitespace collapsed; KeyError when absent."""
        return " ".join("".join(self._texts[element_id]).split())

    def attr_values(self, name: str) -> list[str]:
        """The values of attribute ``name`` on every tag that has it, in document order."""
        return [attrs[name] for _, attrs in self.tags if name in attrs]

    def element(self, element_id: str) -> tuple[str, dict[str, str]]:
        """The tag and attributes of the element with ``element_id``."""
        return next((tag, attrs) for tag, attrs in self.tags if attrs.get("id") == element_id)

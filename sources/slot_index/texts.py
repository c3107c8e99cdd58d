"""Many short strings (booking links, phones) without a Python object each: ``PackedTexts``.

A province's 1.5 million free slots each carry their own booking link, and the links of
one publisher differ only in their end (``https://publisher.example/book?slot=C00123-P4-03-12``).
As ``str`` objects they cost about 120 bytes each. ``PackedTexts`` keeps them as:

- a few *heads*, the beginnings they share (a link up to its last ``/``, ``=``, ``?``,
  ``&``, ``#`` or ``:``; for a table built at once, the longest beginning the strings of
  that group all share), numbered in ``groups`` (one byte per string);
- the rest of each string, its *tail*, one after the other in one blob (UTF-8, with
  ``surrogatepass`` so that any Python string comes back as it was), cut by ``offsets``.

``texts[i]`` is ``heads[groups[i]] + tail``: the very string that was added, whatever it
is (any characters, any length; one that fits no head is all tail). ``None`` is kept too
(group 0). About the length of the tail plus 3 to 5 bytes a string.

    texts = PackedTexts()
    n = texts.append("https://publisher.example/book?slot=C00123-P4-03-12")
    texts[n]  # the same string, equal character for character
    table = PackedTexts.of([None, "tel:+15145550123", ...])  # heads fitted to the strings

May import nothing of the project.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable, Iterator

__all__ = ["FrontCodedTexts", "PackedTexts"]

_NONE, _NO_HEAD = 0, 1  # group numbers: None, and a string kept whole as its tail
_MAX_GROUPS = 256
# A head ends at the last of these: what comes after usually tells one link from another.
_HEAD = re.compile(r".*[/=?&#:]", re.DOTALL)
_ERRORS = "surrogatepass"  # a lone surrogate (valid in a str) survives the round trip


class PackedTexts:
    """An append-only, indexable sequence of ``str | None``, packed; see the module docstring.

    Equal strings are not merged: callers that want one entry per distinct string
    (the index's per-clinic tables) look them up before appending.
    """

    __slots__ = ("_blob", "_groups", "_head_ids", "_heads", "_last", "_offsets")

    def __init__(self) -> None:
        self._heads: list[str] = ["", ""]  # by group; 0 (None) and 1 (no head) are empty
        self._head_ids: dict[str, int] = {}
        self._groups = bytearray()
        self._blob: bytearray | bytes | str = bytearray()
        self._offsets: array[int] = array("I", [0])
        self._last = -1  # the group of the latest head found: links come in runs

    @classmethod
    def of(cls, texts: Iterable[str | None]) -> PackedTexts:
        """A frozen table of ``texts``, its heads fitted to them: each group's head is the
        longest beginning its strings share, so only what tells them apart is stored."""
        items = list(texts)
        cut: dict[str, list[int]] = {}
        for n, text in enumerate(items):
            if text is not None:
                found = _HEAD.match(text)
                cut.setdefault(found.group() if found else "", []).append(n)
        packed = cls()
        heads, head_of = packed._heads, [_NONE] * len(items)
        for members in sorted(cut.values(), key=len, reverse=True):
            head = _common_prefix([items[n] for n in members])  # type: ignore[misc]
            group = _NO_HEAD
            if head and len(heads) < _MAX_GROUPS:
                group = len(heads)
                heads.append(head)
            for n in members:
                head_of[n] = group
        tails = [
            "" if text is None else text[len(heads[group]) :]
            for text, group in zip(items, head_of, strict=True)
        ]
        packed._groups = bytearray(head_of)
        ends, at = [0], 0
        for tail in tails:
            at += len(tail.encode("utf-8", _ERRORS)) if not tail.isascii() else len(tail)
            ends.append(at)
        joined = "".join(tails)
        packed._blob = joined if joined.isascii() else joined.encode("utf-8", _ERRORS)
        packed._offsets = array("H" if at <= 0xFFFF else "I" if at <= 0xFFFFFFFF else "Q", ends)
        packed._head_ids = {}
        return packed.freeze()

    def freeze(self) -> PackedTexts:
        """Stop growing: the spare room of the buffers is given back. Returns ``self``."""
        if isinstance(self._blob, bytearray):
            blob = bytes(self._blob)
            self._blob = blob.decode("ascii") if blob.isascii() else blob
        self._groups = bytes(self._groups)  # type: ignore[assignment]
        self._offsets = array(self._offsets.typecode, self._offsets)
        self._head_ids = {}
        return self

    def append(self, text: str | None) -> int:
        """Add ``text``; its number (``self[number]`` gives it back)."""
        blob = self._blob
        if not isinstance(blob, bytearray):
            raise TypeError("PackedTexts is frozen")
        number = len(self._groups)
        if text is None:
            self._groups.append(_NONE)
        else:
            group = self._last
            head = self._heads[group] if group >= 0 else ""
            if group < 0 or not text.startswith(head):
                group = self._group(text)
                head = self._heads[group]
            self._groups.append(group)
            tail = text[len(head) :]
            blob += tail.encode("ascii") if tail.isascii() else tail.encode("utf-8", _ERRORS)
        try:
            self._offsets.append(len(blob))
        except OverflowError:  # over 4 GiB of tails
            self._offsets = array("Q", self._offsets)
            self._offsets.append(len(blob))
        return number

    def _group(self, text: str) -> int:
        found = _HEAD.match(text)
        head = found.group() if found else ""
        group = self._head_ids.get(head)
        if group is None:
            if not head or len(self._heads) >= _MAX_GROUPS:
                return _NO_HEAD
            group = self._head_ids[head] = len(self._heads)
            self._heads.append(head)
        self._last = group
        return group

    def __len__(self) -> int:
        return len(self._groups)

    def __getitem__(self, number: int) -> str | None:
        group = self._groups[number]
        if group == _NONE:
            return None
        offsets = self._offsets
        if number < 0:
            number += len(self._groups)
        tail = self._blob[offsets[number] : offsets[number + 1]]
        if not isinstance(tail, str):
            tail = tail.decode("utf-8", _ERRORS)
        return self._heads[group] + tail if group != _NO_HEAD else tail

    def __iter__(self) -> Iterator[str | None]:
        return self.items(0, len(self._groups))

    def items(self, start: int, stop: int) -> Iterator[str | None]:
        """``self[start:stop]``, one at a time."""
        heads, groups, offsets, blob = self._heads, self._groups, self._offsets, self._blob
        decode = not isinstance(blob, str)
        for number in range(start, min(stop, len(groups))):
            group = groups[number]
            if group == _NONE:
                yield None
                continue
            cut = blob[offsets[number] : offsets[number + 1]]
            tail: str = cut.decode("utf-8", _ERRORS) if decode else cut  # type: ignore[union-attr,assignment]
            yield heads[group] + tail if group != _NO_HEAD else tail

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PackedTexts):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<PackedTexts: {len(self)} strings, {self.nbytes} bytes>"

    @property
    def nbytes(self) -> int:
        """The bytes its buffers hold (heads aside)."""
        offsets = self._offsets
        return len(self._blob) + len(self._groups) + len(offsets) * offsets.itemsize


def _common_prefix(texts: list[str]) -> str:
    """The longest beginning all ``texts`` share (those of the first and last in order)."""
    first, last = min(texts), max(texts)
    for n, (a, b) in enumerate(zip(first, last, strict=False)):
        if a != b:
            return first[:n]
    return first


_BLOCK = 32  # FrontCodedTexts: a string stored whole every this many
_NONE_MARK = 255  # FrontCodedTexts: the first byte of a None entry
_MAX_SHARED = 254


class FrontCodedTexts:
    """An append-only sequence of ``str | None`` for strings mostly read in order: each
    is stored as how many bytes it shares with the one before (at most 254) and the
    rest, one string in 32 whole (random access decodes from there). A feed's links,
    written clinic by clinic and slot by slot, differ from the one before by a few
    characters: about 6 bytes a link. Exact for any string (UTF-8, ``surrogatepass``).

        texts = FrontCodedTexts()
        n = texts.append("https://publisher.example/book?slot=C00123-P4-03-12")
        texts[n]  # the same string
        list(texts.items(0, len(texts)))  # in order, the cheap way
    """

    __slots__ = ("_blob", "_count", "_last", "_restarts")

    def __init__(self) -> None:
        self._blob: bytearray | bytes = bytearray()
        self._restarts: array[int] = array("I")  # where every _BLOCK-th entry begins
        self._count = 0
        self._last = b""

    def append(self, text: str | None) -> int:
        """Add ``text``; its number."""
        blob = self._blob
        if not isinstance(blob, bytearray):
            raise TypeError("FrontCodedTexts is frozen")
        number = self._count
        self._count += 1
        if number % _BLOCK == 0:
            try:
                self._restarts.append(len(blob))
            except OverflowError:  # over 4 GiB
                self._restarts = array("Q", self._restarts)
                self._restarts.append(len(blob))
            self._last = b""
        if text is None:
            blob.append(_NONE_MARK)
            self._last = b""
            return number
        data = text.encode("utf-8", _ERRORS)
        shared = _shared(self._last, data)
        tail = len(data) - shared
        blob.append(shared)
        while tail >= 0x80:  # the tail's length, 7 bits a byte
            blob.append(0x80 | (tail & 0x7F))
            tail >>= 7
        blob.append(tail)
        blob += data[shared:]
        self._last = data
        return number

    def freeze(self) -> FrontCodedTexts:
        """Stop growing: the spare room of the buffers is given back. Returns ``self``."""
        self._blob = bytes(self._blob)
        self._restarts = array(self._restarts.typecode, self._restarts)
        self._last = b""
        return self

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, number: int) -> str | None:
        if number < 0:
            number += self._count
        if not 0 <= number < self._count:
            raise IndexError("FrontCodedTexts index out of range")
        return next(self.items(number, number + 1))

    def __iter__(self) -> Iterator[str | None]:
        return self.items(0, self._count)

    def items(self, start: int, stop: int) -> Iterator[str | None]:
        """``self[start:stop]``, one at a time, decoded from the block holding ``start``."""
        stop = min(stop, self._count)
        if start >= stop:
            return
        blob, first = self._blob, start - start % _BLOCK
        at, current = self._restarts[first // _BLOCK], b""
        for number in range(first, stop):
            if number % _BLOCK == 0:
                at, current = self._restarts[number // _BLOCK], b""
            shared = blob[at]
            at += 1
            if shared == _NONE_MARK:
                current = b""
                if number >= start:
                    yield None
                continue
            length = shift = 0
            while True:
                byte = blob[at]
                at += 1
                length |= (byte & 0x7F) << shift
                if byte < 0x80:
                    break
                shift += 7
            current = current[:shared] + blob[at : at + length]
            at += length
            if number >= start:
                yield current.decode("utf-8", _ERRORS)

    @property
    def nbytes(self) -> int:
        return len(self._blob) + len(self._restarts) * self._restarts.itemsize


def _shared(a: bytes, b: bytes) -> int:
    """How many first bytes ``a`` and ``b`` share (at most ``_MAX_SHARED``), by halving:
    a few C-speed comparisons rather than a loop over bytes."""
    high = min(len(a), len(b), _MAX_SHARED)
    if a[:high] == b[:high]:
        return high
    low = 0  # a[:low] == b[:low], a[:high] != b[:high]
    while high - low > 1:
        middle = (low + high) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle
    return low

"""PackedTexts and FrontCodedTexts: every string comes back exactly as it went in,
however it is packed."""

from __future__ import annotations

import pytest

from sources.slot_index.texts import FrontCodedTexts, PackedTexts

LINK = "https://ssl-demo.passerelle.example/book?slot="
ODD = [
    None,
    "",
    "https://book.example/s1",
    "https://book.example/s1",  # a duplicate stays a second entry
    "https://réserver.example/créneau?id=é-ü-中文-🙂",  # non-ASCII, beyond the BMP
    "tel:+1-514-555-0199",
    "514-555-0199",  # no separator: kept whole
    "a\ud800b=\udfff",  # lone surrogates: valid in a str, not in UTF-8
    "https://x.example/" + "z" * 100_000,  # very long
    "https://x.example/path/",  # ends at its separator: an empty tail
    "=",
    "line\nbreak/and\ttab",
    None,
]


def templated(n: int) -> list[str]:
    return [f"{LINK}C{c:05d}-P{p:05d}-{d:02d}-{k}" for c, p, d, k in _ids(n)]


def _ids(n: int) -> list[tuple[int, int, int, int]]:
    return [(i % 7, i % 13, i % 14, i) for i in range(n)]


@pytest.mark.parametrize("kind", [PackedTexts, FrontCodedTexts])
@pytest.mark.parametrize("texts", [ODD, templated(500), templated(300) + ODD + templated(50)])
def test_appended_strings_come_back_exactly(
    kind: type[PackedTexts | FrontCodedTexts], texts: list[str | None]
) -> None:
    packed = kind()
    numbers = [packed.append(text) for text in texts]

    assert numbers == list(range(len(texts)))
    assert [packed[n] for n in numbers] == texts
    assert list(packed) == texts
    packed.freeze()
    assert [packed[n] for n in numbers] == texts
    assert list(packed.items(3, 9)) == texts[3:9]
    assert list(packed.items(31, 70)) == texts[31:70]  # across a block's edge
    assert list(packed.items(5, 5)) == []
    assert packed[-1] == texts[-1]
    with pytest.raises(TypeError):
        packed.append("more")


@pytest.mark.parametrize("texts", [ODD, templated(500), templated(300) + ODD + templated(50)])
def test_a_table_built_at_once_gives_back_the_same_strings(texts: list[str | None]) -> None:
    table = PackedTexts.of(texts)

    assert list(table) == texts
    assert [table[n] for n in range(len(texts))] == texts
    assert table == PackedTexts.of(list(texts))
    assert table != PackedTexts.of([*texts, "one more"])


def test_links_sharing_a_beginning_cost_little_more_than_what_tells_them_apart() -> None:
    links = templated(10_000)
    packed, table = PackedTexts(), PackedTexts.of(links)
    for link in links:
        packed.append(link)
    packed.freeze()
    tails = sum(len(link) - len(LINK) for link in links)

    assert packed.nbytes <= tails + 5 * (len(links) + 1)  # a group byte and an offset each
    # Built at once, the head takes what every link of the table shares ("...slot=C0000").
    assert table.nbytes < packed.nbytes
    assert sum(len(link) for link in links) > 2.5 * packed.nbytes


def test_more_beginnings_than_groups_fall_back_to_whole_strings() -> None:
    texts = [f"https://host{n}.example/book?slot={n}" for n in range(600)]
    packed = PackedTexts()
    for text in texts:
        packed.append(text)

    assert list(packed) == texts
    assert list(PackedTexts.of(texts)) == texts


def test_a_frozen_table_takes_no_more_strings() -> None:
    table = PackedTexts.of(["https://a.example/1"])

    with pytest.raises(TypeError):
        table.append("https://a.example/2")
    with pytest.raises(IndexError):
        table[1]


def test_front_coded_links_cost_what_tells_each_from_the_one_before() -> None:
    # In a feed's order: clinic by clinic, physician by physician, day by day.
    links = [
        f"{LINK}C{c:05d}-P{p:05d}-{d:02d}-{k}"
        for c in range(5)
        for p in range(10)
        for d in range(14)
        for k in range(16)
    ]
    packed = FrontCodedTexts()
    for link in links:
        packed.append(link)
    packed.freeze()

    assert list(packed) == links
    assert packed.nbytes < 9 * len(links)  # 66 characters each
    with pytest.raises(IndexError):
        packed[len(links)]


def test_front_coding_keeps_strings_sharing_more_than_it_counts() -> None:
    long = "https://x.example/" + "a" * 600
    texts = [long + "1", long + "2", long[:300] + "é" + long, None, long, "", long + "€"]
    packed = FrontCodedTexts()
    for text in texts:
        packed.append(text)

    assert list(packed) == texts
    assert [packed[n] for n in range(len(texts))] == texts

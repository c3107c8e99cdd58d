"""The status page as HTML, rendered on the server from the snapshot
(``edge.status.snapshot``): no script, one inline stylesheet allowed by its hash in the
Content-Security-Policy, no request to any other host (the favicon is an empty
``data:`` URL), and a ``<meta http-equiv=refresh>`` every minute. Every text that comes
from outside this module (a source's name, id, problem, sample) is escaped.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape
from pathlib import Path
from typing import Any

from edge.status.texts import STATUS_LABELS, TEXTS
from sources.records import SourceStatus

__all__ = ["CSP", "render_page"]

_STYLE = (Path(__file__).parent / "style.css").read_text(encoding="utf-8")
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
CSP = "; ".join(
    (
        "default-src 'none'",
        f"style-src 'sha256-{_STYLE_HASH}'",
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
REFRESH_S = 60
_TIMES = "\u00a0\u00d7"  # a no-break space and the multiplication sign, before a count


def render_page(snapshot: dict[str, Any], lang: str, *, operator_link: str = "") -> str:
    """The page in ``lang`` (``fr`` or ``en``); ``operator_link``: the query string that
    keeps the operator view when switching language."""
    t = TEXTS[lang]
    other = "en" if lang == "fr" else "fr"
    switch = escape(f"?lang={other}{operator_link}")
    sources = snapshot["sources"]
    parts = [
        "<!doctype html>",
        f'<html lang="{lang}">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="refresh" content="{REFRESH_S}">',
        '<meta name="robots" content="noindex">',
        '<link rel="icon" href="data:,">',
        f"<title>{escape(t['title'])} · Passerelle</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        '<header><div class="bar">',
        f'<div class="brand">Passerelle<small>{escape(t["title"])}</small></div>',
        f'<a class="lang" id="lang-switch" href="{switch}" '
        f'hreflang="{other}" lang="{other}">{escape(t["switch"])}</a>',
        "</div></header>",
        "<main>",
        f"<h1>{escape(t['title'])}</h1>",
        f'<p class="lead">{escape(t["lead"])}</p>',
        _summary(sources, lang),
        f'<h2 id="sources">{escape(t["sources"])}</h2>',
        _sources(sources, lang),
        f'<h2 id="coverage">{escape(t["coverage"])}</h2>',
        _coverage(snapshot["coverage"], lang),
    ]
    if snapshot["operator"] is not None:
        parts.append(_operator(snapshot, lang))
    parts += [
        "</main>",
        "<footer>",
        f"<p>{escape(t['updated'].format(_clock(snapshot['generatedAt'])))}</p>",
        f'<p><a href="/status.json">{escape(t["json"])}</a></p>',
        "</footer>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def _summary(sources: list[dict[str, Any]], lang: str) -> str:
    labels = STATUS_LABELS[lang]
    counts = {s: sum(1 for x in sources if x["status"] == s.value) for s in SourceStatus}
    worst = next(
        (s for s in (SourceStatus.DOWN, SourceStatus.DEGRADED, SourceStatus.UP) if counts[s]),
        SourceStatus.DISABLED,
    )
    shown = [f"{counts[s]} {labels[s].lower()}" for s in SourceStatus if counts[s]]
    return f'<p class="summary {worst.value}" id="summary">{escape(" · ".join(shown) or "—")}</p>'


def _sources(sources: list[dict[str, Any]], lang: str) -> str:
    t = TEXTS[lang]
    if not sources:
        return f"<p>{escape(t['no_sources'])}</p>"
    cards = []
    for source in sources:
        status = SourceStatus(source["status"])
        problems = "".join(
            f'<span class="code" data-code="{escape(p["code"])}">{escape(p["code"])}'
            f"{_TIMES + str(p['count']) if p['count'] > 1 else ''}</span>"
            for p in source["problems"]
        ) or escape(t["none"])
        cards.append(
            f'<li class="card" data-source="{escape(source["id"])}">'
            '<div class="top"><div>'
            f'<div class="name" data-field="name">{escape(source["name"])}</div>'
            f'<div class="proto">{escape(source["id"])} · {escape(source["protocol"])}</div>'
            "</div>"
            f'<span class="badge {status.value}" data-field="status" '
            f'data-status="{status.value}">{escape(STATUS_LABELS[lang][status])}</span>'
            "</div><dl>"
            f"<div><dt>{escape(t['freshness'])}</dt>"
            f'<dd data-field="freshness">{escape(_age(source["freshnessSeconds"], lang))}</dd>'
            f"</div><div><dt>{escape(t['latency'])}</dt>"
            f'<dd data-field="latency">{escape(_ms(source["latencyMs"]))}</dd>'
            f"</div><div><dt>{escape(t['problems'])}</dt>"
            f'<dd data-field="problems">{problems}</dd>'
            "</div></dl></li>"
        )
    return '<ul class="cards">' + "".join(cards) + "</ul>"


def _coverage(coverage: dict[str, Any] | None, lang: str) -> str:
    t = TEXTS[lang]
    if coverage is None:
        return f'<p class="note" id="coverage-pending">{escape(t["not_counted"])}</p>'
    rows = []
    lower_bound = False
    for region in coverage["regions"]:
        lower_bound |= region["atLeast"]
        rows.append(
            f'<tr data-region="{escape(region["region"])}">'
            f'<td><span class="num">{escape(region["number"])}</span>'
            f"{escape(region['name'])}</td>"
            f'<td class="n" data-field="clinics">{_count(region["clinics"], region, lang)}</td>'
            f'<td class="n" data-field="slots">{_count(region["freeSlots"], region, lang)}</td>'
            "</tr>"
        )
    note = f'<p class="note">{escape(t["at_least_note"])}</p>' if lower_bound else ""
    return (
        f'<p class="note">{escape(t["coverage_lead"])}</p>'
        '<div class="table"><table id="regions"><thead><tr>'
        f'<th scope="col">{escape(t["region"])}</th>'
        f'<th scope="col" class="n">{escape(t["clinics"])}</th>'
        f'<th scope="col" class="n">{escape(t["slots"])}</th>'
        "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>"
        f"{note}"
        f'<p class="note">{escape(t["computed"].format(_clock(coverage["computedAt"])))}</p>'
    )


def _operator(snapshot: dict[str, Any], lang: str) -> str:
    t = TEXTS[lang]
    ops = snapshot["operator"]
    out = [f'<section class="ops" id="operator"><h2>{escape(t["operator"])}</h2>']
    for source in snapshot["sources"]:
        for p in source["problems"]:
            out.append(
                f"<p><strong>{escape(source['id'])}</strong> "
                f'<span class="code">{escape(p["code"])}</span> {escape(p["message"])}</p>'
            )
            if p["samples"]:
                samples = "\n".join(p["samples"])
                out.append(f"<p>{escape(t['samples'])}</p><pre>{escape(samples)}</pre>")
            if p["diagnostics"]:
                out.append(
                    f"<p>{escape(t['diagnostics'])}</p><pre>{escape(p['diagnostics'])}</pre>"
                )
    counted = ", ".join(f"{k}: {v}" for k, v in sorted(ops["countedBy"].items()))
    out.append(f"<p>{escape(t['counted_by'])} — {escape(counted or '—')}</p>")
    out.append(f"<h2>{escape(t['changes'])}</h2>")
    changes = ops["registryChanges"]
    if not changes:
        out.append(f"<p>{escape(t['no_changes'])}</p>")
    else:
        items = "".join(
            f"<li>{escape(_clock(c['at']))} — {escape(c['sourceId'])}: {escape(c['change'])}</li>"
            for c in changes
        )
        out.append(f'<ul id="registry-changes">{items}</ul>')
    out.append("</section>")
    return "".join(out)


def _count(value: int, region: dict[str, Any], lang: str) -> str:
    shown = escape(f"{value:,}".replace(",", "\u202f" if lang == "fr" else ","))
    if not region["atLeast"]:
        return shown
    # "au moins" in smaller type, so that the table fits a phone's width.
    words, _, _ = TEXTS[lang]["at_least"].partition("{}")
    return f'<span class="al">{escape(words.strip())}</span> {shown}'


def _age(seconds: int | None, lang: str) -> str:
    t = TEXTS[lang]
    if seconds is None:
        return t["never"]
    if seconds < 90:
        span = f"{seconds} s"
    elif seconds < 90 * 60:
        span = f"{round(seconds / 60)} min"
    elif seconds < 48 * 3600:
        span = f"{round(seconds / 3600)} h"
    else:
        span = f"{round(seconds / 86400)} {'j' if lang == 'fr' else 'd'}"
    return t["ago"].format(span)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


def _clock(iso: str | None) -> str:
    """``2026-11-16T12:30:05+00:00`` -> ``2026-11-16 12:30``."""
    return "—" if iso is None else iso[:16].replace("T", " ")

"""Text people wrote (problem reports, reasons, titles, names from a bundle), made safe to
put inside markup: it must read as the words it is, never as formatting, HTML or a link.

Two dialects, two functions: a Markdown report read by any viewer gets CommonMark's
backslash escapes; a WeCom group robot's markdown has no escapes, so its markup characters
become their full-width forms, which read naturally in Chinese text."""

from __future__ import annotations

import re

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")
_BARE_LINK = re.compile(r"(?i)(:)(//)|(www)(\.)")


def markdown_text(text: str) -> str:
    """`text` as literal CommonMark/GFM inside a table cell or a heading: the characters that
    start inline markup are escaped (so `<b>`, `[x](..)`, `**`, `|` stay text), `://` and
    `www.` are broken so no bare link is made, and line breaks become spaces."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.splitlines()))
    return _BARE_LINK.sub(lambda m: f"{m[1]}\\/\\/" if m[1] else f"{m[3]}\\.", escaped)


_WECOM = str.maketrans(
    {
        "<": "＜",
        ">": "＞",
        "[": "［",
        "]": "］",
        "(": "（",
        ")": "）",
        "*": "＊",
        "_": "＿",
        "`": "｀",
        "#": "＃",
        "&": "＆",
    }
)


def wecom_text(text: str) -> str:
    """`text` for a WeCom markdown quote: markup characters full-width, `://` broken so no
    link is made, and each line kept inside the quote (a new line would end it)."""
    safe = text.translate(_WECOM).replace("://", "：//")
    return "\n> ".join(safe.splitlines())

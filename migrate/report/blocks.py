"""A report as a few kinds of blocks, written once and rendered as Markdown or as a
self-contained HTML page (inline style, no scripts, no external assets)."""

from __future__ import annotations

import html as html_lib
from dataclasses import dataclass, field


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Para:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    numeric: set[int] = field(default_factory=set)  # columns aligned right


@dataclass
class Figure:
    """An inline SVG (HTML only); Markdown shows the caption."""

    svg: str
    caption: str


Block = Heading | Para | Bullets | Table | Figure


# --- Markdown -----------------------------------------------------------------------------------
def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or " "


def markdown(title: str, blocks: list[Block]) -> str:
    lines = [f"# {title}", ""]
    for block in blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + f" {block.text}", ""]
        elif isinstance(block, Para):
            lines += [block.text, ""]
        elif isinstance(block, Bullets):
            lines += [f"- {item}" for item in block.items] + [""]
        elif isinstance(block, Table):
            lines.append("| " + " | ".join(_cell(h) for h in block.headers) + " |")
            lines.append("|" + "|".join("---:" if i in block.numeric else "---"
                                        for i in range(len(block.headers))) + "|")
            lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in block.rows]
            lines.append("")
        else:
            lines += [f"*{block.caption}*", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


# --- HTML ---------------------------------------------------------------------------------------
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328;
       background: #ffffff; margin: 2em auto; max-width: 960px; padding: 0 1em;
       line-height: 1.45; }
h1 { font-size: 1.6em; border-bottom: 2px solid #d0d7de; padding-bottom: .3em; }
h2 { font-size: 1.25em; margin-top: 1.6em; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: .92em; }
th, td { border: 1px solid #d0d7de; padding: .25em .6em; text-align: left;
         vertical-align: top; }
th { background: #f6f8fa; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 1em 0; }
figcaption { font-size: .9em; color: #57606a; }
code { background: #f6f8fa; padding: 0 .2em; }
"""


def _e(text: str) -> str:
    return html_lib.escape(text, quote=True)


def html(title: str, blocks: list[Block]) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{_e(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
             f"<h1>{_e(title)}</h1>"]
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{_e(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            parts.append(f"<p>{_e(block.text)}</p>")
        elif isinstance(block, Bullets):
            parts.append("<ul>" + "".join(f"<li>{_e(i)}</li>" for i in block.items) + "</ul>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{_e(h)}</th>" for h in block.headers)
            body = "".join(
                "<tr>" + "".join(f'<td class="n">{_e(c)}</td>' if i in block.numeric
                                 else f"<td>{_e(c)}</td>" for i, c in enumerate(row)) + "</tr>"
                for row in block.rows)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        else:  # the SVG is built by this package from numbers and escaped labels
            parts.append(f"<figure>{block.svg}<figcaption>{_e(block.caption)}</figcaption>"
                         "</figure>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"

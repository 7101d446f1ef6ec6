"""A strict reader of the Prometheus text format (version 0.0.4) for the metrics tests: every
line a HELP, a TYPE or a sample of a family declared just before it."""

from __future__ import annotations

import re
import urllib.request
from dataclasses import dataclass, field

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE = re.compile(rf"^({NAME})(?:\{{(.*)\}})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


@dataclass
class Scrape:
    types: dict[str, str] = field(default_factory=dict)
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def values(self, name: str, **labels: str) -> list[float]:
        return [v for n, lab, v in self.samples if n == name and
                all(lab.get(k) == w for k, w in labels.items())]

    def value(self, name: str, **labels: str) -> float | None:
        found = self.values(name, **labels)
        return sum(found) if found else None


def parse(text: str) -> Scrape:
    scrape = Scrape()
    family = None
    assert text.endswith("\n"), "the exposition must end with a newline"
    for line in text.splitlines():
        if line.startswith("# HELP "):
            family = line.split()[2]
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert name == family, f"TYPE {name} not after its HELP"
            assert kind in ("gauge", "counter"), line
            assert name not in scrape.types, f"{name} declared twice"
            scrape.types[name] = kind
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels_text, value = match.groups()
        assert name == family and name in scrape.types, f"{name} outside its family"
        labels: dict[str, str] = {}
        if labels_text:
            pos = 0
            while pos < len(labels_text):
                lab = LABEL.match(labels_text, pos)
                assert lab, f"bad labels in {line!r}"
                labels[lab.group(1)] = lab.group(2)
                pos = lab.end()
        scrape.samples.append((name, labels, float(value)))
    return scrape


def scrape(url: str) -> tuple[str, Scrape]:
    with urllib.request.urlopen(url, timeout=5) as response:
        kind = response.headers.get("Content-Type", "")
        return kind, parse(response.read().decode())

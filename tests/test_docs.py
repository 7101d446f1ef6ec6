"""Generated reference docs match the code (regenerate with `python scripts/gen_docs.py`)."""

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("gen_docs", REPO / "scripts" / "gen_docs.py")
assert spec and spec.loader
gen_docs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen_docs)


@pytest.mark.parametrize("rel", sorted(gen_docs.GENERATED))
def test_generated_doc_is_current(rel: str) -> None:
    current = (REPO / rel).read_text()
    assert current == gen_docs.GENERATED[rel](), \
        f"{rel} is stale: run `python scripts/gen_docs.py` and commit the result"

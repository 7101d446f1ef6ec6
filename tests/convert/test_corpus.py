"""Tricky inputs (tests/convert/cases/) convert exactly as expected, or fail as expected."""

from __future__ import annotations

import pytest

from migrate.convert.document import ConfigError
from tests.convert.corpus import CASES, OUTPUTS, case_names, report, run, spec

GOOD = [n for n in case_names() if "error" not in spec(n) and "error_contains" not in spec(n)]
BAD = [n for n in case_names() if n not in GOOD]


def test_corpus_has_cases() -> None:
    assert len(GOOD) >= 7 and len(BAD) >= 8


@pytest.mark.parametrize("target", sorted(OUTPUTS))
@pytest.mark.parametrize("name", GOOD)
def test_case_converts_as_expected(name: str, target: str) -> None:
    result = run(name, target)
    assert result.text == (CASES / name / OUTPUTS[target]).read_text()
    assert report(result) == (CASES / name / f"expected.{target}.json").read_text()


@pytest.mark.parametrize("name", BAD)
def test_bad_case_fails_with_its_message(name: str) -> None:
    expected = spec(name)
    with pytest.raises(ConfigError) as caught:
        run(name, "valkey")
    if "error" in expected:
        assert caught.value.message == expected["error"]
    else:
        assert expected["error_contains"] in caught.value.message


@pytest.mark.parametrize("name", GOOD)
def test_secrets_stay_out_of_reports(name: str) -> None:
    for target in OUTPUTS:
        text = report(run(name, target))
        for secret in ("hunter2", "cfg-9f2c", "keys-slow", "8d969eef"):
            assert secret not in text

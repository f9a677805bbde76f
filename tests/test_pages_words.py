"""How the pages word what the tables decided: recorded prose, confidence labels, notes."""

from __future__ import annotations

from harness.pages.homeplan import confidence_text
from harness.pages.plan import negative_latency
from harness.pages.render import prose
from harness.tables import verdict as v


def test_recorded_code_spans_render_as_code_and_the_rest_stays_literal() -> None:
    assert prose("It forces `Connection: close` <b>always</b>") == (
        "It forces <code>Connection: close</code> &#60;b&#62;always&#60;/b&#62;"
    )
    assert prose("one ` backtick") == "one &#96; backtick"  # no pair: nothing to trust


def ranked(**changes: object) -> v.Ranked:
    base: dict[str, object] = {
        "server": "a", "place": 1, "tie_group": 1, "tied_with": (), "confidence": v.CLEAR,
        "requests_per_sec": 100.0, "ci_low": 90.0, "ci_high": 110.0, "ok_n": 3,
        "share_of_best": 1.0, "latency_p99_ms": 1.0, "requests_per_cpu_s": 100.0, "flags": (),
        "reason": "",
    }  # fmt: skip
    return v.Ranked(**{**base, **changes})  # type: ignore[arg-type]


def test_confidence_labels_say_what_the_ranking_knows() -> None:
    assert confidence_text(ranked()) == "clear lead"
    assert confidence_text(ranked(place=3)) == "clear"
    assert confidence_text(ranked(confidence=v.TIED, tied_with=("b", "c"))) == "tied with b, c"
    many = ranked(confidence=v.TIED, tied_with=("b", "c", "d", "e", "f"))
    assert confidence_text(many) == "tied with 5 others"
    assert confidence_text(ranked(confidence=v.CLIENT_BOUND)) == "clear lead; client-bound"
    bound = ranked(confidence=v.CLIENT_BOUND, tied_with=("b",))
    assert confidence_text(bound) == "client-bound; tied with b"
    assert confidence_text(ranked(confidence=v.NOISE_UNKNOWN, ok_n=1)) == (
        "noise unknown (1 repeat)"
    )
    assert confidence_text(ranked(confidence=v.NOISE_UNKNOWN, ok_n=3)) == (
        "noise unknown (the fastest has 1 repeat)"
    )
    failed = ranked(confidence=v.FAILED, place=None, requests_per_sec=None, reason="boom")
    assert confidence_text(failed) == "failed: boom"
    assert confidence_text(ranked(), alone=True) == "the only one measured"


def test_negative_added_latency_is_listed_with_whether_it_is_noise() -> None:
    row = {
        "server": "s", "app": "flask", "baseline": "raw", "workload": "plaintext",
        "connections": 100, "added_p50_ms": 1.0, "added_p50_ms_min": 0.5,
        "added_p50_ms_max": 1.5, "added_p99_ms": -12.1, "added_p99_ms_min": -20.0,
        "added_p99_ms_max": 3.0,
    }  # fmt: skip
    (note,) = negative_latency([row])
    assert (note["quantile"], note["added"], note["noise"]) == ("p99", -12.1, True)
    below = negative_latency([{**row, "added_p99_ms_max": -1.0}])
    assert below[0]["noise"] is False
    assert negative_latency([{**row, "added_p99_ms": 2.0}]) == []

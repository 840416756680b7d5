import pytest

from labkit.durations import DurationError, format_duration, seconds


@pytest.mark.parametrize("text, expected", [
    ("90s", 90), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("250ms", 0.25), ("1m30s", 90),
    ("2.5s", 2.5), ("45", 45), (10, 10), (0.5, 0.5), ("0s", 0), (" 5m ", 300), ("1h0m5s", 3605),
])
def test_reads_kubernetes_style_durations(text, expected):
    assert seconds(text) == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["", "5 minutes", "m5", "5x", "1m1h", "5m5m", "-3s", "1.5.2s", "ten"])
def test_bad_strings_name_the_input_and_the_accepted_forms(bad):
    with pytest.raises(DurationError) as err:
        seconds(bad, name="interval")
    assert "interval=" in str(err.value) and repr(bad) in str(err.value)


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), True, None, [5]])
def test_bad_values_are_rejected(bad):
    with pytest.raises(DurationError):
        seconds(bad)


@pytest.mark.parametrize("secs, text", [(5, "5s"), (90, "1m30s"), (600, "10m"), (3 * 3600 + 60, "3h1m"), (26 * 3600, "1d2h"), (12 * 86400, "12d")])
def test_formats_ages_like_kubectl(secs, text):
    assert format_duration(secs) == text

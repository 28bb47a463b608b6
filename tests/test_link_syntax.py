"""One way to say "bad link": `PYGASE_SIMULATE`, `LinkConditions.from_string` and the demos' `--simulate`
read the same syntax with units (`loss=10%,latency=75ms,jitter=10ms`), and nonsense is refused with a
message that shows it, never misread."""

from __future__ import annotations

import os

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"

import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from pygase import Client  # noqa: E402
from pygase.testing import SIMULATE_VARIABLE, LinkConditions  # noqa: E402
from pygase_demos._framework import build_parser, run_demo  # noqa: E402
from pygase_demos.dots.game import DEMO  # noqa: E402

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parent.parent


# ---- the syntax ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("loss=10%,latency=75ms,jitter=10ms,duplication=1%", (0.075, 0.01, 0.1, 0.01)),
        ("latency=0.075s, loss=0.1", (0.075, 0.0, 0.1, 0.0)),
        ("LATENCY=75MS", (0.075, 0.0, 0.0, 0.0)),
        ("latency=2s,jitter=500ms,duplication=100%", (2.0, 0.5, 0.0, 1.0)),
        # the form PYGASE_SIMULATE documented in 0.4 dev: bare numbers below 1 are seconds and fractions
        ("latency=0.075,loss=0.1", (0.075, 0.0, 0.1, 0.0)),
        ("latency=0,loss=0", (0.0, 0.0, 0.0, 0.0)),
    ],
)
def test_link_conditions_read_with_units(text, expected):
    conditions = LinkConditions.from_string(text)
    got = (conditions.latency, conditions.jitter, conditions.loss, conditions.duplication)
    assert got == pytest.approx(expected)


@pytest.mark.parametrize(
    "text, hint",
    [
        ("latency=150", "latency=150ms"),  # never 150 seconds
        ("latency=5", "latency=5ms or latency=5s"),
        ("jitter=2,latency=0.1", "jitter=2ms"),
        ("loss=10", "loss=10%"),  # never silently a percentage either
        ("loss=1", "loss=1% or loss=100%"),
    ],
)
def test_a_bare_number_of_one_or_more_is_refused_with_a_request_for_a_unit(text, hint):
    with pytest.raises(ValueError, match="has no unit") as error:
        LinkConditions.from_string(text)
    assert hint in str(error.value)


@pytest.mark.parametrize(
    "text",
    [
        "nonsense",
        "0.1,150",
        "latency",
        "latency=",
        "latency=fast",
        "latency=nan",
        "latency=inf",
        "latency=10%",
        "loss=5ms",
        "speed=10ms",
        "latency=1ms,latency=2ms",
        "latency=20s",
        "latency=75ms,jitter=100ms",
        "loss=-1%",
        "loss=150%",
    ],
)
def test_nonsense_is_refused_with_the_accepted_syntax(text):
    with pytest.raises(ValueError) as error:
        LinkConditions.from_string(text)
    message = str(error.value)
    assert "loss=10%,latency=75ms" in message and "one way" in message


def test_conditions_print_in_the_syntax_they_are_read_in():
    conditions = LinkConditions(latency=0.075, jitter=0.01, loss=0.1, duplication=0.01)
    assert str(conditions) == "latency=75ms,jitter=10ms,loss=10%,duplication=1%"
    again = LinkConditions.from_string(str(conditions))
    assert (again.latency, again.jitter, again.loss, again.duplication) == pytest.approx(
        (0.075, 0.01, 0.1, 0.01)
    )


# ---- LinkConditions(...) takes seconds and fractions -------------------------------------------------


def test_a_latency_in_milliseconds_given_to_the_constructor_is_refused_with_the_unit():
    with pytest.raises(ValueError, match="takes seconds") as error:
        LinkConditions(latency=150)
    assert "latency=0.075" in str(error.value)
    assert LinkConditions(latency=10).latency == 10  # ten seconds is still a (very bad) link


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(latency=float("nan")), "finite"),
        (dict(latency=float("inf")), "finite"),
        (dict(loss=float("nan")), "finite"),
        (dict(latency="75ms"), "from_string"),
        (dict(loss=10), "loss=0.1"),
        (dict(latency=-0.1), "negative"),
    ],
)
def test_the_constructor_refuses_what_it_cannot_use(kwargs, words):
    with pytest.raises(ValueError, match=words):
        LinkConditions(**kwargs)


# ---- PYGASE_SIMULATE -------------------------------------------------------------------------------


def test_the_environment_variable_reads_the_syntax_with_units(monkeypatch):
    monkeypatch.setenv(SIMULATE_VARIABLE, "loss=10%,latency=75ms")
    assert LinkConditions.from_environment() == LinkConditions(latency=0.075, loss=0.1)
    assert Client().simulate == LinkConditions(latency=0.075, loss=0.1)
    monkeypatch.setenv(SIMULATE_VARIABLE, "latency=0.075,loss=0.1")  # the older form
    assert LinkConditions.from_environment() == LinkConditions(latency=0.075, loss=0.1)


@pytest.mark.parametrize("text", ["latency=150", "nonsense", "latency=75ms,jitter=1s"])
def test_a_bad_environment_variable_is_named_in_the_error(monkeypatch, text):
    monkeypatch.setenv(SIMULATE_VARIABLE, text)
    with pytest.raises(ValueError) as error:
        Client()
    message = str(error.value)
    assert f"{SIMULATE_VARIABLE}={text!r}" in message
    assert "loss=10%,latency=75ms" in message


# ---- the demos' --simulate -------------------------------------------------------------------------


def test_the_demos_read_the_same_syntax():
    args = build_parser(DEMO).parse_args(["--simulate", "loss=10%,latency=75ms,jitter=10ms"])
    assert args.simulate == LinkConditions(latency=0.075, jitter=0.01, loss=0.1)
    assert build_parser(DEMO).parse_args(["--simulate", "latency=0.075,loss=0.1"]).simulate == (
        LinkConditions(latency=0.075, loss=0.1)
    )
    assert build_parser(DEMO).parse_args([]).simulate is None


@pytest.mark.parametrize(
    "text, words",
    [
        ("nonsense", "loss=10%,latency=75ms"),
        ("latency=150", "has no unit"),
        ("loss=10%,latency=75ms,jitter=1s", "jitter must not exceed latency"),
        # the old LOSS,LATENCY_MS form (a round trip) is refused with the same conditions in the new syntax
        ("0.1,150", "--simulate loss=10%,latency=75ms,jitter=15ms"),
        ("10%,150ms", "--simulate loss=10%,latency=75ms,jitter=15ms"),
    ],
)
def test_a_bad_simulate_option_is_a_usage_error(capsys, text, words):
    with pytest.raises(SystemExit) as exit_:
        build_parser(DEMO).parse_args(["--simulate", text])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ")
    assert "error: argument --simulate: " in err and words in err


def test_a_demo_refuses_a_bad_environment_variable_with_a_usage_error(monkeypatch, capsys):
    monkeypatch.setenv(SIMULATE_VARIABLE, "latency=150")
    with pytest.raises(SystemExit) as exit_:
        run_demo(DEMO, ["--headless", "--seconds", "1"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ") and "PYGASE_SIMULATE='latency=150'" in err


def test_a_demo_run_puts_the_simulated_link_in_front_of_its_window(monkeypatch):
    import pygase_demos._framework as framework

    made = []

    class RecordingClient(Client):
        def __init__(self, simulate=None):
            super().__init__(simulate)
            made.append(self)

    monkeypatch.setattr(framework, "Client", RecordingClient)
    run_demo(DEMO, ["--bots", "0", "--headless", "--seconds", "1", "--simulate", "loss=5%,latency=10ms"])
    assert made[0].simulate == LinkConditions(latency=0.01, loss=0.05)


def test_the_demo_command_line_refuses_nonsense_without_a_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "demos.chase", "--simulate", "nonsense", "--headless", "--seconds", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=20,
        env={**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"},
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "usage: " in result.stderr and "loss=10%,latency=75ms" in result.stderr


# ---- --headless without --seconds ------------------------------------------------------------------


def test_the_help_says_how_long_headless_runs_and_what_simulate_takes():
    help_text = " ".join(build_parser(DEMO).format_help().split())
    assert "stops after --seconds, 5 by default" in help_text
    assert "loss=10%,latency=75ms" in help_text and "one way" in help_text

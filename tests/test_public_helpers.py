"""The public helpers pygase_pygame uses: `Client.copy_game_state` and `pygase.utils.accepted_keywords`."""

from __future__ import annotations

import pytest

from pygase import Client, GameState
from pygase.utils import Sqn, accepted_keywords

pytestmark = pytest.mark.timeout(30)


def test_accepted_keywords_names_what_a_function_can_take_by_keyword():
    def plain(a, b=1, *args, c, **_unused_not):
        pass

    def positional_only(a, /, b, *args):
        pass

    def anything(a, **kwargs):
        pass

    assert accepted_keywords(lambda: None) == frozenset()
    assert accepted_keywords(positional_only) == frozenset({"b"})
    assert accepted_keywords(anything) is None
    assert accepted_keywords(plain) is None
    assert accepted_keywords(lambda x, *, y: None) == frozenset({"x", "y"})


def test_accepted_keywords_of_a_callable_without_a_signature_is_empty():
    assert accepted_keywords(max) == frozenset()  # no signature: pass nothing extra


def test_copy_game_state_needs_a_connection():
    with pytest.raises(RuntimeError, match="connect"):
        Client().copy_game_state()


def test_copy_game_state_is_a_deep_copy_that_shares_nothing(backend_factory, client_factory):
    backend = backend_factory(
        GameState(things={1: {"x": 1.5, "tags": ["a", "b"]}}, name="arena", blob=b"\x00\x01"),
        lambda game_state, dt: {},
    )
    client = client_factory(backend.server.port)
    client.wait_until(lambda state: state.things[1]["x"] == 1.5, timeout=5)

    copied = client.copy_game_state()

    assert isinstance(copied, GameState)
    assert copied.things == {1: {"x": 1.5, "tags": ["a", "b"]}}
    assert (copied.name, copied.blob) == ("arena", b"\x00\x01")
    assert type(copied.time_order) is Sqn
    with client.access_game_state() as state:
        assert copied == state
        assert copied.things is not state.things
        assert copied.things[1] is not state.things[1]
        assert copied.things[1]["tags"] is not state.things[1]["tags"]
    copied.things[1]["tags"].append("c")
    with client.access_game_state() as state:
        assert state.things[1]["tags"] == ["a", "b"]

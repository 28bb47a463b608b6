"""Public behaviours of PyGaSe 0.3.1 that code written for it relies on (issue 10).

Each test failed before the behaviour was restored.
"""

from __future__ import annotations

import asyncio
import inspect

import msgpack
import pytest

from pygase import Backend, Client, GameState, GameStateUpdate, errors
from pygase.backend import GameStateMachine, GameStateStore, Server
from pygase.connection import ClientPackage, Header, Package, ServerPackage
from pygase.event import Event, UniversalEventHandler
from pygase.testing import SimulatedSession
from pygase.utils import Comparable, Sendable, Sqn


def client_state(connection) -> dict:
    with connection.game_state_context() as state:
        return dict(state.__dict__)


# ---- 1. GameStateStore starts at time order 0, and GameStateUpdate(1) is its first update --------------


def test_store_starts_at_time_order_0_with_an_empty_update_in_its_cache():
    store = GameStateStore()
    assert store.get_game_state().time_order == 0
    assert store.get_update_cache() == [GameStateUpdate(0)]
    assert GameStateStore(GameState(foo=1)).get_game_state().time_order == 0


def test_first_update_at_time_order_1_is_applied():
    store = GameStateStore(GameState(foo=0, bar=0))
    store.push_update(GameStateUpdate(1, foo=1))
    assert store.get_game_state().time_order == 1
    assert store.get_game_state().foo == 1
    assert store.get_update_cache() == [GameStateUpdate(0), GameStateUpdate(1, foo=1)]
    store.push_update(GameStateUpdate(2, bar=2))
    assert (store.get_game_state().foo, store.get_game_state().bar) == (1, 2)


def test_a_new_client_of_a_store_at_time_order_0_gets_the_state_and_then_the_updates():
    store = GameStateStore(GameState(foo="bar", n=0))
    session = SimulatedSession(store)
    client = session.add_client()
    session.run(0.5)
    assert client_state(client)["foo"] == "bar"
    assert client_state(client)["time_order"] == 0
    store.push_update(GameStateUpdate(1, n=1))
    session.run(0.3)
    assert client_state(client) == dict(store.get_game_state().__dict__)
    late = session.add_client()  # joins a store that moved on
    session.run(0.5)
    assert client_state(late) == dict(store.get_game_state().__dict__)


def test_state_listeners_are_not_called_again_for_the_same_state_at_time_order_0():
    # A client reports 0 for "no state yet", so a store at time order 0 sends its state with every package.
    store = GameStateStore(GameState(foo="bar"))
    session = SimulatedSession(store)
    client = session.add_client()
    calls = []
    client._state_listeners.append(lambda state: calls.append(dict(state.__dict__)))
    session.run(1.0)
    assert len(calls) == 1 and calls[0]["foo"] == "bar"


def test_a_large_initial_state_is_sent_once_and_then_only_what_changed():
    store = GameStateStore(GameState(n=0, blob=bytes(5000)))  # sent in parts
    session = SimulatedSession(store)
    client = session.add_client()
    large: list[int] = []

    def route(source, destination, datagram):
        if source == session.SERVER_ADDRESS and len(datagram) > 900:
            large.append(len(datagram))
        return True

    session.network.route = route
    session.run(1.0)
    assert len(client_state(client)["blob"]) == 5000
    sent = len(large)
    session.run(1.0)
    assert len(large) == sent  # the store is still at time order 0: the client has all there is
    store.push_update(GameStateUpdate(1, n=1))
    session.run(0.5)
    assert client_state(client)["n"] == 1
    assert len(large) == sent  # the update alone, not the whole state again


# ---- 2. Sendables compare equal after a round trip; bytes that are not one raise TypeError -------------


class Position(Sendable):
    """A user's own Sendable, as 0.3.1 code would write it."""

    def __init__(self, x, y, tags=()):
        self.x = x
        self.y = y
        self.tags = tags


def test_sendable_is_comparable():
    assert issubclass(Sendable, Comparable)
    assert Position(1, 2) == Position(1, 2)
    assert Position(1, 2) != Position(1, 3)
    assert Position(1, 2) != GameState(x=1, y=2)


@pytest.mark.parametrize(
    "original",
    [
        Event("MOVE", 1, (2, 3), [4, (5, 6)], speed=2.5, path=((0, 1), (1, 1)), who="ann"),
        Event("PING"),
        GameState(7, 2, foo=(1, 2), bar={"a": [1, (2,)], 3: b"x"}, seq=Sqn(65535)),
        GameState(),
        GameStateUpdate(Sqn(65535), x=(1, 2), gone=b"\xd2\x81\xe5\xba"),
        GameStateUpdate(1),
        Position(1.5, -2, tags=("a", ("b", Sqn(3)))),
    ],
    ids=lambda value: type(value).__name__,
)
def test_sendables_equal_their_copy_after_a_round_trip(original):
    copy = type(original).from_bytes(original.to_bytes())
    assert copy == original
    assert original == copy
    assert (copy != original) is False


def test_sendable_equality_is_about_the_data_sent():
    assert Position(1, (2, 3)) == Position(1, [2, 3])  # a tuple arrives as a list
    assert Position(1, 2) != Position(1, [2])
    with_private = Position(1, 2)
    with_private._cache = "not sent"
    assert Position.from_bytes(with_private.to_bytes()) == with_private


@pytest.mark.parametrize("cls", [Position, Event, GameState, GameStateUpdate])
@pytest.mark.parametrize(
    "garbage",
    [b"", b"\xc1", b"\x01", msgpack.packb([1, 2]), msgpack.packb({"_x": 1}), msgpack.packb({1: 2})],
    ids=repr,
)
def test_from_bytes_on_bytes_that_are_not_one_raises_type_error(cls, garbage):
    with pytest.raises(TypeError) as raised:
        cls.from_bytes(garbage)
    assert isinstance(raised.value, errors.NotSendableBytesError)
    assert isinstance(raised.value, errors.DecodeError) and isinstance(raised.value, ValueError)


@pytest.mark.parametrize("cls", [GameState, GameStateUpdate])
def test_from_bytes_without_a_valid_time_order_raises_type_error(cls):
    for data in ({"x": 1}, {"time_order": "5"}, {"time_order": -1}):
        with pytest.raises(TypeError):
            cls.from_bytes(msgpack.packb(data))


# ---- 3. Packages compare equal after a round trip ------------------------------------------------------


def _header(sequence=3, ack=2):
    return Header(sequence, ack, "1" + "0" * 30 + "1")


def test_headers_compare_equal_after_a_round_trip():
    header = _header(65535, 1)
    assert Header.deconstruct_datagram(bytes(header.to_bytearray()))[0] == header
    assert header != _header(65535, 2)


@pytest.mark.parametrize(
    "package",
    [
        Package(_header()),
        Package(_header(), [Event("MOVE", 1, (2, 3), to=(4, 5)), Event("PING")]),
        ClientPackage(_header(), 7, [Event("MOVE", "up")]),
        ClientPackage(_header(1, 0), 0),
        ServerPackage(_header(), GameStateUpdate(4, players={1: {"x": 1.5}}, pair=(1, 2)), [Event("HIT")]),
        ServerPackage(_header(), None),
    ],
    ids=lambda package: type(package).__name__,
)
def test_packages_compare_equal_after_a_round_trip(package):
    copy = type(package).from_datagram(package.to_datagram())
    assert copy == package
    assert (copy != package) is False


def test_packages_that_differ_are_not_equal():
    events = [Event("MOVE", 1)]
    assert Package(_header(), events) != Package(_header(4), events)
    assert Package(_header(), events) != Package(_header(), [Event("MOVE", 2)])
    assert ClientPackage(_header(), 1, events) != ClientPackage(_header(), 2, events)
    assert ClientPackage(_header(), 1, events) != Package(_header(), events)
    update = GameStateUpdate(4, x=1)
    assert ServerPackage(_header(), update) != ServerPackage(_header(), GameStateUpdate(4, x=2))
    assert ServerPackage(_header(), update) != ServerPackage(_header(), update, full_state=True)


# ---- 4. UniversalEventHandler.handle can be awaited, as 0.3.1's coroutine could ---------------------------


def _handler(calls: list) -> UniversalEventHandler:
    async def add(x, dt):
        await asyncio.sleep(0)
        return x + dt

    handler = UniversalEventHandler()
    handler.register_event_handler("double", lambda x: 2 * x)
    handler.register_event_handler("add", add)
    handler.register_event_handler("note", lambda text: calls.append(text))
    return handler


def test_handle_can_be_awaited_with_plain_and_coroutine_handlers():
    calls: list = []
    handler = _handler(calls)

    async def main():
        return (
            await handler.handle(Event("double", 21)),
            await handler.handle(Event("add", 1), dt=0.5, game_state=None),
            await handler.handle(Event("note", "hi")),
            await handler.handle(Event("no handler")),
            [await handler.handle(Event("double", i)) for i in range(3)],
        )

    assert asyncio.run(main()) == (42, 1.5, None, None, [0, 2, 4])
    assert calls == ["hi"]


def test_a_plain_handler_runs_when_handle_is_called_even_if_nobody_awaits():
    calls: list = []
    handler = _handler(calls)

    async def main():
        handler.handle(Event("note", "not awaited"))

    asyncio.run(main())
    assert calls == ["not awaited"]


def test_handle_called_from_plain_code_returns_what_the_handler_returns():
    handler = _handler([])
    assert handler.handle(Event("double", 21)) == 42
    assert handler.handle(Event("no handler")) is None
    result = handler.handle(Event("add", 1), dt=1)
    assert inspect.iscoroutine(result)
    assert asyncio.run(result) == 2

    async def main():
        loop = asyncio.get_running_loop()  # a plain callback in a running loop, as PyGaSe calls handlers
        future = loop.create_future()
        loop.call_soon(lambda: future.set_result(handler.handle(Event("double", 4))))
        return await future

    assert asyncio.run(main()) == 8


# ---- 5. Sqn arithmetic below zero raises ValueError ----------------------------------------------------


def test_sqn_counting_back_below_zero_raises_value_error():
    for sqn, steps in ((3, -5), (0, -1), (1, -2), (65535, -65536)):
        with pytest.raises(ValueError):
            Sqn(sqn) + steps
        with pytest.raises(ValueError):
            steps + Sqn(sqn)


def test_sqn_counting_back_to_zero_or_above_does_not_wrap():
    assert Sqn(3) + -2 == 1
    assert Sqn(3) + -3 == 0  # as in 0.3.1, not 65535
    assert Sqn(1) + -1 == 0
    assert isinstance(Sqn(3) + -3, Sqn)
    assert Sqn(65535) + 1 == 1  # counting forward still wraps


def test_sqn_difference_is_the_signed_distance_as_in_0_3_1():
    assert Sqn(3) - 5 == -2
    assert Sqn(5) - Sqn(3) == 2
    assert Sqn(5) - Sqn(65530) == 10


# ---- 6. connect, run and run_game_loop can be spawned as coroutines inside a running event loop -------


async def _until(condition, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not met in time")


def _client_n(client: Client) -> int:
    if client.connection is None:  # the connect coroutine has not started yet
        return 0
    with client.access_game_state() as state:
        return getattr(state, "n", 0)


def test_server_run_game_loop_and_connect_return_coroutines_inside_a_running_loop():
    async def main() -> tuple:
        store = GameStateStore(GameState(n=0))
        machine = GameStateMachine(store)
        machine.time_step = lambda game_state, dt: {"n": game_state.n + 1}
        server = Server(store)
        serving = server.run(0, "127.0.0.1", machine)
        game_loop = machine.run_game_loop(0.02)
        assert inspect.iscoroutine(serving) and inspect.iscoroutine(game_loop)
        tasks = [asyncio.create_task(serving), asyncio.create_task(game_loop)]
        await _until(lambda: server.port is not None)
        client = Client()
        connecting = client.connect(server.port, "127.0.0.1")
        assert inspect.iscoroutine(connecting)
        tasks.append(asyncio.create_task(connecting))
        await _until(lambda: _client_n(client) > 3)
        await client.disconnect()
        stopped = await machine.stop()
        await server.shutdown()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        return stopped, server.port

    assert asyncio.run(main()) == (True, None)


def test_backend_run_can_be_awaited_inside_a_running_loop():
    async def main() -> int:
        backend = Backend(GameState(n=0), lambda game_state, dt: {"n": game_state.n + 1})
        running = asyncio.create_task(backend.run("127.0.0.1", 0))
        await _until(lambda: backend.server.port is not None)
        client = Client()
        connected = asyncio.create_task(client.connect(backend.server.port, "127.0.0.1"))
        await _until(lambda: _client_n(client) > 3)
        seen = _client_n(client)
        await client.disconnect()
        await backend.shutdown()
        await asyncio.wait_for(asyncio.gather(running, connected), 5)
        return seen

    assert asyncio.run(main()) > 3


def test_bad_arguments_still_raise_at_once_inside_a_running_loop():
    async def main() -> None:
        with pytest.raises(TypeError):
            Client().connect("localhost", 8080)
        with pytest.raises(ValueError):
            GameStateMachine(GameStateStore()).run_game_loop(0)

    asyncio.run(main())

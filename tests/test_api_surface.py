"""The PyGaSe 0.3.1 public API: every documented name exists, with the documented arguments and defaults."""

from __future__ import annotations

import inspect

import pytest

import pygase
from pygase import backend, client, connection, event, gamestate, utils

# (object, argument names in order, defaults by name) as documented in the 0.3.1 API reference
SIGNATURES = [
    (client.Client.connect, ["port", "hostname"], {"hostname": "localhost"}),
    (client.Client.connect_in_thread, ["port", "hostname"], {"hostname": "localhost"}),
    (client.Client.disconnect, ["shutdown_server"], {"shutdown_server": False}),
    (client.Client.wait_until, ["game_state_condition", "timeout"], {"timeout": 1.0}),
    (client.Client.try_to, ["function", "timeout"], {"timeout": 1.0}),
    (
        client.Client.dispatch_event,
        ["event_type", "args", "retries", "ack_callback", "kwargs"],
        {"retries": 0},
    ),
    (client.Client.register_event_handler, ["event_type", "event_handler_function"], {}),
    (backend.GameStateStore, ["initial_game_state"], {"initial_game_state": None}),
    (backend.Server.run, ["port", "hostname", "event_wire"], {"port": 0, "hostname": "localhost"}),
    (backend.Server.run_in_thread, ["port", "hostname", "event_wire", "daemon"], {"port": 0, "daemon": True}),
    (
        backend.Server.dispatch_event,
        ["event_type", "args", "target_client", "retries", "ack_callback", "kwargs"],
        {"target_client": "all", "retries": 0},
    ),
    (backend.GameStateMachine.run_game_loop, ["interval"], {"interval": 0.02}),
    (backend.GameStateMachine.run_game_loop_in_thread, ["interval"], {"interval": 0.02}),
    (backend.GameStateMachine.stop, ["timeout"], {"timeout": 1.0}),
    (backend.GameStateMachine.time_step, ["game_state", "dt"], {}),
    (
        backend.Backend,
        ["initial_game_state", "time_step_function", "event_handlers"],
        {"event_handlers": None},
    ),
    (backend.Backend.run, ["hostname", "port"], {}),
    (gamestate.GameState, ["time_order", "game_status", "kwargs"], {"time_order": 0, "game_status": 0}),
    (gamestate.GameStateUpdate, ["time_order", "kwargs"], {}),
    (connection.Header, ["sequence", "ack", "ack_bitfield"], {}),
    (connection.Package, ["header", "events"], {"events": None}),
    (connection.ClientPackage, ["header", "time_order", "events"], {"events": None}),
    (connection.ServerPackage, ["header", "game_state_update", "events"], {"events": None}),
    (connection.Connection, ["remote_address", "event_handler", "event_wire"], {"event_wire": None}),
    (connection.Connection.dispatch_event, ["event", "ack_callback", "timeout_callback"], {}),
    (connection.ClientConnection, ["remote_address", "event_handler"], {}),
    (connection.ClientConnection.shutdown, ["shutdown_server"], {"shutdown_server": False}),
    (
        connection.ServerConnection,
        ["remote_address", "event_handler", "game_state_store", "last_client_time_order", "event_wire"],
        {"event_wire": None},
    ),
    (event.Event, ["event_type", "args", "kwargs"], {}),
    (event.UniversalEventHandler.register_event_handler, ["event_type", "event_handler_function"], {}),
    (event.UniversalEventHandler.handle, ["event", "kwargs"], {}),
    (utils.LockedRessource, ["ressource"], {}),
]


@pytest.mark.parametrize(
    ("function", "names", "defaults"), SIGNATURES, ids=lambda x: getattr(x, "__qualname__", "")
)
def test_documented_arguments_and_defaults(function, names, defaults):
    parameters = [p for p in inspect.signature(function).parameters.values() if p.name != "self"]
    actual = [p.name for p in parameters]
    assert actual[: len(names)] == names or [n for n in actual if n in names] == names
    for name, default in defaults.items():
        assert inspect.signature(function).parameters[name].default == default


def test_every_documented_name_exists():
    expected = {
        utils: [
            "Comparable",
            "Sendable",
            "NamedEnum",
            "Sqn",
            "LockedRessource",
            "LockedResource",
            "get_available_ip_addresses",
        ],
        event: ["Event", "UniversalEventHandler"],
        gamestate: ["TO_DELETE", "GameStatus", "GameState", "GameStateUpdate"],
        connection: [
            "PROTOCOL_ID",
            "ProtocolIDMismatchError",
            "DuplicateSequenceError",
            "Header",
            "Package",
            "ClientPackage",
            "ServerPackage",
            "ConnectionStatus",
            "Connection",
            "ClientConnection",
            "ServerConnection",
        ],
        backend: ["GameStateStore", "Server", "GameStateMachine", "Backend"],
        client: ["Client"],
        pygase: [
            "Client",
            "Backend",
            "Server",
            "GameStateStore",
            "GameStateMachine",
            "GameState",
            "GameStateUpdate",
            "GameStatus",
            "TO_DELETE",
            "get_available_ip_addresses",
        ],
    }
    for module, names in expected.items():
        for name in names:
            assert hasattr(module, name), f"{module.__name__}.{name} is missing"
            assert name in module.__all__
    methods = {
        utils.Sendable: ["to_bytes", "from_bytes"],
        utils.NamedEnum: ["get", "register"],
        utils.Sqn: ["set_bytesize", "get_max_sequence", "to_sqn_bytes", "from_sqn_bytes"],
        event.UniversalEventHandler: ["register_event_handler", "handle", "has_event_type"],
        gamestate.GameState: ["is_paused"],
        gamestate.GameStateUpdate: ["from_bytes"],
        connection.Header: ["to_bytearray", "destructure", "deconstruct_datagram"],
        connection.Package: ["events", "add_event", "get_bytesize", "to_datagram", "from_datagram"],
        connection.ClientConnection: ["shutdown", "loop"],
        connection.ServerConnection: ["loop"],
        backend.GameStateStore: ["get_update_cache", "get_game_state", "push_update"],
        backend.Server: [
            "hostname",
            "port",
            "run",
            "run_in_thread",
            "shutdown",
            "dispatch_event",
            "register_event_handler",
        ],
        backend.GameStateMachine: [
            "register_event_handler",
            "run_game_loop",
            "run_game_loop_in_thread",
            "stop",
            "time_step",
        ],
        backend.Backend: ["run"],
        client.Client: [
            "connect",
            "connect_in_thread",
            "disconnect",
            "access_game_state",
            "wait_until",
            "try_to",
            "dispatch_event",
            "register_event_handler",
        ],
    }
    for cls, names in methods.items():
        for name in names:
            assert hasattr(cls, name), f"{cls.__name__}.{name} is missing"
    assert inspect.iscoroutinefunction(connection.ClientConnection.loop)
    assert inspect.iscoroutinefunction(connection.ServerConnection.loop)


def test_documented_attributes_of_instances():
    store = backend.GameStateStore()
    server = backend.Server(store)
    assert server.connections == {} and server.host_client is None and server.game_state_store is store
    assert server.hostname is None and server.port is None
    machine = backend.GameStateMachine(store)
    assert machine.game_time == 0.0
    b = backend.Backend(gamestate.GameState(), lambda game_state, dt: {})
    assert {"game_state_store", "game_state_machine", "server"} <= set(vars(b))
    c = connection.Connection(("localhost", 1), event.UniversalEventHandler())
    for name in (
        "remote_address",
        "event_handler",
        "event_wire",
        "local_sequence",
        "remote_sequence",
        "ack_bitfield",
        "latency",
        "status",
        "quality",
    ):
        assert hasattr(c, name)
    assert c.ack_bitfield == "0" * 32 and c.quality == "good"
    assert isinstance(
        connection.ClientConnection(("localhost", 1), None).game_state_context, utils.LockedRessource
    )
    assert client.Client().connection is None

"""The rendezvous protocol's host and player sides against the relay's core, in memory with a virtual
clock (issue 13): no socket, no thread, no waiting. The routers themselves are in the namespace tests
(tests/test_online_play.py); here a test decides which datagrams are lost.
"""

from __future__ import annotations

import itertools
from typing import Callable, Optional

import pytest

from pygase import _rendezvous as rv
from pygase import _rendezvous_host as host_side
from pygase import _rendezvous_player as player_side
from pygase._relay_core import CloseChannel, OpenChannel, RelayCore, Send
from pygase._rendezvous_host import HostRendezvous
from pygase._rendezvous_player import PlayerRendezvous, Route

pytestmark = pytest.mark.timeout(10)

RELAY = ("198.51.100.1", 8090)
HOST = ("203.0.113.10", 5000)
HOST_LAN = ("192.168.1.10", 5000)
PLAYER = ("203.0.113.20", 6000)
PLAYER_LAN = ("192.168.2.20", 6000)
STEP = 0.01


def counter_bytes() -> Callable[[int], bytes]:
    count = itertools.count(1)
    return lambda size: next(count).to_bytes(size, "big")


class Net:
    """Relay, host and player at fixed addresses; `lost(datagram, source, destination, ttl)` drops."""

    def __init__(self, lost: Optional[Callable[..., bool]] = None) -> None:
        self.now = 0.0
        self.relay = RelayCore(b"s" * 32, random_bytes=counter_bytes())
        self.host = HostRendezvous(RELAY, (HOST_LAN,), {"game": "test", "name": "t"}, public=True)
        self.player: Optional[PlayerRendezvous] = None
        self.lost = lost or (lambda *sent: False)
        self.sent: list[tuple[bytes, tuple, tuple, Optional[int]]] = []  # (datagram, from, to, ttl)
        self.channel_ports: dict[int, tuple] = {}
        self.host.start(self.now)

    def join(self, code: str) -> PlayerRendezvous:
        self.player = PlayerRendezvous(RELAY, code, (PLAYER_LAN,), self.now)
        return self.player

    def _deliver(self, datagram: bytes, source: tuple, destination: tuple, ttl: Optional[int] = None) -> None:
        self.sent.append((datagram, source, destination, ttl))
        if self.lost(datagram, source, destination, ttl):
            return
        if destination == RELAY:
            self._relay_outputs(self.relay.receive(datagram, source, self.now))
        elif destination[0] == RELAY[0]:
            for channel, ports in self.channel_ports.items():
                if destination[1] in ports:
                    side = ports.index(destination[1])
                    self._relay_outputs(self.relay.receive(datagram, source, self.now, (channel, side)))
        elif destination in (HOST, HOST_LAN):
            self.host.receive(datagram, source, self.now)
        elif destination in (PLAYER, PLAYER_LAN) and self.player is not None:
            self.player.receive(datagram, source, self.now)

    def _relay_outputs(self, outputs: list) -> None:
        for output in outputs:
            if isinstance(output, Send):
                if output.port is None:
                    source = RELAY
                else:
                    channel, side = output.port
                    source = (RELAY[0], self.channel_ports[channel][side])
                self._deliver(output.datagram, source, output.address)
            elif isinstance(output, OpenChannel):
                ports = (40000 + 2 * output.channel, 40001 + 2 * output.channel)
                self.channel_ports[output.channel] = ports
                self._relay_outputs(self.relay.channel_opened(output.channel, ports, self.now))
            elif isinstance(output, CloseChannel):
                self.channel_ports.pop(output.channel, None)

    def run(self, seconds: float, until: Callable[[], bool] = lambda: False) -> None:
        end = self.now + seconds
        while self.now < end and not until():
            for datagram, address in self.host.datagrams_to_send(self.now):
                self._deliver(datagram, HOST, address)
            if self.player is not None:
                for datagram, address, ttl in self.player.datagrams_to_send(self.now):
                    self._deliver(datagram, PLAYER, address, ttl)
            self._relay_outputs(self.relay.handle_timer(self.now))
            self.now = round(self.now + STEP, 6)

    def kinds(self, source: tuple, destination: Optional[tuple] = None) -> list:
        return [
            (type(rv.parse(datagram)).__name__, ttl)
            for datagram, sent_from, sent_to, ttl in self.sent
            if sent_from == source
            and (destination is None or sent_to == destination)
            and rv.is_rendezvous(datagram)
        ]


def registered(net: Net) -> str:
    net.run(1.0, until=lambda: net.host.code is not None)
    assert net.host.code is not None
    return net.host.code


def test_a_host_registers_after_the_cookie_round_trip_and_refreshes_every_five_seconds():
    net = Net()
    code = registered(net)
    assert [kind for kind, _ in net.kinds(HOST, RELAY)] == ["Register", "Register"]  # without, with cookie
    assert net.host.public_endpoint == HOST
    net.run(11.0)
    assert [kind for kind, _ in net.kinds(HOST, RELAY)].count("Refresh") == 2
    assert net.relay.counts()["sessions"] == 1 and net.host.code == code


def test_a_player_punches_low_first_then_full_and_finds_the_host_directly():
    net = Net()
    code = registered(net)
    player = net.join(code)
    net.run(3.0, until=lambda: player.done)
    assert player.route == Route(HOST, relayed=False) or player.route == Route(HOST_LAN, relayed=False)
    punches = net.kinds(PLAYER, HOST)
    assert punches[0] == ("Punch", player_side.LOW_TTL)  # its own router first, not the host's
    assert ("Opened", None) in net.kinds(PLAYER, RELAY)
    assert ("Punch", None) in net.kinds(HOST, PLAYER)  # the host punched back after the introduction
    assert net.relay.counts()["channels"] == 0


def test_when_no_punch_gets_through_the_relay_forwards_through_a_channel():
    def lost(datagram, source, destination, ttl):  # the routers let no punch through
        return datagram.startswith(rv.MAGIC + b"p")

    net = Net(lost)
    player = net.join(registered(net))
    net.run(player_side.PUNCH_PATIENCE + 2.0, until=lambda: player.done)
    assert player.route is not None and player.route.relayed
    assert player.route.address[0] == RELAY[0]
    assert net.relay.counts()["channels"] == 1
    channel_ports = next(iter(net.channel_ports.values()))
    assert player.route.address[1] == channel_ports[0]
    # Both sides bound: a datagram from the player reaches the host from the channel's host port.
    received = []
    net.host.receive = lambda datagram, source, now: received.append((datagram, source))  # type: ignore
    net._deliver(b"game datagram", PLAYER, player.route.address)
    assert received == [(b"game datagram", (RELAY[0], channel_ports[1]))]


def test_when_every_low_ttl_punch_is_lost_the_host_is_still_found_directly():
    def lost(datagram, source, destination, ttl):  # a second NAT: a punch with TTL 2 never opens it
        return ttl is not None and ttl <= 2

    net = Net(lost)
    player = net.join(registered(net))
    net.run(3.0, until=lambda: player.done)
    assert player.route is not None and not player.route.relayed


def test_an_unknown_code_fails_with_the_relays_reason():
    net = Net()
    registered(net)
    player = net.join("ZZZZZZ")
    net.run(2.0, until=lambda: player.done)
    assert isinstance(player.failure, ConnectionRefusedError)
    assert "no session with that room code" in str(player.failure)


def test_a_silent_relay_fails_the_join_after_the_lookup_patience():
    net = Net(lambda datagram, source, destination, ttl: destination == RELAY)
    player = net.join("ABC234")
    net.run(player_side.LOOKUP_PATIENCE + 1.0, until=lambda: player.done)
    assert isinstance(player.failure, TimeoutError)
    assert player_side.LOOKUP_PATIENCE <= net.now <= player_side.LOOKUP_PATIENCE + 0.1
    lookups = [kind for kind, _ in net.kinds(PLAYER, RELAY)]
    assert 10 <= lookups.count("Lookup") <= 15  # repeated every 0.4 s, not flooded


def test_a_host_asks_a_restarted_relay_for_its_old_code():
    net = Net()
    code = registered(net)
    net.relay = RelayCore(b"t" * 32, random_bytes=counter_bytes())  # restarted: it knows nothing
    net.run(host_side.REFRESH_INTERVAL + 1.0)
    assert net.relay.counts()["sessions"] == 1
    assert net.host.code == code and net.host.registered
    assert net.host.new_codes() == [code]  # (the first one, from registering; no new code since)


def test_a_host_whose_relay_falls_silent_registers_again_and_backs_off():
    net = Net()
    registered(net)
    silent = {"on": True}
    net.lost = lambda datagram, source, destination, ttl: silent["on"] and destination == RELAY
    net.run(host_side.SILENCE_LIMIT + 20.0)
    assert not net.host.registered
    registers = [kind for kind, _ in net.kinds(HOST, RELAY)].count("Register")
    assert 4 <= registers <= 8  # retries double up to 8 s apart, not a flood
    silent["on"] = False
    net.run(10.0, until=lambda: net.host.registered)
    assert net.host.registered


def test_the_host_answers_only_punches_of_players_it_was_introduced_to():
    net = Net()
    registered(net)
    net.host.receive(rv.Punch(b"stranger").encode(), ("192.0.2.99", 1234), net.now)
    assert [sent for sent in net.host.datagrams_to_send(net.now) if sent[1][0] == "192.0.2.99"] == []


def test_datagrams_that_claim_to_come_from_the_relay_but_do_not_are_ignored():
    net = Net()
    registered(net)
    forged = rv.Introduce(b"intro123", (("192.0.2.66", 9),)).encode()
    net.host.receive(forged, ("192.0.2.1", 8090), net.now)
    net.run(0.5)
    assert ("192.0.2.66", 9) not in [destination for _, _, destination, _ in net.sent]


def test_malformed_datagrams_raise_value_error_for_the_driver_to_drop():
    host = HostRendezvous(RELAY)
    player = PlayerRendezvous(RELAY, "ABC234")
    for garbage in (b"", rv.MAGIC, rv.MAGIC + b"p" + b"x", rv.MAGIC + b"?" * 40):
        with pytest.raises(ValueError):
            host.receive(garbage, RELAY, 0.0)
        with pytest.raises(ValueError):
            player.receive(garbage, RELAY, 0.0)


def test_a_host_the_relay_turns_away_says_why_and_tries_again_later(caplog):
    host = HostRendezvous(RELAY)
    host.start(0.0)
    ((register, _),) = host.datagrams_to_send(0.0)
    nonce = rv.parse(register).nonce
    host.receive(rv.NotFound(nonce, rv.RELAY_FULL).encode(), RELAY, 0.01)
    assert "refused the registration: the relay is full" in caplog.text
    assert not host.registered
    assert host.datagrams_to_send(0.1) == []  # not at once: after the retry interval
    assert [type(rv.parse(d)) for d, _ in host.datagrams_to_send(host_side.RETRY_FIRST + 0.01)] == [
        rv.Register
    ]


def test_a_player_the_relay_has_no_channel_for_is_told_so_at_once():
    from pygase._relay_core import RelayConfig

    def lost(datagram, source, destination, ttl):
        return datagram.startswith(rv.MAGIC + b"p")

    net = Net(lost)
    net.relay = RelayCore(b"s" * 32, RelayConfig(max_channels=1), random_bytes=counter_bytes())
    code = registered(net)
    first = net.join(code)
    net.run(player_side.PUNCH_PATIENCE + 2.0, until=lambda: first.done)
    assert first.route is not None and first.route.relayed
    second = net.join(code)
    net.run(player_side.PUNCH_PATIENCE + 2.0, until=lambda: second.done)
    assert isinstance(second.failure, ConnectionRefusedError)
    assert "no punch got through, and the relay has no channel to spare" in str(second.failure)
    assert net.now < player_side.PUNCH_PATIENCE * 2 + 1.0  # at once, not after the channel's patience

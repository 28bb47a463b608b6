"""The relay (`pygase._relay_core.RelayCore` on a virtual clock, `pygase.relay.Relay` over loopback):
registrations, look-ups, introductions, channels and listings, and what a stranger can make it do."""

from __future__ import annotations

import random
import socket
import subprocess
import sys

import msgpack
import pytest
from helpers import needs_ipv6_loopback

from pygase import _rendezvous as rv
from pygase._relay_core import HOST, PLAYER, CloseChannel, OpenChannel, RelayConfig, RelayCore, Send
from pygase.relay import Relay

pytestmark = pytest.mark.timeout(30)

SECRET = bytes(range(32))
HOST_ADDRESS = ("203.0.113.5", 40000)
PLAYER_ADDRESS = ("198.51.100.7", 50000)
LAN = (("192.168.1.20", 40000),)
INFO = {"game": "pong", "name": "Ann's table", "players": 1, "max_players": 2, "password": False}


class Harness:
    """A RelayCore on a virtual clock whose driver opens channels at once (ports 60000 + 2 * channel)."""

    def __init__(self, config: RelayConfig | None = None, seed: int = 1) -> None:
        self.core = RelayCore(SECRET, config, random_bytes=random.Random(seed).randbytes)
        self.now = 1000.0
        self.open: set[int] = set()

    def send(self, message, address, port=None) -> list[Send]:
        """Everything the core sends for one datagram (channels it asks for are opened on the spot)."""
        datagram = message if isinstance(message, bytes) else message.encode()
        return self.do(self.core.receive(datagram, address, self.now, port))

    def do(self, outputs) -> list[Send]:
        sent = []
        for output in outputs:
            if isinstance(output, OpenChannel):
                self.open.add(output.channel)
                ports = (60000 + 2 * output.channel, 60001 + 2 * output.channel)
                sent += self.do(self.core.channel_opened(output.channel, ports, self.now))
            elif isinstance(output, CloseChannel):
                self.open.discard(output.channel)
            else:
                sent.append(output)
        return sent

    def advance(self, seconds: float) -> list[Send]:
        self.now += seconds
        return self.do(self.core.handle_timer(self.now))

    def ask(self, message_type, address, **fields):
        """Send a cookie-needing request, answer the CHALLENGE, return the parsed final reply."""
        nonce = random.Random(str(address)).randbytes(8)
        (challenge,) = self.send(message_type(nonce=nonce, **fields), address)
        cookie = rv.parse(challenge.datagram).cookie
        (reply,) = self.send(message_type(nonce=nonce, cookie=cookie, **fields), address)
        assert reply.address == (rv.plain_address(address[0]), address[1])
        return rv.parse(reply.datagram)

    def register(self, address=HOST_ADDRESS, **fields):
        fields = {"private": LAN, "info": INFO, **fields}
        return self.ask(rv.Register, address, **fields)

    def lookup(self, code, address=PLAYER_ADDRESS, private=(("10.0.0.9", 50000),)):
        return self.ask(rv.Lookup, address, code=code, private=private)


def parsed(sent: list[Send]) -> list[tuple]:
    return [(rv.parse(s.datagram), s.address, s.port) for s in sent]


def test_the_wire_format_keeps_replies_within_their_requests_size():
    assert rv.sizes_check() is None


def test_register_without_a_cookie_gets_a_challenge_and_leaves_nothing_behind():
    relay = Harness()
    for n in range(200):  # forged sources: nothing is stored for any of them
        request = rv.Register(nonce=bytes(8), info=INFO)
        (reply,) = relay.send(request, (f"10.0.{n}.1", 1234))
        assert isinstance(rv.parse(reply.datagram), rv.Challenge)
        assert len(reply.datagram) <= len(request.encode())
    assert relay.core.counts() == {"sessions": 0, "introductions": 0, "channels": 0, "sources": 0}


def test_a_cookie_is_good_for_its_address_and_nonce_for_one_or_two_windows():
    relay = Harness()
    nonce = bytes(range(8))
    (challenge,) = relay.send(rv.Register(nonce=nonce), HOST_ADDRESS)
    cookie = rv.parse(challenge.datagram).cookie
    assert cookie == rv.make_cookie(SECRET, HOST_ADDRESS, int(relay.now // 10), nonce)
    # Another address or another nonce with this cookie: challenged again.
    assert isinstance(
        rv.parse(relay.send(rv.Register(nonce, cookie), PLAYER_ADDRESS)[0].datagram), rv.Challenge
    )
    assert isinstance(
        rv.parse(relay.send(rv.Register(bytes(8), cookie), HOST_ADDRESS)[0].datagram), rv.Challenge
    )
    relay.now += 10  # the next window still takes it
    assert isinstance(
        rv.parse(relay.send(rv.Register(nonce, cookie), HOST_ADDRESS)[0].datagram), rv.Registered
    )
    relay.now += 20  # two windows later it is stale
    reply = rv.parse(relay.send(rv.Lookup(nonce, "ABCDEF", cookie), HOST_ADDRESS)[0].datagram)
    assert isinstance(reply, rv.Challenge)


def test_a_dual_stack_view_of_an_ipv4_host_is_the_same_address():
    relay = Harness()
    registered = relay.register(("::ffff:203.0.113.5", 40000))
    assert registered.public == HOST_ADDRESS
    assert relay.register(HOST_ADDRESS).code == registered.code


def test_register_refresh_expiry_and_unregister():
    relay = Harness()
    registered = relay.register()
    assert isinstance(registered, rv.Registered)
    assert len(registered.code) == rv.CODE_LENGTH and set(registered.code) <= set(rv.CODE_ALPHABET)
    assert registered.public == HOST_ADDRESS and registered.lifetime == 30
    code, secret = registered.code, registered.secret
    for _ in range(10):  # refreshed every 5 s, it lives on
        relay.advance(5)
        (reply,) = relay.send(rv.Refresh(code, secret, players=2), HOST_ADDRESS)
        assert rv.parse(reply.datagram) == rv.Refreshed(code, True)
    assert rv.parse(relay.send(rv.Refresh(code, bytes(16)), HOST_ADDRESS)[0].datagram) == rv.Refreshed(
        code, False
    )
    relay.advance(29)
    assert relay.core.counts()["sessions"] == 1
    relay.advance(1.5)
    assert relay.core.counts()["sessions"] == 0
    assert rv.parse(relay.send(rv.Refresh(code, secret), HOST_ADDRESS)[0].datagram) == rv.Refreshed(
        code, False
    )
    # Registered again; a wrong secret cannot unregister, the right one can.
    again = relay.register()
    assert relay.send(rv.Unregister(again.code, bytes(16)), PLAYER_ADDRESS) == []
    assert relay.core.counts()["sessions"] == 1
    assert relay.send(rv.Unregister(again.code, again.secret), HOST_ADDRESS) == []
    assert relay.core.counts()["sessions"] == 0
    assert relay.core.get_timer() is None


def test_a_repeated_register_renews_the_same_registration():
    relay = Harness()
    first = relay.register()
    relay.advance(20)
    lost_answer = relay.register()  # the host never saw REGISTERED and asks again, without a code
    assert (lost_answer.code, lost_answer.secret) == (first.code, first.secret)
    with_code = relay.register(code=first.code, secret=first.secret)
    assert with_code.code == first.code
    relay.advance(20)
    assert relay.core.counts()["sessions"] == 1


def test_a_host_whose_public_address_changed_proves_it_with_a_cookie_before_the_relay_follows():
    relay = Harness()
    registered = relay.register()
    moved = ("203.0.113.5", 41234)
    # A REFRESH has no cookie: from a new address it is told "unknown" and moves nothing ...
    (reply,) = relay.send(rv.Refresh(registered.code, registered.secret, players=3), moved)
    assert rv.parse(reply.datagram) == rv.Refreshed(registered.code, False)
    assert relay.lookup(registered.code).endpoints[0] == HOST_ADDRESS
    # ... so the host registers again from there, with its code and secret and a cookie: that moves it.
    again = relay.register(moved, code=registered.code, secret=registered.secret)
    assert again.code == registered.code
    assert relay.lookup(registered.code, ("192.0.2.3", 3)).endpoints[0] == moved
    # A REFRESH from an address another host holds moves nothing and removes no one.
    other = relay.register(PLAYER_ADDRESS)
    relay.send(rv.Refresh(registered.code, registered.secret), PLAYER_ADDRESS)
    assert relay.lookup(other.code, ("192.0.2.4", 3)).endpoints[0] == PLAYER_ADDRESS
    assert relay.lookup(registered.code, ("192.0.2.5", 3)).endpoints[0] == moved


def test_a_host_keeps_its_code_when_the_relay_restarted():
    before = Harness(seed=1)
    registered = before.register()
    after = Harness(seed=2)  # a new process: it knows nothing
    (reply,) = after.send(rv.Refresh(registered.code, registered.secret), HOST_ADDRESS)
    assert rv.parse(reply.datagram) == rv.Refreshed(registered.code, False)
    again = after.register(code=registered.code, secret=registered.secret)
    assert (again.code, again.secret) == (registered.code, registered.secret)
    assert isinstance(after.lookup(registered.code), rv.Peer)


def test_a_code_that_is_taken_cannot_be_claimed():
    relay = Harness()
    taken = relay.register()
    other = relay.register(("203.0.113.99", 5000), code=taken.code, secret=bytes(range(16)))
    assert other.code != taken.code and other.secret != taken.secret
    peer = relay.lookup(taken.code)
    assert peer.endpoints[0] == HOST_ADDRESS


def test_lookup_tells_the_player_the_host_and_the_host_nothing_yet():
    relay = Harness()
    code = relay.register().code
    nonce = bytes(8)
    (challenge,) = relay.send(rv.Lookup(nonce, code.lower()), PLAYER_ADDRESS)
    lookup = rv.Lookup(nonce, code, rv.parse(challenge.datagram).cookie, (("10.0.0.9", 50000),))
    (reply,) = relay.send(lookup, PLAYER_ADDRESS)
    assert reply.address == PLAYER_ADDRESS and len(reply.datagram) <= len(lookup.encode())
    peer = rv.parse(reply.datagram)
    assert isinstance(peer, rv.Peer) and peer.nonce == nonce
    assert peer.endpoints == (HOST_ADDRESS, *LAN)
    unknown = relay.lookup("ZZZZZZ")
    assert unknown == rv.NotFound(unknown.nonce, rv.UNKNOWN_CODE)


def test_opened_has_the_relay_introduce_the_player_to_the_host_a_few_times():
    relay = Harness()
    code = relay.register().code
    peer = relay.lookup(code)
    assert relay.send(rv.Opened(peer.intro), ("198.51.100.8", 50000)) == []  # not the player
    assert relay.send(rv.Opened(bytes(8)), PLAYER_ADDRESS) == []  # no such introduction
    sent = [relay.send(rv.Opened(peer.intro), PLAYER_ADDRESS) for _ in range(30)]
    introductions = [s for batch in sent for s in batch]
    assert 1 <= len(introductions) <= 10
    for introduce in introductions:
        assert introduce.address == HOST_ADDRESS
        assert rv.parse(introduce.datagram) == rv.Introduce(peer.intro, (PLAYER_ADDRESS, ("10.0.0.9", 50000)))
    relay.advance(16)  # the introduction expired
    assert relay.core.counts()["introductions"] == 0


def open_channel(relay: Harness):
    code = relay.register().code
    peer = relay.lookup(code)
    request = rv.ChannelRequest(peer.intro)
    sent = parsed(relay.send(request, PLAYER_ADDRESS))
    offers = {address: offer for offer, address, _ in sent}
    assert set(offers) == {PLAYER_ADDRESS, HOST_ADDRESS}
    assert all(isinstance(offer, rv.Offer) and offer.intro == peer.intro for offer in offers.values())
    assert len(sent[0][0].encode()) <= len(request.encode())
    return peer.intro, offers[PLAYER_ADDRESS], offers[HOST_ADDRESS]


def test_a_channel_forwards_both_ways_once_both_sides_are_bound():
    relay = Harness()
    intro, player_offer, host_offer = open_channel(relay)
    assert player_offer.port != host_offer.port and player_offer.token != host_offer.token
    (channel,) = relay.open
    assert relay.send(rv.ChannelRequest(intro), PLAYER_ADDRESS)[0].datagram == player_offer.encode()  # same
    player_port, host_port = (channel, PLAYER), (channel, HOST)
    player_nat, host_nat = ("198.51.100.7", 61111), ("203.0.113.5", 62222)  # other mappings: symmetric NATs
    # A token on the wrong side or garbage binds nothing.
    assert relay.send(rv.Bind(host_offer.token), player_nat, player_port) == []
    assert relay.send(b"\xff\xd0\xfa\xb9" + bytes(40), player_nat, player_port) == []
    (bound,) = relay.send(rv.Bind(player_offer.token), player_nat, player_port)
    assert (rv.parse(bound.datagram), bound.address, bound.port) == (
        rv.Bound(player_offer.token),
        player_nat,
        player_port,
    )
    assert relay.send(b"game datagram", player_nat, player_port) == []  # the host's side is not bound yet
    relay.send(rv.Bind(host_offer.token), host_nat, host_port)
    assert relay.send(rv.Bind(host_offer.token), ("192.0.2.66", 1), host_port) == []  # latched already
    (forwarded,) = relay.send(b"to the host", player_nat, player_port)
    assert forwarded == Send(b"to the host", host_nat, host_port)
    (forwarded,) = relay.send(b"to the player", host_nat, host_port)
    assert forwarded == Send(b"to the player", player_nat, player_port)
    assert relay.send(b"spoofed", ("192.0.2.66", 1), player_port) == []
    # No more OFFERs to the host once it is bound.
    assert [s.address for s in relay.send(rv.ChannelRequest(intro), PLAYER_ADDRESS)] == [PLAYER_ADDRESS]


def test_a_channel_drops_what_exceeds_its_rate_and_closes_when_idle():
    relay = Harness(RelayConfig(channel_rate=10_000, channel_idle=30.0))
    intro, player_offer, host_offer = open_channel(relay)
    (channel,) = relay.open
    relay.send(rv.Bind(player_offer.token), PLAYER_ADDRESS, (channel, PLAYER))
    relay.send(rv.Bind(host_offer.token), HOST_ADDRESS, (channel, HOST))
    forwarded = sum(len(relay.send(bytes(1000), PLAYER_ADDRESS, (channel, PLAYER))) for _ in range(50))
    assert 8 <= forwarded <= 10  # a second's worth of burst
    assert len(relay.send(bytes(1000), HOST_ADDRESS, (channel, HOST))) == 1  # each way has its own
    relay.now += 0.5
    forwarded = sum(len(relay.send(bytes(1000), PLAYER_ADDRESS, (channel, PLAYER))) for _ in range(50))
    assert 4 <= forwarded <= 5
    relay.advance(29)
    assert relay.open == {channel}
    relay.advance(2)
    assert relay.open == set() and relay.core.counts()["channels"] == 0
    assert relay.send(bytes(10), PLAYER_ADDRESS, (channel, PLAYER)) == []


def test_channels_are_only_for_the_introduced_player_and_limited():
    relay = Harness(RelayConfig(max_channels=3, channels_per_source=2))
    code = relay.register().code
    assert relay.send(rv.ChannelRequest(bytes(8)), PLAYER_ADDRESS) == []
    peer = relay.lookup(code)
    assert relay.send(rv.ChannelRequest(peer.intro), ("198.51.100.8", 50000)) == []
    for _ in range(5):
        relay.send(rv.ChannelRequest(relay.lookup(code).intro), PLAYER_ADDRESS)
        relay.now += 1
    assert len(relay.open) == 2
    other = ("192.0.2.1", 1)
    for _ in range(3):
        relay.send(rv.ChannelRequest(relay.lookup(code, other).intro), other)
    assert len(relay.open) == 3


def test_a_channel_whose_ports_could_not_be_opened_is_forgotten():
    relay = Harness()
    code = relay.register().code
    intro = relay.lookup(code).intro
    (request,) = relay.core.receive(rv.ChannelRequest(intro).encode(), PLAYER_ADDRESS, relay.now)
    assert relay.core.receive(rv.ChannelRequest(intro).encode(), PLAYER_ADDRESS, relay.now) == []  # pending
    relay.core.channel_failed(request.channel)
    assert relay.core.counts()["channels"] == 0
    assert isinstance(
        relay.core.receive(rv.ChannelRequest(intro).encode(), PLAYER_ADDRESS, relay.now)[0], OpenChannel
    )


def listing(relay: Harness, page: int = 0, game: str = "", address=PLAYER_ADDRESS) -> rv.Listing:
    request = rv.ListRequest(bytes(8), page, game)
    (reply,) = relay.send(request, address)
    assert len(reply.datagram) <= rv.LIST_SIZE == len(request.encode())
    return rv.parse(reply.datagram)


def test_listings_show_public_sessions_in_pages_that_fit():
    relay = Harness(RelayConfig(query_burst=1000, query_rate=1000))
    private = relay.register(("192.0.2.200", 1))
    assert listing(relay) == rv.Listing(bytes(8), 0, 1, [])
    # The largest entries there can be: a game and a name that fill the info, the most players.
    big = {"game": "big", "name": ""}
    while len(msgpack.packb({**big, "name": big["name"] + "é"})) <= rv.MAX_INFO:
        big["name"] += "é"
    for n in range(40):
        registered = relay.register((f"10.1.{n}.1", 1), public=True, info=big)
        relay.send(rv.Refresh(registered.code, registered.secret, 65535), (f"10.1.{n}.1", 1))
        relay.register((f"10.2.{n}.1", 1), public=True, info={**INFO, "name": f"table {n}"})
    relay.now += 1  # a listing is made again at most once a second
    first = listing(relay)
    assert first.pages > 1 and private.code not in {entry["code"] for entry in first.sessions}
    seen = [entry for page in range(first.pages) for entry in listing(relay, page).sessions]
    assert len(seen) == 80 and len({entry["code"] for entry in seen}) == 80
    assert set(seen[0]) == {"code", "game", "name", "players", "max_players", "password"}
    pong = [
        entry
        for page in range(listing(relay, 0, "pong").pages)
        for entry in listing(relay, page, "pong").sessions
    ]
    assert len(pong) == 40 and all(entry["game"] == "pong" for entry in pong)
    assert listing(relay, 200).sessions == []


def test_listing_asks_are_rate_limited():
    relay = Harness()
    answered = sum(len(relay.send(rv.ListRequest(bytes(8)), PLAYER_ADDRESS)) for _ in range(100))
    assert answered < 20


def test_room_codes_cannot_be_enumerated_quickly():
    relay = Harness()
    code = relay.register().code
    nonce, prober = bytes(8), ("192.0.2.50", 4000)
    (challenge,) = relay.send(rv.Lookup(nonce, "ABCDEF"), prober)
    cookie = rv.parse(challenge.datagram).cookie
    answers = {reason: 0 for reason in rv.NOT_FOUND_REASONS}
    guesses = ("".join(random.Random(n).choices(rv.CODE_ALPHABET, k=6)) for n in range(10**9))
    for _ in range(600):  # a minute of 10 guesses a second, cookie renewed as needed
        for _ in range(10):
            reply = rv.parse(relay.send(rv.Lookup(nonce, next(guesses), cookie), prober)[0].datagram)
            if isinstance(reply, rv.Challenge):
                cookie = reply.cookie
            else:
                answers[reply.reason] += 1
        relay.now += 1 / 10
    assert answers[rv.UNKNOWN_CODE] <= 2 + 60 * 5 / 4  # the burst, then one miss per 4/5 s
    assert answers[rv.SLOW_DOWN] > 400
    # Another address of the same IPv6 /64 shares the limit; the host's players do not suffer meanwhile.
    six = Harness()
    six_code = six.register().code
    misses = sum(
        isinstance(six.lookup("ZZZZZZ", (f"2001:db8:1:2::{n:x}", 1)), rv.NotFound) for n in range(40)
    )
    assert misses == 40
    assert six.lookup(six_code, ("2001:db8:1:2::ffff", 1)).reason == rv.SLOW_DOWN
    assert isinstance(six.lookup(six_code, ("2001:db8:1:3::1", 1)), rv.Peer)
    assert isinstance(relay.lookup(code), rv.Peer)


def test_memory_stays_bounded_under_floods():
    config = RelayConfig(max_sessions=50, sessions_per_source=4, max_introductions=30, max_sources=64)
    relay = Harness(config)
    for n in range(40):  # one source registers from many ports
        relay.register(("192.0.2.1", 1000 + n))
        relay.now += 0.5
    assert relay.core.counts()["sessions"] == 4
    refused = relay.register(("192.0.2.1", 2000))
    assert refused.reason == rv.RELAY_FULL
    for n in range(100):  # many sources
        relay.register((f"10.3.{n}.1", 1))
    assert relay.core.counts()["sessions"] == 50
    code = relay.register(("10.3.0.1", 1)).code  # an existing registration still renews
    for n in range(100):
        relay.lookup(code, (f"10.4.{n}.1", 1))
    counts = relay.core.counts()
    assert counts["introductions"] == 30 and counts["sources"] <= 64


def test_garbage_and_mangled_messages_are_dropped_quietly():
    relay = Harness()
    registered = relay.register()
    samples = [
        rv.Register(bytes(8), info=INFO).encode(),
        rv.Lookup(bytes(8), registered.code).encode(),
        rv.Refresh(registered.code, registered.secret).encode(),
        rv.ChannelRequest(bytes(8)).encode(),
        rv.ListRequest(bytes(8)).encode(),
        rv.Bind(bytes(8)).encode(),
    ]
    noise = random.Random(7)
    for _ in range(3000):
        datagram = bytearray(noise.choice(samples))
        for _ in range(noise.randint(1, 4)):
            datagram[noise.randrange(len(datagram))] = noise.randrange(256)
        datagram = bytes(datagram[: noise.randint(0, len(datagram))])
        for port in (None, (1, PLAYER)):
            for output in relay.core.receive(datagram, ("192.0.2.9", 9), relay.now, port):
                assert not isinstance(output, Send) or len(output.datagram) <= len(datagram)
    for kind in (
        rv.Challenge(bytes(8), bytes(16)),
        rv.Registered(bytes(8), "ABCDEF", bytes(16), 1, HOST_ADDRESS),
    ):
        assert relay.send(kind, PLAYER_ADDRESS) == []  # the relay's own messages, sent to it


def test_no_reply_to_an_unverified_sender_is_larger_than_its_request():
    relay = Harness()
    registered = relay.register(public=True)
    intro = relay.lookup(registered.code).intro
    stranger = ("192.0.2.77", 7)
    requests = [
        rv.Register(bytes(8), info=INFO),
        rv.Register(bytes(8), code=registered.code, secret=bytes(16), private=LAN * 4, info=INFO),
        rv.Lookup(bytes(8), registered.code, private=(("2001:db8::1", 1),) * 4),
        rv.Refresh(registered.code, bytes(16)),
        rv.Refresh("ZZZZZZ", bytes(16)),
        rv.Unregister(registered.code, bytes(16)),
        rv.Opened(intro),
        rv.ChannelRequest(intro),
        rv.ListRequest(bytes(8)),
    ]
    for request in requests:
        for output in relay.send(request, stranger):
            assert output.address != stranger or len(output.datagram) <= len(request.encode()), request


def test_relay_config_is_checked():
    with pytest.raises(ValueError, match="max_sessions"):
        RelayConfig(max_sessions=0)
    with pytest.raises(ValueError, match="query_burst"):
        RelayConfig(query_burst=2, miss_cost=4)
    with pytest.raises(ValueError):
        RelayCore(b"short")


# -- over loopback ---------------------------------------------------------------------------------


def _exchange(sock: socket.socket, datagram: bytes, to: tuple) -> bytes:
    sock.sendto(datagram, to)
    return sock.recvfrom(4096)[0]


def _ask(sock: socket.socket, message_type, to: tuple, **fields):
    nonce = bytes(range(8))
    challenge = rv.parse(_exchange(sock, message_type(nonce=nonce, **fields).encode(), to))
    return rv.parse(
        _exchange(sock, message_type(nonce=nonce, cookie=challenge.cookie, **fields).encode(), to)
    )


def _run_through_a_relay(relay_host: str, host: str, family: int) -> None:
    relay = Relay(relay_host, 0)
    relay.run_in_thread()
    sockets = [socket.socket(family, socket.SOCK_DGRAM) for _ in range(4)]
    try:
        game_host, player, host_side, player_side = sockets
        for sock in sockets:
            sock.settimeout(3)
            sock.bind((host, 0))
        to = (host, relay.port)
        registered = _ask(game_host, rv.Register, to, info=INFO)
        assert registered.public == game_host.getsockname()[:2]
        peer = _ask(player, rv.Lookup, to, code=registered.code)
        assert isinstance(peer, rv.Peer) and peer.endpoints == (game_host.getsockname()[:2],)
        player.sendto(rv.Opened(peer.intro).encode(), to)
        assert rv.parse(game_host.recvfrom(4096)[0]) == rv.Introduce(peer.intro, (player.getsockname()[:2],))
        player.sendto(rv.ChannelRequest(peer.intro).encode(), to)
        player_offer, host_offer = rv.parse(player.recvfrom(4096)[0]), rv.parse(game_host.recvfrom(4096)[0])
        # Each side binds from another socket, as behind a router that maps each destination anew.
        for sock, offer in ((player_side, player_offer), (host_side, host_offer)):
            bound = rv.parse(_exchange(sock, rv.Bind(offer.token).encode(), (host, offer.port)))
            assert bound == rv.Bound(offer.token)
        player_side.sendto(b"join, please", (host, player_offer.port))
        data, sender = host_side.recvfrom(4096)
        assert (data, sender[:2]) == (b"join, please", (host, host_offer.port))
        host_side.sendto(b"welcome", (host, host_offer.port))
        data, sender = player_side.recvfrom(4096)
        assert (data, sender[:2]) == (b"welcome", (host, player_offer.port))
        assert relay.counts()["channels"] == 1
    finally:
        for sock in sockets:
            sock.close()
        relay.shutdown()
    for port in (relay.port, player_offer.port, host_offer.port):  # every socket of the relay is closed
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((host, port))


@pytest.mark.timeout(15)
def test_a_relay_introduces_and_forwards_over_ipv4_loopback():
    _run_through_a_relay("127.0.0.1", "127.0.0.1", socket.AF_INET)


@needs_ipv6_loopback
def test_a_relay_introduces_and_forwards_over_ipv6_loopback():
    _run_through_a_relay("::1", "::1", socket.AF_INET6)


@pytest.mark.timeout(15)
@needs_ipv6_loopback
def test_a_dual_stack_relay_serves_ipv4_peers():
    # An IPv6 socket on the IPv4 loopback mapped into IPv6 sees IPv4 peers as "::ffff:127.0.0.1", as one
    # listening on "::" does, without listening beyond loopback.
    _run_through_a_relay("::ffff:127.0.0.1", "127.0.0.1", socket.AF_INET)


@pytest.mark.timeout(20)
def test_the_command_line_relay_ends_cleanly_on_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "pygase.relay", "--host", "127.0.0.1", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stderr.readline()
        assert "relay listening on 127.0.0.1 port" in line
        process.terminate()
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()

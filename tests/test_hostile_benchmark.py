"""benchmarks/hostile.py: the pieces its attacks stand on do what the attacks take them to do.

An attack that sends packages the server cannot read, or derives keys another way than pygase, would
report `effect=none` for the wrong reason; these checks are quick and need no processes or sockets.
"""

from __future__ import annotations

import importlib.util
import re
import socket
import struct
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from pygase import _crypto as crypto
from pygase._connection import SHUTDOWN_EVENT
from pygase.connection import ClientPackage

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def hostile():
    sys.path.insert(0, str(BENCHMARKS))  # (for its `_children`)
    spec = importlib.util.spec_from_file_location("hostile_benchmark", BENCHMARKS / "hostile.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (its dataclasses look their module up)
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)
        sys.path.remove(str(BENCHMARKS))


def test_packages_built_by_hand_read_as_the_events_ids_and_floor_they_were_built_with(hostile):
    entries = [hostile._entry("HELD", [hostile._nest(26)] * 7, {}, event_id) for event_id in (2, 3, 4, 5)]
    package = ClientPackage.from_datagram(hostile._plain_package(7, 5, 0b101, entries, 1, 42))
    assert [(event.type, event_id) for event, event_id in package._entries] == [
        ("HELD", 2),
        ("HELD", 3),
        ("HELD", 4),
        ("HELD", 5),
    ]
    assert package._entries[0][0].handler_args == [hostile._nest(26)] * 7
    assert (int(package.header.sequence), int(package.header.ack), package.event_floor) == (7, 5, 1)
    assert int(package.time_order) == 42


def test_fifty_three_forged_shutdowns_fit_in_one_package(hostile):
    entries = [hostile._entry(SHUTDOWN_EVENT, [bytes(range(16))], {}, 0)] * 53
    datagram = hostile._plain_package(65535, 65535, 0xFFFFFFFF, entries, 1, 0)
    assert len(datagram) <= ClientPackage._max_size
    assert len(ClientPackage.from_datagram(datagram).events) == 53


def test_the_sniffers_key_derivation_is_pygases(hostile):
    cookie, client_share, server_share = bytes(16), bytes(range(32)), bytes(range(32, 64))
    scalar = bytes(range(1, 33))
    theirs = crypto.share(bytes(range(2, 34)), crypto.password_point("4711", cookie))
    secret = X25519PrivateKey.from_private_bytes(scalar).exchange(X25519PublicKey.from_public_bytes(theirs))
    expected = crypto.session_keys(scalar, theirs, client_share, server_share, cookie)
    assert hostile._session_keys_from(secret, cookie, client_share, server_share) == expected


def test_the_sniffer_opens_a_handshake_sealed_with_the_keys_it_derives(hostile):
    keys = (bytes(32), bytes(range(32)))
    zero = bytes(crypto.CONNECTION_ID_SIZE)
    proof = crypto.Cipher(keys[0], keys[1], zero).seal(b"pygase join", counter=0)
    welcome = crypto.Cipher(keys[1], keys[0], zero).seal(b"welcome", counter=0)
    assert hostile._opens(keys, proof, welcome) == "the CONFIRM's proof"
    assert hostile._opens(keys, b"\x00" * len(proof), welcome) == "the WELCOME"
    assert hostile._opens(keys[::-1], proof, welcome) is None


def test_a_forged_ip_packet_says_what_it_claims(hostile):
    packet = hostile._ip_udp(("127.0.0.1", 4242), ("127.0.0.2", 80), b"hello")
    version, _, total, _, _, _, protocol, _, source, target = struct.unpack("!BBHHHBBH4s4s", packet[:20])
    assert (version, total, protocol) == (0x45, len(packet), socket.IPPROTO_UDP)
    assert (socket.inet_ntoa(source), socket.inet_ntoa(target)) == ("127.0.0.1", "127.0.0.2")
    assert struct.unpack("!HHHH", packet[20:28]) == (4242, 80, 13, 0)
    assert packet[28:] == b"hello"


def test_the_attacks_are_the_default_part_and_the_others_stay_available(hostile):
    assert hostile.parse_arguments([]).parts == ["attacks"]
    assert hostile.parse_arguments(["--only", "garbage"]).parts == ["garbage"]
    assert hostile.parse_arguments(["--only", "memory"]).parts == ["memory"]
    assert hostile.parse_arguments(["--all"]).parts == ["garbage", "memory", "attacks"]
    quick = hostile.parse_arguments(["--quick"])
    assert quick.attack_window < hostile.ATTACK_WINDOW


def test_an_attack_line_has_the_agreed_form(hostile, capsys):
    bench = hostile.HostileBenchmark(hostile.parse_arguments([]))
    window = hostile.Window(
        seconds=5.0,
        honest=98.25,
        rates=[49.0],
        connected_before=10,
        connected_after=10,
        server_cpu=12.3,
        others=50.0,
        ours=20.0,
        honest_bytes=28_000.0,
        rss_start_mb=39.0,
        rss_max_mb=41.26,
    )
    bench.report_attack("held_back_events", window, [])
    bench.report_attack("slot_squatting", window, ["newcomer_refused_server_full", "honest_rate_87pct"])
    lines = capsys.readouterr().out.splitlines()
    pattern = r"attack=[a-z_]+ honest_rate_pct=\d+\.\d server_rss_mb=\d+\.\d server_cpu_pct=\d+ effect=\S+"
    assert all(re.fullmatch(pattern, line) for line in lines)
    assert lines[0].endswith("effect=none")
    assert lines[1].endswith("effect=newcomer_refused_server_full,honest_rate_87pct")
    assert bench.attack_results == [
        ("held_back_events", []),
        ("slot_squatting", ["newcomer_refused_server_full", "honest_rate_87pct"]),
    ]

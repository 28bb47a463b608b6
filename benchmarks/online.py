"""How long joining by room code takes, in the namespace testbed (issue 13).

    sudo python benchmarks/online.py [--joins 20]

A relay on a public address, a host behind one home router (endpoint-independent NAT that tracks
unsolicited packets: the pessimistic kind for punching) and players behind another: one router like the
host's (the route is direct) and one that gives every destination a new port (the relay forwards). Each
player is a new process that joins by code; the figure is the time from `connect_in_thread(room=...)` to
its first game state (the process's own start-up is not in it). The testbed has no added latency (the
kernel here has no netem), so the figures are what the protocol itself takes: its round trips and its
waits (the relayed join waits `PUNCH_PATIENCE`, 2 s, for a punch before it asks for the channel).

Prints `join_direct_seconds_median=<s>` and `join_relayed_seconds_median=<s>` (and their ranges).
Needs root, `ip` and `nft` (tests/netns.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from netns import Testbed, testbed_unavailable  # noqa: E402
from online_agents import host_game, play, start_relay  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joins", type=int, default=20, help="joins per route (default 20)")
    args = parser.parse_args()
    reason = testbed_unavailable()
    if reason:
        sys.exit(f"benchmarks/online.py cannot run: {reason}")
    with Testbed() as net:
        relay_node = net.public_host("relay")
        home = net.home("host", nat="eim", inbound="track")
        direct_home = net.home("direct", nat="eim", inbound="track")
        # (a relay opens at most 8 channels per source, and one stays open 30 s after its game: several
        # homes take turns at the relayed joins)
        relayed_homes = [net.home(f"relayed{i}", nat="random") for i in range(1 + args.joins // 8)]
        relay, relay_address = start_relay(relay_node)
        host, registered = host_game(home.host("ann"), relay_address)
        direct_player = direct_home.host("bob")
        relayed_players = [relayed.host(f"cy{i}") for i, relayed in enumerate(relayed_homes)]
        times: dict[str, list[float]] = {"direct": [], "relay": []}
        for join in range(args.joins):
            for player in (direct_player, relayed_players[join % len(relayed_players)]):
                result = play(player, "room", registered["code"], relay_address)
                times[result["route"]].append(result["first_state"])
        host.finish()
        counts = relay.finish()
    for route, name in (("direct", "join_direct_seconds"), ("relay", "join_relayed_seconds")):
        measured = times[route]
        if not measured:
            print(f"{name}_median=nan  (no join took this route)")
            continue
        print(
            f"{name}_median={statistics.median(measured):.3f}  "
            f"(min {min(measured):.3f}, max {max(measured):.3f}, {len(measured)} joins)"
        )
    print(f"relay_channels_open_at_end={counts.get('channels')}  (one per relayed join, until idle)")


if __name__ == "__main__":
    main()

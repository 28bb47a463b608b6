"""The codec is used from several threads at once (game loop, network thread, callers of dispatch_event)."""

from __future__ import annotations

import sys
import threading

from pygase import _codec
from pygase.gamestate import GameStateUpdate


def test_packing_in_two_threads_at_once_gives_correct_bytes():
    failures: list[str] = []
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads as often as possible, in the middle of packing

    def work(tag: str) -> None:
        for i in range(3000):
            update = GameStateUpdate(i + 1, tag=tag, entities={j: {"x": float(j)} for j in range(20)})
            try:
                back = GameStateUpdate._from_dict(_codec.unpack(update.to_bytes()))
            except ValueError as error:
                failures.append(str(error))
                continue
            if back.tag != tag or back.time_order != i + 1 or back.entities != update.entities:
                failures.append("wrong content")

    try:
        threads = [threading.Thread(target=work, args=(tag,)) for tag in "AB"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        sys.setswitchinterval(previous)
    assert failures == []

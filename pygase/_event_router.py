"""Where a server's events go: its own handlers, or the event wire (its game loop), with their context.

`event_router` makes the `on_event(event, address, context)` a `pygase._transport.ServerProtocol` calls
for every event and every player coming and going. A player that joins waits until its `CLIENT_JOINED`
handler ran: the router tells the protocol to let it in, or to turn it away if the handler raised
`pygase.JoinRefused`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any, Callable, Optional

from pygase._transport import call_user_function
from pygase.errors import JoinRefused
from pygase.event import CLIENT_JOINED, Event, UniversalEventHandler

__all__ = ["event_router"]

logger = logging.getLogger("pygase.backend")


def event_router(
    handler: UniversalEventHandler, event_wire: Any, protocol: Callable[[], Any]
) -> Callable[[Event, tuple, dict], None]:
    """The server's `on_event`: events go to `handler` if it has a handler for their type (or there is
    no event wire), else to `event_wire._push_event`; `protocol()` is the server's `ServerProtocol`."""
    wire_context = event_wire is not None and _wire_accepts_context(event_wire)

    def on_event(event: Event, address: tuple, context: dict) -> None:
        decide = None
        if event.type == CLIENT_JOINED:  # the player waits until its handler ran

            def decide(refusal: Optional[str], player_id: int = context["player_id"]) -> None:
                protocol().decide_join(player_id, refusal)

        if event_wire is None or handler.has_event_type(event.type):
            if decide is None:
                call_user_function(handler.handle, event, client_address=address, **context)
            else:
                _run_join_handler(handler, event, dict(context, client_address=address), decide)
        elif wire_context:
            event_wire._push_event(event, client_address=address, context=context, on_done=decide)
        else:  # an event wire of the user's own that takes no context
            event_wire._push_event(event)
            if decide is not None:
                decide(None)

    return on_event


def _run_join_handler(
    handler: UniversalEventHandler, event: Event, context: dict, decide: Callable[[Optional[str]], None]
) -> None:
    """Run a server's own CLIENT_JOINED handler (plain or coroutine), then let the player in, or turn it
    away if it raised `JoinRefused`; anything else it raises is logged and the player is let in."""

    def finish(error: Optional[BaseException]) -> None:
        if isinstance(error, JoinRefused):
            decide(error.reason)
            return
        if error is not None:
            logger.error("error in the CLIENT_JOINED handler (the player is let in)", exc_info=error)
        decide(None)

    try:
        result = handler.handle(event, **context)
    except Exception as error:
        finish(error)
        return
    if not inspect.isawaitable(result):
        finish(None)
        return

    async def wait() -> None:
        try:
            await result
        except Exception as error:
            finish(error)
            return
        finish(None)

    task = asyncio.get_running_loop().create_task(wait())
    _join_tasks.add(task)
    task.add_done_callback(_join_tasks.discard)


_join_tasks: set = set()  # (a task nobody holds may be collected before it ends)


def _wire_accepts_context(event_wire: Any) -> bool:
    try:
        parameters = inspect.signature(event_wire._push_event).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is p.VAR_KEYWORD or p.name == "client_address" for p in parameters)

"""The server side of the protocol core: every client connection behind one socket, without the socket.

`ServerCore` takes datagrams with their sender's address and the time, and hands back datagrams with
their destination, the events to handle and the time of its next timer. `pygase._transport` drives it.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional

from pygase._packages import ClientPackage
from pygase.connection import (
    DISCONNECT_EVENT,
    SHUTDOWN_EVENT,
    ConnectionStatus,
    ServerConnection,
)
from pygase.event import RESERVED_PREFIX, Event
from pygase.utils import Sqn

logger = logging.getLogger("pygase.backend")

_DISCONNECTED = ConnectionStatus.get("Disconnected")


class ServerCore:
    """All client connections of one server and the rules between them (host rights, joins, leaves)."""

    def __init__(self, game_state_store: Any, event_handler: Any) -> None:
        self.game_state_store = game_state_store
        self.event_handler = event_handler
        self.event_wire: Any = None
        self.connections: dict[tuple, ServerConnection] = {}
        self.host_client: Optional[tuple] = None
        self.shutdown_requested = False
        self._leaving: set[tuple] = set()

    def receive_datagram(self, datagram: bytes, address: tuple, now: float) -> list:
        """Take a datagram from `address`; return the user events it carries.

        Raises:
            ValueError: for a malformed datagram (`ProtocolIDMismatchError` for a foreign one)
            DuplicateSequenceError: for a package received before
        """
        package = ClientPackage.from_datagram(datagram)
        connection = self.connections.get(address)
        if connection is None:
            connection = ServerConnection(
                address, self.event_handler, self.game_state_store, Sqn(0), self.event_wire
            )
            self.connections[address] = connection
            if self.host_client is None:
                self.host_client = address
            logger.info(
                "client %s:%s connected%s",
                address[0],
                address[1],
                " (host)" if address == self.host_client else "",
            )
        connection.bytes_received += len(datagram)
        events = connection._receive_package(package, now)
        user_events = []
        for event in events:
            if event.type == DISCONNECT_EVENT:
                self._leave(connection, now)
            elif event.type == SHUTDOWN_EVENT:
                if address == self.host_client:
                    logger.info("host client %s:%s asked the server to shut down", *address[:2])
                    self.shutdown_requested = True
                    self._leave(connection, now)
                else:
                    logger.warning(
                        "client %s:%s is not the host and may not shut the server down", *address[:2]
                    )
            elif event.type.startswith(RESERVED_PREFIX):
                logger.debug("ignoring unknown control event %r from %s", event.type, address)
            else:
                user_events.append(event)
        return user_events

    def _leave(self, connection: ServerConnection, now: float) -> None:
        # Acknowledge at once so the client can close, then forget the connection.
        connection._ack_due_at = now
        self._leaving.add(connection.remote_address)

    def datagrams_for(self, address: tuple, now: float) -> list:
        """Return what is due for one client right now (after it sent something)."""
        connection = self.connections.get(address)
        if connection is None:
            return []
        datagrams = connection.datagrams_to_send(now)
        if address in self._leaving:
            self._leaving.discard(address)
            del self.connections[address]
            connection.status = _DISCONNECTED
            logger.info("client %s:%s disconnected", *address[:2])
        return datagrams

    def datagrams_to_send(self, now: float) -> list:
        """Run every connection's timers and return all due datagrams as (datagram, address) pairs."""
        outgoing: list[tuple[bytes, tuple]] = []
        for address, connection in list(self.connections.items()):
            connection.handle_timer(now)
            if connection.status == _DISCONNECTED:
                del self.connections[address]
                continue
            for datagram in connection.datagrams_to_send(now):
                outgoing.append((datagram, address))
        return outgoing

    def get_timer(self) -> Optional[float]:
        """Return the earliest time any connection needs attention."""
        timers = [t for t in (c.get_timer() for c in self.connections.values()) if t is not None]
        return min(timers) if timers else None

    def take_calls(self, address: Optional[tuple] = None) -> list:
        """Return the callbacks the connections want run (only those of `address` if given)."""
        if address is not None:
            connection = self.connections.get(address)
            return connection.take_calls() if connection is not None else []
        calls = []
        for connection in self.connections.values():
            calls.extend(connection.take_calls())
        return calls

    def dispatch_event(
        self,
        event: Event,
        target_client: Any = "all",
        retries: int = 0,
        ack_callback: Optional[Callable[..., Any]] = None,
    ) -> None:
        """Queue an event for one client (by address) or for `'all'`."""
        if target_client == "all":
            targets = list(self.connections.values())
        else:
            connection = self.connections.get(tuple(target_client))
            if connection is None:
                logger.warning("cannot send event %r: no client at %s", event.type, target_client)
                return
            targets = [connection]
        for connection in targets:
            connection.dispatch_event(event, ack_callback=ack_callback, retries=retries)

    def shutdown_datagrams(self, now: float) -> list:
        """Tell every client that the server shuts down; return the datagrams to send."""
        outgoing: list[tuple[bytes, tuple]] = []
        for address, connection in self.connections.items():
            connection.dispatch_event(Event(SHUTDOWN_EVENT))
            outgoing.extend((d, address) for d in connection.datagrams_to_send(now))
            connection.take_calls()
        return outgoing

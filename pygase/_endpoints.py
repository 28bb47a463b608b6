"""Endpoints on the wire: an IPv4 or IPv6 address and a port in 7 or 19 bytes.

An endpoint is a family byte (4 or 6), the address (4 or 16 bytes) and the port (2). An IPv4 address that a
dual-stack socket reports mapped into IPv6 ("::ffff:1.2.3.4") is written as IPv4.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

__all__ = [
    "Endpoint",
    "MAX_ENDPOINTS",
    "plain_address",
    "same_endpoint",
    "pack_endpoint",
    "pack_endpoints",
    "unpack_endpoint",
    "unpack_endpoints",
]

Endpoint = tuple  # (host, port): an IPv4 or IPv6 address as a str, and a port
#: Most endpoints one side tells the other (its public one and up to three on its LANs).
MAX_ENDPOINTS = 4


def plain_address(host: str) -> str:
    """`host` with an IPv4 address mapped into IPv6 written as IPv4 (what a dual-stack socket reports)."""
    if host.startswith("::ffff:") and "." in host:
        return host[7:]
    return host


def same_endpoint(address: tuple, other: tuple) -> bool:
    """Whether two addresses are the same (an IPv4 address mapped into IPv6 equal to the IPv4 one)."""
    return address[1] == other[1] and plain_address(str(address[0])) == plain_address(str(other[0]))


def pack_endpoint(endpoint: Endpoint) -> bytes:
    host, port = plain_address(str(endpoint[0])), int(endpoint[1])
    address = ipaddress.ip_address(host.split("%", 1)[0])
    return bytes([address.version]) + address.packed + struct.pack("!H", port)


def pack_endpoints(endpoints: Any) -> bytes:
    endpoints = list(endpoints)[:MAX_ENDPOINTS]
    return bytes([len(endpoints)]) + b"".join(pack_endpoint(endpoint) for endpoint in endpoints)


def unpack_endpoint(data: bytes, offset: int) -> tuple[Endpoint, int]:
    """The endpoint at `offset` of `data` and the offset after it.

    Raises:
        ValueError: if there is none
    """
    size = {4: 4, 6: 16}.get(data[offset] if offset < len(data) else 0)
    if size is None:
        raise ValueError("malformed endpoint")
    end = offset + 1 + size + 2
    if end > len(data):
        raise ValueError("truncated endpoint")
    host = str(ipaddress.ip_address(bytes(data[offset + 1 : offset + 1 + size])))
    (port,) = struct.unpack("!H", data[end - 2 : end])
    return (host, port), end


def unpack_endpoints(data: bytes, offset: int) -> tuple[tuple[Endpoint, ...], int]:
    if offset >= len(data):
        raise ValueError("truncated endpoints")
    count = data[offset]
    if count > MAX_ENDPOINTS:
        raise ValueError("too many endpoints")
    offset += 1
    endpoints = []
    for _ in range(count):
        endpoint, offset = unpack_endpoint(data, offset)
        endpoints.append(endpoint)
    return tuple(endpoints), offset

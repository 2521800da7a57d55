"""Who is asking: the peer, or the client a trusted proxy names. Pure."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The address to rate-limit by.

    X-Forwarded-For is believed only when the peer is a trusted proxy, and then
    read from the right, skipping further trusted proxies, so a client cannot
    pick its own address by sending the header itself.
    """
    peer = peer or "unknown"
    if not forwarded_for or not _trusted(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a garbled header is worth nothing
    return hops[0] if hops else peer


IPV6_PREFIX = 64  # one subscriber's network: ISPs hand out a /64 (or more) per household


def client_identity(address: str) -> str:
    """Who a client counts as for the rate limit and the fair queue: an IPv4 address
    itself, an IPv6 address by its /64 (any host can pick any of its 2^64 addresses).

    An IPv4 address mapped into IPv6 (`::ffff:198.51.100.7`) counts as that IPv4 address;
    anything that is not an address (a garbled peer, `unknown`) counts as itself.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip)


def trusted_peer(peer: str | None, trusted: Sequence[Network]) -> bool:
    """Whether the peer is one of the reverse proxies whose headers are believed."""
    return peer is not None and _trusted(peer, trusted)

"""client_address: X-Forwarded-For believed only from trusted proxies, read right to left."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ytmp3.api.client_address import Network, client_address, client_identity

TRUSTED: tuple[Network, ...] = (
    ipaddress.ip_network("10.0.0.0/8"),
    ipaddress.ip_network("127.0.0.1/32"),
    ipaddress.ip_network("::1/128"),
    ipaddress.ip_network("fd00::/8"),
)
PROXY = "10.0.0.1"
CLIENT = "203.0.113.5"


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        # no proxy in front: the header is the client's own word, ignored
        (CLIENT, "198.51.100.1", CLIENT),
        (CLIENT, "10.0.0.9", CLIENT),
        ("198.51.100.7", f"{CLIENT}, 10.0.0.2", "198.51.100.7"),
        # a trusted proxy, no header
        (PROXY, None, PROXY),
        (PROXY, "", PROXY),
        # a trusted proxy names the client
        (PROXY, CLIENT, CLIENT),
        ("127.0.0.1", CLIENT, CLIENT),
        ("::1", CLIENT, CLIENT),
        (PROXY, f"  {CLIENT}  ", CLIENT),
        # the client sent its own header first: only the rightmost untrusted hop counts
        (PROXY, f"1.1.1.1, {CLIENT}", CLIENT),
        (PROXY, f"1.1.1.1,{CLIENT}", CLIENT),
        # further trusted proxies are skipped
        (PROXY, f"{CLIENT}, 10.0.0.2", CLIENT),
        (PROXY, f"8.8.8.8, {CLIENT}, 10.0.0.2, 127.0.0.1", CLIENT),
        (PROXY, f"{CLIENT}, fd00::5", CLIENT),
        # IPv6, written in its normal form
        (PROXY, "2001:DB8:0:0::1", "2001:db8::1"),
        ("::1", "2001:db8::7, ::1", "2001:db8::7"),
        # garbage is worth nothing: the peer
        (PROXY, "garbage", PROXY),
        (PROXY, "unknown", PROXY),
        (PROXY, f"{CLIENT}:1234", PROXY),
        (PROXY, "[2001:db8::1]", PROXY),
        (PROXY, f"{CLIENT}, nonsense", PROXY),
        (PROXY, f"{CLIENT}, nonsense, 10.0.0.3", PROXY),
        (PROXY, "999.1.1.1", PROXY),
        (PROXY, ", ,", PROXY),
        (PROXY, "\r\n", PROXY),
        # only trusted hops: the furthest one
        (PROXY, "10.0.0.5, 10.0.0.6", "10.0.0.5"),
        # no peer at all
        (None, None, "unknown"),
        (None, CLIENT, "unknown"),
        ("", CLIENT, "unknown"),
    ],
)
def test_examples(peer: str | None, forwarded_for: str | None, expected: str) -> None:
    assert client_address(peer, forwarded_for, TRUSTED) == expected


def test_nothing_trusted_means_the_peer() -> None:
    assert client_address("127.0.0.1", CLIENT, ()) == "127.0.0.1"
    assert client_address(PROXY, CLIENT, []) == PROXY


def test_a_trusted_looking_but_unparsable_peer_is_not_trusted() -> None:
    assert client_address("10.0.0.1:80", CLIENT, TRUSTED) == "10.0.0.1:80"


untrusted_ips = st.one_of(
    st.ip_addresses(network="203.0.113.0/24"),
    st.ip_addresses(network="198.51.100.0/24"),
    st.ip_addresses(network="2001:db8::/32"),
)
trusted_ips = st.one_of(
    st.ip_addresses(network="10.0.0.0/8"),
    st.just(ipaddress.ip_address("127.0.0.1")),
    st.just(ipaddress.ip_address("::1")),
)


@given(untrusted_ips, st.one_of(st.none(), st.text()))
def test_untrusted_peer_is_never_overridden(
    peer: ipaddress.IPv4Address | ipaddress.IPv6Address, forwarded_for: str | None
) -> None:
    assert client_address(str(peer), forwarded_for, TRUSTED) == str(peer)


@given(
    trusted_ips,
    st.lists(st.one_of(untrusted_ips, trusted_ips), max_size=3),
    untrusted_ips,
    st.lists(trusted_ips, max_size=3),
)
def test_rightmost_untrusted_hop_wins(
    peer: ipaddress.IPv4Address | ipaddress.IPv6Address,
    spoofed: list[ipaddress.IPv4Address | ipaddress.IPv6Address],
    client: ipaddress.IPv4Address | ipaddress.IPv6Address,
    proxies: list[ipaddress.IPv4Address | ipaddress.IPv6Address],
) -> None:
    header = ", ".join(str(hop) for hop in [*spoofed, client, *proxies])
    assert client_address(str(peer), header, TRUSTED) == str(client)


@given(trusted_ips, st.text())
def test_trusted_peer_with_any_header_gives_an_address(
    peer: ipaddress.IPv4Address | ipaddress.IPv6Address, forwarded_for: str
) -> None:
    result = client_address(str(peer), forwarded_for, TRUSTED)
    assert result == str(peer) or ipaddress.ip_address(result) is not None
    assert "," not in result
    assert result == result.strip()


@pytest.mark.parametrize(
    ("address", "identity"),
    [
        # IPv4: the address itself
        ("203.0.113.5", "203.0.113.5"),
        ("10.0.0.1", "10.0.0.1"),
        # IPv6: its /64, whatever the host part and however it is written
        ("2001:db8:aa:bb::1", "2001:db8:aa:bb::/64"),
        ("2001:db8:aa:bb:ffff:ffff:ffff:ffff", "2001:db8:aa:bb::/64"),
        ("2001:DB8:AA:BB:0:0:0:7", "2001:db8:aa:bb::/64"),
        ("2001:db8:aa:bc::1", "2001:db8:aa:bc::/64"),
        ("::1", "::/64"),
        # an IPv4 client seen through an IPv6 socket is that IPv4 client
        ("::ffff:203.0.113.5", "203.0.113.5"),
        # not an address: itself (a garbled peer, no peer)
        ("unknown", "unknown"),
        ("10.0.0.1:80", "10.0.0.1:80"),
    ],
)
def test_client_identity(address: str, identity: str) -> None:
    assert client_identity(address) == identity


@given(st.ip_addresses(v=6, network="2001:db8::/32"), st.integers(0, 2**64 - 1))
def test_every_address_of_a_64_is_one_client(address: ipaddress.IPv6Address, host: int) -> None:
    neighbour = ipaddress.IPv6Address((int(address) >> 64 << 64) | host)
    assert client_identity(str(address)) == client_identity(str(neighbour))


@given(st.ip_addresses(v=4))
def test_ipv4_addresses_count_apart(address: ipaddress.IPv4Address) -> None:
    assert client_identity(str(address)) == str(address)

"""HttpCheckPolicy: its settings, and which addresses it refuses (pure, no network)."""

from __future__ import annotations

import ipaddress

import pytest

import trellis_actors as ta


class TestPolicy:
    """HttpCheckPolicy refuses settings that make no sense, saying which."""

    @pytest.mark.parametrize(
        ("options", "match"),
        [
            ({"allow": "10.0.0.0/8"}, "takes a list, not a string"),
            ({"allow": ["not a host!"]}, "neither a network"),
            ({"methods": ["get"]}, "upper-case HTTP methods"),
            ({"methods": []}, "upper-case HTTP methods"),
            ({"headers": ["Bad Header"]}, "header names"),
            ({"max_timeout": 0}, "max_timeout"),
            ({"max_timeout": float("nan")}, "max_timeout"),
        ],
    )
    def test_bad_policy(self, options: dict[str, object], match: str) -> None:
        with pytest.raises(ta.ConfigurationError, match=match):
            ta.HttpCheckPolicy(**options)  # type: ignore[arg-type]

    def test_allow_wildcard_host(self) -> None:
        """*.internal allows its subdomains, not the bare name."""
        policy = ta.HttpCheckPolicy(allow=["*.internal", "Status.Example."])
        assert policy.allows_host("a.b.internal")
        assert not policy.allows_host("internal")
        assert policy.allows_host("status.example")


class TestAddresses:
    """The default policy refuses every address that is not globally routable."""

    @pytest.mark.parametrize(
        ("address", "reason"),
        [
            ("127.0.0.1", "a loopback address"),
            ("::1", "a loopback address"),
            ("10.0.0.1", "a private address"),
            ("192.168.1.1", "a private address"),
            ("fd12::1", "a private address"),
            ("169.254.1.1", "a link-local address"),
            ("fe80::1", "a link-local address"),
            ("224.0.0.1", "a multicast address"),
            ("0.0.0.0", "an unspecified address"),
            ("240.0.0.1", "a reserved address"),
            ("100.64.0.1", "not a globally routable address"),
            ("169.254.169.254", "a cloud metadata address"),
            ("fd00:ec2::254", "a cloud metadata address"),
            ("100.100.100.200", "a cloud metadata address"),
            ("168.63.129.16", "a cloud metadata address"),
            ("::ffff:127.0.0.1", "a loopback address"),
            ("::ffff:169.254.169.254", "a cloud metadata address"),
            ("2002:7f00:1::", "a loopback address"),  # 6to4 of 127.0.0.1
            ("64:ff9b::a9fe:a9fe", "a cloud metadata address"),  # NAT64 of 169.254.169.254
        ],
    )
    def test_refused(self, address: str, reason: str) -> None:
        assert ta.HttpCheckPolicy().refusal(ipaddress.ip_address(address)) == reason

    @pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
    def test_public_accepted(self, address: str) -> None:
        assert ta.HttpCheckPolicy().refusal(ipaddress.ip_address(address)) is None

    def test_allow_opens_a_network(self) -> None:
        policy = ta.HttpCheckPolicy(allow=["10.0.0.0/8", "fd12::/16"])
        assert policy.refusal(ipaddress.ip_address("10.2.3.4")) is None
        assert policy.refusal(ipaddress.ip_address("fd12::1")) is None
        assert policy.refusal(ipaddress.ip_address("192.168.1.1")) == "a private address"

    def test_allowed_host_resolving_to_metadata_is_refused(self) -> None:
        """A host allowed by name still may not reach a metadata address."""
        policy = ta.HttpCheckPolicy(allow=["status.internal"])
        policy.check_address("status.internal", ipaddress.ip_address("10.0.0.5"))
        with pytest.raises(ta.ValidationError, match="a cloud metadata address"):
            policy.check_address("status.internal", ipaddress.ip_address("169.254.169.254"))
        with pytest.raises(ta.ValidationError, match=r"refuses other\.internal: it is a private"):
            policy.check_address("other.internal", ipaddress.ip_address("10.0.0.5"))

"""service/auth/identity.py and proxies.py: who a caller is."""

from __future__ import annotations

import pytest

from service.auth.credentials import Credential
from service.auth.grants import Grants
from service.auth.identity import identify
from service.auth.proxies import TrustedProxies, peer_host


def test_x_tenant_names_the_caller_only_from_a_trusted_proxy() -> None:
    proxies = TrustedProxies.parse(["10.0.0.0/8", "::1", "spiffe://cluster.local/ns/edge/sa/envoy"])
    header = (("x-tenant", "team-a"),)
    token_a = Credential("token", "9f86d081884c", "", Grants.parse(["deeplab"]))
    assert identify(None, header, "ipv4:192.168.1.5:4000", "", proxies).name == "ipv4:192.168.1.5:4000"
    assert identify(None, header, "ipv4:10.1.2.3:4000", "", proxies).name == "tenant:team-a"
    assert identify(None, header, "ipv6:[::1]:4000", "", proxies).name == "tenant:team-a"
    assert identify(None, header, "http:ipv4:10.1.2.3:4000", "", proxies).name == "tenant:team-a"
    assert identify(None, header, "unix:/tmp/s", "spiffe://cluster.local/ns/edge/sa/envoy", proxies).name == (
        "tenant:team-a"
    )
    # A credential names the caller; a trusted proxy's header names the client behind it, with the credential's grants.
    named = identify(token_a, header, "ipv4:192.168.1.5:4000", "", proxies)
    assert (named.name, named.grants) == ("token:9f86d081884c", token_a.grants)
    assert identify(token_a, header, "ipv4:10.0.0.1:1", "", proxies).grants == token_a.grants
    assert identify(None, (("x-tenant", "a]\x1b"),), "ipv4:10.0.0.1:1", "", proxies).name == "ipv4:10.0.0.1:1"
    assert identify(None, header, "ipv4:10.0.0.1:1", "", TrustedProxies()).name == "ipv4:10.0.0.1:1"
    assert peer_host("unix:/tmp/x") is None and str(peer_host("ipv6:[fe80::1%eth0]:5")) == "fe80::1"
    with pytest.raises(ValueError):
        TrustedProxies.parse(["not an address"])

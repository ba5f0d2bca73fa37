"""A repeated plug (a resumed flow) finds its addresses there: both kernels' words for it."""

from __future__ import annotations

from l3dist.amphora_agent.frontend import _address_exists


def test_an_address_already_on_the_link_is_not_an_error() -> None:
    assert _address_exists("RTNETLINK answers: File exists\n")
    assert _address_exists("Error: ipv4: Address already assigned.\n")  # Debian 12
    assert _address_exists("Error: ipv6: address already assigned.\n")
    assert not _address_exists('Cannot find device "fe0"\n')
    assert not _address_exists('Error: any valid prefix is expected rather than "x".\n')

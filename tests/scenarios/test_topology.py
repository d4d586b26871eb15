"""The namespace topology itself: reachability, carrier loss, muting, alias moves."""

from __future__ import annotations

from .netns import Cluster


def test_every_lan_connects_its_hosts_and_faults_apply(cluster: Cluster) -> None:
    for lan in ("lana", "lanb", "pub"):
        assert cluster.ping("head1", cluster.addr("head2", lan)), lan
    assert cluster.ping("node1", cluster.addr("head1", "lanb"))
    assert cluster.ping("client", cluster.addr("head2", "pub"))
    cluster.carrier_down("head1", "lana")
    assert not cluster.ping("head1", cluster.addr("head2", "lana"))
    assert cluster.ping("head1", cluster.addr("head2", "lanb"))
    out = cluster.run("head1", "ip", "-j", "link", "show", "dev", "lana").stdout
    assert "NO-CARRIER" in out
    cluster.carrier_up("head1", "lana")
    cluster.mute("head2", "lanb")
    assert not cluster.ping("head1", cluster.addr("head2", "lanb"))
    assert "LOWER_UP" in cluster.run("head2", "ip", "-j", "link", "show", "dev", "lanb").stdout
    cluster.unmute("head2", "lanb")
    assert cluster.ping("head1", cluster.addr("head2", "lanb"))
    assert cluster.ping("head1", cluster.addr("head2", "lana"), timeout_s=3)

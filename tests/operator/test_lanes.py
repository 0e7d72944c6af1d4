"""Priority lanes: every lane's stream wakes and scales the workers, and has its group."""

from __future__ import annotations

from ophelpers import make_eq

from emailqueue.keys import GROUP, QueueKeys
from emailqueue.localserver import RedisServer
from emailqueue.redisconn import async_client
from emailqueue_operator.builders.common import RedisEndpoint
from emailqueue_operator.builders.scaledobject import scaled_object
from emailqueue_operator.redisops import ensure_stream


def test_one_trigger_per_lane_sharing_auth_and_thresholds() -> None:
    eq = make_eq()
    triggers = scaled_object(eq, RedisEndpoint.managed(eq))["spec"]["triggers"]
    keys = QueueKeys("mail")
    assert [t["metadata"]["stream"] for t in triggers] == [
        keys.stream,
        keys.lane_stream("high"),
        keys.lane_stream("bulk"),
    ]
    assert sorted(keys.streams) == sorted(t["metadata"]["stream"] for t in triggers)
    assert len({t["name"] for t in triggers}) == 3
    first = triggers[0]["metadata"]
    for t in triggers:
        assert t["type"] == "redis-streams" and "consumerGroup" not in t["metadata"]
        assert {k: v for k, v in t["metadata"].items() if k != "stream"} == {
            k: v for k, v in first.items() if k != "stream"
        }
        assert t["authenticationRef"] == triggers[0]["authenticationRef"]


async def test_groups_exist_on_every_lane() -> None:
    with RedisServer() as server:
        client = async_client(server.url)
        await ensure_stream(client, "mail")
        await ensure_stream(client, "mail")  # idempotent
        for stream in QueueKeys("mail").streams:
            groups = await client.xinfo_groups(stream)
            assert [g["name"] for g in groups] == [GROUP.encode()]
        await client.aclose()

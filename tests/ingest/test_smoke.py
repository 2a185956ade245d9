import aiohttp
import msgspec

from sextant.admin import CreatedKey
from sextant.settings import Settings
from tests.helpers import basic_auth, read_topic


async def test_track_reaches_kafka(
    receiver: str, http: aiohttp.ClientSession, workspace: CreatedKey, settings: Settings
) -> None:
    """A track call answered 200 is in the topic, stamped."""
    async with http.post(
        f"{receiver}/v1/track",
        json={"userId": "u1", "event": "E"},
        headers=basic_auth(workspace.api_key),
    ) as r:
        assert r.status == 200, await r.text()
        assert await r.json() == {"success": True, "accepted": 1, "skipped": 0, "rejected": []}
    records = await read_topic(settings, 1)
    assert len(records) == 1
    msg = msgspec.json.decode(records[0].value)
    assert records[0].key == f"{workspace.workspace_id}:u1".encode()
    assert msg["type"] == "track" and msg["sextant"]["workspaceId"] == workspace.workspace_id

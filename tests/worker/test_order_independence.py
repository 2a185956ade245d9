"""Order and repetition, made provable: any order, any duplicates, any batching of the
same calls leaves the same rows (hypothesis, against the real Postgres)."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import datetime
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from ingest.door import Arrival
from ingest.intake import BodyShape, parse_body, prepare
from ops.keys import CreatedKey, create_key
from sextant.calls import AnyCall, Stamp, decode_call
from sextant.db import create_pool
from sextant.settings import Settings
from tests.support.dumps import dump, visible
from worker.unit_of_work import apply_calls

# A few people and the anonymous ids each usually comes with (a5 with nobody); now and
# then another userId claims one of them too (a shared browser, a buggy client).
USERS = {"u1": ["a1", "a2"], "u2": ["a3"], "u3": ["a4"]}
ANONYMOUS = ["a1", "a2", "a3", "a4", "a5"]
OWNER = {a: u for u, anons in USERS.items() for a in anons}
# Each userId's email (Engage's email-only calls name them); j@ belongs to nobody.
EMAILS = {"u1": "a@initech.com", "u2": "b@initech.com"}


# Values that are no identity: the door treats them as absent.
JUNK = ["null", "undefined", "0", "[object Object]"]


def identity() -> st.SearchStrategy[dict[str, str]]:
    """userId, anonymousId, or both (mostly an anonymous id of that user, sometimes one
    another userId claims too); now and then a junk userId beside a real anonymous id."""
    user = st.sampled_from(sorted(USERS)).map(lambda u: {"userId": u})
    anonymous = st.sampled_from(ANONYMOUS).map(lambda a: {"anonymousId": a})
    both = st.sampled_from(sorted(OWNER)).map(lambda a: {"userId": OWNER[a], "anonymousId": a})
    claimed = st.tuples(st.sampled_from(sorted(USERS)), st.sampled_from(ANONYMOUS)).map(
        lambda c: {"userId": c[0], "anonymousId": c[1]}
    )
    junk = st.tuples(st.sampled_from(JUNK), st.sampled_from(ANONYMOUS)).map(
        lambda j: {"userId": j[0], "anonymousId": j[1]}
    )
    return st.one_of(user, anonymous, both, claimed, junk)


small = st.one_of(st.integers(0, 3), st.sampled_from(["x", "y"]))

calls = st.one_of(
    st.builds(
        lambda who, traits, email: {
            "type": "identify",
            **who,
            "traits": {**traits, **({"email": EMAILS[who["userId"]]} if email else {})}
            if who.get("userId") in EMAILS
            else traits,
        },
        identity(),
        st.fixed_dictionaries(
            {},
            optional={"firstName": st.sampled_from(["Peter", "Joanna"]), "plan": small},
        ),
        st.booleans(),
    ),
    # Engage's calls for an email-only profile: an audience entered, a trait set.
    st.builds(
        lambda email, member: {
            "type": "track",
            "event": "Audience Entered" if member else "Audience Exited",
            "properties": {"audience_key": "shopper"},
            "context": {
                "traits": {"email": email},
                "personas": {"computation_class": "audience", "computation_key": "shopper"},
            },
        },
        st.sampled_from(["a@initech.com", "b@initech.com", "j@initech.com"]),
        st.booleans(),
    ),
    st.builds(
        lambda email, plan: {
            "type": "identify",
            "traits": {"email": email, "plan": plan},
            "context": {"personas": {"computation_class": "trait", "computation_key": "plan"}},
        },
        st.sampled_from(["a@initech.com", "j@initech.com"]),
        small,
    ),
    st.builds(
        lambda who, event, props: {"type": "track", **who, "event": event, "properties": props},
        identity(),
        st.sampled_from(["Signed Up", "Clicked"]),
        st.dictionaries(st.sampled_from(["x", "y"]), small, max_size=2),
    ),
    st.builds(
        lambda who, name: {"type": "page", **who, "name": name},
        identity(),
        st.sampled_from(["A", "B"]),
    ),
    st.builds(lambda who: {"type": "screen", **who, "name": "S"}, identity()),
    # Both connectors block free email: a free address ignores the identity's calls from
    # the identify's time until an identify with a work one.
    st.builds(
        lambda who, email: {"type": "identify", **who, "traits": {"email": email}},
        identity(),
        st.sampled_from(["jo@gmail.com", "jo@initech.com"]),
    ),
    st.builds(
        lambda who, group, traits: {"type": "group", **who, "groupId": group, "traits": traits},
        identity(),
        st.sampled_from(["g1", "g2"]),
        st.fixed_dictionaries(
            {}, optional={"name": st.sampled_from(["Initech", "Initrode"]), "seats": small}
        ),
    ),
    st.builds(
        lambda a, u: {"type": "alias", "previousId": a, "userId": u or OWNER[a]},
        st.sampled_from(sorted(OWNER)),
        st.sampled_from([None, None, *sorted(USERS)]),
    ),
    st.builds(
        lambda who: {
            "type": "identify",
            **who,
            "traits": {"vip": True},
            "context": {"personas": {"computation_class": "audience", "computation_key": "vip"}},
        },
        identity(),
    ),
    st.builds(lambda u: {"type": "delete", "userId": u}, st.sampled_from(sorted(USERS))),
    # Accounts from every call: an identify's company, a track's context.groupId.
    st.builds(
        lambda who, group, plan: {
            "type": "identify",
            **who,
            "traits": {"company": {"id": group, "plan": plan}},
        },
        identity(),
        st.sampled_from(["g1", "g3"]),
        st.sampled_from(["pro", "free"]),
    ),
    st.builds(
        lambda who, group: {
            "type": "track",
            **who,
            "event": "Signed Up",
            "context": {"groupId": group},
        },
        identity(),
        st.sampled_from(["g1", "g3"]),
    ),
    # The B2B spec's events acting on accounts, and Engage's account audiences.
    st.builds(
        lambda who, event, group: {
            "type": "track",
            **who,
            "event": event,
            "properties": {"account_name": "Initech"},
            "context": {"groupId": group},
        },
        identity(),
        st.sampled_from(["Account Created", "Account Removed User", "Account Deleted"]),
        st.sampled_from(["g1", "g3"]),
    ),
    st.builds(
        lambda who, group, member: {
            "type": "group",
            **who,
            "groupId": group,
            "traits": {"enterprise": member},
            "context": {
                "personas": {"computation_class": "audience", "computation_key": "enterprise"}
            },
        },
        identity(),
        st.sampled_from(["g1", "g3"]),
        st.booleans(),
    ),
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[list[int]]]:
    """Calls with distinct messageIds and times that may tie; then a delivery of them:
    a permutation with duplicates, cut into batches."""
    messages = draw(st.lists(calls, min_size=1, max_size=14))
    for i, message in enumerate(messages):
        message["messageId"] = f"m{i:02d}"
        # Call times close together, or far off (a skewed or forged clock; the receiver
        # clamps those, but the rows must not depend on order whatever the stamps say).
        second = draw(st.integers(0, 9))
        message["timestamp"] = draw(
            st.sampled_from([f"2026-01-02T00:00:{second:02d}Z", "2020-05-09T23:54:49Z",
                             "2099-01-01T00:00:00Z"])
            if draw(st.integers(0, 4)) == 0
            else st.just(f"2026-01-02T00:00:{second:02d}Z")
        )  # fmt: skip
        # When a receiver got it: a delete is never older than its receipt.
        message["receivedAt"] = f"2026-01-02T00:00:{draw(st.integers(0, 9)):02d}.000Z"
    order = draw(st.permutations(range(len(messages))))
    extra = draw(st.lists(st.integers(0, len(messages) - 1), max_size=4))
    delivery = list(order)
    for i in extra:
        delivery.insert(draw(st.integers(0, len(delivery))), i)
    cuts = (
        sorted(draw(st.sets(st.integers(1, len(delivery) - 1), max_size=5)))
        if len(delivery) > 1
        else []
    )
    batches = [delivery[a:b] for a, b in zip([0, *cuts], [*cuts, len(delivery)], strict=True)]
    return messages, batches


def stamp(message: dict[str, Any], workspace: CreatedKey) -> AnyCall:
    """The call as a worker reads it: through the receiver's door, received then."""
    received = datetime.fromisoformat(message.get("receivedAt", "2026-01-02T00:00:00Z"))
    intake = prepare(
        parse_body(msgspec.json.encode(message), BodyShape.PARTNER),
        Arrival(received_at=received, correct_clock=False),
        default_type=None,
        stamp=Stamp(workspace.workspace_id, workspace.connector_id),
        destination="Astrolabe",
    )
    [(_, value)] = intake.records
    return decode_call(value)


async def run_scenario(
    database_url: str, messages: list[dict[str, Any]], batches: list[list[int]]
) -> None:
    pool = await create_pool(Settings(database_url=database_url), max_size=2)
    try:
        async with pool.acquire() as conn:
            reference = await create_key(
                conn, f"ref-{uuid.uuid4().hex[:10]}", block_free_email=True
            )
            shuffled = await create_key(
                conn, f"shuf-{uuid.uuid4().hex[:10]}", block_free_email=True
            )
            # The reference: every call once, in call-time order, one batch each.
            ordered = sorted((stamp(m, reference) for m in messages), key=lambda c: c.version)
            for call in ordered:
                await apply_calls(conn, [call])
            for batch in batches:
                await apply_calls(conn, [stamp(messages[i], shuffled) for i in batch])
            expected = visible(await dump(conn, reference.workspace_id))
            actual = visible(await dump(conn, shuffled.workspace_id))
        assert actual == expected
    finally:
        await pool.close()


@settings(
    max_examples=int(os.environ.get("ORDER_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_any_order_duplicates_and_batching_leave_the_same_rows(
    services: Settings, scenario: tuple[list[dict[str, Any]], list[list[int]]]
) -> None:
    """Every permutation of the same calls, with random duplicates and random batch cuts,
    leaves exactly the rows of the calls applied once each in call-time order."""
    messages, batches = scenario
    note(f"messages: {messages}")
    note(f"batches: {batches}")
    asyncio.run(run_scenario(services.require_database_url(), messages, batches))

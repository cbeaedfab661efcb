"""schemathesis hooks for `tests/schemathesis.rs`: rules of keyward's API that JSON Schema
cannot state, and that the OpenAPI document therefore states in words.

- `expires_at` must lie in the future ("Absolute expiry (must be in the future)"): a
  generated date-time in the past is moved a year ahead of now, so that a schema-valid body is
  one keyward accepts. Values that are not date-times (negative testing) are left alone.
- `expires_at` and `ttl_seconds` are exclusive ("Exclusive with `ttl_seconds`"): when a
  body gives both, `ttl_seconds` is dropped.
- `metadata` is at most the policy's bytes of JSON (8 KiB by default), a size JSON Schema
  cannot bound: a larger generated object is replaced by an empty one.

A batch create's keys are each held to the same rules.
"""

import json

from datetime import datetime, timedelta, timezone

import schemathesis


def _future(value):
    if not isinstance(value, str):
        return value
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if when.tzinfo is None:
        return value
    now = datetime.now(timezone.utc)
    if when > now + timedelta(minutes=5):
        return value
    return (now + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ")


METADATA_BYTES = 8192


@schemathesis.hook
def map_body(ctx, body):
    # A batch (`POST /admin/api-keys/batch`): the same rules for each key it asks for.
    if isinstance(body, dict) and isinstance(body.get("keys"), list):
        for item in body["keys"]:
            if isinstance(item, dict) and isinstance(item.get("key"), dict):
                item["key"] = map_body(ctx, item["key"])
        return body
    if isinstance(body, dict):
        if "expires_at" in body:
            body["expires_at"] = _future(body["expires_at"])
            if body.get("expires_at") is not None and body.get("ttl_seconds") is not None:
                del body["ttl_seconds"]
        meta = body.get("metadata")
        if isinstance(meta, dict) and len(json.dumps(meta, separators=(",", ":"))) > METADATA_BYTES:
            body["metadata"] = {}
    return body


@schemathesis.hook
def before_call(ctx, case, kwargs):
    # The coverage phase builds its cases without the data-generation hooks above; the same
    # rules are applied to every case right before it is sent.
    if isinstance(case.body, dict):
        case.body = map_body(ctx, case.body)
    if isinstance(case.query, dict):
        case.query = map_query(ctx, case.query)


# The usage routes read at most 744 hourly or 400 daily buckets, `from` before `to` ("at most
# 744 hourly or 400 daily buckets after `from`"): a generated `from` outside that span of `to`
# (or of now) is dropped, and the server's default (24 hours, or 30 days, before `to`) holds.
BUCKETS = {"hour": (timedelta(hours=1), 744), "day": (timedelta(days=1), 400)}


def _parse(value):
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return when if when.tzinfo is not None else None


@schemathesis.hook
def map_query(ctx, query):
    if not isinstance(query, dict) or not isinstance(query.get("from"), str):
        return query
    start = _parse(query["from"])
    end = _parse(query["to"]) if "to" in query else datetime.now(timezone.utc)
    granularity = query.get("granularity", "hour")
    step, most = BUCKETS.get(granularity, BUCKETS["hour"]) if isinstance(granularity, str) else BUCKETS["hour"]
    if start is None or end is None:
        return query
    try:
        span = end - start
    except OverflowError:
        return query
    if not (timedelta(0) < span <= step * (most - 2)):
        del query["from"]
    return query

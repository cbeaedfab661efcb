"""schemathesis hooks for `tests/schemathesis.rs`: rules of keyward's API that JSON Schema
cannot state, and that the OpenAPI document therefore states in words.

- `expires_at` must lie in the future ("Absolute expiry (must be in the future)"): a
  generated date-time in the past is moved a year ahead of now, so that a schema-valid body is
  one keyward accepts. Values that are not date-times (negative testing) are left alone.
"""

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


@schemathesis.hook
def map_body(ctx, body):
    if isinstance(body, dict) and "expires_at" in body:
        body["expires_at"] = _future(body["expires_at"])
    return body

"""The rate limiter's buckets: one per caller however the header is typed, and a full table
is pruned, never cleared (found by a security review)."""

from api.middleware import TokenBucket, _credential


def test_one_caller_is_one_bucket_whatever_the_scheme_case_and_spaces() -> None:
    same = {_credential(h) for h in (b"Bearer abc", b"bearer abc", b"BEARER  abc ", b"  Bearer abc")}
    assert same == {b"auth:bearer abc"}
    assert _credential(b"Bearer abd") != _credential(b"Bearer abc")
    assert _credential(b"") is None and _credential(b"   ") is None


def test_a_full_table_forgets_idle_callers_and_keeps_a_limited_one_limited() -> None:
    bucket = TokenBucket(per_minute=60, burst=2)
    bucket.MAX_BUCKETS = 10
    assert bucket.take(b"busy") == 0 and bucket.take(b"busy") == 0
    assert bucket.take(b"busy") > 0  # over its limit
    for n in range(50):  # many other callers fill the table
        bucket.take(f"caller {n}".encode())
    assert len(bucket.buckets) <= 10
    assert bucket.take(b"busy") > 0  # the caller nearest its limit is the last to be forgotten


def test_the_bucket_reads_the_session_cookie_the_web_application_reads() -> None:
    """Starlette keeps the last of two cookies of one name; so does the bucket."""
    from api.middleware import _session_cookie

    assert _session_cookie(b"liudong_session=made-up; lang=en; liudong_session=real") == b"session:real"
    assert _session_cookie(b"lang=en") is None


def test_the_access_log_writes_a_path_as_its_route_names_it() -> None:
    from starlette.routing import Mount, Route

    from api.middleware import _logged_path

    route = Route("/residents/{resident_id}", endpoint=lambda request: None)
    assert _logged_path({"path": "/residents/\u674e\u4f113800138000", "route": route}) == "/residents/{resident_id}"
    unmatched = {"path": "/nothing/\u674e\u4f1f", "route": Mount("/", routes=[])}
    assert _logged_path(unmatched) == "(no route)" and _logged_path({"path": "/x"}) == "(no route)"
    assert _logged_path({"path": "/static/app.css"}) == "/static/app.css"

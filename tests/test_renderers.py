"""The API's orjson renderer writes the document DRF's JSONRenderer writes, byte for byte."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.utils.translation import gettext_lazy
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.renderers import JSONRenderer

from todo_api.renderers import FastJSONRenderer

ACCEPTED = "application/json"


def both(data, accepted=ACCEPTED, context=None):
    return (
        FastJSONRenderer().render(data, accepted, context),
        JSONRenderer().render(data, accepted, context),
    )


timestamps = st.datetimes(
    min_value=datetime(1900, 1, 1),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]),
)
scalars = st.none() | st.booleans() | st.integers() | st.text() | timestamps
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


@given(documents)
def test_any_document_of_the_apis_types_renders_as_drf_renders_it(data):
    fast, drf = both(data)
    assert fast == drf


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 12, 1, 17, 0, tzinfo=UTC),  # no fraction: none written
        datetime(2026, 12, 1, 17, 0, 0, 120000, tzinfo=UTC),
        datetime(2026, 12, 1, 18, 0, tzinfo=timezone(timedelta(hours=1))),
    ],
)
def test_timestamps_are_rfc_3339_with_a_z_in_utc(moment):
    fast, drf = both({"due_at": moment})
    assert fast == drf
    assert fast.decode().endswith('Z"}') == (moment.utcoffset() == timedelta(0))


def test_line_and_paragraph_separators_are_escaped_for_javascript():
    fast, drf = both({"title": "a\u2028b\u2029c"})
    assert fast == drf == b'{"title":"a\\u2028b\\u2029c"}'


def test_what_orjson_does_not_know_goes_through_drfs_encoder():
    data = {"message": gettext_lazy("Not found."), "amount": Decimal("1.50"), "names": {"x"}}
    fast, drf = both(data)
    assert fast == drf


def test_an_integer_past_64_bits_is_written_as_drf_writes_it():
    fast, drf = both({"n": 2**70, "m": -(2**64)})
    assert fast == drf == b'{"n":1180591620717411303424,"m":-18446744073709551616}'


def test_integer_keys_are_written_as_strings():
    fast, drf = both({"tags": {3: ["Too long."]}})
    assert fast == drf == b'{"tags":{"3":["Too long."]}}'


def test_an_indent_asked_for_in_accept_is_honoured():
    fast, drf = both({"a": [1]}, accepted="application/json; indent=2")
    assert fast == drf
    assert b"\n" in fast


def test_no_data_is_an_empty_body():
    assert both(None) == (b"", b"")

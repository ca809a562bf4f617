"""Search space and architecture encode: validation, JSON round trip, hashing, Conv-4."""

from __future__ import annotations

import json

import pytest

from atnas.errors import EncodeError
from atnas.ops import OPS
from atnas.space import CONV4, DEFAULT_OPS, Encode, LayerChoice, SearchSpace, encodes_from_json


def test_default_space_has_at_least_six_registered_ops_and_identity() -> None:
    space = SearchSpace()
    assert len([o for o in space.ops if o != "identity"]) >= 6
    assert "identity" in space.ops
    assert set(space.ops) <= set(OPS)
    assert space.max_width == 64


def test_conv4_constant_is_four_conv3x3_at_64() -> None:
    assert Encode.of(*[("conv3x3", 64)] * 4) == CONV4
    assert SearchSpace().conv4() == CONV4
    assert SearchSpace().is_valid(CONV4)
    small = SearchSpace(num_layers=3, widths=(8, 16))
    assert small.conv4() == Encode.of(("conv3x3", 16), ("conv3x3", 16), ("conv3x3", 16))


def test_conv4_needs_conv3x3_in_space() -> None:
    with pytest.raises(EncodeError, match="conv3x3"):
        SearchSpace(ops=("conv5x5", "identity")).conv4()


def test_valid_encode_passes_validation_unchanged() -> None:
    space = SearchSpace(num_layers=3, widths=(8, 16))
    e = Encode.of(("sepconv5x5", 8), ("identity", 8), ("conv5x5", 16))
    assert space.errors(e) == []
    assert space.validate(e) is e


@pytest.mark.parametrize(
    ("encode", "fragment"),
    [
        (Encode.of(("nope", 8), ("conv3x3", 8), ("conv3x3", 8)), "op 'nope'"),
        (Encode.of(("conv3x3", 12), ("conv3x3", 8), ("conv3x3", 8)), "width 12"),
        (Encode.of(("conv3x3", 8), ("conv3x3", 8)), "expected 3 layers, got 2"),
        (Encode.of(*[("conv3x3", 8)] * 4), "expected 3 layers, got 4"),
        (Encode.of(("identity", 8), ("conv3x3", 8), ("conv3x3", 8)), "cannot be the first"),
        (Encode.of(("conv3x3", 8), ("identity", 16), ("conv3x3", 8)), "layer 1: identity"),
    ],
    ids=["bad-op", "bad-width", "too-few-layers", "too-many-layers", "identity-first", "id-width"],
)
def test_invalid_encode_is_rejected_with_reason(encode: Encode, fragment: str) -> None:
    space = SearchSpace(num_layers=3, widths=(8, 16))
    assert not space.is_valid(encode)
    assert any(fragment in p for p in space.errors(encode))
    with pytest.raises(EncodeError, match=fragment.replace("(", r"\(")):
        space.validate(encode)


def test_validate_lists_every_problem() -> None:
    space = SearchSpace(num_layers=3, widths=(8, 16))
    e = Encode.of(("identity", 12), ("nope", 8))
    assert len(space.errors(e)) == 4  # layer count, identity first, width 12, unknown op


def test_op_outside_this_space_is_invalid_even_if_registered() -> None:
    space = SearchSpace(num_layers=2, ops=("conv3x3", "identity"), widths=(8,))
    assert not space.is_valid(Encode.of(("conv3x3", 8), ("conv5x5", 8)))


@pytest.mark.parametrize(
    "encode",
    [CONV4, Encode.of(("sepconv3x3", 16), ("identity", 16), ("maxpool_conv1x1", 48))],
)
def test_encode_json_round_trip(encode: Encode) -> None:
    data = encode.to_json()
    assert data[0] == {"op": encode.layers[0].op, "width": encode.layers[0].width}
    assert Encode.from_json(data) == encode
    assert Encode.from_json(json.dumps(data)) == encode
    assert Encode.from_json(json.loads(json.dumps(data))) == encode
    assert encodes_from_json([data, data]) == [encode, encode]


@pytest.mark.parametrize(
    "data",
    [
        "[{",  # not JSON
        "{}",
        [],
        "[]",
        [["conv3x3", 8]],
        [{"op": "conv3x3"}],
        [{"op": "conv3x3", "width": 8, "extra": 1}],
        [{"op": 3, "width": 8}],
        [{"op": "conv3x3", "width": "8"}],
        [{"op": "conv3x3", "width": 8.0}],
        [{"op": "conv3x3", "width": True}],
        None,
        42,
    ],
)
def test_malformed_encode_json_raises_encode_error(data: object) -> None:
    with pytest.raises(EncodeError):
        Encode.from_json(data)


def test_encode_is_hashable_frozen_and_equal_by_value() -> None:
    a = Encode.of(("conv3x3", 8), ("identity", 8))
    b = Encode((LayerChoice("conv3x3", 8), LayerChoice("identity", 8)))
    c = Encode.of(("conv3x3", 8), ("conv3x3", 8))
    assert a == b and hash(a) == hash(b)
    assert a != c
    assert len({a, b, c}) == 2
    assert {a: 1}[b] == 1
    with pytest.raises(AttributeError):
        a.layers = ()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        a.layers[0].width = 16  # type: ignore[misc]


def test_encode_key_and_str() -> None:
    e = Encode.of(("conv3x3", 64), ("identity", 64))
    assert e.key() == "conv3x3:64|identity:64"
    assert str(e) == e.key()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_layers": 0},
        {"num_layers": 9},
        {"ops": ()},
        {"ops": ("conv3x3", "conv3x3")},
        {"ops": ("conv3x3", "conv7x7")},
        {"ops": ("identity",)},
        {"widths": ()},
        {"widths": (16, 8)},
        {"widths": (8, 8)},
        {"widths": (0, 8)},
        {"in_channels": 2},
    ],
)
def test_bad_search_space_raises(kwargs: dict) -> None:
    with pytest.raises(EncodeError):
        SearchSpace(**kwargs)


@pytest.mark.parametrize("space", [SearchSpace(), SearchSpace(5, DEFAULT_OPS[:3], (4, 8), 3)])
def test_space_json_round_trip(space: SearchSpace) -> None:
    assert SearchSpace.from_json(json.loads(json.dumps(space.to_json()))) == space

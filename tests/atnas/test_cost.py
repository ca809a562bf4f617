"""Parameter count and FLOPs from the encode, against a hand computation and the real tensors."""

from __future__ import annotations

import math

import pytest

from atnas.cost import arch_cost
from atnas.errors import EncodeError
from atnas.space import CONV4, Encode, SearchSpace
from atnas.supernet import Supernet, zero_head


def test_conv4_params_and_flops_by_hand() -> None:
    cost = arch_cost(SearchSpace(), CONV4, image_size=28, n_way=5)
    # conv weight + bias + group-norm scale and shift
    first = 64 * 1 * 9 + 64 + 2 * 64  # 768
    other = 64 * 64 * 9 + 64 + 2 * 64  # 37056
    head = 5 * 64 + 5
    assert cost.params == first + 3 * other + head == 112_261
    # MACs at inputs of 28, 14, 7 and 4 pixels (pooling rounds up), plus 2 per output of the norm
    macs = 28 * 28 * 64 * 9 + 2 * 64 * 28 * 28
    for side in (14, 7, 4):
        macs += side * side * 64 * 64 * 9 + 2 * 64 * side * side
    macs += 5 * 64
    assert cost.flops == macs == 10_207_168
    assert [layer.input_hw for layer in cost.layers] == [(28, 28), (14, 14), (7, 7), (4, 4)]
    assert [layer.in_width for layer in cost.layers] == [1, 64, 64, 64]


@pytest.mark.parametrize(
    "encode",
    [
        CONV4,
        Encode.of(
            ("sepconv5x5", 16), ("identity", 16), ("dilconv3x3", 48), ("maxpool_conv1x1", 32)
        ),
        Encode.of(("conv5x5", 32), ("sepconv3x3", 64), ("identity", 64), ("conv3x3", 16)),
    ],
)
def test_param_count_equals_the_sliced_tensors(encode: Encode) -> None:
    space = SearchSpace()
    tensors = {**Supernet(space).weights(encode), **zero_head(encode, 7)}
    assert arch_cost(space, encode, 28, 7).params == sum(t.numel() for t in tensors.values())


def test_layer_costs_sum_to_totals_and_json() -> None:
    space = SearchSpace(num_layers=3, widths=(8, 16))
    e = Encode.of(("conv5x5", 8), ("identity", 8), ("sepconv3x3", 16))
    cost = arch_cost(space, e, 13, 3)
    assert cost.params == sum(layer.params for layer in cost.layers) + 3 * 16 + 3
    assert cost.flops == sum(layer.macs for layer in cost.layers) + 3 * 16
    assert cost.layers[1].params == 2 * 8  # identity: only the norm's affine
    assert cost.layers[1].macs == 2 * 8 * 7 * 7
    assert cost.layers[2].macs == 4 * 4 * 8 * 9 + 4 * 4 * 8 * 16 + 2 * 16 * 4 * 4
    data = cost.to_json()
    assert data["params"] == cost.params and data["flops"] == cost.flops
    assert [d["op"] for d in data["layers"]] == ["conv5x5", "identity", "sepconv3x3"]
    assert math.prod(data["layers"][0]["input_hw"]) == 169


def test_cost_of_invalid_encode_raises() -> None:
    with pytest.raises(EncodeError):
        arch_cost(SearchSpace(), Encode.of(("identity", 64)), 28, 5)

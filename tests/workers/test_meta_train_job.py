"""What a meta_train job's result tells the API (which imports no atnas) about its supernet."""

from __future__ import annotations

import json

import pytest

from atnas.limits import cheapest
from atnas.space import SearchSpace
from service.validation import smallest_cost
from tests.atnas.conftest import tiny_state
from workers.meta_train_job import cost_floor


@pytest.mark.parametrize("space", [SearchSpace(num_layers=3, widths=(8, 16)), SearchSpace()])
@pytest.mark.parametrize("n_way", [2, 5, 20])
def test_cost_floor_gives_the_api_the_cheapest_net(space: SearchSpace, n_way: int) -> None:
    state = tiny_state(space)
    floor = cost_floor(state)
    assert json.loads(json.dumps(floor)) == floor  # survives the job store as it is
    assert set(floor["macs"]) == {str(w) for w in space.widths}
    low = cheapest(space, state.config.image_size, n_way)
    assert smallest_cost(floor, n_way) == (low.macs, low.params)

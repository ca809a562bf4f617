from __future__ import annotations

import pytest

from service.errors import IllegalTransition
from service.schemas import JobStatus as S
from service.states import TRANSITIONS, can_transition, check_transition

LEGAL = {
    (S.queued, S.running),
    (S.queued, S.cancelled),
    (S.running, S.succeeded),
    (S.running, S.failed),
    (S.running, S.cancelled),
    (S.running, S.queued),
}


@pytest.mark.parametrize("src", list(S))
@pytest.mark.parametrize("dst", list(S))
def test_transition_table(src: S, dst: S) -> None:
    assert can_transition(src, dst) == ((src, dst) in LEGAL)
    if (src, dst) in LEGAL:
        check_transition("j", src, dst)
    else:
        with pytest.raises(IllegalTransition, match=f"is {src.value}; it cannot become"):
            check_transition("j", src, dst)


def test_terminal_statuses_have_no_exit() -> None:
    for status in S:
        assert status.terminal == (not TRANSITIONS[status])

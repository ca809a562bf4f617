"""What the API process does before serving."""

from __future__ import annotations

import gc

from api.app import freeze_startup_heap


def test_freeze_startup_heap_hides_the_live_heap_from_the_collector() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > 1000  # every module, class and function loaded so far
    finally:
        gc.unfreeze()

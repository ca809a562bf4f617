"""One line for a pydantic ``ValidationError``, for entry points that must not print a traceback.

A setting is named by its environment variable, as an operator wrote it:

    >>> from service.settings import Settings
    >>> from pydantic import ValidationError
    >>> try:
    ...     Settings(model_max_batch=0)
    ... except ValidationError as exc:
    ...     print(invalid_message(exc))
    invalid settings: ATNAS_MODEL_MAX_BATCH=0: Input should be greater than or equal to 1
"""

from __future__ import annotations

from pydantic import ValidationError


def invalid_message(exc: ValidationError) -> str:
    """``invalid <model>: <field>=<value>: <reason>; ...`` for every value that failed."""
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        if exc.title == "Settings":
            field = f"ATNAS_{field.upper()}"
        parts.append(f"{field}={err.get('input')!r}: {err['msg']}")
    return f"invalid {'settings' if exc.title == 'Settings' else exc.title}: " + "; ".join(parts)

"""``atnas upload|submit|status|cancel|pull``: a client of a running service."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from atnas_cli import constraints
from atnas_cli.output import CliError, emit

DEFAULT_URL = "http://127.0.0.1:8000"


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers the client sub-commands."""

    def parser(name: str, help: str) -> argparse.ArgumentParser:
        return client_parser(sub, name, help)

    p = parser("upload", "upload a dataset zip (class folders, or support/ + query/)")
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_upload)
    p = parser("submit", "submit a job: KIND is meta_train or search; SPEC is JSON or @file")
    p.add_argument("kind", choices=["meta_train", "search"])
    p.add_argument(
        "spec", help='e.g. \'{"datasets": ["<id>"], "budget_seconds": 300}\' or @spec.json'
    )
    p.add_argument("--idempotency-key", default=None, help="repeat-safe submission key")
    p.add_argument(
        "--workers",
        default=None,
        help="meta_train only: Ray workers that train data-parallel, a number or 'auto' "
        "(over any in SPEC; default auto: one node's GPUs, else its CPUs)",
    )
    constraints.add_options(p)
    p.epilog = "--max-* (search jobs only) set the spec's constraints, over any in SPEC."
    p.set_defaults(func=cmd_submit)
    p = parser("status", "show a job (status, progress, result, error)")
    p.add_argument("job")
    p.set_defaults(func=cmd_status)
    # `atnas wait` follows the live events: atnas_cli.wait
    p = parser("cancel", "cancel a queued or running job")
    p.add_argument("job")
    p.set_defaults(func=cmd_cancel)
    p = parser("pull", "download a job's artifacts (sha256-checked) into a folder")
    p.add_argument("job")
    p.add_argument("--out", type=Path, default=Path("."), help="folder (default: current)")
    p.set_defaults(func=cmd_pull)


def client_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help: str
) -> argparse.ArgumentParser:
    """A sub-command of a client of the service, with ``--url`` and ``--json``."""
    p = sub.add_parser(name, help=help, description=help)
    add_url_option(p)
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    return p


def add_url_option(p: argparse.ArgumentParser) -> None:
    """``--url``: the service's address (env ATNAS_URL), as every client command has it."""
    p.add_argument(
        "--url",
        default=os.environ.get("ATNAS_URL", DEFAULT_URL),
        help="service address (env ATNAS_URL; default %(default)s); an API key, when the "
        "service has keys, comes from ATNAS_API_KEY",
    )


def connect(args: argparse.Namespace) -> Any:
    """An :class:`api.client.AtnasClient` of ``args.url`` (imported late: a fast ``--help``)."""
    from api.client import AtnasClient

    return AtnasClient(args.url, timeout=600)


def call(fn: Any, *a: Any, **kw: Any) -> Any:
    """``fn(*a, **kw)``; an API error or an unreachable service becomes a one-line CliError."""
    import httpx

    from api.client import ApiError

    try:
        return fn(*a, **kw)
    except ApiError as exc:
        raise CliError(f"HTTP {exc.status}: {exc.detail}") from None
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach the service ({exc})") from None


def show(obj: Any, as_json: bool) -> None:
    """Prints a pydantic model (or plain data) as indented JSON."""
    data = obj.model_dump(mode="json") if hasattr(obj, "model_dump") else obj
    emit(data, as_json, json.dumps(data, indent=2))


def cmd_upload(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        raise CliError(f"{args.file}: no such file")
    ds = call(connect(args).upload_dataset, args.file)
    if args.json:
        show(ds, True)
    else:
        print(f"{ds.id}  {ds.kind} dataset, {len(ds.classes)} classes, {len(ds.groups)} groups")
    return 0


def _workers(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise CliError(f"--workers must be a number or 'auto', not {value!r}") from None


def cmd_submit(args: argparse.Namespace) -> int:
    bounds = constraints.constraints_of(args)
    if bounds and args.kind != "search":
        raise CliError("--max-macs, --max-params and --max-latency-ms apply to search jobs only")
    spec = _spec(args.spec)
    if args.workers is not None:
        if args.kind != "meta_train":
            raise CliError("--workers applies to meta_train jobs only")
        if not isinstance(spec, dict):
            raise CliError("spec must be a JSON object")
        spec["workers"] = _workers(args.workers)
    if bounds:
        if not isinstance(spec, dict):
            raise CliError("spec must be a JSON object")
        current = spec.get("constraints")
        spec["constraints"] = {**(current if isinstance(current, dict) else {}), **bounds}
    job = call(connect(args).submit, args.kind, spec, idempotency_key=args.idempotency_key)
    if args.json:
        show(job, True)
    else:
        print(f"{job.id}  {job.status.value}")
    return 0


def _spec(text: str) -> Any:
    """The spec argument: JSON, or ``@file`` holding JSON."""
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as exc:
            raise CliError(f"cannot read {text[1:]}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"spec is not valid JSON: {exc}") from None


def cmd_status(args: argparse.Namespace) -> int:
    show(call(connect(args).job, args.job), args.json)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    show(call(connect(args).cancel, args.job), args.json)
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    client = connect(args)
    args.out.mkdir(parents=True, exist_ok=True)
    infos = call(client.artifacts, args.job)
    for a in infos:
        call(client.download, args.job, a.name, args.out / a.name)
        if not args.json:
            print(f"{args.out / a.name}  {a.size} bytes  sha256 {a.sha256[:16]}…")
    if args.json:
        show([a.model_dump() for a in infos], True)
    return 0

"""``atnas models deploy|list|show|predict|delete``: serve a search job's model and query it.

Example (a service at ATNAS_URL, a succeeded search job)::

    $ atnas models deploy 3f2a...            # waits until it answers
    9c1e...  ready  5 classes, 1x28x28, 1 replica(s), job 3f2a...
    $ atnas models predict 9c1e... a.png b.png
    a.png  Latin/character07  0.912
    b.png  Latin/character11  0.644
    $ atnas models delete 9c1e...
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from atnas_cli.client import call, client_parser, connect, show
from atnas_cli.output import CliError

if TYPE_CHECKING:
    from service.models import ModelPublic


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers ``atnas models`` and its sub-commands."""
    top = sub.add_parser(
        "models",
        help="serve a search job's model on Ray Serve, query it, take it down",
        description="Served models: deploy a succeeded search job's model, list, show, "
        "classify images with it, delete it.",
    )
    verbs = top.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, help: str) -> argparse.ArgumentParser:
        return client_parser(verbs, name, help)

    p = verb("deploy", "serve the model of a succeeded search job (waits until it answers)")
    p.add_argument("job", help="id of a succeeded search job")
    p.add_argument("--replicas", type=int, default=1, help="Ray Serve replicas (default 1)")
    p.add_argument("--no-wait", action="store_true", help="return at once, while it deploys")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait (default 300)")
    p.set_defaults(func=cmd_deploy)
    p = verb("list", "list the served models, newest first")
    p.set_defaults(func=cmd_list)
    p = verb("show", "show one served model")
    p.add_argument("model")
    p.set_defaults(func=cmd_show)
    p = verb("predict", "classify image files (PNG, JPEG, ...) with a served model")
    p.add_argument("model")
    p.add_argument("images", type=Path, nargs="+", help="image files")
    p.set_defaults(func=cmd_predict)
    p = verb("delete", "undeploy a served model and remove it")
    p.add_argument("model")
    p.set_defaults(func=cmd_delete)


def line(model: ModelPublic) -> str:
    """One line about a model: id, status, classes, input, replicas (and the error)."""
    shape = f"{model.input.channels}x{model.input.height}x{model.input.width}"
    text = (
        f"{model.id}  {model.status.value}  {len(model.classes)} classes, {shape}, "
        f"{model.replicas} replica(s), job {model.job}"
    )
    return f"{text}\n  {model.error}" if model.error else text


def _print(model: ModelPublic, as_json: bool) -> None:
    if as_json:
        show(model, True)
    else:
        print(line(model))


def cmd_deploy(args: argparse.Namespace) -> int:
    if args.replicas < 1:
        raise CliError("--replicas must be at least 1")
    client = connect(args)
    model = call(
        client.deploy_model, args.job, args.replicas, wait=not args.no_wait, timeout=args.timeout
    )
    _print(model, args.json)
    if model.status.value == "failed":
        raise CliError(f"model {model.id} failed to deploy: {model.error}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    models = call(connect(args).models)
    if args.json:
        show([m.model_dump(mode="json") for m in models], True)
    else:
        for m in models:
            print(line(m))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    model = call(connect(args).model, args.model)
    _print(model, args.json)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    for path in args.images:
        if not path.is_file():
            raise CliError(f"{path}: no such file")
    answer = call(connect(args).predict, args.model, args.images)
    if args.json:
        show(answer, True)
    else:
        for path, p in zip(args.images, answer.predictions, strict=True):
            print(f"{path}  {p.label}  {p.probability:.3f}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    call(connect(args).delete_model, args.model)
    if not args.json:
        print(f"{args.model}  deleted")
    return 0

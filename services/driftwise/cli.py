"""The `driftwise` command: `serve` the all-in-one process, run the MovieLens `demo`, the web
`console` of a server, `eval` and `token`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from driftwise.datasets.movielens import DEFAULT_PATH
from driftwise.errors import StartupError
from driftwise.observability.logs import configure_logging

if TYPE_CHECKING:
    from driftwise.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "token":  # needs no settings
        run_token(args)
        return
    settings = settings_for(args)
    configure_logging(logging.INFO if args.verbose else logging.WARNING, settings.observability.log_format)
    if args.command == "serve":
        run_serve(parser, args, settings)
    elif args.command == "console":
        run_console(parser, args, settings)
    elif args.command == "eval":
        run_eval(args, settings)
    else:
        run_demo(args, settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="driftwise", description=__doc__)
    parser.add_argument("--config", type=Path, help="TOML settings file (same as DRIFTWISE_CONFIG)")
    parser.add_argument("--data-dir", type=Path, help="where state lives (DRIFTWISE_DATA_DIR)")
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run Triton + the three gRPC services")
    serve.add_argument("--port", type=int, help="gRPC port (DRIFTWISE_SERVER__PORT, default 50051)")
    demo = commands.add_parser("demo", help="load MovieLens over gRPC and show interests and recommendations")
    demo.add_argument("--dataset", type=Path, default=DEFAULT_PATH, help="ml-latest-small folder")
    demo.add_argument("--users", default="1,68,414", help="comma-separated user ids to show")
    demo.add_argument(
        "--keep", action="store_true", help="keep the server and its web console running (prints the URL)"
    )
    demo.add_argument("--keep-data", action="store_true", help="keep the data directory of an earlier run")
    _add_console_command(commands)
    _add_eval_command(commands)
    _add_token_command(commands)
    return parser


def _add_console_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    console = commands.add_parser(
        "console", help="the web console of a Driftwise server (settings: [console], flags win)"
    )
    console.add_argument("--target", help="host:port of the server's gRPC port (console.target)")
    console.add_argument("--host", help="address to bind (console.host, default 127.0.0.1: loopback)")
    console.add_argument("--port", type=int, help="HTTP port (console.port, default 8080; 0: a free one)")
    console.add_argument(
        "--tls-ca", type=Path, help="CA (PEM) of the server's certificate: TLS to the target"
    )
    console.add_argument("--tls-cert", type=Path, help="client certificate (PEM) for mutual TLS")
    console.add_argument("--tls-key", type=Path, help="client key (PEM) for mutual TLS")
    console.add_argument("--tls-server-name", help="name to verify in the server's certificate")
    console.add_argument("--token-file", type=Path, help="a bearer token to call with until someone logs in")
    console.add_argument(
        "--eval-report", type=Path, help="where `driftwise eval --out` wrote (console.eval_report)"
    )
    console.add_argument(
        "--allowed-host", action="append", help="a Host header to answer (repeat; console.allowed_hosts)"
    )


def _add_eval_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    evaluation = commands.add_parser(
        "eval", help="what Recommend serves on MovieLens-format data (replayed in process) vs baselines"
    )
    evaluation.add_argument("--dataset", type=Path, default=DEFAULT_PATH, help="MovieLens-format folder")
    evaluation.add_argument("--out", type=Path, default=Path("eval-results"), help="where results go")
    evaluation.add_argument(
        "--sasrec", action="store_true", help="add the SASRec baseline (trains a transformer: slow)"
    )
    evaluation.add_argument(
        "--bert4rec", action="store_true", help="add the BERT4Rec baseline (trains a transformer: slow)"
    )
    evaluation.add_argument(
        "--cold-items", action="store_true", help="add HR@10 on held-out items nobody saw (a second replay)"
    )
    evaluation.add_argument("--sequence-epochs", type=int, help="cap on training epochs of the transformers")
    evaluation.add_argument("--no-ablations", action="store_true")
    evaluation.add_argument("--seed", type=int, default=0)


def _add_token_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = commands.add_parser(
        "token", help="print a new bearer token and the tokens-file entry (its SHA-256) for auth.tokens_file"
    )
    token.add_argument("--tenant", default="my-tenant", help="tenant name for the printed entry")
    token.add_argument("--scopes", default="recommend", help="comma-separated scopes for the entry")
    token.add_argument(
        "--hash-stdin", action="store_true", help="print only the SHA-256 of a token read from stdin"
    )


def settings_for(args: argparse.Namespace) -> Settings:
    """Settings from the environment and the TOML file of --config or DRIFTWISE_CONFIG."""
    if args.config:
        os.environ["DRIFTWISE_CONFIG"] = str(args.config)
    from driftwise.settings import Settings  # after DRIFTWISE_CONFIG is set

    return Settings()


def run_serve(parser: argparse.ArgumentParser, args: argparse.Namespace, settings: Settings) -> None:
    from driftwise.server import serve as run_server

    port = settings.server.port if args.port is None else args.port
    settings = settings.model_copy(
        update={
            "data_dir": args.data_dir or settings.data_dir,
            "server": settings.server.model_copy(update={"port": port}),
        }
    )
    try:
        asyncio.run(run_server(settings))
    except StartupError as exc:  # a bad file or data directory: say which, no traceback
        parser.exit(2, f"driftwise serve: cannot start: {exc}\n")


def run_console(parser: argparse.ArgumentParser, args: argparse.Namespace, settings: Settings) -> None:
    from driftwise.console import console_config, serve_console

    flags = {
        "host": args.host,
        "port": args.port,
        "tls_ca_file": args.tls_ca,
        "tls_cert_file": args.tls_cert,
        "tls_key_file": args.tls_key,
        "tls_server_name": args.tls_server_name,
        "token_file": args.token_file,
        "eval_report": args.eval_report,
        "allowed_hosts": tuple(args.allowed_host) if args.allowed_host else None,
    }
    values = {**settings.console.model_dump(), **{k: v for k, v in flags.items() if v is not None}}
    target = args.target or settings.console.target
    if not target:
        parser.exit(2, "driftwise console: give --target host:port (or console.target)\n")
    try:
        config = console_config(type(settings.console).model_validate(values), target)
    except (StartupError, ValueError) as exc:  # a bad flag or file (pydantic's errors are ValueErrors)
        parser.exit(2, f"driftwise console: cannot start: {exc}\n")
    try:
        asyncio.run(serve_console(config))
    except StartupError as exc:  # the port is taken
        parser.exit(2, f"driftwise console: cannot start: {exc}\n")


def run_demo(args: argparse.Namespace, settings: Settings) -> None:
    from driftwise import demo

    # the demo owns its own data directory (wiped unless --keep-data) and a free port
    settings = settings.model_copy(
        update={
            "data_dir": args.data_dir or Path(".driftwise-demo"),
            "server": settings.server.model_copy(update={"port": 0}),
        }
    )
    options = demo.DemoOptions(fresh=not args.keep_data, keep_running=args.keep)
    asyncio.run(demo.run_demo(settings, args.dataset, args.users.split(","), options))


def run_token(args: argparse.Namespace) -> None:
    from driftwise.security.scopes import parse_scope
    from driftwise.security.tokens import hash_token, new_token

    if args.hash_stdin:
        print(hash_token(sys.stdin.readline().strip()))
        return
    scopes = [parse_scope(s.strip()).value for s in args.scopes.split(",") if s.strip()]
    token = new_token()
    print(f"# token (give it to the tenant; it is not stored anywhere): {token}", file=sys.stderr)
    print(f"[tenants.{args.tenant}]")
    print("scopes = [" + ", ".join(f'"{s}"' for s in scopes) + "]")
    print(f'token_sha256 = ["{hash_token(token)}"]')


def run_eval(args: argparse.Namespace, settings: Settings) -> None:
    from driftwise.evaluation.report import markdown, plot
    from driftwise.evaluation.run import EvalOptions, run_evaluation

    options = EvalOptions(
        dataset=args.dataset,
        settings=settings,
        sasrec=args.sasrec,
        bert4rec=args.bert4rec,
        sequence_epochs=args.sequence_epochs,
        ablations=not args.no_ablations,
        cold_items=args.cold_items,
        seed=args.seed,
    )
    result = run_evaluation(options, report=lambda line: print(line, flush=True))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(result.to_json() + "\n")
    (args.out / "results.md").write_text(markdown(result) + "\n")
    plot(result, args.out / "metrics.png")
    print(markdown(result))
    print(f"wrote {args.out}/results.json, results.md, metrics.png")


if __name__ == "__main__":
    main()

"""``liudong import residents FILE.csv`` and ``liudong generate district``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import_cli = typer.Typer(help="bulk imports from CSV, checked by the same rules as the API", no_args_is_help=True)
generate_cli = typer.Typer(help="synthetic data for trials and benchmarks", no_args_is_help=True)


@import_cli.command("residents")
def import_residents_command(
    file: Annotated[Path, typer.Argument(help="CSV: id_number,name,phone,hometown,employer,area,registered_on"
                                              "[,household_relation]", exists=True, dir_okay=False)],
    report: Annotated[Path | None, typer.Option(help="where to write the refused rows (default FILE.refused.csv)")]
    = None,
    user: Annotated[str, typer.Option(help="the user id recorded as the actor of every registration")] = "import",
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="residents per transaction")] = 500,
) -> None:
    """Register the residents of a CSV file; rows already registered are skipped, so a re-run stores nothing new.
    Exits 1 when any row was refused (they are in the report, with line, field, rule and message)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from application.cli import open_services
    from application.imports import ImportFileError, import_residents, read_rows, write_report
    from domain.common import Actor, Role, Stamp

    total = max(sum(1 for _ in file.open(encoding="utf-8")) - 1, 0)
    services = open_services()
    try:
        stamp = Stamp(Actor(user, Role.CASEWORKER), services.clock())
        columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with file.open(encoding="utf-8", newline="") as stream, Progress(*columns, transient=True) as bar:
            task = bar.add_task("rows", total=total)
            try:
                result = import_residents(services.app, read_rows(stream), stamp, batch_size=batch_size,
                                          progress=lambda n: bar.advance(task, n))
            except ImportFileError as error:
                typer.echo(f"{file}: {error}", err=True)
                raise typer.Exit(2) from None
    finally:
        services.close()
    where = report or file.with_suffix(".refused.csv")
    write_report(where, result.refused)
    typer.echo(f"{result.rows} rows in {result.seconds:.1f} s ({result.rate:,.0f} rows/s): {result.stored} registered,"
               f" {result.already} already registered, {len(result.refused)} refused (see {where})")
    if result.refused:
        raise typer.Exit(1)


@generate_cli.command("district")
def generate_district_command(
    out: Annotated[Path, typer.Option(help="the directory to write residents.csv into")],
    residents: Annotated[int, typer.Option(min=1, max=5_000_000)] = 260_000,
    seed: Annotated[int, typer.Option()] = 7,
) -> None:
    """A synthetic district as CSV (valid identity numbers, Chinese names, hometowns, employers, the register's
    areas; three rows in a thousand deliberately wrong), the same for the same seed."""
    from application.areas import seed_areas
    from application.generate import generate_district

    areas = [a["code"] for a in seed_areas()]
    files = generate_district(out, residents=residents, areas=areas, seed=seed)
    typer.echo(f"wrote {files.rows} residents ({files.flawed} deliberately wrong) to {files.residents}")


def register(cli: typer.Typer) -> None:
    cli.add_typer(import_cli, name="import")
    cli.add_typer(generate_cli, name="generate")

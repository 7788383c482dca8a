"""``liudong import residents FILE.csv`` and ``liudong generate district``."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

import_cli = typer.Typer(help="bulk imports from CSV, checked by the same rules as the API", no_args_is_help=True)
generate_cli = typer.Typer(help="synthetic data for trials and benchmarks", no_args_is_help=True)


def _run_import(kind: str, file: Path, report: Path | None, user: str, batch_size: int) -> None:
    """Import ``file`` as ``kind`` with a progress bar; exit 1 when a row was refused."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from application.cli import open_services
    from application.import_jobs import importer_for
    from application.imports import ImportFileError, count_records, read_rows, write_report
    from domain.common import Actor, Role, Stamp

    importer, required, optional = importer_for(kind)
    role, stored = {"sites": (Role.SUPERVISOR, "sites registered"), "residents": (Role.CASEWORKER, "registered"),
                    "moves": (Role.CASEWORKER, "moves recorded")}[kind]
    total: int | None
    try:
        with file.open(encoding="utf-8-sig", newline="") as counting:
            total = count_records(counting)  # records, not lines: a quoted value may hold line breaks
    except csv.Error:  # the import says what is wrong with the file; the bar counts without a total
        total = None
    except UnicodeDecodeError:  # found by a review: a GBK or UTF-16 file ended in a traceback
        typer.echo(f"{file}: not UTF-8 text; save the CSV as UTF-8 (Excel: CSV UTF-8)", err=True)
        raise typer.Exit(2) from None
    where = report or file.with_suffix(".refused.csv")
    try:  # before anything is stored (found by a review: rows were stored, then the report failed)
        with where.open("a", encoding="utf-8"):
            pass
    except OSError as error:
        typer.echo(f"{where}: the report of refused rows cannot be written here ({error.strerror})", err=True)
        raise typer.Exit(2) from None
    services = open_services()
    try:
        stamp = Stamp(Actor(user, role), services.clock())
        columns = (TextColumn(f"importing {kind}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with file.open(encoding="utf-8-sig", newline="") as stream, Progress(*columns, transient=True) as bar:
            task = bar.add_task("rows", total=total)
            try:
                result = importer(services.app, read_rows(stream, required, optional), stamp, batch_size=batch_size,
                                  progress=lambda n: bar.advance(task, n))
            except ImportFileError as error:
                typer.echo(f"{file}: {error}", err=True)
                raise typer.Exit(2) from None
    finally:
        services.close()
    write_report(where, result.refused)
    typer.echo(f"{result.rows} rows in {result.seconds:.1f} s ({result.rate:,.0f} rows/s): {result.stored} {stored},"
               f" {result.already} stored before, {len(result.refused)} refused (see {where})")
    if result.refused:
        raise typer.Exit(1)


ReportOption = Annotated[Path | None, typer.Option(help="where to write the refused rows (default FILE.refused.csv)")]
UserOption = Annotated[str, typer.Option(help="the user id recorded as the actor of every event")]
BatchOption = Annotated[int, typer.Option(min=1, max=10_000, help="rows per transaction")]


@import_cli.command("sites")
def import_sites_command(
    file: Annotated[Path, typer.Argument(help="CSV: code,name,area,address,operator_type,operator_name,capacity"
                                              "[,facilities] (facilities separated by ';')", exists=True,
                                         dir_okay=False)],
    report: ReportOption = None, user: UserOption = "import", batch_size: BatchOption = 500,
) -> None:
    """Register the housing sites of a CSV file, each under the office's code for it; sites registered before are
    skipped, so a re-run stores nothing new. Exits 1 when any row was refused (they are in the report)."""
    _run_import("sites", file, report, user, batch_size)


@import_cli.command("residents")
def import_residents_command(
    file: Annotated[Path, typer.Argument(help="CSV: id_number,name,phone,hometown,employer,area,registered_on"
                                              "[,household_relation]", exists=True, dir_okay=False)],
    report: ReportOption = None, user: UserOption = "import", batch_size: BatchOption = 500,
) -> None:
    """Register the residents of a CSV file; rows already registered are skipped, so a re-run stores nothing new.
    Exits 1 when any row was refused (they are in the report, with line, field, rule and message)."""
    _run_import("residents", file, report, user, batch_size)


@import_cli.command("moves")
def import_moves_command(
    file: Annotated[Path, typer.Argument(help="CSV: id_number,kind,effective_date[,site_code,area,reason,"
                                              "housing_kind,address,landlord]; kind is into_site,"
                                              " private_housing, departed or returned", exists=True,
                                         dir_okay=False)],
    report: ReportOption = None, user: UserOption = "import", batch_size: BatchOption = 500,
) -> None:
    """Record residents' moves (into a site by its code, to rented housing, departures, returns) from a CSV file, in
    the file's order; moves stored before are skipped, so a re-run stores nothing new. Import the sites and the
    residents first. Exits 1 when any row was refused (they are in the report)."""
    _run_import("moves", file, report, user, batch_size)


def _day(value: str | None) -> date | None:
    """A day as YYYY-MM-DD, as the API takes one."""
    if value is None:
        return None
    from domain.common import iso_day

    day = iso_day(value)
    if day is None:
        raise typer.BadParameter(f"{value!r} is not a day as YYYY-MM-DD from 1900 to 2999")
    return day


@generate_cli.command("district")
def generate_district_command(
    out: Annotated[Path, typer.Option(help="the directory to write sites.csv, residents.csv, moves.csv and"
                                           " disputes.csv into")],
    residents: Annotated[int, typer.Option(min=1, max=5_000_000)] = 260_000,
    sites: Annotated[int, typer.Option(min=1, max=10_000)] = 70,
    seed: Annotated[int, typer.Option()] = 7,
    today: Annotated[str | None, typer.Option(
        help="the last day of the district's year, YYYY-MM-DD (default: today in Asia/Shanghai); with the seed it "
             "makes the files the same again. Import them on or after this day", metavar="YYYY-MM-DD")] = None,
) -> None:
    """A synthetic district as CSV: housing sites sized as the seed counts them, residents (valid identity numbers,
    Chinese names, hometowns, employers, the register's areas), a year of moves (most of those not in a site
    renting) and of disputes; three rows in a thousand deliberately wrong, for reasons that do not pass with time.
    The same for the same seed and day. Import them in that order: sites, residents, moves (no import loads
    disputes.csv yet: its rows are POST /disputes bodies, the resident by identity number)."""
    from application.areas import seed_areas
    from application.generate import generate_district

    areas = [a["code"] for a in seed_areas()]
    files = generate_district(out, residents=residents, areas=areas, seed=seed, sites=sites, today=_day(today))
    typer.echo(f"wrote {files.site_rows} sites to {files.sites}, {files.rows} residents ({files.flawed} deliberately"
               f" wrong) to {files.residents}, {files.move_rows} moves ({files.flawed_moves} deliberately wrong)"
               f" to {files.moves} and {files.dispute_rows} disputes to {files.disputes} (no import loads them yet)")


def register(cli: typer.Typer) -> None:
    cli.add_typer(import_cli, name="import")
    cli.add_typer(generate_cli, name="generate")

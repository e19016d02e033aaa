"""Tables labctl prints: what was created, and what is left."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from lab_scripts.audit import AuditReport, Leftover
from lab_scripts.inventory import EXISTS, SKIPPED, Found


def inventory_table(stack_name: str, found: list[Found]) -> Table:
    table = Table(title=f"{stack_name}: resources as the services report them", title_justify="left")
    for column in ("student", "type", "physical id", "state", "detail"):
        table.add_column(column, overflow="fold")
    for row in sorted(found, key=lambda f: (f.student, f.type)):
        state = row.state if row.state == EXISTS else f"[bold yellow]{row.state}[/]"
        detail = row.detail
        if row.ignored:
            detail += f" [yellow](emulator ignored: {', '.join(row.ignored)})[/]"
        # ARNs and URLs are long and their prefix is the same for every row; the name after the last "/"
        # identifies them. Other ids (log group names contain "/") are shown whole.
        pid = row.physical_id
        short = pid.rsplit("/", 1)[-1] if pid.startswith(("arn:", "https://", "http://")) else pid
        table.add_row(row.student, row.type.removeprefix("AWS::"), short, state, detail.strip())
    return table


def print_inventory(console: Console, inventory: dict[str, list[Found]]) -> None:
    for stack_name, found in inventory.items():
        console.print(inventory_table(stack_name, found))
        skipped = sorted({row.type for row in found if row.state == SKIPPED})
        if skipped:
            console.print(
                f"[yellow]Not created by this endpoint (reported CREATE_COMPLETE, nothing exists):[/] {', '.join(skipped)}"
            )


def print_audit(console: Console, report: AuditReport) -> None:
    for note in report.unchecked:
        console.print(f"[yellow]unchecked[/] {note}")
    if report.clean:
        console.print("[bold green]0 resources left[/]")
        return
    table = Table(title=f"{len(report.leftovers)} resources left", title_justify="left")
    for column in ("service", "kind", "name", "billable", "USD/hour", "detail"):
        table.add_column(column, overflow="fold", justify="right" if column == "USD/hour" else "left")
    for item in report.leftovers:
        table.add_row(item.service, item.kind, item.name, "yes" if item.billable else "no", _usd(item), item.detail)
    console.print(table)
    if report.billable:
        unknown = f"; no price known for {len(report.unpriced)} of them" if report.unpriced else ""
        console.print(f"[bold red]{len(report.billable)} billable[/]: about {report.usd_per_hour:.4f} USD/hour "
                      f"({report.usd_per_hour * 24 * 30:.2f} USD a month) while they stay (us-east-1 list prices, "
                      f"an estimate{unknown})")


def _usd(item: Leftover) -> str:
    if not item.billable:
        return "-"
    return "?" if item.usd_per_hour is None else f"{item.usd_per_hour:.4f}"

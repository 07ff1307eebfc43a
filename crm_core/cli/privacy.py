"""``crm privacy``: a person's data export and erasure (PIPL), audited as channel ``cli``."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from ..customers.models import Contact, Customer
from ..db import session
from ..errors import CrmError
from ..privacy import erase as erasing
from ..privacy.export import export_person


@click.group("privacy")
def privacy_group() -> None:
    """Personal data: export it for the person, or erase it by anonymisation."""


@privacy_group.command("export")
@click.option("--customer", "customer_id", type=int, required=True, help="The customer's id.")
@click.option(
    "--contact", "contact_id", type=int, default=None, help="One contact of that customer."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the JSON document to this file. Default: print it.",
)
@with_appcontext
def export_command(customer_id: int, contact_id: int | None, output: str | None) -> None:
    """Export everything the CRM holds about a person customer (or one contact) as JSON."""
    try:
        document = export_person(customer_id, contact_id)
        session().commit()
    except CrmError as exc:
        session().rollback()
        raise click.ClickException(str(exc)) from exc
    text = json.dumps(document, ensure_ascii=False, indent=2)
    if output is None:
        click.echo(text)
        return
    with open(output, "w", encoding="utf-8") as out:
        out.write(text + "\n")
    click.echo(f"wrote {output}", err=True)


@privacy_group.command("erase")
@click.option("--customer", "customer_id", type=int, default=None, help="A person customer's id.")
@click.option("--contact", "contact_id", type=int, default=None, help="A contact's id.")
@click.option("--yes", is_flag=True, help="Confirm: the erasure cannot be undone.")
@with_appcontext
def erase_command(customer_id: int | None, contact_id: int | None, yes: bool) -> None:
    """Erase the personal data of a person customer (with its contacts) or of one contact by
    anonymisation; counts and reports keep their figures."""
    if (customer_id is None) == (contact_id is None):
        raise click.UsageError("give either --customer ID or --contact ID")
    s = session()
    record = s.get(Customer, customer_id) if customer_id is not None else None
    contact = s.get(Contact, contact_id) if contact_id is not None else None
    if customer_id is not None and record is None:
        raise click.ClickException(f"no customer {customer_id}")
    if contact_id is not None and contact is None:
        raise click.ClickException(f"no contact {contact_id}")
    try:
        if record is not None:
            erasing.check_customer(record)
        elif contact is not None:
            erasing.check_contact(contact)
        if not yes:
            raise click.ClickException("erasure cannot be undone: add --yes to erase")
        code = record.code if record is not None else None
        done = erasing.erase_customer(record) if record is not None else None
        if contact is not None:
            done = erasing.erase_contact(contact)
        s.commit()
    except CrmError as exc:
        s.rollback()
        raise click.ClickException(str(exc)) from exc
    assert done is not None
    if code is not None:
        click.echo(
            f"customer {code} erased: {done.contacts} contacts, {done.activities} follow-ups, "
            f"{done.consents} consents anonymised; {done.redacted_entries} history entries "
            "redacted"
        )
    else:
        click.echo(
            f"contact {contact_id} erased: {done.activities} follow-ups, {done.consents} "
            f"consents anonymised; {done.redacted_entries} history entries redacted"
        )


COMMANDS = [privacy_group]

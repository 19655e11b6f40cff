"""Sub-commands of the ``riskgrid`` CLI, one module each (registered in riskgrid/cli.py), and their one error format."""


def one_line(exc: BaseException) -> str:
    """The error on one line; anything but riskgrid's own errors carries its type (``KeyError: 'h3'``)."""
    from ..errors import RiskGridError

    msg = " ".join(str(exc).split())
    if not isinstance(exc, (RiskGridError, OSError)):
        return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
    return msg or type(exc).__name__


def date_option(ctx, param, value):
    """Click callback of a date option: only ``YYYY-MM-DD`` (:func:`riskgrid.events.parse_date`), kept as that text."""
    import click

    if value is None:
        return None
    from ..timeparse import parse_date  # (the function riskgrid.events.parse_date re-exports; no heavy import)

    try:
        return f"{parse_date(value):%Y-%m-%d}"
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None

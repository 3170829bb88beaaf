"""Subcommands of `taskgroup`: name -> module. A module defines ``add_parser(subparsers, name)``,
which adds its parser and sets ``run`` (a function of the parsed args returning the exit status)
as a default. Modules are imported lazily so `taskgroup solve` never imports torch or ray."""


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


COMMANDS: dict[str, str] = {
    "solve": "api.commands.solve",
    "search": "api.commands.search",
    "jobs": "api.commands.jobs",
    "show": "api.commands.show",
    "serve": "api.commands.serve",
    "report": "api.commands.report",
    "export": "api.commands.export",
    "predict": "api.commands.predict",
    "gc": "api.commands.gc",
}

__all__ = ["COMMANDS", "CliError"]

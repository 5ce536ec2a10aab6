"""Typer functions of the ``gkaan`` commands, one module each, registered in ``gkaan_cli.cli``.

A command parses its options, calls the library and renders the result; results go to
stdout, progress and error lines to stderr.
"""

"""The inference workflows as a library: what ``gkaan predict`` and ``gkaan visualize`` do,
callable from Python without the terminal (docs/predict.md#library).

Between :mod:`gkaan_cli.viz` and the commands: :mod:`.model` resolves a model spec once and
loads it, :mod:`.options` holds the typed options, :mod:`.predict` and :mod:`.timeline` run
requests and write their files. The commands keep option parsing, tables, the live loop's
printing and exit codes; nothing here prints.
"""

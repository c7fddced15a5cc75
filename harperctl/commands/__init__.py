"""harperctl's commands, one module per noun; `harperctl.cli.COMMAND_MODULES` lists them.

Each module exposes `COMMANDS`, the click commands and groups it adds to the root.
"""

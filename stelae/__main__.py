"""``python -m stelae``: the same as the ``stelae`` command."""

from stelae.cli.main import main

if __name__ == "__main__":
    main(prog_name="stelae")

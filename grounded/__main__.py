"""`python -m grounded ...` is the `grounded` command."""

from grounded.cli import main

if __name__ == "__main__":
    main(prog_name="grounded")

"""`python -m galaxygen` is the `galaxygen` command (also what torchrun runs)."""

from galaxygen.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

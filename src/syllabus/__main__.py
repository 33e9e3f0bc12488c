"""``python -m syllabus`` runs the CLI."""

from syllabus.cli.main import main

if __name__ == "__main__":
    main()

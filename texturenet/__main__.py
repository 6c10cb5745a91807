"""``python -m texturenet``: the same as the ``texturenet`` command."""
from .cli.command import main

if __name__ == "__main__":
    main()

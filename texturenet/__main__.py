"""``python -m texturenet``: the same as the ``texturenet`` command."""
from .commands import main

if __name__ == "__main__":
    main()
